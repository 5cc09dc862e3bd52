"""Fetch cases that ``make mutants`` found unpinned: the exact result of each kind of response
and failure (URL, reason, status, validators, hints), header parsing edges, local files, and the
address check on the connection itself.

Real loopback servers (``tests/feedserver.py``, and a raw socket server for answers no HTTP
server gives), real files; only the clock is fixed (``tests.test_fetch.fetch``).
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import ipaddress
import os
import random
import shutil
import socket
import ssl
import struct
import subprocess
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from monitor import fetch as fetch_module
from monitor.fetch import (
    Fetched,
    Fetcher,
    FetchFailed,
    FetchLimits,
    FetchResult,
    NotModified,
    Validators,
)
from tests.feedserver import Concurrency, FeedServer, Route, closed_port
from tests.fixturedata import missing
from tests.test_fetch import NOW, RSS, fetch

# --- the result of each kind of answer ---------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "hint"),
    [
        ('max-age="60"', timedelta(seconds=60)),
        ("max-age=60, private", timedelta(seconds=60)),
        ("public,max-age=60", timedelta(seconds=60)),
        ("max-age=60, no-store", None),
        ("max-age=60, No-Cache", None),
        ("private", None),
    ],
)
def test_cache_control_max_age_is_the_hint_unless_caching_is_refused(
    feed_server: FeedServer, header: str, hint: timedelta | None
) -> None:
    feed_server.route("/feed", body=RSS, headers={"Cache-Control": header})
    result = fetch(feed_server, feed_server.url("/feed"))
    assert isinstance(result, Fetched) and result.min_interval == hint


def test_a_304_after_a_redirect_carries_new_validators_and_the_hint(
    feed_server: FeedServer,
) -> None:
    new = {"ETag": '"v2"', "Last-Modified": "Wed, 01 May 2024 11:00:00 GMT"}
    feed_server.route("/feed", status=304, headers={**new, "Cache-Control": "max-age=60"})
    feed_server.route("/old", status=302, location="/feed")
    old = Validators('"v1"', "Tue, 30 Apr 2024 11:00:00 GMT")
    result = fetch(feed_server, feed_server.url("/old"), old)
    assert result == NotModified(
        feed_server.url("/feed"), Validators(*new.values()), timedelta(seconds=60)
    )


@pytest.mark.parametrize(
    ("route", "expected"),
    [
        (Route(status=410), FetchFailed("", "HTTP 410: Gone", status=410, gone=True)),
        (Route(status=500), FetchFailed("", "HTTP 500: Internal Server Error", status=500)),
        # Not a redirect aiohttp or we follow, and not a 2xx: a failure, not a body.
        (Route(status=300, body=RSS), FetchFailed("", "HTTP 300: Multiple Choices", status=300)),
        (Route(status=599), FetchFailed("", "HTTP 599", status=599)),  # no reason phrase
        (
            Route(status=503, headers={"Retry-After": "Wed, 01 May 2024 12:00:30 -0000"}),
            FetchFailed(
                "", "HTTP 503: Service Unavailable", status=503, retry_after=timedelta(seconds=30)
            ),
        ),
    ],
)
def test_failures_name_the_requested_url_and_the_status(
    feed_server: FeedServer, route: Route, expected: FetchFailed
) -> None:
    feed_server.routes["/feed"] = route
    feed_server.route("/old", status=307, location="/feed")
    result = fetch(feed_server, feed_server.url("/old"))
    assert result == FetchFailed(
        feed_server.url("/old"),
        expected.reason,
        status=expected.status,
        retry_after=expected.retry_after,
        gone=expected.gone,
    )


def test_a_body_over_the_cap_fails_with_the_status_whether_announced_or_streamed(
    feed_server: FeedServer,
) -> None:
    feed_server.route("/announced", body=b"x" * 1001)
    feed_server.route("/streamed", body=b"x" * 1001, content_length=False)
    for path in ("/announced", "/streamed"):
        result = fetch(feed_server, feed_server.url(path), max_bytes=1000)
        assert result == FetchFailed(
            feed_server.url(path), "body larger than 1000 bytes", status=200
        )


def test_an_announced_body_exactly_at_the_cap_is_read(feed_server: FeedServer) -> None:
    feed_server.route("/feed", body=b"x" * 1000)
    result = fetch(feed_server, feed_server.url("/feed"), max_bytes=1000)
    assert isinstance(result, Fetched) and result.body == b"x" * 1000


def test_the_cap_is_on_the_decoded_body_not_the_compressed_length(
    feed_server: FeedServer,
) -> None:
    # Random bytes do not compress: the gzip stream is longer than the body it decodes to.
    body = random.Random(7).randbytes(4000)
    assert len(gzip.compress(body)) > 4000
    feed_server.route("/feed", body=body, gzip=True)
    result = fetch(feed_server, feed_server.url("/feed"), max_bytes=4000)
    assert isinstance(result, Fetched) and result.body == body


def test_a_body_read_in_many_chunks_is_joined_as_sent(feed_server: FeedServer) -> None:
    body = random.Random(8).randbytes(1 << 20)
    feed_server.route("/feed", body=body, content_length=False)
    result = fetch(feed_server, feed_server.url("/feed"))
    assert isinstance(result, Fetched) and result.body == body


@pytest.mark.parametrize(("size", "text"), [(1 << 30, "1 GiB"), (3 << 29, "1.5 GiB")])
def test_the_cap_is_named_in_binary_units(feed_server: FeedServer, size: int, text: str) -> None:
    # The server announces more than the cap: refused before a byte of the body is read.
    feed_server.route("/feed", headers={"Content-Length": str(size + 1)}, content_length=False)
    result = fetch(feed_server, feed_server.url("/feed"), max_bytes=size)
    assert result == FetchFailed(feed_server.url("/feed"), f"body larger than {text}", status=200)


# --- targets -----------------------------------------------------------------------------------


def test_a_url_without_a_host_is_refused(feed_server: FeedServer) -> None:
    assert fetch(None, "http:///feed") == FetchFailed("http:///feed", "URL has no host")
    feed_server.route("/feed", status=302, location="http://:80/feed")
    result = fetch(feed_server, feed_server.url("/feed"))
    assert result == FetchFailed(feed_server.url("/feed"), "URL has no host")


def test_a_redirect_to_https_is_followed(feed_server: FeedServer) -> None:
    port = closed_port()
    feed_server.route("/feed", status=302, location=f"https://127.0.0.1:{port}/feed")
    allow = feed_server.allow | {f"127.0.0.1:{port}"}
    result = fetch(feed_server, feed_server.url("/feed"), allow_private=allow)
    assert result == FetchFailed(feed_server.url("/feed"), "connection refused")


@pytest.mark.parametrize(("scheme", "port"), [("http", 80), ("https", 443)])
def test_the_allow_list_knows_the_default_port_of_each_scheme(scheme: str, port: int) -> None:
    # Allowed, so it is connected to (nothing is expected to listen there); not refused.
    result = fetch(
        None, f"{scheme}://127.0.0.1/feed", allow_private=frozenset({f"127.0.0.1:{port}"})
    )
    assert not (isinstance(result, FetchFailed) and "loopback" in result.reason), result


# --- the address check on the connection -------------------------------------------------------


@pytest.fixture
def resolver_lets_everything_through(monkeypatch: pytest.MonkeyPatch) -> None:
    """Stand-in for DNS answers that change between the resolver's check and the connection."""

    async def resolve(
        self: fetch_module._PolicyResolver,
        host: str,
        port: int = 0,
        family: socket.AddressFamily = socket.AF_INET,
    ) -> list[fetch_module.ResolveResult]:
        return await self._inner.resolve(host, port, family)

    monkeypatch.setattr(fetch_module._PolicyResolver, "resolve", resolve)


