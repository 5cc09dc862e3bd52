"""Channels: apprise URLs, their validation and redaction, and sending to each of them.

Each URL is one target, rendered for its own service (:meth:`Channel.send`): Markdown for the
services whose apprise plugin takes it, plain text for the others and as the fallback when a
service rejects the Markdown, and a multipart HTML + text email for ``mailto://``/``mailtos://``
(:mod:`monitor.notify.email`).

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
import zoneinfo
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast
from urllib.parse import parse_qs, unquote, urlsplit

import apprise
import structlog
from apprise.manager_plugins import NotificationManager
from apprise.utils.parse import parse_urls as _untyped_parse_urls

from monitor.errors import ConfigError
from monitor.notify import email
from monitor.notify.chat import Limits, render_chat
from monitor.notify.text import TITLE_MAX, AlertMessage, Digest, clean_text, clip

log = structlog.get_logger()

# apprise's plugin registry (a process-wide singleton); its constructor is untyped upstream.
_PLUGINS: Any = cast(Any, NotificationManager)()
_parse_urls: Any = _untyped_parse_urls

_DETAIL_MAX = 500

CONSOLE_SCHEME = "console"

_SCHEME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]{0,31})://")
# Generic webhooks pass any format through untouched: their receivers get Markdown only when
# the URL asks for it (?format=markdown), since nothing tells them how to read it.
_PASSTHROUGH_SCHEMES = frozenset({"json", "jsons", "xml", "xmls", "form", "forms"})
_FORMAT_RE = re.compile(r"([?&]format=)[^&#]*", re.IGNORECASE)


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


_RTO_RE = re.compile(r"[?&]rto=", re.IGNORECASE)


class _Target:
    """One URL with its own apprise object.

    One Apprise object per URL, not one for the channel: an AppriseResult's per-service
    results are matched back to URLs only through their redacted form or ``url_id``, which
    collide for two URLs that differ only in a secret, and a call-level failure yields no
    per-service result at all. With one object per URL the overall status *is* the outcome for
    that URL. The plugin instance is kept across deliveries because it carries apprise's
    throttle state (e.g. 5.5 s between messages to one email/ntfy target).
    """

    def __init__(self, url: str, read_timeout: float | None = None) -> None:
        self.key = url_key(url)
        self.redacted = redact(url)
        self.secrets = _secrets_of(url, self.redacted)
        self.scheme = _scheme(url) or ""
        self.apprise = apprise.Apprise()
        if not self.apprise.add(url):
            raise ValueError("rejected by apprise")
        self.plugin: Any = self.apprise[0]
        if read_timeout is not None and not _RTO_RE.search(url):
            # apprise waits 4 s for an answer by default: a service that accepts a message but
            # answers later would count as failed and get it again (a duplicate without any
            # crash). Wait as long as the channel's timeout instead (?rto= in the URL wins).
            self.plugin.socket_read_timeout = read_timeout
        self.email = self.scheme in email.SCHEMES
        self.markdown = not self.email and _takes_markdown(url, self.scheme, self.plugin)
        # The plain-text fallback: with ?format=markdown in the URL apprise would convert our
        # text back into Markdown (escaped), so it goes through a twin asking for text.
        self.plain = self.apprise
        if self.markdown and _FORMAT_RE.search(url):
            self.plain = apprise.Apprise()
            if not self.plain.add(_FORMAT_RE.sub(r"\1text", url)):
                self.plain = self.apprise
        self.limits = Limits(
            title=int(getattr(self.plugin, "title_maxlen", TITLE_MAX)),
            body=max(int(getattr(self.plugin, "body_maxlen", 0)), 0),
        )
        # apprise plugins keep per-message state (throttle clock, which recipients a retry
        # may skip); one delivery at a time per target.
        self.lock = threading.Lock()

    def _failed(self, detail: str) -> TargetOutcome:
        detail = clip(clean_text(_scrub(detail, self.secrets), _DETAIL_MAX * 2), _DETAIL_MAX)
        return TargetOutcome(self.redacted, False, detail, self.key)

    def send(
        self,
        title: str,
        body: str,
        timeout: float,
        body_format: str = apprise.NotifyFormat.TEXT,
        via: Any = None,
    ) -> tuple[TargetOutcome, bool]:
        """(outcome, nomatch)."""
        with self.lock:
            try:
                result = (via or self.apprise).notify(
                    body=body, title=title, body_format=body_format, timeout=timeout
                )
            except Exception as e:  # apprise reports failures as values; a plugin bug still
                # must not stop the channel's other targets
                return self._failed(f"error: {type(e).__name__}: {e}"), False
        with result:
            status = result.status
            ok = bool(result)  # truthy only for SUCCESS; PARTIAL and TIMEOUT are failures
            if ok:
                return TargetOutcome(self.redacted, True, "sent", self.key), False
            messages = [e.message for e in result.logs() if e.level in ("WARNING", "ERROR")]
            detail = status.name.lower()
            if messages:
                detail += ": " + "; ".join(dict.fromkeys(messages))
            nomatch = status == apprise.AppriseResultStatus.NOMATCH
            return self._failed(detail), nomatch

    def send_item(
        self, item: AlertMessage | Digest, tz: zoneinfo.ZoneInfo, channel: str, timeout: float
    ) -> tuple[TargetOutcome, bool]:
        """Render ``item`` for this target's service and send it (see :meth:`Channel.send`)."""
        if self.email:
            try:
                content = email.render_email(item, tz, channel=channel)
            except Exception as e:  # a template that broke at render time: this target only
                return self._failed(f"email rendering failed: {type(e).__name__}: {e}"), False
            with self.lock:
                ok, detail = email.send_mail(self.plugin, content, timeout)
            if ok:
                return TargetOutcome(self.redacted, True, "sent", self.key), False
            return self._failed(detail), False
        if self.markdown:
            title, body = render_chat(item, tz, markdown=True, limits=self.limits)
            outcome, nomatch = self.send(title, body, timeout, apprise.NotifyFormat.MARKDOWN)
            if outcome.ok or nomatch:
                return outcome, nomatch
            # A service that rejects the markup (Telegram answers 400 "can't parse entities"
            # for MarkdownV2 it cannot read) still gets the alert, once, as plain text.
            log.info("markdown_rejected", url=self.redacted, detail=outcome.detail)
            title, body = render_chat(item, tz, markdown=False, limits=self.limits)
            retry, nomatch = self.send(title, body, timeout, via=self.plain)
            if retry.ok:
                return TargetOutcome(self.redacted, True, "sent as plain text", self.key), False
            return self._failed(f"markdown: {outcome.detail}; plain text: {retry.detail}"), nomatch
        title, body = render_chat(item, tz, markdown=False, limits=self.limits)
        return self.send(title, body, timeout)


