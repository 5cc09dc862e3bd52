"""Fetch stage: a feed source plus cached validators -> bytes | not modified | a typed failure.

Why the fetcher is its own few hundred lines rather than ``feedparser.parse(url)``: feedparser's
fetcher has no total deadline, no size cap and follows redirects anywhere. Here:

- One **total deadline** per fetch (connect + headers + body + every redirect hop), enforced with
  ``asyncio.timeout``; per-read timeouts are defeated by a server dripping one byte at a time.
  Waiting for a free connection slot happens before the deadline starts, so a long queue of feeds
  does not turn into a wave of time-outs.
- A cap on the **decoded** body, enforced while streaming: a gzip bomb stops at ``max_bytes``.
  (aiohttp >= 3.12 inflates in bounded chunks, so memory stays near the cap.)
- Redirects followed by hand, at most ``max_redirects``, to http/https only; every hop passes the
  address policy.
- **Address policy** (SSRF): private, loopback, link-local, CGNAT, reserved, multicast and
  unspecified addresses are refused unless allowed. It is applied three times: to IP-literal hosts
  before a request, to every address the resolver returns (so a hostname pointing at
  169.254.169.254 is never connected to), and to the peer address of the connection that was used.
- **Proxies** from the environment (``HTTPS_PROXY``, ``HTTP_PROXY``, ``NO_PROXY``; aiohttp's
  ``trust_env``), only with ``trust_env=True``: off by default, since the same switch makes
  aiohttp send ``~/.netrc`` credentials and a daemon's environment is easy to inherit unawares.
  The proxy itself is operator configuration, like a local file path, so its
  address is not checked (a proxy on 127.0.0.1 works). Hostnames sent through a proxy are resolved
  by the proxy, so only IP-literal targets can be checked here; restrict the proxy itself if that
  matters. ``NO_PROXY`` hosts are connected to directly and fully checked.
- Local files (plain path or ``file://``) are read with the same cap; they are the operator's own
  configuration, so the address policy does not apply.
"""

from __future__ import annotations

import asyncio
import contextvars
import email.utils
import errno
import ipaddress
import os
import socket
import ssl
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Self

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.client_reqrep import ClientRequest
from aiohttp.connector import Connection
from aiohttp.resolver import DefaultResolver
from aiohttp.tracing import Trace

from monitor import USER_AGENT

__all__ = [
    "FetchFailed",
    "FetchLimits",
    "FetchResult",
    "Fetched",
    "Fetcher",
    "NotModified",
    "Validators",
    "address_allowed",
    "address_refusal",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_ACCEPT: Final = (
    "application/rss+xml, application/atom+xml, application/feed+json, application/rdf+xml,"
    " application/xml;q=0.9, text/xml;q=0.9, application/json;q=0.8, */*;q=0.5"
)
_REDIRECT_STATUSES: Final = frozenset({301, 302, 303, 307, 308})
_PERMANENT_STATUSES: Final = frozenset({301, 308})
_RETRY_AFTER_STATUSES: Final = frozenset({429, 503})


@dataclass(frozen=True)
class Validators:
    """HTTP cache validators from the last successful fetch (RFC 9110 section 8.8)."""

    etag: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True)
class FetchLimits:
    """Per-fetch limits; the defaults suit a news poller on an ordinary server."""

    timeout: timedelta = timedelta(seconds=30)
    """Total deadline per fetch: connect, headers, body and every redirect hop."""
    max_bytes: int = 10 * 1024 * 1024
    """Cap on the decoded body, enforced while streaming."""
    max_redirects: int = 5
    allow_private: bool | frozenset[str] = False
    """True, or a set of ``"host:port"`` (host as in the URL, or the IP address) that may be
    reached even though the address is not public."""
    user_agent: str = USER_AGENT
    trust_env: bool = False
    """Use proxies from the environment and credentials from ``~/.netrc``. It belongs to the
    session, so only the Fetcher's own limits count, not those passed per call."""


