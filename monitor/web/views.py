"""What each page of the web view shows, read from the config and the state.

Plain functions from (config, store, now) to plain data for a template: no HTTP here, so the
pages and the Atom feed are tested without a server, and the server code only routes. Feed
text is passed on as text; escaping is the templates' job (autoescaped), and the only links
built from feed data are http(s) ones (:func:`safe_href`).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from monitor.config import Config, Rule
from monitor.health import assess
from monitor.logs import redact_url
from monitor.rules import QueryError, RuleSet, parse_query
from monitor.store import FeedState, RuleHit, Store
from monitor.web.backtest import segments

__all__ = [
    "RuleStory",
    "clean_text",
    "rule_stories",
    "safe_href",
    "status_page",
]

# Characters XML 1.0 does not allow (and HTML treats as errors): dropped from all output.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff\ud800-\udfff]")
CHART_DAYS = 14
ATOM_NS_UUID = uuid.UUID("0f5f1a52-44a4-4a0e-9d43-4f8e1f0c5a9d")  # names this program's ids


def clean_text(value: str) -> str:
    """Text safe to put in XML and HTML once escaped: without control characters."""
    return _NOT_XML.sub("", value)


def safe_href(url: str | None) -> str | None:
    """A link from feed data, only if it is http(s): ``javascript:`` and the like are dropped."""
    if not url:
        return None
    try:
        scheme = urlsplit(url.strip()).scheme.lower()
    except ValueError:
        return None
    return url.strip() if scheme in ("http", "https") else None


def _scrub(text: str | None, config: Config) -> str | None:
    if text is None:
        return None
    for secret in config.secrets:
        text = text.replace(secret, "***")
    return text


# -- the status page ----------------------------------------------------------------------------


def status_page(config: Config, store: Store, now: datetime) -> dict[str, Any]:
    """Feeds (health, last success and error, items per day), rules (hits in 24 h and 7 d),
    the outbox and the daemon's last reload."""
    states = {s.name: s for s in store.feed_states()}
    feeds = []
    days = [(now - timedelta(days=i)).date().isoformat() for i in range(CHART_DAYS - 1, -1, -1)]
    for feed in config.feeds:
        state = states.get(feed.name)
        if state is None or state.config_url != feed.url:
            state = FeedState.new(feed.name, feed.url)
        health = assess(feed, state, now, config.defaults.failure_threshold)
        status = health.status if feed.enabled else "disabled"
        per_day = store.items_per_day(feed.name, CHART_DAYS)
        counts = [per_day.get(d, 0) for d in days]
        feeds.append(
            {
                "name": feed.name,
                "url": _scrub(redact_url(state.url), config),
                "status": status,
                "reason": _scrub(health.reason or None, config) if feed.enabled else None,
                "last_success": state.last_success_at,
                "last_error": _scrub(state.last_error, config),
                "last_status": state.last_status,
                "failures": state.failures,
                "next_poll": state.next_poll_at,
                "chart": _chart(days, counts),
            }
        )
    hits_24h = store.rule_hits(now - timedelta(hours=24))
    hits_7d = store.rule_hits(now - timedelta(days=7))
    rules = [
        {
            "name": r.name,
            "query": r.query,
            "enabled": r.enabled,
            "hits_24h": hits_24h.get(r.name, 0),
            "hits_7d": hits_7d.get(r.name, 0),
        }
        for r in config.rules
    ]
    outbox = store.outbox_summary()
    daemon = store.daemon_info()
    if daemon is not None:
        daemon["reload_result"] = _scrub(daemon["reload_result"], config)
    kept, oldest = store.recent_span(now - config.web.keep_items)
    return {
        "feeds": feeds,
        "rules": rules,
        "outbox": outbox,
        "daemon": daemon,
        "recent": {"count": kept, "oldest": oldest, "keep": config.web.keep_items},
    }


@dataclass(frozen=True)
class Chart:
    """Items per day as bars of an inline SVG (numbers only: nothing from a feed)."""

    bars: list[dict[str, Any]]
    width: int
    height: int
    total: int


def _chart(days: list[str], counts: list[int]) -> Chart:
    height, bar = 24, 6
    top = max(counts) or 1
    bars = []
    for i, (day, n) in enumerate(zip(days, counts, strict=True)):
        h = round(n / top * height) if n else 0
        bars.append({"x": i * (bar + 1), "y": height - h, "w": bar, "h": h, "day": day, "n": n})
    return Chart(bars, len(days) * (bar + 1), height, sum(counts))


