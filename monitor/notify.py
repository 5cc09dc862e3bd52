"""Delivery stage: render one alert as plain text and send it through apprise.

Feed text is hostile input. Everything that reaches a phone goes through :func:`render`, which
strips control and bidi-override characters (a U+202E in a headline can make a link read
backwards, CVE-2021-42574 "Trojan Source"), collapses whitespace and caps lengths. The message
is sent with ``body_format=TEXT``, so apprise escapes it for HTML/Markdown services (Telegram,
Discord, Matrix) instead of letting a feed inject markup or mentions.

Secrets live in apprise URLs (bot tokens, passwords). Only :func:`redact`-ed URLs leave this
module, in results and in logs, and apprise's own logger is kept at WARNING because at DEBUG it
logs request URLs that embed tokens (``https://api.telegram.org/bot<token>/sendMessage``).
"""

from __future__ import annotations

import hashlib
import logging
import re
import sys
import threading
import unicodedata
import zoneinfo
from collections.abc import Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast
from urllib.parse import unquote, urlsplit

import apprise
import structlog
from apprise.manager_plugins import NotificationManager
from apprise.utils.parse import parse_urls as _untyped_parse_urls

from monitor.errors import ConfigError

log = structlog.get_logger()

# apprise's plugin registry (a process-wide singleton); its constructor is untyped upstream.
_PLUGINS: Any = cast(Any, NotificationManager)()
_parse_urls: Any = _untyped_parse_urls

TITLE_MAX = 250
BODY_MAX = 2000
_SOURCE_MAX = 200
_LINK_MAX = 1000
_MATCHED_MAX = 500
_DETAIL_MAX = 500
_ELLIPSIS = "…"

CONSOLE_SCHEME = "console"

# Unicode categories removed from feed text: Cc (C0/C1 controls, incl. ESC for terminal escape
# sequences), Cf (format: bidi embeddings/overrides/isolates U+202A-202E U+2066-2069, LRM/RLM,
# zero-width characters, BOM), Cs (lone surrogates, which cannot even be encoded as UTF-8).
_DROP_CATEGORIES = frozenset({"Cc", "Cf", "Cs"})
# Line breaks of any kind become spaces first, so "a\nb" does not turn into "ab".
_BREAK_CATEGORIES = frozenset({"Cc", "Zl", "Zp"})
_SCHEME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]{0,31})://")


# ---------------------------------------------------------------------------------------------
# Rendering


@dataclass(frozen=True)
class AlertMessage:
    """One alert as the outbox hands it to delivery; all text fields come from the feed."""

    rule: str
    title: str
    link: str | None
    source: str | None
    feed: str
    published: datetime | None  # aware UTC
    matched: tuple[str, ...]  # matched terms as they appear in the text, de-duplicated, in order
    also: tuple[str, ...] = ()  # other outlets that carry the same story (story dedup)
    followup: bool = False  # an "also reported by" follow-up to an alert already sent


def clean_text(text: str, limit: int) -> str:
    """One line of display-safe text: no control/format characters, single spaces, capped."""
    text = unicodedata.normalize("NFC", text)
    spaced = "".join(" " if unicodedata.category(c) in _BREAK_CATEGORIES else c for c in text)
    kept = "".join(c for c in spaced if unicodedata.category(c) not in _DROP_CATEGORIES)
    return _clip(" ".join(kept.split()), limit)


