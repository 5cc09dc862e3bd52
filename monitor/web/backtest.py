"""Backtest: what a query would have matched among the recent items, and how it would cluster.

The web view's ``/preview`` and ``news-monitor backtest`` share this. It reads the bounded store
of recent items (``web.keep_items``), matches each with the rule language exactly as the poll
path does, and places the matches into stories as story dedup would (the top-level ``dedup:``
window and similarity), oldest first. Nothing is recorded and nothing is sent.

Not a scan: the query's index keys (``rules.required_keys``: a word, prefix or, for a fuzzy term,
a piece of a word, one of which every match contains) become LIKE patterns over each item's
stored folded words, so the database hands on only the rows that could match. A query without
such keys (only exclusions cannot parse; a rule of the index's "always evaluated" kind) reads
every row.
``python -m benchmarks preview`` measures both over 100,000 items.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import ahocorasick

from monitor.dedup.similarity import DEFAULT_THRESHOLD
from monitor.dedup.stories import Candidate, Member, StoryBook
from monitor.poll import item_evidence, item_fields, matched_terms, outlet, recent_feed_item
from monitor.rules import Query, RuleSet, required_keys
from monitor.store import RecentItem, Store

__all__ = [
    "DEFAULT_LIMIT",
    "Backtest",
    "Match",
    "Story",
    "backtest",
    "like_patterns",
    "needles",
    "segments",
]

DEFAULT_LIMIT = 1000  # matches kept (the newest); a query that matches more says so
MAX_LIKE_PATTERNS = 4  # more needles than this are searched in Python (see _prefiltered)


@dataclass(frozen=True)
class Match:
    """One recent item the query matched, with where (spans of the original text)."""

    item: RecentItem
    terms: tuple[str, ...]
    title_spans: tuple[tuple[int, int], ...]
    summary_spans: tuple[tuple[int, int], ...]
    similarity: float | None = None  # to the member it joined; None for a story's first
    reason: str | None = None


@dataclass
class Story:
    first: Match
    members: list[Match] = field(default_factory=list)

    @property
    def latest(self) -> datetime:
        return max(m.item.seen_at for m in (self.first, *self.members))

    @property
    def outlets(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(outlet(recent_feed_item(m.item)) for m in self.all))

    @property
    def all(self) -> list[Match]:
        return [self.first, *self.members]


@dataclass(frozen=True)
class Backtest:
    since: datetime
    searched: int  # recent items in the window
    read: int  # rows the prefilter let through (== searched without one)
    matched: int
    stories: list[Story]  # newest first
    truncated: bool  # more matched than ``limit``: the oldest were left out
    indexed: bool  # the prefilter was used
    oldest: datetime | None  # the oldest item kept in the window
    seconds: float


def needles(query: Query) -> list[str] | None:
    """Substrings of the stored words, one of which every match contains (or None).

    Words are stored as `` w1 w2 … `` with a space at each end: a word is `` w ``, a prefix
    `` p``, a piece of a fuzzy word is itself.
    """
    keys = required_keys(query)
    if keys is None:
        return None
    return sorted(
        {f" {w} " for w in keys.words} | {f" {p}" for p in keys.prefixes} | set(keys.pieces)
    )


def like_patterns(found: Sequence[str]) -> list[str]:
    """The needles as LIKE patterns (``%`` and ``_`` escaped with a backslash)."""

    def esc(s: str) -> str:
        return s.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")

    return [f"%{esc(n)}%" for n in found]


def _prefiltered(store: Store, since: datetime, found: Sequence[str]) -> list[RecentItem]:
    """The rows holding a needle, newest first.

    A few needles: LIKE in the database, which hands on only those rows. Many (a long OR, an
    alias of many words): each LIKE is a pass over every row, so instead the words column is
    read once and searched for all needles at once (Aho-Corasick), then the rows fetched.
    """
    if len(found) <= MAX_LIKE_PATTERNS:
        return store.recent_items(since, like_patterns(found))
    automaton = ahocorasick.Automaton()
    for n in found:
        automaton.add_word(n, n)
    automaton.make_automaton()
    keys = [key for key, words in store.recent_words(since) if next(automaton.iter(words), None)]
    return store.recent_by_keys(keys)


def backtest(
    store: Store,
    query: Query,
    *,
    since: datetime,
    window: timedelta,
    threshold: float = DEFAULT_THRESHOLD,
    limit: int = DEFAULT_LIMIT,
    prefilter: bool = True,
) -> Backtest:
    """Match ``query`` against the items seen since ``since`` and cluster the matches.

    ``prefilter=False`` reads every row (the benchmark's naive scan; same answer).
    """
    started = time.perf_counter()
    searched, oldest = store.recent_span(since)
    wanted = needles(query) if prefilter else None
    rows = store.recent_items(since) if wanted is None else _prefiltered(store, since, wanted)
    ruleset = RuleSet([("query", query)])
    found: list[Match] = []
    truncated = False
    for row in rows:  # newest first
        fields = item_fields(recent_feed_item(row))
        hits = ruleset.match(fields)
        if not hits:
            continue
        if len(found) >= limit:
            truncated = True
            break
        m = hits[0]
        found.append(
            Match(
                item=row,
                terms=matched_terms(m, fields),
                title_spans=tuple((h.start, h.end) for h in m.hits if h.field == "title"),
                summary_spans=tuple((h.start, h.end) for h in m.hits if h.field == "summary"),
            )
        )
    stories = cluster(found, window=window, threshold=threshold)
    return Backtest(
        since=since,
        searched=searched,
        read=len(rows),
        matched=len(found),
        stories=stories,
        truncated=truncated,
        indexed=wanted is not None,
        oldest=oldest,
        seconds=time.perf_counter() - started,
    )


def cluster(matches: Sequence[Match], *, window: timedelta, threshold: float) -> list[Story]:
    """Place matches into stories as the poll path would: oldest first, each against the
    stories of the ``window`` before it. Returns the stories, the latest-updated first."""
    book = StoryBook()
    stories: dict[str, Story] = {}
    ordered = sorted(matches, key=lambda m: (m.item.seen_at, m.item.key))
    for m in ordered:
        item = recent_feed_item(m.item)
        evidence = item_evidence(item)
        at = m.item.seen_at.timestamp()
        placement = book.place(
            "query",
            Candidate(m.item.key, evidence, item.title, outlet(item)),
            since=at - window.total_seconds(),
            threshold=threshold,
        )
        story = placement.story or m.item.key
        book.add("query", Member(story, m.item.key, at, evidence, item.title, outlet(item)))
        if placement.story is None:
            stories[m.item.key] = Story(m)
        else:
            joined = Match(
                m.item,
                m.terms,
                m.title_spans,
                m.summary_spans,
                similarity=placement.verdict.score,
                reason=placement.verdict.reason,
            )
            stories[story].members.append(joined)
    return sorted(stories.values(), key=lambda s: s.latest, reverse=True)


def segments(text: str, spans: Sequence[tuple[int, int]]) -> list[tuple[str, bool]]:
    """``text`` cut into (piece, marked) runs: the spans marked, overlaps merged.

    The templates escape every piece and wrap the marked ones in ``<mark>``: the only markup
    near feed text is the template's own.
    """
    merged: list[list[int]] = []
    for start, end in sorted(spans):
        start, end = max(0, start), min(len(text), end)
        if start >= end:
            continue
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    out: list[tuple[str, bool]] = []
    pos = 0
    for start, end in merged:
        if start > pos:
            out.append((text[pos:start], False))
        out.append((text[start:end], True))
        pos = end
    if pos < len(text):
        out.append((text[pos:], False))
    return out
