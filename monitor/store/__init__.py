"""The state: what the daemon must remember, behind one interface, on SQLite or PostgreSQL.

- :class:`Store` is that interface (a Protocol): feeds due and claimed, polls recorded (seen +
  hits + stories + outbox in one transaction), alerts claimed and marked sent or failed,
  stories, history, health, the daemon's own row. The poll path, delivery, the daemon and the
  CLI only ever see it.
- :class:`SqliteStore` (:mod:`.sqlite`) is the embedded default: one file, one daemon.
- :class:`PostgresStore` (:mod:`.postgres`) lets several daemons share one state.
- :func:`open_store` picks one from the config's ``state:``.

Both run the same SQL (:mod:`.sql`) and the same numbered migrations (:mod:`.migrations`).
"""

from __future__ import annotations

import asyncio
import functools
import os
import socket
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar, Protocol, TypeVar

from monitor.store.records import (
    FeedState,
    NewAlert,
    PendingAlert,
    PollRecord,
    RecentItem,
    RuleHit,
    SeenRecord,
    SeenUpdate,
    StateLock,
    StoryInfo,
    StoryMember,
)
from monitor.store.sql import (
    MAX_RECENT_SUMMARY,
    MAX_RECENT_TITLE,
    SCHEMA_VERSION,
    SqlStore,
    StaleLeaseError,
)
from monitor.store.sqlite import SqliteStore

__all__ = [
    "MAX_RECENT_SUMMARY",
    "MAX_RECENT_TITLE",
    "SCHEMA_VERSION",
    "FeedState",
    "NewAlert",
    "PendingAlert",
    "PollRecord",
    "RecentItem",
    "RuleHit",
    "SeenRecord",
    "SeenUpdate",
    "SqlStore",
    "SqliteStore",
    "StaleLeaseError",
    "StateLock",
    "Store",
    "StoryInfo",
    "StoryMember",
    "is_shared_url",
    "off_loop",
    "open_store",
    "owner",
]


