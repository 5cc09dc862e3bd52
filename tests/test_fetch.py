"""Wire-level tests of the fetch stage against a real loopback server."""

from __future__ import annotations

import asyncio
import ipaddress
import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor import USER_AGENT
from monitor.fetch import (
    Fetched,
    Fetcher,
    FetchFailed,
    FetchLimits,
    FetchResult,
    NotModified,
    Validators,
    address_allowed,
    address_refusal,
)
from monitor.parse import ParseError, parse_feed
from tests.feedserver import Concurrency, FeedServer, closed_port, gzip_bomb

RSS = b"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Loopback</title><link>http://example.org/</link>
<item><title>One</title><link>http://example.org/1</link><guid>1</guid></item>
</channel></rss>
"""

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def fetch(
    server: FeedServer | None,
    url: str,
    validators: Validators | None = None,
    **limits: object,
) -> FetchResult:
    """One fetch with a fresh Fetcher; the server (if given) is reachable, nothing else is."""
    if server is not None:
        limits.setdefault("allow_private", server.allow)
    fetch_limits = FetchLimits(**limits)  # type: ignore[arg-type]

    async def go() -> FetchResult:
        async with Fetcher(fetch_limits, clock=lambda: NOW) as fetcher:
            return await fetcher.fetch(url, validators)

    return asyncio.run(go())


def failed(result: FetchResult) -> FetchFailed:
    assert isinstance(result, FetchFailed), result
    return result


# --- success, validators, conditional GET ------------------------------------------------------


def test_fetch_200_returns_body_and_etag_then_304(feed_server: FeedServer) -> None:
    feed_server.route("/feed", body=RSS, etag='"v1"', headers={"Cache-Control": "max-age=600"})
    first = fetch(feed_server, feed_server.url("/feed"))
    assert isinstance(first, Fetched)
    assert first.body == RSS
    assert first.status == 200
    assert first.validators == Validators(etag='"v1"')
    assert first.content_type == "application/rss+xml; charset=utf-8"
    assert first.min_interval == timedelta(seconds=600)
    assert first.permanent_redirect is None

    second = fetch(feed_server, feed_server.url("/feed"), first.validators)
    assert isinstance(second, NotModified)
    assert second.validators.etag == '"v1"'
    assert feed_server.requests[1].headers["if-none-match"] == '"v1"'
    assert "if-none-match" not in feed_server.requests[0].headers


def test_last_modified_sent_back_as_if_modified_since(feed_server: FeedServer) -> None:
    stamp = "Wed, 01 May 2024 10:00:00 GMT"
    feed_server.route("/feed", body=RSS, last_modified=stamp)
    first = fetch(feed_server, feed_server.url("/feed"))
    assert isinstance(first, Fetched)
    assert first.validators == Validators(last_modified=stamp)
    second = fetch(feed_server, feed_server.url("/feed"), first.validators)
    assert isinstance(second, NotModified)
    assert second.validators.last_modified == stamp
    assert feed_server.requests[1].headers["if-modified-since"] == stamp


def test_changed_etag_gives_new_body(feed_server: FeedServer) -> None:
    feed_server.route("/feed", body=RSS, etag='"v2"')
    result = fetch(feed_server, feed_server.url("/feed"), Validators(etag='"v1"'))
    assert isinstance(result, Fetched)
    assert result.validators.etag == '"v2"'


def test_user_agent_names_the_product(feed_server: FeedServer) -> None:
    feed_server.route("/feed", body=RSS)
    fetch(feed_server, feed_server.url("/feed"))
    ua = feed_server.requests[0].headers["user-agent"]
    assert ua == USER_AGENT
    assert ua.startswith("news-monitor/")


def test_gzip_encoded_body_is_decoded(feed_server: FeedServer) -> None:
    feed_server.route("/feed", body=RSS, gzip=True)
    result = fetch(feed_server, feed_server.url("/feed"))
    assert isinstance(result, Fetched)
    assert result.body == RSS


def test_body_without_content_length_read_to_close(feed_server: FeedServer) -> None:
    feed_server.route("/feed", body=RSS, content_length=False)
    result = fetch(feed_server, feed_server.url("/feed"))
    assert isinstance(result, Fetched)
    assert result.body == RSS


# --- deadline and size caps --------------------------------------------------------------------


def test_slow_drip_is_cut_at_the_total_deadline(feed_server: FeedServer) -> None:
    # One byte per second: every single read is fast, only a total deadline stops it.
    feed_server.route("/feed", body=RSS, drip_interval=1.0)
    result = failed(fetch(feed_server, feed_server.url("/feed"), timeout=timedelta(seconds=1.5)))
    assert result.reason == "timed out after 1.5s"


def test_silent_server_times_out(feed_server: FeedServer) -> None:
    feed_server.route("/feed", silent=True)
    result = failed(fetch(feed_server, feed_server.url("/feed"), timeout=timedelta(seconds=0.5)))
    assert result.reason == "timed out after 0.5s"


def test_gzip_bomb_is_cut_at_max_bytes(feed_server: FeedServer) -> None:
    bomb = gzip_bomb(64 * 1024 * 1024)
    assert len(bomb) < 1024 * 1024
    feed_server.route("/feed", raw_gzip=bomb)
    result = failed(fetch(feed_server, feed_server.url("/feed"), max_bytes=1024 * 1024))
    assert result.reason == "body larger than 1 MiB"


def test_huge_body_is_refused(feed_server: FeedServer) -> None:
    feed_server.route("/feed", body=b"x" * (2 * 1024 * 1024 + 1))
    result = failed(fetch(feed_server, feed_server.url("/feed"), max_bytes=2 * 1024 * 1024))
    assert result.reason == "body larger than 2 MiB"


def test_huge_body_without_content_length_is_cut_while_streaming(feed_server: FeedServer) -> None:
    feed_server.route("/feed", body=b"x" * 300_000, content_length=False)
    result = failed(fetch(feed_server, feed_server.url("/feed"), max_bytes=100_000))
    assert result.reason.startswith("body larger than 97.7 KiB")


def test_body_exactly_at_the_cap_is_accepted(feed_server: FeedServer) -> None:
    feed_server.route("/feed", body=b"x" * 1000, content_length=False)
    result = fetch(feed_server, feed_server.url("/feed"), max_bytes=1000)
    assert isinstance(result, Fetched)
    assert len(result.body) == 1000


# --- redirects ---------------------------------------------------------------------------------


def test_301_is_reported_as_permanent_redirect(feed_server: FeedServer) -> None:
    feed_server.route("/old", status=301, location="/new")
    feed_server.route("/new", body=RSS)
    result = fetch(feed_server, feed_server.url("/old"))
    assert isinstance(result, Fetched)
    assert result.body == RSS
    assert result.permanent_redirect == feed_server.url("/new")
    assert result.url == feed_server.url("/new")


def test_308_then_302_is_not_permanent(feed_server: FeedServer) -> None:
    feed_server.route("/a", status=308, location="/b")
    feed_server.route("/b", status=302, location="/c")
    feed_server.route("/c", body=RSS)
    result = fetch(feed_server, feed_server.url("/a"))
    assert isinstance(result, Fetched)
    assert result.permanent_redirect is None
    assert result.url == feed_server.url("/c")


def test_redirect_loop_stops(feed_server: FeedServer) -> None:
    feed_server.route("/a", status=302, location="/b")
    feed_server.route("/b", status=302, location="/a")
    result = failed(fetch(feed_server, feed_server.url("/a"), max_redirects=3))
    assert result.reason == "too many redirects (more than 3)"
    assert len(feed_server.requests) == 4


def test_redirect_to_a_loopback_port_not_allowed_is_refused(
    feed_server_factory: Callable[[], FeedServer],
) -> None:
    first, other = feed_server_factory(), feed_server_factory()
    other.route("/feed", body=RSS)
    first.route("/feed", status=302, location=other.url("/feed"))
    result = failed(fetch(first, first.url("/feed")))
    assert result.reason == "address 127.0.0.1 is loopback"
    assert other.requests == []
    # The same redirect succeeds when both ports are allowed: the refusal above was the policy.
    ok = fetch(first, first.url("/feed"), allow_private=first.allow | other.allow)
    assert isinstance(ok, Fetched)


@pytest.mark.parametrize(
    ("location", "scheme"),
    [("file:///etc/passwd", "file"), ("ftp://127.0.0.1/feed", "ftp"), ("gopher://x/", "gopher")],
)
def test_redirect_to_other_schemes_is_refused(
    feed_server: FeedServer, location: str, scheme: str
) -> None:
    feed_server.route("/feed", status=302, location=location)
    result = failed(fetch(feed_server, feed_server.url("/feed")))
    assert result.reason == f"redirect to unsupported URL scheme {scheme!r}"


def test_redirect_without_location_fails(feed_server: FeedServer) -> None:
    feed_server.route("/feed", status=302)
    result = failed(fetch(feed_server, feed_server.url("/feed")))
    assert result.status == 302


# --- HTTP errors -------------------------------------------------------------------------------


def test_500_fails_with_status(feed_server: FeedServer) -> None:
    feed_server.route("/feed", status=500, body=b"oops")
    result = failed(fetch(feed_server, feed_server.url("/feed")))
    assert result.status == 500
    assert result.reason == "HTTP 500: Internal Server Error"
    assert result.retry_after is None
    assert not result.gone


def test_503_with_retry_after_seconds(feed_server: FeedServer) -> None:
    feed_server.route("/feed", status=503, headers={"Retry-After": "120"})
    result = failed(fetch(feed_server, feed_server.url("/feed")))
    assert result.status == 503
    assert result.reason.startswith("HTTP 503")
    assert result.retry_after == timedelta(seconds=120)


def test_429_with_retry_after_http_date(feed_server: FeedServer) -> None:
    # NOW is injected into the Fetcher, so the delay is exact.
    feed_server.route("/feed", status=429, headers={"Retry-After": "Wed, 01 May 2024 12:05:00 GMT"})
    result = failed(fetch(feed_server, feed_server.url("/feed")))
    assert result.status == 429
    assert result.retry_after == timedelta(minutes=5)


def test_429_with_garbage_retry_after(feed_server: FeedServer) -> None:
    feed_server.route("/feed", status=429, headers={"Retry-After": "soon"})
    result = failed(fetch(feed_server, feed_server.url("/feed")))
    assert result.retry_after is None


def test_404(feed_server: FeedServer) -> None:
    result = failed(fetch(feed_server, feed_server.url("/missing")))
    assert result.status == 404
    assert not result.gone


def test_410_is_gone(feed_server: FeedServer) -> None:
    feed_server.route("/feed", status=410)
    result = failed(fetch(feed_server, feed_server.url("/feed")))
    assert result.gone
    assert result.status == 410


def test_html_instead_of_xml_fetches_but_does_not_parse(feed_server: FeedServer) -> None:
    page = b"<!DOCTYPE html><html><head><title>Welcome</title></head><body><p>Hi</p></body></html>"
    feed_server.route("/feed", body=page, content_type="text/html; charset=utf-8")
    result = fetch(feed_server, feed_server.url("/feed"))
    assert isinstance(result, Fetched)
    with pytest.raises(ParseError, match="HTML"):
        parse_feed(result.body, feed_name="x", url=result.url, content_type=result.content_type)


def test_connection_refused() -> None:
    port = closed_port()
    result = failed(
        fetch(None, f"http://127.0.0.1:{port}/", allow_private=frozenset({f"127.0.0.1:{port}"}))
    )
    assert result.reason == "connection refused"


def test_unsupported_scheme_is_refused() -> None:
    result = failed(fetch(None, "ftp://example.org/feed"))
    assert result.reason == "unsupported URL scheme 'ftp'"


# --- address policy on the wire ---------------------------------------------------------------


def test_loopback_refused_by_default_without_connecting(feed_server: FeedServer) -> None:
    feed_server.route("/feed", body=RSS)
    result = failed(fetch(None, feed_server.url("/feed")))
    assert result.reason == "address 127.0.0.1 is loopback"
    assert feed_server.requests == []


def test_hostname_resolving_to_loopback_is_refused(feed_server: FeedServer) -> None:
    # The resolver filter, not an IP-literal check, must stop this one.
    feed_server.route("/feed", body=RSS)
    url = f"http://localhost:{feed_server.port}/feed"
    result = failed(fetch(None, url))
    assert "is loopback" in result.reason
    assert feed_server.requests == []


def test_hostname_allowed_by_host_and_port(feed_server: FeedServer) -> None:
    feed_server.route("/feed", body=RSS)
    url = f"http://localhost:{feed_server.port}/feed"
    result = fetch(None, url, allow_private=frozenset({f"localhost:{feed_server.port}"}))
    assert isinstance(result, Fetched)


def test_allow_private_true_reaches_loopback(feed_server: FeedServer) -> None:
    feed_server.route("/feed", body=RSS)
    assert isinstance(fetch(None, feed_server.url("/feed"), allow_private=True), Fetched)


@pytest.fixture
def env_proxy(
    feed_server_factory: Callable[[], FeedServer], monkeypatch: pytest.MonkeyPatch
) -> FeedServer:
    """A loopback server set as ``HTTP_PROXY``; its ``requests`` show whether it was used."""
    proxy = feed_server_factory()
    monkeypatch.setenv("HTTP_PROXY", proxy.url())
    for name in ("http_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    return proxy


def test_proxy_from_environment_is_used_with_trust_env(env_proxy: FeedServer) -> None:
    # A plain-HTTP proxy receives the absolute URL as the request target (RFC 9112 3.2.2).
    env_proxy.route("http://feeds.example.test/feed", body=RSS)
    result = fetch(None, "http://feeds.example.test/feed", trust_env=True)
    assert isinstance(result, Fetched), result
    assert result.body == RSS
    assert env_proxy.requests[0].path == "http://feeds.example.test/feed"


def test_proxy_from_environment_is_ignored_by_default(
    env_proxy: FeedServer, feed_server: FeedServer
) -> None:
    feed_server.route("/feed", body=RSS)
    env_proxy.route(feed_server.url("/feed"), body=b"from the proxy")
    result = fetch(feed_server, feed_server.url("/feed"))
    assert isinstance(result, Fetched), result
    assert result.body == RSS
    assert env_proxy.requests == []
    # The same fetch with trust_env goes through the proxy: the proxy is reachable.
    via_proxy = fetch(feed_server, feed_server.url("/feed"), trust_env=True)
    assert isinstance(via_proxy, Fetched) and via_proxy.body == b"from the proxy"


def test_an_ignored_proxy_does_not_open_the_address_policy(
    env_proxy: FeedServer, feed_server: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Requests through a proxy skip the checks on the proxy's own host. A proxy that is not
    # used must not: a feed on that host is connected to directly, so it is checked.
    monkeypatch.setenv("HTTP_PROXY", f"http://localhost:{env_proxy.port}")
    feed_server.route("/feed", body=RSS)
    result = failed(fetch(None, f"http://localhost:{feed_server.port}/feed"))
    assert "is loopback" in result.reason
    assert feed_server.requests == [] and env_proxy.requests == []


def test_netrc_credentials_are_sent_only_with_trust_env(
    feed_server: FeedServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login reader password netrc-pw\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    feed_server.route("/feed", body=RSS)
    assert isinstance(fetch(feed_server, feed_server.url("/feed")), Fetched)
    assert isinstance(fetch(feed_server, feed_server.url("/feed"), trust_env=True), Fetched)
    first, second = feed_server.requests
    assert "authorization" not in first.headers
    assert second.headers["authorization"] == "Basic cmVhZGVyOm5ldHJjLXB3"  # reader:netrc-pw


def test_proxy_does_not_launder_private_ip_literals(env_proxy: FeedServer) -> None:
    result = failed(fetch(None, "http://169.254.169.254/latest/meta-data/", trust_env=True))
    assert result.reason == "address 169.254.169.254 is link-local"
    assert env_proxy.requests == []


# --- local files -------------------------------------------------------------------------------


def test_local_path_and_file_url(tmp_path: Path) -> None:
    feed = tmp_path / "feed.xml"
    feed.write_bytes(RSS)
    for url in (str(feed), feed.as_uri()):
        result = fetch(None, url)
        assert isinstance(result, Fetched)
        assert result.body == RSS
        assert result.status == 200


def test_local_file_not_modified_by_mtime(tmp_path: Path) -> None:
    feed = tmp_path / "feed.xml"
    feed.write_bytes(RSS)
    first = fetch(None, str(feed))
    assert isinstance(first, Fetched)
    assert isinstance(fetch(None, str(feed), first.validators), NotModified)


def test_local_file_size_cap(tmp_path: Path) -> None:
    feed = tmp_path / "feed.xml"
    feed.write_bytes(b"x" * 2048)
    assert failed(fetch(None, str(feed), max_bytes=1024)).reason == "body larger than 1 KiB"


def test_local_file_missing(tmp_path: Path) -> None:
    assert failed(fetch(None, str(tmp_path / "nope.xml"))).reason == "file not found"


def test_local_file_unreadable_says_permission_denied(tmp_path: Path) -> None:
    """The daemon runs as a user of its own (deploy/), which may not read a feed file. Root
    reads any file, so under root (as in CI) the fetch runs in a forked child that has taken
    the id of ``nobody``, and sends its reason back through a pipe."""
    feed = tmp_path / "feed.xml"
    feed.write_bytes(b"<rss/>")
    feed.chmod(0)
    if os.geteuid() != 0:
        assert failed(fetch(None, str(feed))).reason == "permission denied"
        return
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        try:
            os.close(r)
            os.setgid(65534)
            os.setuid(65534)
            result = fetch(None, str(feed))
            os.write(w, getattr(result, "reason", repr(result)).encode())
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as pipe:
        reason = pipe.read().decode()
    os.waitpid(pid, 0)
    assert reason == "permission denied"


# --- concurrency -------------------------------------------------------------------------------


def test_many_concurrent_fetches_share_the_session(feed_server: FeedServer) -> None:
    feed_server.route("/feed", body=RSS)

    async def go() -> list[FetchResult]:
        async with Fetcher(
            FetchLimits(allow_private=feed_server.allow), max_connections=5, per_host=2
        ) as fetcher:
            return await asyncio.gather(
                *(fetcher.fetch(feed_server.url("/feed")) for _ in range(40))
            )

    results = asyncio.run(go())
    assert all(isinstance(r, Fetched) and r.body == RSS for r in results)


def test_per_host_limits_concurrent_requests_to_one_host(feed_server: FeedServer) -> None:
    counter = Concurrency(expected=3, limit=2, body=RSS)
    feed_server.route("/feed", handler=counter)

    async def go() -> list[FetchResult]:
        async with Fetcher(FetchLimits(allow_private=feed_server.allow), per_host=2) as fetcher:
            return await asyncio.gather(
                *(fetcher.fetch(feed_server.url(f"/feed?{i}")) for i in range(3))
            )

    assert all(isinstance(r, Fetched) for r in asyncio.run(go()))
    assert counter.peak == 2


def test_per_host_also_limits_requests_redirected_to_the_host(feed_server: FeedServer) -> None:
    # Feeds on other hosts that redirect here count against this host's limit too (the
    # connection pool's limit: a feed's slot is taken for the host in its configured URL).
    counter = Concurrency(expected=2, limit=1, body=RSS)
    feed_server.route("/feed", handler=counter)
    feed_server.route("/moved", status=302, location=feed_server.url("/feed"))
    allow = feed_server.allow | {f"localhost:{feed_server.port}"}

    async def go() -> list[FetchResult]:
        async with Fetcher(FetchLimits(allow_private=allow), per_host=1) as fetcher:
            return await asyncio.gather(
                fetcher.fetch(f"http://localhost:{feed_server.port}/moved"),
                fetcher.fetch(feed_server.url("/feed")),
            )

    assert all(isinstance(r, Fetched) for r in asyncio.run(go()))
    assert counter.peak == 1


def test_waiting_for_a_host_slot_does_not_count_against_the_deadline(
    feed_server: FeedServer,
) -> None:
    # The first fetch holds the only slot for longer than the second one's deadline; the
    # second still succeeds, since its deadline starts once it has the slot.
    counter = Concurrency(expected=2, limit=1, body=RSS, hold=1.0)
    feed_server.route("/feed", handler=counter)
    allowed = FetchLimits(allow_private=feed_server.allow)
    short = FetchLimits(allow_private=feed_server.allow, timeout=timedelta(seconds=0.5))

    async def go() -> list[FetchResult]:
        async with Fetcher(allowed, per_host=1) as fetcher:
            # gather starts them in order: the first takes the slot.
            return await asyncio.gather(
                fetcher.fetch(feed_server.url("/feed?1")),
                fetcher.fetch(feed_server.url("/feed?2"), limits=short),
            )

    first, second = asyncio.run(go())
    assert isinstance(first, Fetched)
    assert isinstance(second, Fetched), second


def test_per_call_limits_override_the_fetcher_default(feed_server: FeedServer) -> None:
    feed_server.route("/feed", body=RSS)

    async def go() -> tuple[FetchResult, FetchResult]:
        async with Fetcher(FetchLimits()) as fetcher:
            refused = await fetcher.fetch(feed_server.url("/feed"))
            allowed = await fetcher.fetch(
                feed_server.url("/feed"), limits=FetchLimits(allow_private=feed_server.allow)
            )
            return refused, allowed

    refused, allowed = asyncio.run(go())
    assert isinstance(refused, FetchFailed)
    assert isinstance(allowed, Fetched)


# --- address policy table ----------------------------------------------------------------------

REFUSED = [
    ("169.254.169.254", "link-local"),
    ("10.0.0.1", "private"),
    ("172.16.5.4", "private"),
    ("192.168.1.1", "private"),
    ("127.0.0.1", "loopback"),
    ("127.255.0.9", "loopback"),
    ("0.0.0.0", "unspecified"),
    ("100.64.0.1", "shared (CGNAT)"),
    ("192.0.2.7", "reserved"),
    ("198.18.0.1", "reserved"),
    ("224.0.0.251", "multicast"),
    ("239.255.255.250", "multicast"),
    ("255.255.255.255", "reserved"),
    ("240.0.0.1", "reserved"),
    ("::1", "loopback"),
    ("::", "unspecified"),
    ("fd00::1", "private"),
    ("fe80::1", "link-local"),
    ("ff02::1", "multicast"),
    ("2001:db8::1", "reserved"),
    ("::ffff:10.0.0.1", "private"),  # IPv4-mapped
    ("::ffff:127.0.0.1", "loopback"),
    ("::ffff:169.254.169.254", "link-local"),
    ("64:ff9b::a00:1", "private"),  # NAT64 of 10.0.0.1
    ("2002:a00:1::1", "private"),  # 6to4 of 10.0.0.1
    ("::10.0.0.1", "reserved"),  # deprecated IPv4-compatible
]
PUBLIC = ["93.184.216.34", "8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8"]


@pytest.mark.parametrize(("address", "kind"), REFUSED)
def test_non_public_addresses_are_refused(address: str, kind: str) -> None:
    ip = ipaddress.ip_address(address)
    assert address_refusal(ip) == kind
    assert not address_allowed(ip, address, 80, False)
    assert address_allowed(ip, address, 80, True)


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_are_allowed(address: str) -> None:
    ip = ipaddress.ip_address(address)
    assert address_refusal(ip) is None
    assert address_allowed(ip, "example.org", 443, False)


def test_allow_list_matches_host_or_ip_and_port_exactly() -> None:
    ip = ipaddress.ip_address("10.0.0.5")
    allow = frozenset({"intranet.local:8080", "10.0.0.6:80", "[fd00::1]:443"})
    assert address_allowed(ip, "intranet.local", 8080, allow)
    assert address_allowed(ip, "INTRANET.local.", 8080, allow)
    assert not address_allowed(ip, "intranet.local", 8081, allow)
    assert not address_allowed(ip, "other.local", 8080, allow)
    assert address_allowed(ipaddress.ip_address("10.0.0.6"), "x.local", 80, allow)
    assert address_allowed(ipaddress.ip_address("fd00::1"), "v6.local", 443, allow)
    assert not address_allowed(ipaddress.ip_address("fd00::1"), "v6.local", 80, allow)


@given(st.ip_addresses())
def test_mapped_addresses_judged_like_their_ipv4(
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address,
) -> None:
    if isinstance(ip, ipaddress.IPv4Address):
        mapped = ipaddress.IPv6Address(f"::ffff:{ip}")
        assert address_refusal(mapped) == address_refusal(ip)
    else:
        # Whatever is refused is never also "globally reachable" per the stdlib, and vice versa
        # only addresses the stdlib calls non-global are refused (apart from multicast).
        if address_refusal(ip) is None:
            assert ip.is_global or ip.ipv4_mapped is not None or ip.sixtofour is not None