# -- a rule's hits, grouped by story ------------------------------------------------------------


@dataclass
class RuleHitView:
    hit: RuleHit
    title: list[tuple[str, bool]]
    summary: list[tuple[str, bool]]
    terms: tuple[str, ...]
    href: str | None


@dataclass
class RuleStory:
    """One story of a rule: its hits, first report first."""

    rule: str
    story: str
    title: str
    hits: list[RuleHitView] = field(default_factory=list)

    @property
    def first(self) -> RuleHitView:
        return self.hits[0]

    @property
    def published(self) -> datetime:
        return min(h.hit.matched_at for h in self.hits)

    @property
    def updated(self) -> datetime:
        """When the last outlet joined: the Atom entry's ``updated``."""
        return max(h.hit.matched_at for h in self.hits)

    @property
    def outlets(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(h.hit.source or h.hit.feed for h in self.hits))

    @property
    def href(self) -> str | None:
        return next((h.href for h in self.hits if h.href), None)

    def summary_text(self) -> str:
        """The Atom entry's content: the outlets, the terms, one line per report."""
        lines = [f"{len(self.outlets)} outlet(s): {', '.join(self.outlets)}."]
        if self.first.terms:
            lines[0] += f" Matched: {', '.join(self.first.terms)}."
        for h in self.hits:
            when = h.hit.matched_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
            line = f"- {h.hit.title} ({h.hit.source or h.hit.feed}, {when})"
            lines.append(f"{line} {h.href}" if h.href else line)
        return "\n".join(lines)

    @property
    def atom_id(self) -> str:
        """Stable across restarts and outlets joining: named by the rule and the first hit."""
        return uuid.uuid5(ATOM_NS_UUID, f"story\x1f{self.rule}\x1f{self.story}").urn


SUMMARY_CHARS = 300


def find_rule(config: Config, name: str) -> Rule | None:
    return next((r for r in config.rules if r.name == name), None)


def rule_stories(
    config: Config, store: Store, rule: Rule, now: datetime, limit: int = 500
) -> list[RuleStory]:
    """The rule's hits within ``web.keep_items``, by story, the latest-updated story first;
    each hit with the terms its query matches marked in its title and summary."""
    hits = store.rule_hits_of(rule.name, now - config.web.keep_items, limit)
    try:
        ruleset: RuleSet | None = RuleSet([(rule.name, parse_query(rule.query, config.aliases))])
    except QueryError:  # cannot happen for a loaded config; a page without marks if it does
        ruleset = None
    stories: dict[str, RuleStory] = {}
    # The first report first: a story's first hit and its joiners can share one poll's time.
    for hit in sorted(hits, key=lambda h: (h.matched_at, h.key != h.story, h.key)):
        summary = hit.summary[:SUMMARY_CHARS]
        fields = {"title": hit.title, "summary": summary, "source": hit.source or "", "feed": ""}
        matches = ruleset.match(fields) if ruleset is not None else []
        spans = [h for m in matches for h in m.hits]
        view = RuleHitView(
            hit=hit,
            title=segments(hit.title, [(s.start, s.end) for s in spans if s.field == "title"]),
            summary=segments(summary, [(s.start, s.end) for s in spans if s.field == "summary"]),
            terms=tuple(dict.fromkeys(fields[s.field][s.start : s.end] for s in spans)),
            href=safe_href(hit.link),
        )
        story = stories.get(hit.story)
        if story is None:
            story = stories[hit.story] = RuleStory(rule.name, hit.story, hit.story_title or "")
        story.hits.append(view)
    for story in stories.values():
        story.title = story.title or story.first.hit.title
    return sorted(stories.values(), key=lambda s: s.updated, reverse=True)


def feed_id(rule: str) -> str:
    """The Atom feed's id: stable for the rule's name."""
    return uuid.uuid5(ATOM_NS_UUID, f"rule\x1f{rule}").urn


def latest(stories: Iterable[RuleStory], now: datetime) -> datetime:
    """The feed's ``updated``: the latest entry's, else now (an empty feed)."""
    return max((s.updated for s in stories), default=now.astimezone(UTC))
