"""Loopback notification sinks: real servers on 127.0.0.1 that record what apprise delivers.

- ``json_sink``: an HTTP server for apprise ``json://`` URLs; ``sink.status = 500`` makes it
  fail every request (the request is still recorded); ``sink.hold`` runs before each answer, so
  a test can keep a delivery in flight (and kill the sender mid-send).
- ``smtp_server``: an aiosmtpd server with AUTH (plain, no TLS) for ``mailto://`` URLs.

Both let a test wait for N messages with a timeout (``wait_for(n)``) instead of sleeping.
Loaded for every test by ``pytest_plugins`` in tests/conftest.py.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler
from typing import Any, Generic, TypeVar, cast

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.loopback import LoopbackHTTPServer

T = TypeVar("T")

WAIT_TIMEOUT = 10.0

SMTP_USER = "alerts"
SMTP_PASSWORD = "s3cret-smtp-pw"


class Recorder(Generic[T]):
    """Thread-safe list of received messages that a test can wait on."""

    def __init__(self) -> None:
        self._items: list[T] = []
        self._cond = threading.Condition()

    def add(self, item: T) -> None:
        with self._cond:
            self._items.append(item)
            self._cond.notify_all()

    @property
    def messages(self) -> list[T]:
        with self._cond:
            return list(self._items)

    def wait_until(self, done: Callable[[list[T]], bool], timeout: float = WAIT_TIMEOUT) -> bool:
        """Wait until ``done(messages)`` holds; False if it still does not after ``timeout``."""
        with self._cond:
            return self._cond.wait_for(lambda: done(self._items), timeout)

    def wait_for(self, n: int, timeout: float = WAIT_TIMEOUT) -> list[T]:
        """The first ``n`` messages; fails the test if they do not arrive within ``timeout``."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self._items) >= n, timeout):
                pytest.fail(f"expected {n} message(s) within {timeout}s, got {len(self._items)}")
            return list(self._items[:n])


# ------------------------------------------------------------------------------------------
# json://


@dataclass(frozen=True)
class JsonRequest:
    path: str
    headers: dict[str, str]
    payload: Any  # apprise's JSON: {"version", "title", "message", "type", "attachments"}

    @property
    def title(self) -> str:
        return str(self.payload.get("title", ""))

    @property
    def message(self) -> str:
        return str(self.payload.get("message", ""))


class JsonSink(Recorder[JsonRequest]):
    def __init__(self) -> None:
        super().__init__()
        self.status = 200  # set to 500 to make every request fail
        # Called with each request after it is recorded and before it is answered.
        self.hold: Callable[[JsonRequest], None] | None = None
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    payload = json.loads(raw)
                except ValueError:
                    payload = {"_raw": raw.decode("utf-8", "replace")}
                request = JsonRequest(self.path, dict(self.headers.items()), payload)
                sink.add(request)
                if sink.hold is not None:
                    sink.hold(request)
                status = sink.status
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "text/plain")
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok" if status < 400 else b"no")
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True  # the sender is gone (killed mid-send)

            def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
                pass

        self._server = LoopbackHTTPServer(Handler)
        self.port = self._server.port

    def url(self, path: str = "/notify", userinfo: str = "") -> str:
        """An apprise json:// URL pointing at this sink."""
        at = f"{userinfo}@" if userinfo else ""
        return f"json://{at}127.0.0.1:{self.port}{path}"

    def start(self) -> None:
        self._server.start()

    def stop(self) -> None:
        self._server.stop()


@pytest.fixture
def json_sink() -> Iterator[JsonSink]:
    sink = JsonSink()
    sink.start()
    try:
        yield sink
    finally:
        sink.stop()


# ------------------------------------------------------------------------------------------
# mailto://


@dataclass(frozen=True)
class Mail:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    login: str | None  # the AUTH user the client logged in as
    message: Message

    @property
    def subject(self) -> str:
        return str(self.message["Subject"] or "")

    def text(self) -> str:
        """The decoded text/plain part (apprise may send multipart)."""
        for part in self.message.walk():
            if part.get_content_type() == "text/plain":
                data = part.get_payload(decode=True)
                if isinstance(data, bytes):
                    return data.decode(part.get_content_charset() or "utf-8", "replace")
        return ""


class SmtpServer(Recorder[Mail]):
    """An aiosmtpd server on 127.0.0.1 that accepts login as SMTP_USER/SMTP_PASSWORD only.

    A wrong login is refused (535) and counted in ``auth_failures``; each recorded ``Mail``
    says which user it was sent under (None: no login)."""

    user = SMTP_USER
    password = SMTP_PASSWORD

    def __init__(self) -> None:
        super().__init__()
        self.auth_failures = 0
        self._controller = _EphemeralPortController(
            _MailHandler(self),
            hostname="127.0.0.1",
            port=0,
            authenticator=self._authenticate,
            # Plain SMTP on loopback: apprise's mode=insecure never starts TLS, and aiosmtpd
            # refuses AUTH without TLS unless told otherwise.
            auth_require_tls=False,
            # Not auth_required: aiosmtpd warns on every connection when AUTH is required
            # without TLS. Tests check `Mail.login` instead, which proves the client logged in.
        )

    def _authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == self.user.encode()
            and auth_data.password == self.password.encode()
        ):
            return AuthResult(success=True, auth_data=auth_data)
        self.auth_failures += 1
        return AuthResult(success=False, handled=False)

    @property
    def port(self) -> int:
        return int(self._controller.port)

    def url(self, to: str = "ops@example.com", sender: str = "alerts@example.com") -> str:
        """The apprise mailto:// URL for this server: plain SMTP with login, no TLS."""
        return (
            f"mailto://{self.user}:{self.password}@127.0.0.1:{self.port}"
            f"?mode=insecure&from={sender}&to={to}"
        )

    def start(self) -> None:
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()


class _EphemeralPortController(Controller):
    """Controller bound to port 0: learn the real port before aiosmtpd's self-connect check,
    so there is no pick-a-free-port-then-bind race."""

    def _trigger_server(self) -> None:
        server = cast(asyncio.Server, self.server)
        self.port = server.sockets[0].getsockname()[1]
        super()._trigger_server()  # type: ignore[no-untyped-call]


class _MailHandler:
    def __init__(self, recorder: SmtpServer) -> None:
        self._recorder = recorder

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        auth = session.auth_data
        login = auth.login if isinstance(auth, LoginPassword) else None
        self._recorder.add(
            Mail(
                mail_from=str(envelope.mail_from),
                rcpt_tos=tuple(envelope.rcpt_tos),
                login=login.decode() if isinstance(login, bytes) else None,
                message=message_from_bytes(envelope.original_content or envelope.content),
            )
        )
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    server = SmtpServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()