@dataclass(frozen=True)
class Fetched:
    """A 2xx response (or a local file) and its body."""

    url: str
    """The URL the body came from: the requested one, or the last redirect target."""
    body: bytes
    validators: Validators
    status: int
    content_type: str | None
    permanent_redirect: str | None = None
    """The final URL when every redirect hop was permanent (301/308): the caller may update
    its configuration or state to it. None when there was no redirect or a temporary one."""
    min_interval: timedelta | None = None
    """``Cache-Control: max-age`` as a hint for the next poll; the caller caps it."""


@dataclass(frozen=True)
class NotModified:
    """The server answered 304 to a conditional GET: the cached copy is current."""

    url: str
    validators: Validators
    min_interval: timedelta | None = None


@dataclass(frozen=True)
class FetchFailed:
    """Why a fetch gave no body. ``reason`` is short human text for logs and ``status``."""

    url: str
    reason: str
    status: int | None = None
    retry_after: timedelta | None = None
    gone: bool = False
    """410 Gone: the publisher removed the feed; the caller should stop polling it."""


FetchResult = Fetched | NotModified | FetchFailed


# --- address policy -------------------------------------------------------------------------

# Explicit tables rather than ``ip.is_global`` alone: the stdlib's lists changed across 3.11
# patch releases (gh-113171), and a reason naming the kind of address helps the operator.
_V4_REFUSED: Final[tuple[tuple[ipaddress.IPv4Network, str], ...]] = tuple(
    (ipaddress.IPv4Network(net), kind)
    for net, kind in (
        ("0.0.0.0/8", "unspecified"),
        ("10.0.0.0/8", "private"),
        ("100.64.0.0/10", "shared (CGNAT)"),
        ("127.0.0.0/8", "loopback"),
        ("169.254.0.0/16", "link-local"),
        ("172.16.0.0/12", "private"),
        ("192.0.0.0/24", "reserved"),
        ("192.0.2.0/24", "reserved"),
        ("192.88.99.0/24", "reserved"),
        ("192.168.0.0/16", "private"),
        ("198.18.0.0/15", "reserved"),
        ("198.51.100.0/24", "reserved"),
        ("203.0.113.0/24", "reserved"),
        ("224.0.0.0/4", "multicast"),
        ("240.0.0.0/4", "reserved"),
    )
)
_V6_REFUSED: Final[tuple[tuple[ipaddress.IPv6Network, str], ...]] = tuple(
    (ipaddress.IPv6Network(net), kind)
    for net, kind in (
        ("::/128", "unspecified"),
        ("::1/128", "loopback"),
        ("::/96", "reserved"),  # deprecated IPv4-compatible addresses
        ("100::/64", "reserved"),  # discard-only
        ("2001:db8::/32", "reserved"),  # documentation
        ("fc00::/7", "private"),
        ("fe80::/10", "link-local"),
        ("fec0::/10", "private"),  # deprecated site-local
        ("ff00::/8", "multicast"),
    )
)
# Prefixes that embed an IPv4 address which a gateway will reach on our behalf (RFC 6052 NAT64,
# RFC 3056 6to4): judge the embedded address.
_NAT64: Final = ipaddress.IPv6Network("64:ff9b::/96")
_NAT64_LOCAL: Final = ipaddress.IPv6Network("64:ff9b:1::/48")


