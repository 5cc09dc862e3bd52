"""Stories: the recent hits of each rule, indexed, so a new hit can join the story it repeats.

A story belongs to one rule and is named by the identity key of its first hit. Every later hit of
that rule whose evidence (:func:`monitor.dedup.similarity.judge`) says it tells the same story,
within the rule's window, joins it as a member. Members are compared one by one (single link):
the fifth outlet may word a headline like the third rather than the first.

Indexed, not scanned: each member's title words (and its Google News related headlines) are
postings; a new hit is judged only against the members that share its rarest words, most recent
first, at most :data:`MAX_CANDIDATES` of them. The work per check is bounded whatever the size of
the window (``python -m benchmarks dedup_speed`` measures it against an all-pairs scan).

This module holds the in-memory index only. The store keeps stories and members across restarts
(:meth:`StoryBook.load` rebuilds the index from them); the poll path decides what a join means
for delivery (``dedup.on_repeat``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from monitor.dedup.similarity import (
    DEFAULT_THRESHOLD,
    Evidence,
    Verdict,
    headline,
    judge,
)

__all__ = ["Candidate", "Member", "Placement", "StoryBook", "StoryIndex", "evidence_of"]

MAX_QUERY_WORDS = 6  # the rarest words of a new hit that pick its candidates
MAX_POSTINGS = 200  # of each word, the most recent members looked at
MAX_CANDIDATES = 20  # members judged per check
RECOUNT = 50  # a rarest word with at most this many members: they are counted on all words


def evidence_of(title: str, summary: str | None = None, related: Sequence[str] = ()) -> Evidence:
    """A hit's evidence: its title, its summary (when it has its own), its related headlines."""
    return Evidence(
        title=headline(title),
        summary=headline(summary, summary=True) if summary else None,
        related=tuple(headline(r) for r in related[:10]),
    )


@dataclass(frozen=True, slots=True)
class Member:
    """One hit in a story, as the index keeps it."""

    story: str  # the story's name: the key of its first hit
    key: str
    at: float  # when it joined (epoch seconds): the window is measured from here
    evidence: Evidence
    title: str
    source: str | None = None


@dataclass(frozen=True, slots=True)
class Placement:
    """Where a new hit belongs: a story it joins (with the member it matched), or a new one."""

    story: str | None
    verdict: Verdict
    matched: Member | None = None

    @property
    def joins(self) -> bool:
        return self.story is not None


@dataclass(frozen=True, slots=True)
class Candidate:
    """A hit being placed: what the index needs to judge it and, if kept, to remember it."""

    key: str
    evidence: Evidence
    title: str
    source: str | None = None


def _index_words(ev: Evidence) -> set[str]:
    words = set(ev.title.stems)
    for r in ev.related:
        words.update(r.stems)
    return words


@dataclass
class StoryIndex:
    """The members of one rule's stories, with postings from their words."""

    members: list[Member | None] = field(default_factory=list)
    postings: dict[str, list[int]] = field(default_factory=dict)
    live: int = 0
    keys: set[str] = field(default_factory=set)

    def add(self, member: Member) -> None:
        """Index ``member``; one already indexed is left as it is (a daemon sharing its state
        with others reads back its own members when it catches up on theirs)."""
        if member.key in self.keys:
            return
        self.keys.add(member.key)
        pos = len(self.members)
        self.members.append(member)
        self.live += 1
        for w in _index_words(member.evidence):
            self.postings.setdefault(w, []).append(pos)

    def candidates(self, ev: Evidence, since: float) -> list[Member]:
        """Members within the window that share the most of ``ev``'s rarest words.

        Counted within the most recent postings of each word (bounded work), except for the
        members of the rarest word when it is rare (at most :data:`RECOUNT` members): those
        are counted on all their words. Otherwise an older member of the right story, found
        through its rare word while its common words are past the most recent postings,
        would rank below newer headlines of other stories that share only the common words.
        """
        query = _index_words(ev)
        words = [w for w in query if w in self.postings]
        words.sort(key=lambda w: len(self.postings[w]))
        counts: dict[int, int] = {}
        for w in words[:MAX_QUERY_WORDS]:
            for pos in self.postings[w][-MAX_POSTINGS:]:
                counts[pos] = counts.get(pos, 0) + 1
        if words and len(self.postings[words[0]]) <= RECOUNT:
            for pos in self.postings[words[0]]:
                m = self.members[pos]
                if m is not None:
                    counts[pos] = len(query & _index_words(m.evidence))
        # One shared rare word cannot make two headlines of three or more words one story; it
        # can when the new hit has a single indexed word (a short title with related headlines).
        need = 2 if len(words) > 1 else 1
        ranked = sorted((p for p, c in counts.items() if c >= need), key=lambda p: (-counts[p], -p))
        out: list[Member] = []
        for pos in ranked:
            m = self.members[pos]
            if m is not None and m.at >= since:
                out.append(m)
                if len(out) >= MAX_CANDIDATES:
                    break
        return out

    def expire(self, before: float) -> int:
        """Forget members that joined before ``before``; rebuild the postings when it pays."""
        dropped = 0
        for i, m in enumerate(self.members):
            if m is not None and m.at < before:
                self.members[i] = None
                self.keys.discard(m.key)
                dropped += 1
        self.live -= dropped
        if dropped and self.live < len(self.members) // 2:
            kept = [m for m in self.members if m is not None]
            self.members, self.postings, self.live, self.keys = [], {}, 0, set()
            for m in kept:
                self.add(m)
        return dropped


class StoryBook:
    """Every rule's story index, and the placement decision."""

    def __init__(self) -> None:
        self.indexes: dict[str, StoryIndex] = {}

    def __len__(self) -> int:
        return sum(ix.live for ix in self.indexes.values())

    def load(self, members: Iterable[tuple[str, Member]]) -> None:
        """Rebuild from the store's members, ``(rule, member)`` oldest first."""
        for rule, member in members:
            self.add(rule, member)

    def add(self, rule: str, member: Member) -> None:
        self.indexes.setdefault(rule, StoryIndex()).add(member)

    def place(
        self,
        rule: str,
        hit: Candidate,
        *,
        since: float,
        threshold: float = DEFAULT_THRESHOLD,
        pending: Sequence[Member] = (),
    ) -> Placement:
        """The story ``hit`` joins among the rule's members since ``since``, or a new story.

        ``pending`` are members placed earlier in the same poll and not yet in the index: the
        same story can arrive twice in one feed (a Google News search lists several outlets).
        """
        index = self.indexes.get(rule)
        candidates = [m for m in pending if m.at >= since]
        if index is not None:
            candidates += index.candidates(hit.evidence, since)
        best: tuple[Verdict, Member] | None = None
        for m in candidates:
            if m.key == hit.key:
                continue
            v = judge(hit.evidence, m.evidence, threshold)
            if v.same and (best is None or v.score > best[0].score):
                best = (v, m)
        if best is None:
            reason = hit.evidence.title.skip
            why = f"not comparable: {reason}" if reason else "no similar story"
            return Placement(None, Verdict(False, 0.0, why))
        verdict, member = best
        return Placement(member.story, verdict, member)

    def expire(self, before: float) -> int:
        return sum(ix.expire(before) for ix in self.indexes.values())