@pytest.mark.usefixtures("resolver_lets_everything_through")
def test_the_connection_itself_is_checked_behind_the_resolver(feed_server: FeedServer) -> None:
    feed_server.route("/feed", body=RSS)
    url = f"http://localhost:{feed_server.port}/feed"
    result = fetch(None, url)
    assert result == FetchFailed(url, "address 127.0.0.1 is loopback")
    assert feed_server.requests == []  # refused before the request was written
    by_name = fetch(None, url, allow_private=frozenset({f"localhost:{feed_server.port}"}))
    assert isinstance(by_name, Fetched) and by_name.body == RSS


@pytest.mark.usefixtures("resolver_lets_everything_through")
def test_a_pooled_connection_is_checked_again_for_each_fetch(feed_server: FeedServer) -> None:
    feed_server.route("/feed", body=RSS)
    url = f"http://localhost:{feed_server.port}/feed"
    allowed = FetchLimits(allow_private=frozenset({f"localhost:{feed_server.port}"}))

    async def go() -> tuple[FetchResult, FetchResult]:
        async with Fetcher(allowed, clock=lambda: NOW) as fetcher:
            first = await fetcher.fetch(url)
            return first, await fetcher.fetch(url, limits=FetchLimits())

    first, second = asyncio.run(go())
    assert isinstance(first, Fetched)
    assert second == FetchFailed(url, "address 127.0.0.1 is loopback")
    assert len(feed_server.requests) == 1


