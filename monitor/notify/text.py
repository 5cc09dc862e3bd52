"""What an alert says, as data and as plain text; the one place that cleans feed text.

Feed text is hostile input. Every field goes through :func:`clean_text`, which strips control
and bidi-override characters (a U+202E in a headline can make a link read backwards,
CVE-2021-42574 "Trojan Source"), collapses whitespace and caps lengths, then through
:func:`defuse_mentions`, so a headline cannot page a whole chat (``@everyone``, Slack's
``<!channel>``). Links reach a message only through :func:`safe_link` (absolute http(s)).

Plain text marks the matched terms with guillemets («Putin»): they survive every client, read
naturally in Latin, Cyrillic and CJK headlines, and unlike capitals they do not change the
headline's own words.
"""

from __future__ import annotations

import re
import unicodedata
import zoneinfo
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

TITLE_MAX = 250
BODY_MAX = 2000
SOURCE_MAX = 200
LINK_MAX = 1000
MATCHED_MAX = 500
RULE_MAX = 80
TERM_MAX = 100
ELLIPSIS = "…"
MARK_OPEN, MARK_CLOSE = "«", "»"

# Unicode categories removed from feed text: Cc (C0/C1 controls, incl. ESC for terminal escape
# sequences), Cf (format: bidi embeddings/overrides/isolates U+202A-202E U+2066-2069, LRM/RLM,
# zero-width characters, BOM), Cs (lone surrogates, which cannot even be encoded as UTF-8).
_DROP_CATEGORIES = frozenset({"Cc", "Cf", "Cs"})
# Line breaks of any kind become spaces first, so "a\nb" does not turn into "ab".
_BREAK_CATEGORIES = frozenset({"Cc", "Zl", "Zp"})

# Slack's special mentions and ids (<!channel>, <!here>, <@U123>, <#C123>, <!subteam^ID>): the
# angle brackets make them live, so they go; the "@" of a bare "@word" (Discord's @everyone and
# @here, Matrix @room, Telegram @user) becomes a FULLWIDTH COMMERCIAL AT, which reads the same
# and no client takes for a mention. Not a zero-width joiner after the "@": invisible
# characters are exactly what clean_text keeps out of messages.
_SLACK_MENTION_RE = re.compile(r"<\s*([!@#][^<>]*)>")
_AT_RE = re.compile(r"@(?=\w)")
SAFE_AT = "\uff20"


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
    # Every rule that matched this item for one channel, the first being ``rule``; () means
    # just ``rule``. The title then names them all: ``[kim-putin, korea] headline``.
    rules: tuple[str, ...] = ()
    story: str | None = None  # the story id: email threads a story's follow-ups under it

    @property
    def rule_names(self) -> tuple[str, ...]:
        names = self.rules if self.rules else (self.rule,)
        if names[0] != self.rule:
            names = (self.rule, *(n for n in names if n != self.rule))
        return tuple(dict.fromkeys(names))


@dataclass(frozen=True)
class Digest:
    """Many alerts in one message (a digest or what quiet hours held back)."""

    channel: str
    period: str  # human text: "08:00–09:00", "quiet hours 22:00–06:00"
    alerts: tuple[AlertMessage, ...]


def clean_text(text: str, limit: int) -> str:
    """One line of display-safe text: no control/format characters, single spaces, capped."""
    text = unicodedata.normalize("NFC", text)
    spaced = "".join(" " if unicodedata.category(c) in _BREAK_CATEGORIES else c for c in text)
    kept = "".join(c for c in spaced if unicodedata.category(c) not in _DROP_CATEGORIES)
    return clip(" ".join(kept.split()), limit)


def defuse_mentions(text: str) -> str:
    """``text`` with chat mentions made inert (see ``_SLACK_MENTION_RE``)."""
    text = _SLACK_MENTION_RE.sub(lambda m: m.group(1), text)
    return _AT_RE.sub(SAFE_AT, text)


