"""Email: an HTML + plain-text message per alert or digest, threaded by story, sent over SMTP.

Why not apprise's email plugin for alerts (it still sends ``notify-test`` and ``deliver``)?
apprise 2.3 (``apprise/plugins/email/base.py``, ``prepare_emails``) can add headers (``+Name=``
URL arguments become ``headers``) and sends ``multipart/alternative`` for an HTML body, but:
the text part is always its own HTML-to-text conversion of the HTML body, never ours; it sets
``Message-ID`` itself (``make_msgid``) *after* the custom headers, so one of ours would make a
second Message-ID header; and headers belong to the plugin instance, not to one message. A
story's first alert must carry a Message-ID we know so its follow-ups can name it in
``In-Reply-To``/``References``. So for ``mailto://``/``mailtos://`` we let apprise parse the URL
(its provider table fills in Gmail's or Fastmail's server, port and TLS mode) and build and
send the message with the standard library: ``email.message.EmailMessage`` and ``smtplib``
with the plugin's host, port, mode, login, certificate check, sender, recipients, Cc, Bcc,
Reply-To and ``+Header`` extras. apprise's 5.5 s pause between two emails is not kept: it is a
client-side courtesy, and delivery paces its own sends.

Templates are Jinja2 in a sandbox (``SandboxedEnvironment``), autoescaped for HTML, shipped
with the package and overridable file by file from a directory (:func:`set_template_dir`).
They only ever see cleaned plain text; the HTML they produce is cleaned once more with nh3 and
an allow-list (no script, style, form, image or event handler; links http(s) only), which also
holds an override template to that rule.
"""

from __future__ import annotations

import hashlib
import smtplib
import ssl
import threading
import traceback
import zoneinfo
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import format_datetime, formataddr
from pathlib import Path
from typing import Any

import jinja2
import nh3
from jinja2.sandbox import SandboxedEnvironment

from monitor.errors import ConfigError
from monitor.notify.text import (
    AlertFacts,
    AlertMessage,
    Digest,
    clean_text,
    clip,
    digest_groups,
    facts,
    mark_spans,
    marked,
)

SCHEMES = frozenset({"mailto", "mailtos"})
SUBJECT_PREFIX = "[news-monitor]"
SUBJECT_MAX = 200
MSGID_DOMAIN = "news-monitor"
TEMPLATES = ("alert.html", "alert.txt", "digest.html", "digest.txt")

_ALLOWED_TAGS = {"p", "br", "h1", "h2", "h3", "ul", "ol", "li", "a", "strong", "em", "mark"}
_ALLOWED_TAGS |= {"b", "i", "span", "div", "table", "tr", "td", "th", "hr", "small"}
_DOCUMENT = (
    '<!DOCTYPE html>\n<html><head><meta charset="utf-8"></head>\n<body>\n{}\n</body></html>\n'
)
# Headers this module owns: a URL's +Header may not replace them.
_OWN_HEADERS = frozenset(
    h.lower()
    for h in (
        "Subject", "From", "To", "Cc", "Bcc", "Reply-To", "Date", "Message-ID", "In-Reply-To",
        "References", "MIME-Version", "Content-Type", "Content-Transfer-Encoding",
    )
)  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Templates


