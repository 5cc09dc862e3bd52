"""Structured logging: JSON lines for journald, readable lines on a terminal, secrets scrubbed.

Every event goes to stderr (stdout is for command output: grep results, dry-run alerts, console
alerts). Events are named ``noun_verb-ed`` with data in keys. Two layers keep secrets out:

- every value that came from a ``${VAR}`` in the config is replaced by ``***`` wherever it appears
  in an event, whatever key it hides in;
- URLs under the keys below lose their password and the values of query parameters that look like
  credentials (``token``, ``key``, ``secret``…), for feed URLs that carry an API key.

Standard-library loggers (apprise, aiohttp, apscheduler) go through the same processors. apprise
logs full tokens at DEBUG, so its logger is held at WARNING whatever the level asked for.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any, TextIO
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import structlog

URL_KEYS = frozenset({"url", "feed_url", "redirect", "location", "moved_to", "discovered"})
_SECRET_PARAM = re.compile(r"(?i)(token|key|secret|pass|auth|sig|session|sid|code|credential)")


def redact_url(url: str) -> str:
    """``https://user:pw@host/x?api_key=abc&q=bali`` -> ``https://user:***@host/x?api_key=***&q=bali``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if not parts.scheme or not parts.netloc:
        return url
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:***@{host}" if ":" in userinfo else f"***@{host}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode(
            [(k, "***" if _SECRET_PARAM.search(k) else v) for k, v in pairs], safe="*:/"
        )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


class Scrubber:
    """A structlog processor replacing known secret values and redacting URL-valued keys."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # Longest first, so a secret that contains another is replaced whole.
        self.secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def _scrub(self, value: str) -> str:
        for s in self.secrets:
            if s in value:
                value = value.replace(s, "***")
        return value

    def __call__(
        self, _logger: Any, _name: str, event: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        for k, v in list(event.items()):
            if isinstance(v, str):
                if k in URL_KEYS:
                    v = redact_url(v)
                event[k] = self._scrub(v)
            elif isinstance(v, list | tuple) and all(isinstance(x, str) for x in v):
                event[k] = [self._scrub(redact_url(x) if k in URL_KEYS else x) for x in v]
        return event


class _Stderr:
    """Writes to whatever ``sys.stderr`` is at the time of writing, not at configure time.

    The CLI can be called several times in one process (tests, embedding); binding the stream
    once would keep writing to a stream that was since replaced or closed.
    """

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()

    def isatty(self) -> bool:
        return sys.stderr.isatty()


def configure(
    *,
    level: str = "info",
    json: bool | None = None,
    secrets: Iterable[str] = (),
    stream: TextIO | None = None,
) -> None:
    """Set up structlog and stdlib logging. ``json=None`` picks JSON unless stderr is a TTY."""
    out: Any = stream or _Stderr()
    if json is None:
        json = not out.isatty()
    scrub = Scrubber(secrets)
    renderer: Any = (
        structlog.processors.JSONRenderer(ensure_ascii=False)
        if json
        else structlog.dev.ConsoleRenderer(colors=out.isatty())
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    numeric = getattr(logging, level.upper(), logging.INFO)
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info if json else _noop,
            _drop_none,
            scrub,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                scrub,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(max(numeric, logging.INFO))
    # Library chatter is noise at INFO; apprise would log tokens at DEBUG.
    for name in ("apprise", "apscheduler", "aiohttp", "asyncio"):
        logging.getLogger(name).setLevel(logging.WARNING)


def _noop(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    return event


def _drop_none(
    _logger: Any, _name: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Leave out keys without a value (``http_status`` of a DNS failure): less noise to read."""
    for key in [k for k, v in event.items() if v is None]:
        del event[key]
    return event


def get_logger(**initial: Any) -> Any:
    return structlog.get_logger(**initial)