def _takes_markdown(url: str, scheme: str, plugin: Any) -> bool:
    """Whether the service reads Markdown: its plugin declares it (``notify_format``) and the URL
    does not choose another format (``?format=html``); generic webhooks only on request."""
    try:
        if plugin.resolve_format(apprise.NotifyFormat.MARKDOWN) != apprise.NotifyFormat.MARKDOWN:
            return False
    except Exception:  # a plugin without format resolution: plain text is always safe
        return False
    if scheme in _PASSTHROUGH_SCHEMES:
        query = parse_qs(urlsplit(url).query)
        return [v.lower() for v in query.get("format", [])] == ["markdown"]
    return True


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
        seconds = timeout.total_seconds()
        self._targets = tuple(_Target(url.strip(), read_timeout=seconds) for url in urls)

    def redacted_urls(self) -> list[str]:
        return [t.redacted for t in self._targets]

    def deliver(
        self, title: str, body: str, *, skip: Collection[str] = frozenset()
    ) -> DeliveryResult:
        """Send one plain-text title and body to every URL of the channel, as is (apprise's own
        email plugin for mail URLs): what ``notify-test`` uses. Never raises.

        ``skip`` holds the keys (``TargetOutcome.key``) of URLs that already accepted this
        message on an earlier try: a retry after one URL failed must not repeat it to the others.
        Blocking (apprise is synchronous; the caller runs this in a thread). Targets are sent
        concurrently so a slow or throttled one does not hold up the others; each call is
        bounded by ``timeout``.
        """
        seconds = self.timeout.total_seconds()
        return self._each(lambda t: t.send(title, body, seconds), skip)

    def send(
        self,
        item: AlertMessage | Digest,
        tz: zoneinfo.ZoneInfo,
        *,
        skip: Collection[str] = frozenset(),
    ) -> DeliveryResult:
        """Render ``item`` for each URL's service and send it there; never raises.

        Markdown services get CommonMark (plain text again if they reject it), other chat
        services plain text, ``mailto://``/``mailtos://`` an HTML + text email threaded by
        story. ``skip``, concurrency and the timeout as for :meth:`deliver`.
        """
        seconds = self.timeout.total_seconds()
        return self._each(lambda t: t.send_item(item, tz, self.name, seconds), skip)

    def _each(
        self,
        send: Callable[[_Target], tuple[TargetOutcome, bool]],
        skip: Collection[str],
    ) -> DeliveryResult:
        todo = [t for t in self._targets if t.key not in skip]
        if len(todo) == 1:
            sent = [send(todo[0])]
        elif todo:
            with ThreadPoolExecutor(len(todo), thread_name_prefix="notify") as pool:
                sent = list(pool.map(send, todo))
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
