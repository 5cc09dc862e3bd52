"""What the store hands out and takes in: plain frozen records, no SQL, no connections.

Both backends (SQLite, PostgreSQL) speak these, so the poll path, delivery and the CLI never see
which one holds the state. Times are aware UTC datetimes here and UTC epoch seconds in the
database (:func:`_ts`, :func:`_dt`), so comparisons there are numeric and time-zone free.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from monitor.errors import StateLockedError


def _ts(dt: datetime | None) -> float | None:
    return None if dt is None else dt.timestamp()


def _dt(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC)


@dataclass(frozen=True)
class FeedState:
    name: str
    config_url: str
    url: str
    etag: str | None = None
    last_modified: str | None = None
    first_polled_at: datetime | None = None
    next_poll_at: datetime | None = None
    not_before: datetime | None = None  # a server asked us to wait (Retry-After), or backoff
    last_attempt_at: datetime | None = None
    last_success_at: datetime | None = None
    last_status: int | None = None
    last_error: str | None = None
    failures: int = 0
    backoff: timedelta | None = None
    last_new_item_at: datetime | None = None
    gone: bool = False
    notice: str | None = None  # the health problem an operator was last told about, if any
    body_hash: str | None = None  # of the last body parsed: an identical one is not parsed again
    rules_fingerprint: str | None = None  # the rules in force at the last parse
    ttl: timedelta | None = None  # the feed's <ttl> at the last parse: a floor on the interval
    lease: int = 0  # the lease generation: a claim's record must still match it

    @classmethod
    def new(cls, name: str, url: str) -> FeedState:
        """The state of a feed never polled (what ``sync_feeds`` would insert)."""
        return cls(name, url, url)


@dataclass(frozen=True)
class SeenRecord:
    """What the poll path needs of an item seen before: when it may alert, who recorded it."""

    key: str
    eligible_at: datetime | None  # None: recorded silently, never alerts
    feed: str = ""  # the feed that recorded it first


@dataclass(frozen=True)
class SeenUpdate:
    key: str
    feed: str
    title: str
    published_at: datetime | None
    eligible_at: datetime | None


@dataclass(frozen=True)
class NewAlert:
    key: str
    rule: str
    channels: tuple[str, ...]
    payload: Mapping[str, Any]  # JSON-serializable rendering inputs


@dataclass(frozen=True)
class PendingAlert:
    id: int
    key: str
    rule: str
    channel: str
    payload: Mapping[str, Any]
    attempts: int
    created_at: datetime
    done: frozenset[str]  # keys of the channel's URLs that already accepted it
    next_attempt_at: datetime | None = None  # a retry waits until then
    last_error: str | None = None
    dead_at: datetime | None = None


@dataclass(frozen=True)
class StoryMember:
    """One hit's place in a story: the first hit of a new story, or one that joined it."""

    rule: str
    key: str
    story: str
    title: str
    summary: str | None
    related: tuple[str, ...]
    source: str | None
    link: str | None
    feed: str
    published_at: datetime | None
    joined_at: datetime
    similarity: float | None  # None for the story's first hit
    reason: str  # why it joined ("first" for the first hit)
    announced: bool  # it went out in an alert or a follow-up

    @property
    def first(self) -> bool:
        return self.key == self.story


@dataclass(frozen=True)
class StoryInfo:
    """What the poll path needs to know of a story to decide about a follow-up."""

    rule: str
    story: str
    title: str
    link: str | None
    source: str | None
    created_at: datetime
    updated_at: datetime | None
    members: int
    unannounced: tuple[str, ...]  # outlets of members not yet named in a message
    announced: tuple[str, ...] = ()  # outlets already named (in the alert or a follow-up)


@dataclass(frozen=True)
class RecentItem:
    """An item as the web view's preview and ``backtest`` search it: its fields, when seen."""

    key: str
    feed: str
    title: str
    summary: str
    source: str | None  # the publisher
    source_url: str | None
    link: str | None
    published_at: datetime | None
    lang: str | None
    related: tuple[str, ...]
    seen_at: datetime
    words: str = ""  # " w1 w2 … ": folded words of every field, for the prefilter


@dataclass(frozen=True)
class RuleHit:
    """One hit of a rule, with its story (the web view's rule page and Atom feed)."""

    key: str
    rule: str
    matched_at: datetime
    story: str  # the story's first hit's key; the hit's own key when it has no story
    story_title: str | None
    title: str
    summary: str
    link: str | None
    source: str | None
    feed: str
    published_at: datetime | None
    similarity: float | None
    reason: str | None


@dataclass(frozen=True)
class PollRecord:
    """Everything one successful poll changes, written in one transaction."""

    feed: str
    at: datetime
    status: int
    etag: str | None
    last_modified: str | None
    url: str | None  # a new effective URL (permanent redirect), or None to keep it
    next_poll_at: datetime
    not_before: datetime | None
    seen: Sequence[SeenUpdate]
    seen_again: Sequence[str]  # keys already known that are still in the feed
    hits: Sequence[tuple[str, str]]  # (key, rule)
    alerts: Sequence[NewAlert]
    body_hash: str | None = None
    rules_fingerprint: str | None = None
    ttl: timedelta | None = None
    story_members: Sequence[StoryMember] = ()
    followups: Sequence[tuple[str, str]] = ()  # (rule, story) whose follow-up is queued now
    problem: str | None = None  # the feed parsed only in part: why (shown as "degraded")
    lease: int | None = None  # the claim this poll ran under (None: unclaimed, ``once``)
    recent: Sequence[RecentItem] = ()  # the new items, kept for the web view's preview


class StateLock:
    """An OS lock next to the state file: one process per state at a time.

    ``flock`` is released by the kernel when the process dies, so a killed daemon never leaves a
    stale lock behind (unlike a PID file).
    """

    def __init__(self, state_path: Path) -> None:
        self.path = state_path.with_name(state_path.name + ".lock")
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as e:
            holder = os.read(fd, 64).decode(errors="replace").strip()
            os.close(fd)
            who = f" (pid {holder})" if holder else ""
            raise StateLockedError(
                f"{self.path.with_suffix('')}: another news-monitor is using this state{who}; "
                "stop it first, or give this one its own 'state:'"
            ) from e
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
