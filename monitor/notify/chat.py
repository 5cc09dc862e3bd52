"""Chat messages: CommonMark for services that take Markdown, plain text for the rest.

apprise converts CommonMark to each service's dialect (Telegram MarkdownV2, Slack mrkdwn,
Matrix HTML, Discord as is), so one rendering serves them all. Everything that came from the
feed is backslash-escaped (CommonMark escapes any ASCII punctuation, and apprise's converters
read those escapes), so a headline cannot bold, link (``[x](javascript:…)``), quote or list
anything; our own markup is only ``**`` around matched terms and rule names, and
``[host](link)`` around an http(s) link whose delimiters are percent-encoded.

Lengths: the service's limits come from the apprise plugin (``body_maxlen``, ``title_maxlen``;
a ``title_maxlen`` of 0, as for Telegram, means the title is sent inside the body). The body is
cut at whole lines (a last line says how much was left out), the title by shortening the
headline before it is escaped, so a cut never lands inside an escape, a mark or a link.
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass

from monitor.notify.text import (
    MATCHED_MAX,
    RULE_MAX,
    TITLE_MAX,
    AlertFacts,
    AlertMessage,
    Digest,
    clip,
    digest_groups,
    digest_title,
    facts,
    feed_text,
    mark_spans,
    marked,
    plain_lines,
    plain_title,
)

# CommonMark-significant punctuation plus what Telegram, Slack and Discord read as markup.
# "&" too: "&lt;" is an entity in CommonMark, and Matrix renders Markdown to HTML.
_MD_SPECIAL_RE = re.compile(r"([\\`*_{}\[\]()<>#+\-.!|~=&])")
# Characters a Markdown link destination or a chat converter could read as its own syntax.
_URL_UNSAFE = {c: f"%{ord(c):02X}" for c in "()<>\\\"'|[]`*{}^ "}

_BULLET = "• "


def escape_md(text: str) -> str:
    """Feed text as literal CommonMark."""
    return _MD_SPECIAL_RE.sub(r"\\\1", text)


def md_link(link: str, text: str) -> str:
    """``[text](link)`` with the link's delimiters percent-encoded (``link`` is already a
    checked http(s) URL; encoding these characters does not change where it leads)."""
    url = "".join(_URL_UNSAFE.get(c, c) for c in link)
    return f"[{escape_md(text)}]({url})"


def _md_marked(text: str, terms: tuple[str, ...]) -> str:
    return "".join(
        f"**{escape_md(piece)}**" if term else escape_md(piece)
        for piece, term in mark_spans(text, terms)
    )


@dataclass(frozen=True)
class Limits:
    """A service's limits as its apprise plugin declares them (0: none / title in body)."""

    title: int = TITLE_MAX
    body: int = 0


def _fit_title(build: Callable[[int], str], headline: str, limit: int) -> str:
    """The longest title ``build(n)`` (headline clipped to n plain characters) within limit."""
    n = len(headline)
    title = build(n)
    while len(title) > limit and n > 0:
        n = max(0, n - max(len(title) - limit, 1))
        title = build(n)
    return title if len(title) <= limit else clip(title, limit)


def md_title(f: AlertFacts, limit: int = TITLE_MAX) -> str:
    marker = "also reported: " if f.followup else ""
    head = escape_md(f"[{f.rule_label}] {marker}")

    def build(n: int) -> str:
        return head + _md_marked(clip(f.headline, n), f.terms)

    return _fit_title(build, f.headline, limit)


def md_lines(f: AlertFacts) -> list[str]:
    lines: list[str] = []
    if f.source_line:
        lines.append(escape_md(f.source_line))
    if f.published:
        lines.append(escape_md(f.published))
    if f.link and f.host:
        lines.append(md_link(f.link, f.host))
    if f.terms:
        terms: list[str] = []
        for term in f.terms:  # whole terms only, so no mark is ever cut
            if sum(len(t) + 2 for t in terms) + len(term) > MATCHED_MAX:
                break
            terms.append(term)
        lines.append("matched: " + ", ".join(f"**{escape_md(t)}**" for t in terms))
    if f.also:
        lines.append("also reported by: " + escape_md(clip(", ".join(f.also), MATCHED_MAX)))
    return lines


def _digest_lines(digest: Digest, tz: zoneinfo.ZoneInfo, markdown: bool) -> list[str]:
    lines: list[str] = []
    for rule, alerts in digest_groups(digest):
        name = feed_text(rule, RULE_MAX * 2)
        lines.append(
            f"**{escape_md(name)}** ({len(alerts)})" if markdown else f"{name} ({len(alerts)})"
        )
        for alert in alerts:
            f = facts(alert, tz)
            meta = " ".join(p for p in (f.source, f.time) if p)
            if markdown:
                parts = [_md_marked(f.headline, f.terms)]
                parts += [escape_md(meta)] if meta else []
                parts += [md_link(f.link, f.host)] if f.link and f.host else []
                parts += ["also: " + escape_md(", ".join(f.also))] if f.also else []
            else:
                parts = [marked(f.headline, f.terms)]
                parts += [meta] if meta else []
                parts += [f.link] if f.link else []
                parts += ["also: " + ", ".join(f.also)] if f.also else []
            lines.append(_BULLET + " · ".join(parts))
    return lines


def _fit_body(lines: list[str], limit: int, total: int) -> str:
    if limit <= 0:
        return "\n".join(lines)
    text = "\n".join(lines)
    if len(text) <= limit:
        return text
    kept = list(lines)
    while kept:
        kept.pop()
        more = f"… ({total - _count_alerts(kept)} more)" if total else "…"
        text = "\n".join([*kept, more])
        if len(text) <= limit:
            return text
    return "…"[:limit]


def _count_alerts(lines: list[str]) -> int:
    return sum(1 for line in lines if line.startswith(_BULLET))


def render_chat(
    item: AlertMessage | Digest, tz: zoneinfo.ZoneInfo, *, markdown: bool, limits: Limits
) -> tuple[str, str]:
    """(title, body) for one chat service: CommonMark when ``markdown``, else plain text
    (terms in «guillemets»), within ``limits``."""
    if isinstance(item, Digest):
        title = clip(digest_title(item), limits.title or TITLE_MAX)
        if markdown:
            title = escape_md(title)
        lines = _digest_lines(item, tz, markdown)
        total = len(item.alerts)
    else:
        f = facts(item, tz)
        title_cap = min(limits.title or TITLE_MAX, TITLE_MAX)
        if limits.body:
            title_cap = min(title_cap, max(limits.body // 4, 20))
        # A plain-text title stays as the headline reads (its terms are listed in the body):
        # many plain targets are machines (json://) or subject lines.
        title = md_title(f, title_cap) if markdown else plain_title(f, title_cap, mark=False)
        lines = md_lines(f) if markdown else plain_lines(f)
        total = 0
    body_limit = limits.body
    if body_limit and limits.title <= 0 and title:
        body_limit -= len(title) + 2  # apprise sends "title\r\nbody" as one message
    return title, _fit_body(lines, body_limit, total)