def feed_text(text: str | None, limit: int, *, chat: bool = True) -> str:
    """A feed field ready for a message: cleaned, capped, mentions defused for ``chat``."""
    text = clean_text(text or "", limit)
    return defuse_mentions(text) if chat else text


def clip(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[: max(limit - len(ELLIPSIS), 0)].rstrip() + ELLIPSIS


def safe_link(link: str | None) -> str | None:
    """The link if it is an absolute http(s) URL; other schemes (javascript:, data:, file:)
    have no business in an alert and would be clickable in some clients."""
    if not link:
        return None
    cleaned = clean_text(link, LINK_MAX * 4).replace(" ", "%20")
    try:
        parts = urlsplit(cleaned)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    if len(cleaned) > LINK_MAX:
        # A truncated URL leads somewhere else; better no link than a wrong one.
        return None
    return cleaned


def link_host(link: str) -> str:
    """The host a link leads to, shown as its text in Markdown and HTML."""
    host = urlsplit(link).hostname or link
    return host.removeprefix("www.")


def format_published(published: datetime, tz: zoneinfo.ZoneInfo) -> str:
    if published.tzinfo is None:
        # The contract is aware UTC; a naive value is read as UTC rather than local time.
        published = published.replace(tzinfo=UTC)
    return published.astimezone(tz).strftime("%Y-%m-%d %H:%M %Z")


def format_time(published: datetime, tz: zoneinfo.ZoneInfo) -> str:
    """Short time for a digest line: ``14:03``."""
    if published.tzinfo is None:
        published = published.replace(tzinfo=UTC)
    return published.astimezone(tz).strftime("%H:%M")


def unique(values: Iterable[str], limit: int, *, chat: bool = True) -> list[str]:
    """Cleaned, non-empty, de-duplicated values, in order."""
    return list(dict.fromkeys(t for t in (feed_text(v, limit, chat=chat) for v in values) if t))


def mark_spans(text: str, terms: Sequence[str]) -> list[tuple[str, bool]]:
    """``text`` cut into (piece, is_term) runs: every case-insensitive occurrence of a term.

    Longer terms win where two overlap ("Kim Jong Un" over "Kim"), so marks never nest.
    """
    hits: list[tuple[int, int]] = []
    folded = text.lower()
    if len(folded) != len(text):  # lowering changed lengths (İ): offsets would drift
        return [(text, False)]
    for term in sorted({t.lower() for t in terms if t}, key=len, reverse=True):
        start = folded.find(term)
        while start >= 0:
            end = start + len(term)
            if all(end <= a or start >= b for a, b in hits):
                hits.append((start, end))
            start = folded.find(term, end)
    runs: list[tuple[str, bool]] = []
    pos = 0
    for a, b in sorted(hits):
        if a > pos:
            runs.append((text[pos:a], False))
        runs.append((text[a:b], True))
        pos = b
    if pos < len(text) or not runs:
        runs.append((text[pos:], False))
    return runs


@dataclass(frozen=True)
class AlertFacts:
    """An alert's fields after cleaning: what every format renders, nothing raw."""

    rules: tuple[str, ...]
    headline: str
    terms: tuple[str, ...]
    source_line: str  # "Source (feed: name)", or whichever of the two is known
    source: str  # the outlet alone, for digest lines and subjects
    published: str | None  # in the configured time zone
    time: str | None  # HH:MM, for digests
    link: str | None
    host: str | None
    also: tuple[str, ...]
    followup: bool

    @property
    def rule_label(self) -> str:
        return ", ".join(self.rules)


def facts(alert: AlertMessage, tz: zoneinfo.ZoneInfo, *, chat: bool = True) -> AlertFacts:
    """The cleaned fields; ``chat`` also defuses mentions (email has none to fear)."""

    def text(value: str | None, limit: int) -> str:
        return feed_text(value, limit, chat=chat)

    rules = tuple(r for r in (text(r, RULE_MAX) for r in alert.rule_names) if r) or ("?",)
    source = text(alert.source, SOURCE_MAX)
    feed = text(alert.feed, SOURCE_MAX)
    if source and feed and source != feed:
        source_line = clip(f"{source} (feed: {feed})", SOURCE_MAX)
    else:
        source_line = source or feed
    link = safe_link(alert.link)
    return AlertFacts(
        rules=rules,
        headline=text(alert.title, TITLE_MAX) or "(no title)",
        terms=tuple(unique(alert.matched, TERM_MAX, chat=chat)),
        source_line=source_line,
        source=source or feed,
        published=format_published(alert.published, tz) if alert.published else None,
        time=format_time(alert.published, tz) if alert.published else None,
        link=link,
        host=link_host(link) if link else None,
        also=tuple(unique(alert.also, TERM_MAX, chat=chat)),
        followup=alert.followup,
    )


def digest_groups(digest: Digest) -> list[tuple[str, list[AlertMessage]]]:
    """Alerts grouped by (first) rule: rules in order of their newest alert, newest first
    within a rule; alerts without a time sort after those with one, in outbox order."""

    def when(alert: AlertMessage) -> float:
        p = alert.published
        if p is None:
            return float("-inf")
        return (p if p.tzinfo else p.replace(tzinfo=UTC)).timestamp()

    groups: dict[str, list[AlertMessage]] = {}
    for alert in digest.alerts:
        groups.setdefault(", ".join(alert.rule_names), []).append(alert)
    ordered = [(rule, sorted(items, key=when, reverse=True)) for rule, items in groups.items()]
    ordered.sort(key=lambda g: when(g[1][0]), reverse=True)  # stable: ties keep outbox order
    return ordered


def plain_title(f: AlertFacts, limit: int = TITLE_MAX, *, mark: bool = True) -> str:
    """``[rule, rule] headline``, the matched terms «marked» unless ``mark`` is False."""
    marker = "also reported: " if f.followup else ""
    headline = marked(f.headline, f.terms) if mark else f.headline
    return clip(f"[{f.rule_label}] {marker}{headline}", limit)


def marked(text: str, terms: Sequence[str]) -> str:
    """``text`` with each matched term in «guillemets»."""
    return "".join(
        f"{MARK_OPEN}{piece}{MARK_CLOSE}" if term else piece
        for piece, term in mark_spans(text, terms)
    )


def plain_lines(f: AlertFacts) -> list[str]:
    lines: list[str] = []
    if f.source_line:
        lines.append(f.source_line)
    if f.published:
        lines.append(f.published)
    if f.link:
        lines.append(f.link)
    if f.terms:
        lines.append(clip("matched: " + ", ".join(f.terms), MATCHED_MAX))
    if f.also:
        lines.append(clip("also reported by: " + ", ".join(f.also), MATCHED_MAX))
    return lines


def digest_title(digest: Digest) -> str:
    n = len(digest.alerts)
    period = clean_text(digest.period, 100)
    return clip(f"[digest {period}] {n} alert{'s' if n != 1 else ''}", TITLE_MAX)


def render(item: AlertMessage | Digest, tz: zoneinfo.ZoneInfo) -> tuple[str, str]:
    """(title, body) as plain text, safe to hand to any apprise service.

    Title: ``[rule] headline`` (``[rule] also reported: headline`` for a story follow-up);
    the terms are listed, not marked (chat services get them marked: :func:`render_chat`).
    Body lines: source (the feed name when the item names no
    source), publication time in ``tz``, link, ``matched: term, term``, ``also reported by:
    outlet, outlet``. A digest lists its alerts by rule (see :func:`digest_groups`).
    """
    if isinstance(item, Digest):
        from monitor.notify.chat import Limits, render_chat

        return render_chat(item, tz, markdown=False, limits=Limits(body=BODY_MAX * 4))
    f = facts(item, tz)
    return plain_title(f, mark=False), clip("\n".join(plain_lines(f)), BODY_MAX)
