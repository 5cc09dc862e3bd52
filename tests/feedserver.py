"""A loopback HTTP server for wire-level tests of fetching (and, later, of the whole daemon).

Routes are configured per test::

    def test_x(feed_server):
        feed_server.route("/feed.xml", body=b"<rss/>", etag='"v1"')
        url = feed_server.url("/feed.xml")

It runs ``http.server`` in a thread (tests/loopback.py: it stops at once) so both sync and asyncio
tests can use it, binds only 127.0.0.1, and records every request it saw (``feed_server.requests``).
Handlers that wait (slow drip, silent) wait on the server's stop event, so teardown never hangs
and no test sleeps.
"""

from __future__ import annotations

import gzip
import http.server
import socket
import threading
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.utils import formatdate

import pytest

from tests.loopback import LoopbackHTTPServer

__all__ = [
    "Concurrency",
    "FeedServer",
    "Route",
    "SeenRequest",
    "closed_port",
    "feed_server",
    "feed_server_factory",
    "gzip_bomb",
]


@dataclass
class SeenRequest:
    path: str
    headers: dict[str, str]  # lower-cased names


@dataclass
class Route:
    """What one path answers. Without ``etag``/``last_modified`` no 304 is ever sent."""

    body: bytes = b""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str | None = "application/rss+xml; charset=utf-8"
    etag: str | None = None
    last_modified: str | None = None
    location: str | None = None  # sets Location (use with status 301/302/307/308)
    gzip: bool = False  # compress ``body`` and send Content-Encoding: gzip
    raw_gzip: bytes | None = None  # send these bytes as the gzip-encoded body (bombs)
    drip_interval: float | None = None  # send the body one byte per interval
    silent: bool = False  # read the request, then never answer
    content_length: bool = True  # False: no Content-Length, close the connection at the end
    handler: Callable[[SeenRequest], Route] | None = None  # decide per request


def closed_port() -> int:
    """A loopback port with nothing listening (bound then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def gzip_bomb(decoded_size: int) -> bytes:
    """A small gzip stream that inflates to ``decoded_size`` zero bytes, built incrementally."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)  # wbits 31: gzip container
    block = b"\0" * (1 << 20)
    parts = []
    remaining = decoded_size
    while remaining > 0:
        n = min(remaining, len(block))
        parts.append(compressor.compress(block[:n]))
        remaining -= n
    parts.append(compressor.flush())
    return b"".join(parts)


class Concurrency:
    """A route handler that counts requests in progress at once (``peak``).

    Each request is held until ``expected`` requests have arrived, one more than ``limit`` is in
    progress (a violation: everyone is released at once), or ``hold`` seconds pass. The hold
    gives requests over the limit the time to arrive if the client would send them; a slow
    machine can only hide a violation, never fail a client that keeps the limit.
    """

    def __init__(self, *, expected: int, limit: int, body: bytes, hold: float = 0.3) -> None:
        self.expected, self.limit, self.body, self.hold = expected, limit, body, hold
        self.arrived = self.active = self.peak = 0
        self._cond = threading.Condition()

    def __call__(self, seen: SeenRequest) -> Route:
        with self._cond:
            self.arrived += 1
            self.active += 1
            self.peak = max(self.peak, self.active)
            self._cond.notify_all()
            self._cond.wait_for(
                lambda: self.arrived >= self.expected or self.active > self.limit, self.hold
            )
            self.active -= 1
        return Route(body=self.body)


class FeedServer:
    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[SeenRequest] = []
        self.stop = threading.Event()
        self._lock = threading.Lock()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass  # quiet: tests assert on server.requests instead

            def do_GET(self) -> None:
                server._serve(self)

        class Server(LoopbackHTTPServer):
            def handle_error(self, request: object, client_address: object) -> None:
                pass  # clients that hang up on purpose (deadline, size cap) are expected

        self._httpd = Server(Handler)
        self.port: int = self._httpd.port

    # --- configuration -----------------------------------------------------------------

    def route(self, path: str, **kwargs: object) -> Route:
        route = Route(**kwargs)  # type: ignore[arg-type]
        self.routes[path] = route
        return route

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    @property
    def allow(self) -> frozenset[str]:
        """The ``allow_private`` value that lets a fetcher reach this server only."""
        return frozenset({f"127.0.0.1:{self.port}"})

    def start(self) -> FeedServer:
        self._httpd.start()
        return self

    def close(self) -> None:
        self.stop.set()
        self._httpd.stop()

    # --- serving -----------------------------------------------------------------------

    def _serve(self, h: http.server.BaseHTTPRequestHandler) -> None:
        seen = SeenRequest(h.path, {k.lower(): v for k, v in h.headers.items()})
        with self._lock:
            self.requests.append(seen)
        route = self.routes.get(h.path.split("?", 1)[0])
        if route is None:
            route = Route(status=404, body=b"not found", content_type="text/plain")
        if route.handler is not None:
            route = route.handler(seen)
        if route.silent:
            self.stop.wait()
            h.close_connection = True
            return

        not_modified = (
            route.etag is not None and seen.headers.get("if-none-match") == route.etag
        ) or (
            route.etag is None
            and route.last_modified is not None
            and seen.headers.get("if-modified-since") == route.last_modified
        )
        status = 304 if not_modified else route.status
        body = b"" if status == 304 else route.body
        headers: dict[str, str] = {}
        if route.content_type and status != 304:
            headers["Content-Type"] = route.content_type
        if route.etag:
            headers["ETag"] = route.etag
        if route.last_modified:
            headers["Last-Modified"] = route.last_modified
        if route.location:
            headers["Location"] = route.location
        if route.raw_gzip is not None:
            body = route.raw_gzip
            headers["Content-Encoding"] = "gzip"
        elif route.gzip and body:
            body = gzip.compress(body)
            headers["Content-Encoding"] = "gzip"
        headers.update(route.headers)

        h.send_response(status)
        for name, value in headers.items():
            h.send_header(name, value)
        h.send_header("Date", formatdate(usegmt=True))
        if route.content_length:
            h.send_header("Content-Length", str(len(body)))
        else:
            h.send_header("Connection", "close")
            h.close_connection = True
        h.end_headers()
        try:
            if route.drip_interval is not None:
                for i in range(len(body)):
                    h.wfile.write(body[i : i + 1])
                    h.wfile.flush()
                    if self.stop.wait(route.drip_interval):
                        break
            else:
                h.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            h.close_connection = True


@pytest.fixture
def feed_server_factory() -> Iterator[Callable[[], FeedServer]]:
    """Start as many servers as a test needs (e.g. a redirect to another port)."""
    servers: list[FeedServer] = []

    def make() -> FeedServer:
        server = FeedServer().start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.close()


@pytest.fixture
def feed_server(feed_server_factory: Callable[[], FeedServer]) -> FeedServer:
    return feed_server_factory()