def _clip(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[: limit - len(_ELLIPSIS)].rstrip() + _ELLIPSIS


def _safe_link(link: str | None) -> str | None:
    """The link if it is an absolute http(s) URL; other schemes (javascript:, data:, file:)
    have no business in an alert and would be clickable in some clients."""
    if not link:
        return None
    cleaned = clean_text(link, _LINK_MAX * 4).replace(" ", "%20")
    try:
        parts = urlsplit(cleaned)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    if len(cleaned) > _LINK_MAX:
        # A truncated URL leads somewhere else; better no link than a wrong one.
        return None
    return cleaned


def _format_published(published: datetime, tz: zoneinfo.ZoneInfo) -> str:
    if published.tzinfo is None:
        # The contract is aware UTC; a naive value is read as UTC rather than local time.
        published = published.replace(tzinfo=UTC)
    return published.astimezone(tz).strftime("%Y-%m-%d %H:%M %Z")


def render(alert: AlertMessage, tz: zoneinfo.ZoneInfo) -> tuple[str, str]:
    """(title, body) as plain text, safe to hand to any apprise service.

    Title: ``[rule] headline`` (``[rule] also reported: headline`` for a story follow-up).
    Body lines: source (the feed name when the item names no source), publication time in
    ``tz``, link, ``matched: term, term``, ``also reported by: outlet, outlet``.
    """
    rule = clean_text(alert.rule, 80)
    headline = clean_text(alert.title, TITLE_MAX) or "(no title)"
    marker = "also reported: " if alert.followup else ""
    title = clean_text(f"[{rule}] {marker}{headline}", TITLE_MAX)

    lines: list[str] = []
    source = clean_text(alert.source or "", _SOURCE_MAX)
    feed = clean_text(alert.feed, _SOURCE_MAX)
    if source and feed and source != feed:
        lines.append(_clip(f"{source} (feed: {feed})", _SOURCE_MAX))
    elif source or feed:
        lines.append(source or feed)
    if alert.published is not None:
        lines.append(_format_published(alert.published, tz))
    link = _safe_link(alert.link)
    if link:
        lines.append(link)
    terms = [t for t in (clean_text(m, 100) for m in alert.matched) if t]
    terms = list(dict.fromkeys(terms))
    if terms:
        lines.append(_clip("matched: " + ", ".join(terms), _MATCHED_MAX))
    also = list(dict.fromkeys(t for t in (clean_text(a, 100) for a in alert.also) if t))
    if also:
        lines.append(_clip("also reported by: " + ", ".join(also), _MATCHED_MAX))
    body = _clip("\n".join(lines), BODY_MAX)
    return title, body


# ---------------------------------------------------------------------------------------------
# URLs: validation and redaction

_console_lock = threading.Lock()


def _console_notify(
    body: str, title: str, notify_type: str, meta: dict[str, Any], *_: Any, **__: Any
) -> bool:
    """apprise custom plugin behind ``console://``: the alert on stdout (or stderr)."""
    qsd = meta.get("qsd") or {}
    stream = sys.stderr if str(qsd.get("stream", "")).lower() == "stderr" else sys.stdout
    lines = [title] if title else []
    lines += ["    " + line for line in body.splitlines()]
    try:
        stream.write("\n".join(lines) + "\n")
        stream.flush()
    except (OSError, ValueError):  # closed pipe or closed stream: a failed delivery, not a crash
        return False
    return True


def register_console_scheme() -> None:
    """Register ``console://`` with apprise (idempotent, thread-safe).

    apprise has no plugin that prints to the terminal; ``make run`` without any account still
    shows alerts through this one. Also pins the "apprise" logger at WARNING: at DEBUG apprise
    logs request URLs and payloads with full tokens.
    """
    logging.getLogger("apprise").setLevel(logging.WARNING)
    with _console_lock:
        if CONSOLE_SCHEME in _PLUGINS:
            return
        register: Any = cast(Any, apprise.decorators.notify)
        register(on=CONSOLE_SCHEME, name="Console", body_format=apprise.NotifyFormat.TEXT)(
            _console_notify
        )


def _scheme(url: str) -> str | None:
    match = _SCHEME_RE.match(url)
    return match.group(1).lower() if match else None


def _instantiate(url: str) -> Any:
    """The apprise plugin for one URL, or None. Raises nothing."""
    try:
        return apprise.Apprise.instantiate(url)
    except Exception:  # apprise promises None on bad input; a plugin bug must not crash config
        return None


def validate_url(url: str) -> str | None:
    """None when apprise accepts ``url`` as exactly one notification target, else why not.

    The message never echoes the URL (it may carry a token), only its scheme.
    """
    register_console_scheme()
    url = url.strip()
    if not url:
        return "empty notification URL"
    scheme = _scheme(url)
    if scheme is None:
        return "not a notification URL: expected scheme://… (e.g. tgram://, mailtos://, json://)"
    if scheme not in _PLUGINS:
        return f"unknown notification scheme '{scheme}://'"
    count = len(_parse_urls(url))
    if count != 1:
        return f"expected one URL, found {count}: list each URL as its own entry"
    if _instantiate(url) is None:
        templates = getattr(_PLUGINS[scheme], "templates", ())
        forms = ", ".join(str(t).replace("{schema}", scheme) for t in templates[:4])
        hint = f" (expected forms: {forms})" if forms else ""
        return f"apprise rejected the '{scheme}://' URL: missing or invalid parts{hint}"
    return None


def url_key(url: str) -> str:
    """A short fingerprint of a URL that reveals nothing of it (for the outbox's records)."""
    return hashlib.blake2b(url.strip().encode(), digest_size=8).hexdigest()


def redact(url: str) -> str:
    """apprise's privacy rendering of ``url`` (tokens shortened, passwords as ****); for a URL
    apprise cannot parse, just ``scheme://***`` since we cannot tell the secret parts apart."""
    register_console_scheme()
    plugin = _instantiate(url.strip())
    if plugin is not None:
        try:
            return str(plugin.url(privacy=True))
        except Exception:  # a plugin failing to render itself falls back to the safe form
            log.debug("url_redaction_failed", scheme=_scheme(url.strip()))
    return f"{_scheme(url.strip()) or 'unknown'}://***"


def _secrets_of(url: str, redacted: str) -> tuple[str, ...]:
    """Pieces of ``url`` that its redacted form hides: what must never appear in a log line.

    apprise's privacy rendering is the authority on what is secret; any token of the raw URL
    missing from it (bot token, password, webhook id) is scrubbed from failure details too.
    """
    tokens: set[str] = set()
    for form in (url, unquote(url)):
        tokens.update(t for t in re.split(r"[/:@?&=#,;+\s]+", form) if len(t) >= 3)
    return tuple(sorted((t for t in tokens if t not in redacted), key=len, reverse=True))


def _scrub(text: str, secrets: Sequence[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


# ---------------------------------------------------------------------------------------------
# Delivery


@dataclass(frozen=True)
class TargetOutcome:
    url: str  # redacted
    ok: bool
    detail: str  # "sent", or why not (apprise's warnings, scrubbed of the URL's secrets)
    key: str = ""  # a fingerprint of the URL, so a retry can skip the URLs that already took it


@dataclass(frozen=True)
class DeliveryResult:
    ok: bool  # every URL of the channel accepted it
    nomatch: bool  # apprise attempted nothing for some URL (a config bug, not a transient error)
    targets: tuple[TargetOutcome, ...]


class _Target:
    """One URL with its own apprise object.

    One Apprise object per URL, not one for the channel: an AppriseResult's per-service
    results are matched back to URLs only through their redacted form or ``url_id``, which
    collide for two URLs that differ only in a secret, and a call-level failure yields no
    per-service result at all. With one object per URL the overall status *is* the outcome for
    that URL. The plugin instance is kept across deliveries because it carries apprise's
    throttle state (e.g. 5.5 s between messages to one email/ntfy target).
    """

    def __init__(self, url: str) -> None:
        self.key = url_key(url)
        self.redacted = redact(url)
        self.secrets = _secrets_of(url, self.redacted)
        self.apprise = apprise.Apprise()
        if not self.apprise.add(url):
            raise ValueError("rejected by apprise")
        # apprise plugins keep per-message state (throttle clock, which recipients a retry
        # may skip); one delivery at a time per target.
        self.lock = threading.Lock()

    def send(self, title: str, body: str, timeout: float) -> tuple[TargetOutcome, bool]:
        """(outcome, nomatch)."""
        with self.lock:
            try:
                result = self.apprise.notify(
                    body=body, title=title, body_format=apprise.NotifyFormat.TEXT, timeout=timeout
                )
            except Exception as e:  # apprise reports failures as values; a plugin bug still
                # must not stop the channel's other targets
                detail = _scrub(f"error: {type(e).__name__}: {e}", self.secrets)
                outcome = TargetOutcome(self.redacted, False, _clip(detail, _DETAIL_MAX), self.key)
                return outcome, False
        with result:
            status = result.status
            ok = bool(result)  # truthy only for SUCCESS; PARTIAL and TIMEOUT are failures
            if ok:
                return TargetOutcome(self.redacted, True, "sent", self.key), False
            messages = [e.message for e in result.logs() if e.level in ("WARNING", "ERROR")]
            detail = status.name.lower()
            if messages:
                detail += ": " + "; ".join(dict.fromkeys(messages))
            detail = _clip(clean_text(_scrub(detail, self.secrets), _DETAIL_MAX * 2), _DETAIL_MAX)
            nomatch = status == apprise.AppriseResultStatus.NOMATCH
            return TargetOutcome(self.redacted, False, detail, self.key), nomatch


class Channel:
    """One named channel: one or more apprise URLs, each delivered and reported on its own."""

    def __init__(
        self, name: str, urls: Sequence[str], *, timeout: timedelta = timedelta(seconds=60)
    ) -> None:
        register_console_scheme()
        if isinstance(urls, str):
            urls = [urls]
        if not urls:
            raise ConfigError(f"channel {name!r}: no URLs")
        problems = [
            f"channel {name!r} URL #{i}: {msg}"
            for i, url in enumerate(urls, 1)
            if (msg := validate_url(url)) is not None
        ]
        if problems:
            raise ConfigError("; ".join(problems))
        self.name = name
        self.timeout = timeout
        self._targets = tuple(_Target(url.strip()) for url in urls)

    def redacted_urls(self) -> list[str]:
        return [t.redacted for t in self._targets]

    def deliver(
        self, title: str, body: str, *, skip: Collection[str] = frozenset()
    ) -> DeliveryResult:
        """Send to every URL of the channel; never raises for a delivery failure.

        ``skip`` holds the keys (``TargetOutcome.key``) of URLs that already accepted this
        message on an earlier try: a retry after one URL failed must not repeat it to the others.
        Blocking (apprise is synchronous; the caller runs this in a thread). Targets are sent
        concurrently so a slow or throttled one does not hold up the others; each call is
        bounded by ``timeout``.
        """
        seconds = self.timeout.total_seconds()
        todo = [t for t in self._targets if t.key not in skip]
        if len(todo) == 1:
            sent = [todo[0].send(title, body, seconds)]
        elif todo:
            with ThreadPoolExecutor(len(todo), thread_name_prefix="notify") as pool:
                sent = list(pool.map(lambda t: t.send(title, body, seconds), todo))
        else:
            sent = []
        done = {outcome.key: (outcome, nomatch) for outcome, nomatch in sent}
        sent = [
            done.get(t.key, (TargetOutcome(t.redacted, True, "already sent", t.key), False))
            for t in self._targets
        ]
        outcomes = tuple(outcome for outcome, _ in sent)
        for outcome in outcomes:
            if not outcome.ok:
                log.warning(
                    "delivery_failed", channel=self.name, url=outcome.url, detail=outcome.detail
                )
        return DeliveryResult(
            ok=all(o.ok for o in outcomes),
            nomatch=any(nomatch for _, nomatch in sent),
            targets=outcomes,
        )


# ---------------------------------------------------------------------------------------------
# `notify-test` support


def sample_alert(now: datetime) -> AlertMessage:
    """A harmless alert for `news-monitor notify-test`, so a user can check a channel works."""
    return AlertMessage(
        rule="notify-test",
        title="news-monitor test alert: this channel works",
        link=None,
        source="news-monitor",
        feed="notify-test",
        published=now,
        matched=("test",),
    )


def outcome_lines(channel: str, result: DeliveryResult) -> list[str]:
    """Human lines for one channel's delivery: ``<channel>: ok|FAILED <url>[: why]`` per URL.

    The query string of the redacted URL is left out: apprise adds every default option there,
    which buries the part a user recognises.
    """
    lines = []
    for target in result.targets:
        shown = target.url.split("?", 1)[0]
        if target.ok:
            lines.append(f"{channel}: ok     {shown}")
        else:
            lines.append(f"{channel}: FAILED {shown}: {target.detail}")
    if result.nomatch:
        lines.append(f"{channel}: apprise attempted nothing (check the URL)")
    return lines