def address_refusal(ip: IPAddress) -> str | None:
    """The kind of non-public address ``ip`` is (``"private"``, ``"loopback"``...), or None."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return address_refusal(ip.ipv4_mapped)
        if ip in _NAT64:
            return address_refusal(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
        if ip in _NAT64_LOCAL:
            return "private"
        if ip.sixtofour is not None:
            return address_refusal(ip.sixtofour)
        if ip.teredo is not None:
            return address_refusal(ip.teredo[1])
        for net6, kind in _V6_REFUSED:
            if ip in net6:
                return kind
        if ip.scope_id:
            return "link-local"
    else:
        for net4, kind in _V4_REFUSED:
            if ip in net4:
                return kind
    if not ip.is_global:
        return "reserved"
    return None


def _host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def address_allowed(
    ip: IPAddress, host: str, port: int, allow_private: bool | frozenset[str]
) -> bool:
    """May a connection to ``ip:port`` (reached as ``host``) be opened?

    Public addresses always may. Others only when ``allow_private`` is True or names
    ``"host:port"`` or ``"ip:port"`` (IPv6 in brackets).
    """
    if address_refusal(ip) is None or allow_private is True:
        return True
    if allow_private is False:
        return False
    bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    return (
        _host_port(bare.lower().rstrip("."), port) in allow_private
        or _host_port(str(ip), port) in allow_private
    )


def _refusal_text(ip: IPAddress) -> str:
    return f"address {ip} is {address_refusal(ip) or 'not allowed'}"


class _AddressRefusedError(OSError):
    """Raised inside the resolver; aiohttp wraps it in ClientConnectorError."""


@dataclass(frozen=True)
class _Policy:
    allow_private: bool | frozenset[str]
    proxy_host: str | None


# The policy of the fetch in progress. A context variable because one resolver serves every
# fetch of the session while limits may differ per call; the DNS cache is off so resolution
# runs in the calling task (aiohttp shares cached/throttled lookups across tasks).
_POLICY: contextvars.ContextVar[_Policy | None] = contextvars.ContextVar(
    "monitor_fetch_policy", default=None
)


class _PolicyResolver(AbstractResolver):
    """Drops resolved addresses the current fetch may not reach."""

    def __init__(self) -> None:
        self._inner = DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        policy = _POLICY.get() or _Policy(allow_private=False, proxy_host=None)
        if policy.proxy_host is not None and host == policy.proxy_host:
            return results
        allowed = []
        refused: IPAddress | None = None
        for result in results:
            ip = ipaddress.ip_address(result["host"].split("%", 1)[0])
            if address_allowed(ip, host, port, policy.allow_private):
                allowed.append(result)
            elif refused is None:
                refused = ip
        if not allowed and refused is not None:
            raise _AddressRefusedError(_refusal_text(refused))
        return allowed

    async def close(self) -> None:
        await self._inner.close()


def _peer_refusal(transport: Any, host: str, allow_private: bool | frozenset[str]) -> str | None:
    """Why the address ``transport`` is connected to may not be reached, or None."""
    peer: Any = transport.get_extra_info("peername") if transport is not None else None
    if not peer:
        return None
    ip = ipaddress.ip_address(str(peer[0]).split("%", 1)[0])
    if address_allowed(ip, host, int(peer[1]), allow_private):
        return None
    return _refusal_text(ip)


class _Refused(Exception):  # internal control flow, never escapes
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _PolicyConnector(aiohttp.TCPConnector):
    """Checks the address of every connection handed out, new or pooled, before a request is
    written to it (defence in depth behind the resolver).

    Here and not on the response: aiohttp releases the connection of a response whose body
    arrived with its headers, so ``resp.connection`` was None for most feeds and a check there
    did not run at all.
    """

    async def connect(
        self,
        req: ClientRequest,
        traces: list[Trace],
        timeout: aiohttp.ClientTimeout,  # noqa: ASYNC109 (aiohttp's signature)
    ) -> Connection:
        conn = await super().connect(req, traces, timeout)
        policy = _POLICY.get()
        if policy is not None and policy.proxy_host is None:
            refusal = _peer_refusal(conn.transport, req.url.host or "", policy.allow_private)
            if refusal is not None:
                conn.close()
                raise _Refused(refusal)  # not an OSError, which aiohttp would rewrap
        return conn


def _env_proxy_host(url: urllib.parse.SplitResult, proxies: Mapping[str, str]) -> str | None:
    """The proxy host aiohttp's ``trust_env`` will use for ``url``, if any.

    Mirrors ``aiohttp.helpers.get_env_proxy_for_url`` with the same stdlib functions, so the
    policy and aiohttp agree on whether a request is proxied. ``proxies`` is a snapshot of
    ``urllib.request.getproxies()`` taken when the Fetcher starts: reading the environment on
    every request cost a third of loopback throughput when no proxy is configured.
    """
    if url.hostname is None or not proxies:
        return None
    if urllib.request.proxy_bypass(url.hostname):
        return None
    proxy = proxies.get(url.scheme)
    if not proxy:
        return None
    return urllib.parse.urlsplit(proxy).hostname


# --- helpers for headers ---------------------------------------------------------------------


# Servers' numbers are capped before they become timedeltas: `max-age=99999999999999` would
# overflow timedelta and fail the feed on every poll. The scheduler caps them further.
_MAX_HINT_SECONDS = 10**7  # about 115 days


def _hint_seconds(digits: str) -> timedelta:
    return timedelta(seconds=min(int(digits), _MAX_HINT_SECONDS))


def _retry_after(value: str | None, now: datetime) -> timedelta | None:
    """Retry-After is delay-seconds or an HTTP-date (RFC 9110 section 10.2.3)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return _hint_seconds(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(when - now, timedelta(0))


def _max_age(value: str | None) -> timedelta | None:
    """``max-age`` from Cache-Control; None when absent, malformed or caching is refused."""
    if not value:
        return None
    max_age: timedelta | None = None
    for directive in value.split(","):
        name, _, arg = directive.strip().partition("=")
        name = name.strip().lower()
        if name in ("no-store", "no-cache"):
            return None
        if name == "max-age":
            arg = arg.strip().strip('"')
            if arg.isdigit():
                max_age = _hint_seconds(arg)
    return max_age


def _human_bytes(n: int) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            value = n / size
            return f"{value:g} {unit}" if value == int(value) else f"{value:.1f} {unit}"
    return f"{n} bytes"


def _seconds_text(limit: timedelta) -> str:
    return f"{limit.total_seconds():g}s"


def _too_large(max_bytes: int) -> str:
    return f"body larger than {_human_bytes(max_bytes)}"


def _local_path(url: str) -> Path | None:
    """The path named by ``url`` when it is a local file (plain path or file:// URL)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost"):
            return None
        return Path(urllib.request.url2pathname(parts.path))
    if parts.scheme == "" or (len(parts.scheme) == 1 and os.name == "nt"):
        return Path(url)
    return None


def _describe_client_error(exc: BaseException) -> str:
    """Short operator-facing text for an aiohttp/OS error."""
    if isinstance(exc, aiohttp.ClientConnectorError):
        os_error = exc.os_error
        if isinstance(os_error, _AddressRefusedError):
            return str(os_error)
        if isinstance(exc, aiohttp.ClientConnectorDNSError) or isinstance(
            os_error, socket.gaierror
        ):
            return f"cannot resolve host {exc.host!r}"
        if isinstance(exc, aiohttp.ClientConnectorCertificateError):
            return f"TLS certificate error: {exc.certificate_error}"
        if isinstance(exc, aiohttp.ClientConnectorSSLError):
            return "TLS error"
        if isinstance(os_error, ConnectionRefusedError):
            return "connection refused"
        return f"cannot connect: {os_error.strerror or os_error}"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "connection closed by server"
    if isinstance(exc, aiohttp.ClientPayloadError):
        return "invalid response body"
    if isinstance(exc, aiohttp.ClientResponseError):
        return f"invalid response: {exc.message}"
    if isinstance(exc, aiohttp.InvalidURL):
        return "invalid URL"
    if isinstance(exc, ssl.SSLError):
        return "TLS error"
    # aiohttp raises a reset as ClientOSError (an OSError with ECONNRESET), not as
    # ConnectionResetError.
    if isinstance(exc, ConnectionResetError) or (
        isinstance(exc, OSError) and exc.errno == errno.ECONNRESET
    ):
        return "connection reset"
    return f"connection error: {type(exc).__name__}"


# --- the fetcher -----------------------------------------------------------------------------


class Fetcher:
    """Fetches feeds over one aiohttp session. Use as an async context manager.

    ``fetch`` never raises for network or HTTP problems: it returns :class:`FetchFailed`.
    """

    def __init__(
        self,
        limits: FetchLimits | None = None,
        *,
        max_connections: int = 20,
        per_host: int = 4,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.limits = limits or FetchLimits()
        self._max_connections = max_connections
        self._per_host = per_host
        self._clock = clock
        self._session: aiohttp.ClientSession | None = None
        self._proxies: dict[str, str] = {}
        self._slots = asyncio.Semaphore(max_connections)
        self._host_slots: dict[str, asyncio.Semaphore] = {}

    async def __aenter__(self) -> Self:
        trust_env = self.limits.trust_env
        self._proxies = urllib.request.getproxies() if trust_env else {}
        connector = _PolicyConnector(
            limit=self._max_connections,
            limit_per_host=self._per_host,
            resolver=_PolicyResolver(),
            use_dns_cache=False,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            trust_env=trust_env,
            timeout=aiohttp.ClientTimeout(total=None),  # the total deadline is ours
            auto_decompress=True,
            cookie_jar=aiohttp.DummyCookieJar(),  # feeds need no cookies; none leak across feeds
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def fetch(
        self,
        url: str,
        validators: Validators | None = None,
        *,
        limits: FetchLimits | None = None,
    ) -> FetchResult:
        """Fetch ``url`` (http, https, a file path or file:// URL) once."""
        limits = limits or self.limits
        validators = validators or Validators()
        path = _local_path(url)
        if path is not None:
            return await self._fetch_file(url, path, validators, limits)
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https"):
            return FetchFailed(url, f"unsupported URL scheme {parts.scheme!r}")
        host_key = (parts.hostname or "").lower()
        host_slots = self._host_slots.setdefault(host_key, asyncio.Semaphore(self._per_host))
        async with self._slots, host_slots:
            try:
                async with asyncio.timeout(limits.timeout.total_seconds()):
                    return await self._fetch_http(url, validators, limits)
            except TimeoutError:
                return FetchFailed(url, f"timed out after {_seconds_text(limits.timeout)}")

    async def _fetch_file(
        self, url: str, path: Path, validators: Validators, limits: FetchLimits
    ) -> FetchResult:
        def read() -> tuple[bytes, datetime] | str:
            try:
                with path.open("rb") as f:
                    mtime = datetime.fromtimestamp(os.fstat(f.fileno()).st_mtime, UTC)
                    body = f.read(limits.max_bytes + 1)
            except FileNotFoundError:
                return "file not found"
            except IsADirectoryError:
                return "is a directory"
            except PermissionError:
                return "permission denied"
            except OSError as e:
                return f"cannot read file: {e.strerror or e}"
            if len(body) > limits.max_bytes:
                return _too_large(limits.max_bytes)
            return body, mtime

        try:
            async with asyncio.timeout(limits.timeout.total_seconds()):
                outcome = await asyncio.to_thread(read)
        except TimeoutError:
            return FetchFailed(url, f"timed out after {_seconds_text(limits.timeout)}")
        if isinstance(outcome, str):
            return FetchFailed(url, outcome)
        body, mtime = outcome
        last_modified = email.utils.format_datetime(mtime.replace(microsecond=0), usegmt=True)
        new = Validators(last_modified=last_modified)
        if validators.last_modified == last_modified:
            return NotModified(url, new)
        return Fetched(
            url=url,
            body=body,
            validators=new,
            status=200,
            content_type=None,
        )

    def _check_target(self, url: str, limits: FetchLimits) -> _Policy:
        """Refuse non-http(s) targets and IP literals the policy forbids; return the policy."""
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise _Refused(f"redirect to unsupported URL scheme {parts.scheme!r}")
        host = parts.hostname
        if not host:
            raise _Refused("URL has no host")
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            raise _Refused("invalid port in URL") from None
        proxy_host = _env_proxy_host(parts, self._proxies)
        try:
            ip = ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            pass
        else:
            if not address_allowed(ip, host, port, limits.allow_private):
                raise _Refused(_refusal_text(ip))
        return _Policy(allow_private=limits.allow_private, proxy_host=proxy_host)

    async def _fetch_http(
        self, url: str, validators: Validators, limits: FetchLimits
    ) -> FetchResult:
        assert self._session is not None, "Fetcher used outside 'async with'"
        headers = {"User-Agent": limits.user_agent, "Accept": _ACCEPT}
        if validators.etag:
            headers["If-None-Match"] = validators.etag
        if validators.last_modified:
            headers["If-Modified-Since"] = validators.last_modified

        current = url
        permanent = True
        for _hop in range(limits.max_redirects + 1):
            try:
                policy = self._check_target(current, limits)
            except _Refused as e:
                return FetchFailed(url, e.reason)
            token = _POLICY.set(policy)
            try:
                async with self._session.get(
                    current, headers=headers, allow_redirects=False
                ) as resp:
                    if resp.status in _REDIRECT_STATUSES:
                        location = resp.headers.get("Location")
                        if not location:
                            return FetchFailed(
                                url, f"HTTP {resp.status} without Location", status=resp.status
                            )
                        current = urllib.parse.urljoin(current, location.strip())
                        permanent = permanent and resp.status in _PERMANENT_STATUSES
                        continue
                    moved = current if current != url and permanent else None
                    return await self._response(url, current, resp, validators, limits, moved)
            except _Refused as e:  # from _PolicyConnector
                return FetchFailed(url, e.reason)
            except (aiohttp.ClientError, OSError) as e:
                return FetchFailed(url, _describe_client_error(e))
            except ValueError as e:  # yarl rejects some URLs with ValueError
                return FetchFailed(url, f"invalid URL: {e}")
            finally:
                _POLICY.reset(token)
        return FetchFailed(url, f"too many redirects (more than {limits.max_redirects})")

    async def _response(
        self,
        url: str,
        final: str,
        resp: aiohttp.ClientResponse,
        old: Validators,
        limits: FetchLimits,
        moved: str | None,
    ) -> FetchResult:
        status = resp.status
        min_interval = _max_age(resp.headers.get("Cache-Control"))
        if status == 304:
            # A 304 may omit validators it did not change (RFC 9110 section 15.4.5): keep ours.
            validators = Validators(
                etag=resp.headers.get("ETag") or old.etag,
                last_modified=resp.headers.get("Last-Modified") or old.last_modified,
            )
            return NotModified(final, validators, min_interval)
        if status == 410:
            return FetchFailed(url, "HTTP 410: Gone", status=410, gone=True)
        if not 200 <= status < 300:
            retry_after = None
            if status in _RETRY_AFTER_STATUSES:
                retry_after = _retry_after(resp.headers.get("Retry-After"), self._clock())
            reason = f"HTTP {status}: {resp.reason}" if resp.reason else f"HTTP {status}"
            return FetchFailed(url, reason, status=status, retry_after=retry_after)

        if (
            not resp.headers.get("Content-Encoding")
            and (resp.content_length or 0) > limits.max_bytes
        ):
            return FetchFailed(url, _too_large(limits.max_bytes), status=status)
        chunks: list[bytes] = []
        size = 0
        async for chunk in resp.content.iter_any():
            size += len(chunk)
            if size > limits.max_bytes:
                return FetchFailed(url, _too_large(limits.max_bytes), status=status)
            chunks.append(chunk)
        # ``url`` (the final URL) is the base for relative links in the feed (RFC 9110 8.7).
        return Fetched(
            url=final,
            body=b"".join(chunks),
            validators=Validators(
                etag=resp.headers.get("ETag"), last_modified=resp.headers.get("Last-Modified")
            ),
            status=status,
            content_type=resp.headers.get("Content-Type"),
            permanent_redirect=moved,
            min_interval=min_interval,
        )