def _environment(directory: Path | None) -> SandboxedEnvironment:
    loaders: list[jinja2.BaseLoader] = []
    if directory is not None:
        loaders.append(jinja2.FileSystemLoader(directory))
    loaders.append(jinja2.PackageLoader("monitor.notify", "templates"))
    return SandboxedEnvironment(
        loader=jinja2.ChoiceLoader(loaders),
        autoescape=jinja2.select_autoescape(
            enabled_extensions=("html",), disabled_extensions=("txt",), default=True
        ),
        undefined=jinja2.StrictUndefined,  # a typo in an override fails at load, not silently
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


_env = _environment(None)
_env_lock = threading.Lock()


def load_template_dir(directory: Path | None) -> SandboxedEnvironment:
    """An environment reading ``directory``'s templates before the packaged ones, each override
    parsed and tried on a sample alert and digest; a broken one is a ConfigError at its line."""
    env = _environment(directory)
    if directory is None:
        return env
    if not directory.is_dir():
        raise ConfigError("template directory not found", file=str(directory))
    now = datetime.now(UTC)
    from monitor.notify.channel import sample_alert  # the notify-test alert is the sample

    sample = sample_alert(now)
    samples: dict[str, dict[str, Any]] = {
        "alert": {"alert": _alert_context(sample, zoneinfo.ZoneInfo("UTC"))},
        "digest": _digest_context(
            Digest("sample", "08:00–09:00", (sample,)), zoneinfo.ZoneInfo("UTC")
        ),
    }
    for name in TEMPLATES:
        path = directory / name
        if not path.is_file():
            continue
        try:
            source = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(f"cannot read template: {e}", file=str(path)) from e
        try:
            env.parse(source, name, str(path))
            env.get_template(name).render(samples[name.split(".")[0]])
        except jinja2.TemplateSyntaxError as e:
            raise ConfigError(f"template error: {e.message}", file=str(path), line=e.lineno) from e
        except Exception as e:  # StrictUndefined, SecurityError, TypeError inside the template
            line = _template_line(e, str(path))
            raise ConfigError(
                f"template error: {type(e).__name__}: {e}", file=str(path), line=line
            ) from e
    return env


def _template_line(error: BaseException, filename: str) -> int | None:
    """The template line a render error came from: Jinja2 rewrites its traceback frames to
    the template's file and line."""
    lines = [f.lineno for f in traceback.extract_tb(error.__traceback__) if f.filename == filename]
    return lines[-1] if lines else None


def set_template_dir(directory: Path | None) -> None:
    """Use the templates in ``directory`` (any of alert.html, alert.txt, digest.html,
    digest.txt; the others stay the packaged ones), or only the packaged ones for None.

    Validates first (:func:`load_template_dir`), so on error the templates in use stay as they
    were (a reload keeps working). The environment is replaced whole, never changed in place,
    so a message being rendered in another thread sees either the old set or the new one.
    """
    global _env
    env = load_template_dir(directory)
    with _env_lock:
        _env = env


# ---------------------------------------------------------------------------------------------
# Rendering


@dataclass(frozen=True)
class MailContent:
    subject: str
    text: str
    html: str  # a whole document, cleaned
    message_id: str
    in_reply_to: str | None = None


def _alert_context(alert: AlertMessage, tz: zoneinfo.ZoneInfo) -> dict[str, Any]:
    return _facts_context(facts(alert, tz, chat=False))


def _facts_context(f: AlertFacts) -> dict[str, Any]:
    return {
        "rules": list(f.rules),
        "headline": f.headline,
        "headline_runs": mark_spans(f.headline, f.terms),
        "headline_marked": marked(f.headline, f.terms),
        "terms": list(f.terms),
        "source_line": f.source_line,
        "source": f.source,
        "published": f.published,
        "time": f.time,
        "link": f.link,
        "host": f.host,
        "also": list(f.also),
        "followup": f.followup,
    }


def _digest_context(digest: Digest, tz: zoneinfo.ZoneInfo) -> dict[str, Any]:
    return {
        "period": clean_text(digest.period, 100),
        "count": len(digest.alerts),
        "groups": [
            {"rule": clean_text(rule, 200), "alerts": [_alert_context(a, tz) for a in alerts]}
            for rule, alerts in digest_groups(digest)
        ],
    }


def sanitize_html(fragment: str) -> str:
    """The allow-list every HTML part passes: what a template produced, minus anything active."""
    cleaned: str = nh3.clean(
        fragment,
        tags=_ALLOWED_TAGS,
        attributes={"a": {"href"}},
        url_schemes={"http", "https"},
        link_rel="noopener noreferrer",
    )
    return cleaned


def _hash(*parts: str) -> str:
    return hashlib.blake2b("\x1f".join(parts).encode(), digest_size=10).hexdigest()


def story_message_id(channel: str, story: str) -> str:
    """The Message-ID of a story's first email on a channel; its follow-ups reply to it."""
    return f"<story-{_hash(channel, story)}@{MSGID_DOMAIN}>"


def _ids(item: AlertMessage | Digest, channel: str) -> tuple[str, str | None]:
    """(Message-ID, parent Message-ID). Derived from the content, so a retried or duplicated
    send carries the same id and a mail client can fold the copies."""
    if isinstance(item, Digest):
        titles = [a.title for a in item.alerts]
        return f"<digest-{_hash(channel, item.period, *titles)}@{MSGID_DOMAIN}>", None
    if item.story:
        first = story_message_id(channel, item.story)
        if not item.followup:
            return first, None
        own = _hash(channel, item.story, item.title, item.link or "", *item.also)
        return f"<story-{_hash(channel, item.story)}-{own}@{MSGID_DOMAIN}>", first
    return f"<alert-{_hash(channel, item.rule, item.title, item.link or '')}@{MSGID_DOMAIN}>", None


def render_email(
    item: AlertMessage | Digest, tz: zoneinfo.ZoneInfo, *, channel: str = ""
) -> MailContent:
    """Subject ``[news-monitor] <rule>: <title>`` (a digest: ``[news-monitor] digest <period>:
    N alerts``), the text and HTML parts from the templates, and the threading ids."""
    env = _env
    if isinstance(item, Digest):
        context = _digest_context(item, tz)
        n = context["count"]
        subject = f"{SUBJECT_PREFIX} digest {context['period']}: {n} alert{'s' if n != 1 else ''}"
        name = "digest"
    else:
        f = facts(item, tz, chat=False)
        context = _facts_context(f)
        marker = "also reported: " if f.followup else ""
        subject = f"{SUBJECT_PREFIX} {f.rule_label}: {marker}{f.headline}"
        name = "alert"
    scope = {"alert": context} if name == "alert" else context
    text = env.get_template(f"{name}.txt").render(scope)
    html = _DOCUMENT.format(sanitize_html(env.get_template(f"{name}.html").render(scope)))
    message_id, parent = _ids(item, channel)
    return MailContent(clip(subject, SUBJECT_MAX), text, html, message_id, parent)


# ---------------------------------------------------------------------------------------------
# Sending


def _address(pair: Sequence[Any]) -> str:
    name, addr = pair[0], pair[1]
    return formataddr((name or "", addr), charset="utf-8") if name else str(addr)


def build_messages(
    plugin: Any, content: MailContent, now: datetime
) -> list[tuple[EmailMessage, list[str]]]:
    """(message, envelope recipients) per To recipient (as apprise does: nobody sees the
    others' addresses), the Cc list on each, Bcc only in the envelope."""
    messages: list[tuple[EmailMessage, list[str]]] = []
    cc = sorted(plugin.cc)
    reply_to = sorted(plugin.reply_to)
    names: Mapping[str, Any] = plugin.names or {}
    for to in plugin.targets:
        msg = EmailMessage(policy=SMTP_POLICY)
        for key, value in (plugin.headers or {}).items():
            if key.lower() not in _OWN_HEADERS:
                msg[key] = clean_text(str(value), 500)
        msg["Subject"] = content.subject
        msg["From"] = _address(plugin.from_addr)
        msg["To"] = _address(to)
        cc_ = [_address((names.get(a), a)) for a in cc if a != to[1]]
        if cc_:
            msg["Cc"] = ", ".join(cc_)
        if reply_to:
            msg["Reply-To"] = ", ".join(_address((names.get(a), a)) for a in reply_to)
        msg["Date"] = format_datetime(now)
        msg["Message-ID"] = content.message_id
        if content.in_reply_to:
            msg["In-Reply-To"] = content.in_reply_to
            msg["References"] = content.in_reply_to
        msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to alerts
        msg.set_content(content.text)
        msg.add_alternative(content.html, subtype="html")
        envelope = [to[1], *(a for a in cc if a != to[1]), *sorted(plugin.bcc - {to[1]})]
        messages.append((msg, envelope))
    return messages


def send_mail(plugin: Any, content: MailContent, timeout: float) -> tuple[bool, str]:
    """Send to every recipient of an apprise email plugin's URL; (ok, detail). Never raises."""
    if not plugin.targets:
        return False, "no email recipients"
    messages = build_messages(plugin, content, datetime.now(UTC))
    mode = str(plugin.secure_mode)
    context = ssl.create_default_context()
    if not plugin.verify_certificate:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    port = plugin.port or {"ssl": 465, "starttls": 587}.get(mode, 25)
    try:
        smtp: smtplib.SMTP
        if mode == "ssl":
            smtp = smtplib.SMTP_SSL(plugin.smtp_host, port, timeout=timeout, context=context)
        else:
            smtp = smtplib.SMTP(plugin.smtp_host, port, timeout=timeout)
        with smtp:
            if mode == "starttls":
                smtp.starttls(context=context)
            if plugin.user and plugin.password:
                smtp.login(plugin.user, plugin.password)
            for msg, envelope in messages:
                refused = smtp.send_message(msg, from_addr=plugin.from_addr[1], to_addrs=envelope)
                if refused:
                    return False, f"recipients refused: {', '.join(sorted(refused))}"
    except (OSError, smtplib.SMTPException) as e:
        return False, f"{type(e).__name__}: {e}"
    return True, "sent"