class Store(Protocol):
    """What the daemon needs of its state (both backends implement it).

    Defaults are ``...`` here: the implementations' own are the ones that run, so they are
    written once, there.
    """

    path: Path
    where: str
    shared: ClassVar[bool]

    def __enter__(self) -> Store: ...

    def __exit__(self, *exc: object) -> None: ...

    def story_lock(self, rules: Iterable[str]) -> AbstractContextManager[None]: ...

    def close(self) -> None: ...

    @property
    def schema_version(self) -> int: ...

    def sync_feeds(self, feeds: Iterable[tuple[str, str]], now: datetime) -> None: ...

    def due_for_rules(self, fingerprint: str, now: datetime) -> int: ...

    def feed_state(self, name: str) -> FeedState | None: ...

    def feed_states(self) -> list[FeedState]: ...

    def due_feeds(self, names: Iterable[str], now: datetime) -> list[FeedState]: ...

    def record_poll(self, rec: PollRecord) -> None: ...

    def record_not_modified(
        self,
        feed: str,
        at: datetime,
        next_poll_at: datetime,
        not_before: datetime | None,
        *,
        status: int = ...,
        validators: tuple[str | None, str | None] | None = None,
        lease: int | None = None,
    ) -> None: ...

    def record_failure(
        self,
        feed: str,
        at: datetime,
        *,
        status: int | None,
        error: str,
        next_poll_at: datetime,
        not_before: datetime | None,
        backoff: timedelta | None,
        gone: bool = ...,
        lease: int | None = None,
    ) -> int: ...

    def record_notice(
        self, feed: str, notice: str | None, alert: NewAlert | None, at: datetime
    ) -> None: ...

    def items_per_day(self, feed: str, days: int = ...) -> dict[str, int]: ...

    def seen_lookup(self, keys: Sequence[str]) -> dict[str, SeenRecord]: ...

    def hits_lookup(self, keys: Sequence[str]) -> set[tuple[str, str]]: ...

    def claim_feeds(
        self,
        names: Iterable[str],
        now: datetime,
        *,
        lease: timedelta,
        owner: str,
        limit: int = ...,
    ) -> list[FeedState]: ...

    def release_feed(self, feed: str, lease: int) -> None: ...

    def claim_alerts(
        self,
        now: datetime,
        *,
        lease: timedelta,
        owner: str,
        limit: int = ...,
        waiting: bool = ...,
    ) -> list[PendingAlert]: ...
    def renew_claims(
        self, ids: Sequence[int], now: datetime, *, lease: timedelta, owner: str
    ) -> set[int]: ...

    def run_job(self, name: str, now: datetime, *, every: timedelta, owner: str) -> bool: ...

    def story_members_after(
        self, after: dict[str, int], rules: Iterable[str]
    ) -> list[tuple[int, StoryMember]]: ...

    def story_cursor(self, rules: Iterable[str]) -> dict[str, int]: ...

    def writable(self) -> str | None: ...

    def daemon_started(self, pid: int, host: str, at: datetime) -> None: ...

    def daemon_reloaded(self, pid: int, at: datetime, result: str, *, applied: bool) -> None: ...

    def daemon_ticked(self, pid: int, at: datetime) -> None: ...

    def daemon_stopped(self, pid: int, at: datetime) -> None: ...

    def daemon_info(self) -> dict[str, Any] | None: ...

    def rule_hits(self, since: datetime) -> dict[str, int]: ...

    def health_counts(self, failure_threshold: int) -> tuple[int, int, datetime | None]: ...

    def story_members(self, since: datetime, rule: str | None = None) -> list[StoryMember]: ...

    def members_of(self, rule: str, story: str) -> list[StoryMember]: ...

    def story_outlets(self, rule: str, story: str) -> tuple[str, ...]: ...

    def stories_info(
        self, pairs: Iterable[tuple[str, str]]
    ) -> dict[tuple[str, str], StoryInfo]: ...

    def prune(self, now: datetime, retention: timedelta) -> int: ...

    # the web view (``monitor.web``): recent items for the preview, a rule's hits by story
    def recent_items(
        self, since: datetime, patterns: Sequence[str] | None = None
    ) -> list[RecentItem]: ...

    def recent_words(self, since: datetime) -> list[tuple[str, str]]: ...

    def recent_by_keys(self, keys: Sequence[str]) -> list[RecentItem]: ...

    def recent_span(self, since: datetime) -> tuple[int, datetime | None]: ...

    def prune_recent(self, now: datetime, keep: timedelta, max_items: int) -> int: ...

    def rule_hits_of(self, rule: str, since: datetime, limit: int = ...) -> list[RuleHit]: ...

    def pending_alerts(
        self, now: datetime | None = None, limit: int = ...
    ) -> list[PendingAlert]: ...

    def outbox(self, *, dead: bool = ..., limit: int = ...) -> list[PendingAlert]: ...

    def outbox_summary(self) -> dict[str, Any]: ...

    def retry_alerts(self, ids: Sequence[int] | None, now: datetime) -> int: ...

    def drop_alert(self, alert_id: int) -> bool: ...

    def messages_sent(self, channel: str, since: datetime) -> tuple[int, datetime | None]: ...

    def pending_count(self) -> int: ...

    def mark_sent(self, alert_id: int, at: datetime, *, batch: str | None = None) -> None: ...

    def mark_sent_many(self, ids: Sequence[int], at: datetime, *, batch: str | None) -> None: ...

    def mark_failed(
        self,
        alert_id: int,
        at: datetime,
        error: str,
        *,
        done: Iterable[str] = (),
        retry_at: datetime | None = None,
        dead: bool = ...,
        notice: NewAlert | None = None,
    ) -> None: ...

    def dead_alerts(self) -> list[tuple[str, str, str]]: ...

    def history(self, since: datetime, rule: str | None = None) -> list[dict[str, Any]]: ...

    def sent_alerts(self) -> list[tuple[str, str, str]]: ...


T = TypeVar("T")

# The store's own thread. Every store call of the daemon runs here, one at a time (as the
# connection allows anyway), so a slow disk or database never stalls the event loop, and a
# call waiting for the store never takes a worker the parser needs.
_STORE_THREAD = ThreadPoolExecutor(max_workers=1, thread_name_prefix="news-monitor-store")


async def off_loop(fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)`` (a store call, or a step made of them) in the store's thread."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_STORE_THREAD, functools.partial(fn, *args, **kwargs))


def owner() -> str:
    """Who holds a lease or a claim: this daemon, as ``host:pid``."""
    return f"{socket.gethostname()}:{os.getpid()}"


def is_shared_url(state: str) -> bool:
    """Whether ``state:`` names a PostgreSQL database rather than a SQLite file."""
    return state.startswith(("postgresql://", "postgres://"))


def open_store(state: Path | str, *, password: str | None = None, readonly: bool = False) -> Store:
    """The store ``state`` names: a ``postgresql://`` URL, or the path of a SQLite file."""
    if isinstance(state, str) and is_shared_url(state):
        from monitor.store.postgres import PostgresStore

        return PostgresStore(state, password=password, readonly=readonly)
    return SqliteStore(state, readonly=readonly)