# --- answers no HTTP server gives --------------------------------------------------------------


@pytest.fixture
def raw_server() -> Iterator[Callable[[bytes | None], str]]:
    """A loopback socket server that reads a request, sends ``answer`` (None: nothing), closes."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(5)
    stop = threading.Event()
    answers: list[bytes | None] = []

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                if stop.is_set():
                    return
                conn.recv(65536)
                if answers and answers[0] is not None:
                    conn.sendall(answers[0])

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()

    def url(answer: bytes | None) -> str:
        answers[:] = [answer]
        return f"http://127.0.0.1:{listener.getsockname()[1]}/feed"

    yield url
    stop.set()
    socket.create_connection(listener.getsockname()).close()  # wakes accept()
    thread.join(5)
    listener.close()


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (None, "connection closed by server"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n<rss>", "invalid response body"),
        (b"HTTP/1.1 abc\r\n\r\n", "invalid response: "),
    ],
)
def test_broken_answers_are_named(
    raw_server: Callable[[bytes | None], str], answer: bytes | None, reason: str
) -> None:
    url = raw_server(answer)
    result = fetch(None, url, allow_private=True)
    assert isinstance(result, FetchFailed) and result.url == url, result
    assert result.reason.startswith(reason), result
    if not reason.endswith(" "):
        assert result.reason == reason


# --- local files -------------------------------------------------------------------------------


def test_local_files_results_name_the_url(tmp_path: Path) -> None:
    feed = tmp_path / "feed.xml"
    feed.write_bytes(b"x" * 1000)
    first = fetch(None, str(feed), max_bytes=1000)  # exactly at the cap: read
    assert isinstance(first, Fetched)
    stamp = first.validators.last_modified
    assert stamp is not None and stamp.endswith(" GMT")
    assert first == Fetched(str(feed), b"x" * 1000, Validators(last_modified=stamp), 200, None)
    assert fetch(None, str(feed), first.validators) == NotModified(
        str(feed), Validators(last_modified=stamp)
    )
    missing = str(tmp_path / "missing.xml")
    assert fetch(None, missing) == FetchFailed(missing, "file not found")
    assert fetch(None, str(tmp_path)) == FetchFailed(str(tmp_path), "is a directory")
    below_a_file = str(feed / "x.xml")
    assert fetch(None, below_a_file) == FetchFailed(
        below_a_file, "cannot read file: Not a directory"
    )


def test_a_local_file_that_blocks_is_cut_at_the_deadline(tmp_path: Path) -> None:
    # A FIFO without a writer blocks its reader in open(): the deadline still holds.
    fifo = tmp_path / "feed.fifo"
    os.mkfifo(fifo)

    def release() -> None:  # the reader thread, or the loop's executor would wait for it
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))

    # Should the deadline fail, the watchdog releases the reader so the test fails, not hangs.
    watchdog = threading.Timer(10, release)
    watchdog.start()

    async def go() -> FetchResult:
        async with Fetcher(FetchLimits(timeout=timedelta(seconds=0.2))) as fetcher:
            result = await fetcher.fetch(str(fifo))
        watchdog.cancel()
        release()
        return result

    assert asyncio.run(go()) == FetchFailed(str(fifo), "timed out after 0.2s")


# --- requests, hosts and schemes -------------------------------------------------------------


def test_requests_ask_for_feeds(feed_server: FeedServer) -> None:
    feed_server.route("/feed", body=RSS)
    fetch(feed_server, feed_server.url("/feed"))
    assert feed_server.requests[0].headers["accept"].startswith("application/rss+xml, ")


def test_no_cookie_set_by_one_answer_is_sent_again(feed_server: FeedServer) -> None:
    # By host name: a cookie jar keeps no cookies of IP-address hosts anyway.
    feed_server.route("/feed", body=RSS, headers={"Set-Cookie": "session=abc; Path=/"})
    url = f"http://localhost:{feed_server.port}/feed"
    allow = frozenset({f"localhost:{feed_server.port}"})

    async def go() -> None:
        async with Fetcher(FetchLimits(allow_private=allow)) as fetcher:
            await fetcher.fetch(url)
            await fetcher.fetch(url)

    asyncio.run(go())
    assert [r.headers.get("cookie") for r in feed_server.requests] == [None, None]


def test_two_hosts_do_not_share_the_slots_of_one(feed_server: FeedServer) -> None:
    # per_host=1, one request to each of two host names of the same server: both at once.
    seen = Concurrency(expected=2, limit=2, body=RSS, hold=5.0)
    feed_server.route("/feed", handler=seen)
    urls = [feed_server.url("/feed"), f"http://localhost:{feed_server.port}/feed"]
    allow = feed_server.allow | {f"localhost:{feed_server.port}"}

    async def go() -> list[FetchResult]:
        async with Fetcher(FetchLimits(allow_private=allow), per_host=1) as fetcher:
            return list(await asyncio.gather(*(fetcher.fetch(u) for u in urls)))

    assert all(isinstance(r, Fetched) for r in asyncio.run(go()))
    assert seen.peak == 2


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://example.org/feed", "unsupported URL scheme 'ftp'"),
        ("x:/feed", "unsupported URL scheme 'x'"),  # one letter is a drive only on Windows
        ("http://127.0.0.1:99999/feed", "invalid port in URL"),
    ],
)
def test_urls_that_cannot_be_fetched_say_why(url: str, reason: str) -> None:
    assert fetch(None, url, allow_private=True) == FetchFailed(url, reason)


def test_https_urls_are_fetched() -> None:
    url = f"https://127.0.0.1:{closed_port()}/feed"
    assert fetch(None, url, allow_private=True) == FetchFailed(url, "connection refused")


def test_a_time_out_names_the_url(feed_server: FeedServer) -> None:
    feed_server.route("/feed", silent=True)
    result = fetch(feed_server, feed_server.url("/feed"), timeout=timedelta(seconds=0.2))
    assert result == FetchFailed(feed_server.url("/feed"), "timed out after 0.2s")


def test_a_file_url_on_localhost_is_a_local_file(tmp_path: Path) -> None:
    feed = tmp_path / "feed.xml"
    feed.write_bytes(RSS)
    result = fetch(None, f"file://localhost{feed}")
    assert isinstance(result, Fetched) and result.body == RSS


def test_no_proxy_hosts_are_fetched_directly_and_checked(
    feed_server: FeedServer,
    feed_server_factory: Callable[[], FeedServer],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    proxy = feed_server_factory()
    monkeypatch.setenv("HTTP_PROXY", proxy.url())
    monkeypatch.setenv("NO_PROXY", "localhost")
    for name in ("http_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    feed_server.route("/feed", body=RSS)
    url = f"http://localhost:{feed_server.port}/feed"
    allowed = fetch(
        None, url, trust_env=True, allow_private=frozenset({f"localhost:{feed_server.port}"})
    )
    assert isinstance(allowed, Fetched) and allowed.body == RSS
    assert fetch(None, url, trust_env=True) == FetchFailed(url, "address 127.0.0.1 is loopback")
    assert proxy.requests == []


def test_a_proxy_named_by_host_name_is_reached(
    feed_server_factory: Callable[[], FeedServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The proxy is operator configuration: its loopback address is not refused.
    proxy = feed_server_factory()
    proxy.route("http://feeds.example.test/feed", body=RSS)
    monkeypatch.setenv("HTTP_PROXY", f"http://localhost:{proxy.port}")
    for name in ("http_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    result = fetch(None, "http://feeds.example.test/feed", trust_env=True)
    assert isinstance(result, Fetched) and result.body == RSS


@pytest.mark.parametrize(
    ("route", "reason"),
    [
        (Route(status=302), "HTTP 302 without Location"),
        (Route(status=302, location="http://[::1/feed"), "invalid URL: Invalid IPv6 URL"),
        (Route(status=302, location="/feed"), "too many redirects (more than 5)"),
    ],
)
def test_redirects_that_lead_nowhere_name_the_requested_url(
    feed_server: FeedServer, route: Route, reason: str
) -> None:
    feed_server.routes["/feed"] = route
    result = fetch(feed_server, feed_server.url("/feed"))
    status = 302 if "Location" in reason else None
    assert result == FetchFailed(feed_server.url("/feed"), reason, status=status)


# --- the address policy --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("64:ff9b:1::1", "private"),  # local-use NAT64 (RFC 8215)
        ("2001:4860::1%eth0", "link-local"),  # a zone makes any address link-scoped
        ("2001:2::1", "reserved"),  # benchmarking: not global, in no table above
    ],
)
def test_address_kinds_outside_the_tables(address: str, kind: str) -> None:
    assert fetch_module.address_refusal(ipaddress.ip_address(address)) == kind


def test_the_allow_list_matches_bracketed_ipv6_hosts_and_trailing_dots() -> None:
    allowed = fetch_module.address_allowed
    v6, v4 = ipaddress.ip_address("fd00::1"), ipaddress.ip_address("10.0.0.1")
    assert allowed(v6, "[fd00::1]", 8080, frozenset({"[fd00::1]:8080"}))
    assert allowed(v6, "[FEEDS.lan]", 8080, frozenset({"feeds.lan:8080"}))
    assert allowed(v4, "Feeds.LAN.", 80, frozenset({"feeds.lan:80"}))


# --- TLS and resets: what the operator reads for a broken source -----------------------------


@pytest.fixture(scope="module")
def self_signed(tmp_path_factory: pytest.TempPathFactory) -> ssl.SSLContext:
    """A server context with a certificate nobody trusts (made by the ``openssl`` command)."""
    if shutil.which("openssl") is None:
        missing("no openssl command to make a test certificate")
    d = tmp_path_factory.mktemp("tls")
    key, cert = str(d / "key.pem"), str(d / "cert.pem")
    command = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"]
    subprocess.run(
        [*command, "-subj", "/CN=127.0.0.1", "-keyout", key, "-out", cert],
        check=True,
        capture_output=True,
    )
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    return ctx


@pytest.fixture
def socket_server() -> Iterator[Callable[[Callable[[socket.socket], None]], int]]:
    """Loopback servers that hand every accepted connection to ``handle``; returns the port."""
    listeners: list[socket.socket] = []

    def start(handle: Callable[[socket.socket], None]) -> int:
        listener = socket.create_server(("127.0.0.1", 0))
        listeners.append(listener)

        def serve() -> None:
            while True:
                try:
                    conn, _ = listener.accept()
                except OSError:
                    return
                with contextlib.suppress(OSError), conn:
                    handle(conn)

        threading.Thread(target=serve, daemon=True).start()
        return int(listener.getsockname()[1])

    yield start
    for listener in listeners:
        listener.close()


def test_a_certificate_nobody_trusts_is_named_as_such(
    socket_server: Callable[[Callable[[socket.socket], None]], int], self_signed: ssl.SSLContext
) -> None:
    def handle(conn: socket.socket) -> None:
        with self_signed.wrap_socket(conn, server_side=True) as tls:
            tls.recv(65536)

    url = f"https://127.0.0.1:{socket_server(handle)}/feed"
    result = fetch(None, url, allow_private=True)
    assert isinstance(result, FetchFailed) and result.url == url, result
    assert result.reason.startswith("TLS certificate error: "), result
    assert "self-signed certificate" in result.reason, result


def test_https_to_a_server_that_does_not_speak_tls_is_a_tls_error(
    socket_server: Callable[[Callable[[socket.socket], None]], int],
) -> None:
    def handle(conn: socket.socket) -> None:
        conn.recv(65536)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

    url = f"https://127.0.0.1:{socket_server(handle)}/feed"
    assert fetch(None, url, allow_private=True) == FetchFailed(url, "TLS error")


def test_a_connection_reset_is_named_a_reset(
    socket_server: Callable[[Callable[[socket.socket], None]], int],
) -> None:
    def handle(conn: socket.socket) -> None:
        conn.recv(65536)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # RST

    url = f"http://127.0.0.1:{socket_server(handle)}/feed"
    assert fetch(None, url, allow_private=True) == FetchFailed(url, "connection reset")
