"""The state database: the only module with SQL.

Plain ``sqlite3`` in WAL mode with numbered ``PRAGMA user_version`` migrations. Everything the
daemon must remember across restarts lives here:

- ``feeds``: per-feed fetch state (validators, effective URL), the schedule (``next_poll_at`` and
  the current backoff live in the row, so the store holds the schedule, not the scheduler) and
  health.
- ``seen``: every item identity seen recently, with when it became eligible to alert.
- ``hits``: which (item, rule) pairs have alerted — the record that makes "one alert per rule" hold
  across restarts, feed renames and rule edits.
- ``outbox``: one row per alert and channel, the one place that knows what is still to deliver.
  It is written in the same transaction that records the item as seen, and a row is marked sent
  only after the channel accepted it: a crash can repeat an alert, never lose one.

"Seen" and "to deliver" are separate records so that delivery (retries, digests, dead letters) can
grow without touching identity. The public methods are the interface a PostgreSQL twin would
implement; callers never see SQL or connections.

Times are stored as UTC epoch seconds (REAL) so comparisons are numeric and time-zone free.
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from monitor.errors import StateLockedError, StoreError

_MIGRATIONS: tuple[str, ...] = (
    # 1: the first schema.
    """
    CREATE TABLE feeds (
        name            TEXT PRIMARY KEY,
        config_url      TEXT NOT NULL,
        url             TEXT NOT NULL,
        etag            TEXT,
        last_modified   TEXT,
        first_polled_at REAL,
        next_poll_at    REAL,
        not_before      REAL,
        last_attempt_at REAL,
        last_success_at REAL,
        last_status     INTEGER,
        last_error      TEXT,
        failures        INTEGER NOT NULL DEFAULT 0,
        backoff_seconds REAL,
        last_new_item_at REAL,
        gone            INTEGER NOT NULL DEFAULT 0,
        notice          TEXT,
        body_hash       TEXT,
        rules_fingerprint TEXT,
        ttl_seconds     REAL
    );
    CREATE TABLE seen (
        key           TEXT PRIMARY KEY,
        first_seen_at REAL NOT NULL,
        last_seen_at  REAL NOT NULL,
        published_at  REAL,
        eligible_at   REAL,
        feed          TEXT NOT NULL,
        title         TEXT NOT NULL
    );
    CREATE INDEX seen_last_seen ON seen(last_seen_at);
    CREATE TABLE hits (
        key        TEXT NOT NULL,
        rule       TEXT NOT NULL,
        matched_at REAL NOT NULL,
        PRIMARY KEY (key, rule)
    );
    CREATE TABLE outbox (
        id              INTEGER PRIMARY KEY,
        key             TEXT NOT NULL,
        rule            TEXT NOT NULL,
        channel         TEXT NOT NULL,
        payload         TEXT NOT NULL,
        created_at      REAL NOT NULL,
        attempts        INTEGER NOT NULL DEFAULT 0,
        last_attempt_at REAL,
        last_error      TEXT,
        sent_at         REAL,
        next_attempt_at REAL,
        done            TEXT NOT NULL DEFAULT '[]',
        dead_at         REAL,
        UNIQUE (key, rule, channel)
    );
    CREATE INDEX outbox_pending ON outbox(sent_at, dead_at, next_attempt_at, id);
    CREATE TABLE feed_days (
        feed  TEXT NOT NULL,
        day   TEXT NOT NULL,
        items INTEGER NOT NULL,
        PRIMARY KEY (feed, day)
    );
    """,
    # 2: stories (story dedup). A story is named by the key of its first hit; ``updated_at`` is
    # when its last "also reported by" follow-up was queued.
    """
    CREATE TABLE stories (
        rule           TEXT NOT NULL,
        story          TEXT NOT NULL,
        title          TEXT NOT NULL,
        link           TEXT,
        source         TEXT,
        created_at     REAL NOT NULL,
        last_joined_at REAL NOT NULL,
        members        INTEGER NOT NULL DEFAULT 1,
        updated_at     REAL,
        PRIMARY KEY (rule, story)
    );
    CREATE INDEX stories_last_joined ON stories(last_joined_at);
    CREATE TABLE story_members (
        rule         TEXT NOT NULL,
        key          TEXT NOT NULL,
        story        TEXT NOT NULL,
        title        TEXT NOT NULL,
        summary      TEXT,
        related      TEXT NOT NULL DEFAULT '[]',
        source       TEXT,
        link         TEXT,
        feed         TEXT NOT NULL,
        published_at REAL,
        joined_at    REAL NOT NULL,
        similarity   REAL,
        reason       TEXT NOT NULL,
        announced    INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (rule, key)
    );
    CREATE INDEX story_members_story ON story_members(rule, story);
    CREATE INDEX story_members_joined ON story_members(joined_at);
    """,
    # 3: delivery for people. ``batch`` names the message an alert went out in (a digest, or
    # one item's rules grouped): rate limits count messages, not rows.
    """
    ALTER TABLE outbox ADD COLUMN batch TEXT;
    CREATE INDEX outbox_channel_sent ON outbox(channel, sent_at);
    """,
    # 4: what the running daemon says about itself, for `status` (one row per daemon).
    """
    CREATE TABLE daemon (
        pid              INTEGER PRIMARY KEY,
        host             TEXT NOT NULL,
        started_at       REAL NOT NULL,
        config_loaded_at REAL NOT NULL,
        reload_at        REAL,
        reload_result    TEXT,
        last_tick_at     REAL,
        stopped_at       REAL
    );
    """,
    # 5: recent items for the web view's /preview and `backtest`: what a query would have
    # matched. Bounded by ``web.keep_items`` and ``web.max_items`` (prune_recent). ``words`` is
    # the folded words of every field, space-separated with a space at each end, so that a
    # query's index keys become LIKE patterns and most rows are never read into Python.
    """
    CREATE TABLE recent_items (
        key          TEXT PRIMARY KEY,
        seen_at      REAL NOT NULL,
        feed         TEXT NOT NULL,
        title        TEXT NOT NULL,
        summary      TEXT NOT NULL,
        source       TEXT,
        source_url   TEXT,
        link         TEXT,
        published_at REAL,
        lang         TEXT,
        related      TEXT NOT NULL DEFAULT '[]',
        words        TEXT NOT NULL
    );
    CREATE INDEX recent_items_seen ON recent_items(seen_at);
    """,
)


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


class Store:
    """SQLite state. Use from one thread (the daemon's event loop); each method is short."""

    def __init__(self, path: Path | str, *, readonly: bool = False) -> None:
        """Open (creating and migrating) the state; ``readonly`` opens an existing one to read.

        A read-only open needs no lock: WAL lets ``status`` read while the daemon writes.
        """
        self.path = Path(path)
        try:
            if readonly:
                if not self.path.exists():
                    raise StoreError(f"{path}: no state yet (news-monitor has not run here)")
                uri = f"{self.path.resolve().as_uri()}?mode=ro"
                self._db = sqlite3.connect(uri, uri=True, isolation_level=None)
                self._db.execute("PRAGMA busy_timeout=5000")
                if self.schema_version != len(_MIGRATIONS):
                    raise StoreError(f"{path}: state schema {self.schema_version} is not current")
                return
            if str(path) != ":memory:":
                self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA busy_timeout=5000")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._migrate()
        except sqlite3.Error as e:
            raise StoreError(f"{path}: cannot open the state database: {e}") from e

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- schema -------------------------------------------------------------------------------

    def _migrate(self) -> None:
        (version,) = self._db.execute("PRAGMA user_version").fetchone()
        if version > len(_MIGRATIONS):
            raise StoreError(
                f"{self.path}: the state was written by a newer news-monitor "
                f"(schema {version}, this one knows {len(_MIGRATIONS)})"
            )
        for n in range(version, len(_MIGRATIONS)):
            with self._tx():
                for stmt in _MIGRATIONS[n].split(";"):
                    if stmt.strip():
                        self._db.execute(stmt)
                self._db.execute(f"PRAGMA user_version = {n + 1}")

    @property
    def schema_version(self) -> int:
        return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        else:
            self._db.execute("COMMIT")

    # -- feeds --------------------------------------------------------------------------------

    def sync_feeds(self, feeds: Iterable[tuple[str, str]], now: datetime) -> None:
        """Make sure every configured feed has a row; a changed config URL resets its state.

        Editing a feed's URL in the config wins over a stored redirect target, and clears a
        "gone" (410) mark, since the user has pointed it somewhere new. The next poll counts as
        a first poll again: the new source's undated items are its archive, not news.
        """
        with self._tx() as db:
            for name, url in feeds:
                row = db.execute("SELECT config_url FROM feeds WHERE name = ?", (name,)).fetchone()
                if row is None:
                    db.execute(
                        "INSERT INTO feeds (name, config_url, url, next_poll_at) "
                        "VALUES (?, ?, ?, ?)",
                        (name, url, url, _ts(now)),
                    )
                elif row[0] != url:
                    db.execute(
                        """UPDATE feeds SET config_url = ?, url = ?, etag = NULL,
                           last_modified = NULL, body_hash = NULL, first_polled_at = NULL,
                           last_new_item_at = NULL, notice = NULL, gone = 0, failures = 0,
                           backoff_seconds = NULL, not_before = NULL, next_poll_at = ?
                           WHERE name = ?""",
                        (url, url, _ts(now), name),
                    )

    def due_for_rules(self, fingerprint: str, now: datetime) -> int:
        """Make every feed last parsed under other rules due now (unless asked to wait).

        A new or edited rule must see the recent items at once, not after each feed's interval.
        The poll itself then skips validators and the body hash, since they describe bodies the
        new rules have not read. Returns how many feeds were rescheduled.
        """
        with self._tx() as db:
            n = db.execute(
                """UPDATE feeds SET next_poll_at = ?
                   WHERE rules_fingerprint IS NOT NULL AND rules_fingerprint != ?
                   AND next_poll_at > ? AND (not_before IS NULL OR not_before <= ?)""",
                (_ts(now), fingerprint, _ts(now), _ts(now)),
            ).rowcount
        return int(n)

    def feed_state(self, name: str) -> FeedState | None:
        row = self._db.execute(f"SELECT {_FEED_COLS} FROM feeds WHERE name = ?", (name,)).fetchone()
        return None if row is None else _feed_row(row)

    def feed_states(self) -> list[FeedState]:
        rows = self._db.execute(f"SELECT {_FEED_COLS} FROM feeds ORDER BY name").fetchall()
        return [_feed_row(r) for r in rows]

    def due_feeds(self, names: Iterable[str], now: datetime) -> list[FeedState]:
        """The feeds among ``names`` whose next poll time has come, oldest first."""
        wanted = set(names)
        rows = self._db.execute(
            f"""SELECT {_FEED_COLS} FROM feeds
                WHERE gone = 0 AND (next_poll_at IS NULL OR next_poll_at <= ?)
                ORDER BY next_poll_at""",
            (_ts(now),),
        ).fetchall()
        return [s for s in map(_feed_row, rows) if s.name in wanted]

    def record_poll(self, rec: PollRecord) -> None:
        """Record a successful poll: feed state, seen items, hits and new alerts, atomically."""
        at = _ts(rec.at)
        with self._tx() as db:
            db.execute(
                """UPDATE feeds SET etag = ?, last_modified = ?, url = COALESCE(?, url),
                   first_polled_at = COALESCE(first_polled_at, ?), next_poll_at = ?,
                   not_before = ?, last_attempt_at = ?, last_success_at = ?, last_status = ?,
                   last_error = ?, failures = 0, backoff_seconds = NULL,
                   last_new_item_at = CASE WHEN ? THEN ? ELSE last_new_item_at END,
                   body_hash = ?, rules_fingerprint = ?, ttl_seconds = ? WHERE name = ?""",
                (
                    rec.etag,
                    rec.last_modified,
                    rec.url,
                    at,
                    _ts(rec.next_poll_at),
                    _ts(rec.not_before),
                    at,
                    at,
                    rec.status,
                    rec.problem,
                    bool(rec.seen),
                    at,
                    rec.body_hash,
                    rec.rules_fingerprint,
                    None if rec.ttl is None else rec.ttl.total_seconds(),
                    rec.feed,
                ),
            )
            db.executemany(
                """INSERT INTO seen (key, first_seen_at, last_seen_at, published_at, eligible_at,
                   feed, title) VALUES (?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT(key) DO UPDATE SET last_seen_at = excluded.last_seen_at""",
                [
                    (s.key, at, at, _ts(s.published_at), _ts(s.eligible_at), s.feed, s.title[:500])
                    for s in rec.seen
                ],
            )
            db.executemany(
                "UPDATE seen SET last_seen_at = ? WHERE key = ?",
                [(at, k) for k in rec.seen_again],
            )
            db.executemany(
                "INSERT OR IGNORE INTO hits (key, rule, matched_at) VALUES (?, ?, ?)",
                [(k, r, at) for k, r in rec.hits],
            )
            db.executemany(
                """INSERT OR IGNORE INTO outbox (key, rule, channel, payload, created_at)
                   VALUES (?, ?, ?, ?, ?)""",
                [
                    (a.key, a.rule, ch, json.dumps(dict(a.payload), ensure_ascii=False), at)
                    for a in rec.alerts
                    for ch in a.channels
                ],
            )
            self._record_stories(db, rec)
            self._record_recent(db, rec.recent)
            if rec.seen:
                day = rec.at.astimezone(UTC).date().isoformat()
                db.execute(
                    """INSERT INTO feed_days (feed, day, items) VALUES (?, ?, ?)
                       ON CONFLICT(feed, day) DO UPDATE SET items = items + excluded.items""",
                    (rec.feed, day, len(rec.seen)),
                )

    @staticmethod
    def _record_stories(db: sqlite3.Connection, rec: PollRecord) -> None:
        at = _ts(rec.at)
        for m in rec.story_members:
            if m.first:
                db.execute(
                    """INSERT OR IGNORE INTO stories (rule, story, title, link, source,
                       created_at, last_joined_at) VALUES (?, ?, ?, ?, ?, ?, ?)""",
                    (m.rule, m.story, m.title[:500], m.link, m.source, at, at),
                )
            else:
                db.execute(
                    """UPDATE stories SET last_joined_at = ?, members = members + 1
                       WHERE rule = ? AND story = ?""",
                    (at, m.rule, m.story),
                )
        db.executemany(
            """INSERT OR IGNORE INTO story_members (rule, key, story, title, summary, related,
               source, link, feed, published_at, joined_at, similarity, reason, announced)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            [
                (
                    m.rule,
                    m.key,
                    m.story,
                    m.title[:500],
                    (m.summary or "")[:1000] or None,
                    json.dumps(list(m.related[:10]), ensure_ascii=False),
                    m.source,
                    m.link,
                    m.feed,
                    _ts(m.published_at),
                    _ts(m.joined_at),
                    m.similarity,
                    m.reason,
                    int(m.announced),
                )
                for m in rec.story_members
            ],
        )
        for rule, story in rec.followups:
            db.execute(
                "UPDATE stories SET updated_at = ? WHERE rule = ? AND story = ?",
                (at, rule, story),
            )
            db.execute(
                "UPDATE story_members SET announced = 1 WHERE rule = ? AND story = ?",
                (rule, story),
            )

    def record_not_modified(
        self,
        feed: str,
        at: datetime,
        next_poll_at: datetime,
        not_before: datetime | None,
        *,
        status: int = 304,
        validators: tuple[str | None, str | None] | None = None,
    ) -> None:
        """A poll that found nothing new: a 304, or a body identical to the last one parsed."""
        with self._tx() as db:
            db.execute(
                """UPDATE feeds SET next_poll_at = ?, not_before = ?, last_attempt_at = ?,
                   last_success_at = ?, last_status = ?, failures = 0,
                   last_error = CASE WHEN failures > 0 THEN NULL ELSE last_error END,
                   backoff_seconds = NULL WHERE name = ?""",
                (_ts(next_poll_at), _ts(not_before), _ts(at), _ts(at), status, feed),
            )
            if validators is not None:
                db.execute(
                    "UPDATE feeds SET etag = ?, last_modified = ? WHERE name = ?",
                    (*validators, feed),
                )

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
        gone: bool = False,
    ) -> int:
        """Record a failed poll; returns the consecutive failures. Seen-state is untouched."""
        with self._tx() as db:
            db.execute(
                """UPDATE feeds SET next_poll_at = ?, not_before = ?, last_attempt_at = ?,
                   last_status = ?, last_error = ?, failures = failures + 1,
                   backoff_seconds = ?, gone = ? WHERE name = ?""",
                (
                    _ts(next_poll_at),
                    _ts(not_before),
                    _ts(at),
                    status,
                    error[:500],
                    None if backoff is None else backoff.total_seconds(),
                    int(gone),
                    feed,
                ),
            )
            row = db.execute("SELECT failures FROM feeds WHERE name = ?", (feed,)).fetchone()
        return int(row[0]) if row else 0

    def record_notice(
        self, feed: str, notice: str | None, alert: NewAlert | None, at: datetime
    ) -> None:
        """Remember which health problem the operator was told about, and queue the notice.

        Both in one transaction, so a notice is sent once per change of health, never once per
        failed poll, and never lost.
        """
        with self._tx() as db:
            db.execute("UPDATE feeds SET notice = ? WHERE name = ?", (notice, feed))
            if alert is not None:
                db.executemany(
                    """INSERT OR IGNORE INTO outbox (key, rule, channel, payload, created_at)
                       VALUES (?, ?, ?, ?, ?)""",
                    [
                        (alert.key, alert.rule, ch, json.dumps(dict(alert.payload)), _ts(at))
                        for ch in alert.channels
                    ],
                )

    def items_per_day(self, feed: str, days: int = 7) -> dict[str, int]:
        rows = self._db.execute(
            "SELECT day, items FROM feed_days WHERE feed = ? ORDER BY day DESC LIMIT ?",
            (feed, days),
        ).fetchall()
        return {d: int(n) for d, n in rows}

    # -- items --------------------------------------------------------------------------------

    def seen_lookup(self, keys: Sequence[str]) -> dict[str, SeenRecord]:
        out: dict[str, SeenRecord] = {}
        for chunk in _chunks(keys, 500):
            marks = ",".join("?" * len(chunk))
            for key, elig, feed in self._db.execute(
                f"SELECT key, eligible_at, feed FROM seen WHERE key IN ({marks})", chunk
            ):
                out[key] = SeenRecord(key, _dt(elig), str(feed))
        return out

    def hits_lookup(self, keys: Sequence[str]) -> set[tuple[str, str]]:
        out: set[tuple[str, str]] = set()
        for chunk in _chunks(keys, 500):
            marks = ",".join("?" * len(chunk))
            out.update(
                (k, r)
                for k, r in self._db.execute(
                    f"SELECT key, rule FROM hits WHERE key IN ({marks})", chunk
                )
            )
        return out

    # -- the daemon -----------------------------------------------------------------------------

    def writable(self) -> str | None:
        """None when a write transaction can start now, else why not (``/healthz``)."""
        try:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute("ROLLBACK")
        except sqlite3.Error as e:
            return f"state not writable: {e}"
        return None

    def daemon_started(self, pid: int, host: str, at: datetime) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM daemon WHERE host = ?", (host,))  # an earlier run's row
            db.execute(
                "INSERT INTO daemon (pid, host, started_at, config_loaded_at) VALUES (?, ?, ?, ?)",
                (pid, host, _ts(at), _ts(at)),
            )

    def daemon_reloaded(self, pid: int, at: datetime, result: str, *, applied: bool) -> None:
        """A reload's outcome: ``result`` is ``ok``, ``partial: …`` or ``failed: …``."""
        with self._tx() as db:
            db.execute(
                """UPDATE daemon SET reload_at = ?, reload_result = ?,
                   config_loaded_at = CASE WHEN ? THEN ? ELSE config_loaded_at END
                   WHERE pid = ?""",
                (_ts(at), result[:500], applied, _ts(at), pid),
            )

    def daemon_ticked(self, pid: int, at: datetime) -> None:
        with self._tx() as db:
            db.execute("UPDATE daemon SET last_tick_at = ? WHERE pid = ?", (_ts(at), pid))

    def daemon_stopped(self, pid: int, at: datetime) -> None:
        with self._tx() as db:
            db.execute("UPDATE daemon SET stopped_at = ? WHERE pid = ?", (_ts(at), pid))

    def daemon_info(self) -> dict[str, Any] | None:
        """The latest daemon's row (``status`` shows it), or None if none ever ran."""
        row = self._db.execute(
            """SELECT pid, host, started_at, config_loaded_at, reload_at, reload_result,
               last_tick_at, stopped_at FROM daemon ORDER BY started_at DESC LIMIT 1"""
        ).fetchone()
        if row is None:
            return None
        keys = ("pid", "host", "started_at", "config_loaded_at", "reload_at", "reload_result")
        info: dict[str, Any] = dict(zip(keys, row[:6], strict=True))
        for k in ("started_at", "config_loaded_at", "reload_at"):
            info[k] = _dt(info[k])
        info["last_tick_at"] = _dt(row[6])
        info["stopped_at"] = _dt(row[7])
        return info

    def rule_hits(self, since: datetime) -> dict[str, int]:
        """Hits per rule since ``since`` (story members included: what each rule caught)."""
        rows = self._db.execute(
            "SELECT rule, count(*) FROM hits WHERE matched_at >= ? GROUP BY rule", (_ts(since),)
        ).fetchall()
        return {str(r): int(n) for r, n in rows}

    def health_counts(self, failure_threshold: int) -> tuple[int, int, datetime | None]:
        """(feeds, failing feeds, last poll): the daemon's one-line systemd status."""
        total, failing, last = self._db.execute(
            "SELECT count(*), sum(failures >= ?), max(last_attempt_at) FROM feeds",
            (failure_threshold,),
        ).fetchone()
        return int(total), int(failing or 0), _dt(last)

    # -- stories ------------------------------------------------------------------------------

    def story_members(self, since: datetime, rule: str | None = None) -> list[StoryMember]:
        """Members that joined since ``since`` (of one rule, or all), oldest first."""
        rows = self._db.execute(
            f"""SELECT {_MEMBER_COLS} FROM story_members WHERE joined_at >= ?
                AND (? IS NULL OR rule = ?) ORDER BY joined_at, rowid""",
            (_ts(since), rule, rule),
        ).fetchall()
        return [_member_row(r) for r in rows]

    def members_of(self, rule: str, story: str) -> list[StoryMember]:
        rows = self._db.execute(
            f"""SELECT {_MEMBER_COLS} FROM story_members WHERE rule = ? AND story = ?
                ORDER BY joined_at, rowid""",
            (rule, story),
        ).fetchall()
        return [_member_row(r) for r in rows]

    def story_outlets(self, rule: str, story: str) -> tuple[str, ...]:
        """Every outlet that carried a story, first report first."""
        rows = self._db.execute(
            """SELECT COALESCE(source, feed) FROM story_members WHERE rule = ? AND story = ?
               ORDER BY joined_at, rowid""",
            (rule, story),
        ).fetchall()
        return tuple(dict.fromkeys(str(r[0]) for r in rows))

    def stories_info(self, pairs: Iterable[tuple[str, str]]) -> dict[tuple[str, str], StoryInfo]:
        """The stories named by ``(rule, story)`` pairs that exist, with their unsent members."""
        out: dict[tuple[str, str], StoryInfo] = {}
        for rule, story in set(pairs):
            row = self._db.execute(
                """SELECT title, link, source, created_at, updated_at, members FROM stories
                   WHERE rule = ? AND story = ?""",
                (rule, story),
            ).fetchone()
            if row is None:
                continue
            outlets: dict[bool, list[str]] = {True: [], False: []}
            for outlet, announced in self._db.execute(
                """SELECT COALESCE(source, feed), announced FROM story_members WHERE rule = ?
                   AND story = ? ORDER BY joined_at, rowid""",
                (rule, story),
            ):
                outlets[bool(announced)].append(str(outlet))
            out[(rule, story)] = StoryInfo(
                rule,
                story,
                str(row[0]),
                row[1],
                row[2],
                _dt(row[3]) or datetime.now(UTC),
                _dt(row[4]),
                int(row[5]),
                tuple(outlets[False]),
                tuple(outlets[True]),
            )
        return out

    def prune(self, now: datetime, retention: timedelta) -> int:
        """Forget items not seen in any feed for ``retention``; keeps the file small over months.

        Pruning by *last* seen, not first seen: an item still listed in a feed stays known, so an
        undated item that a feed keeps for months never looks new.
        """
        cutoff = _ts(now - retention)
        with self._tx() as db:
            n = db.execute("DELETE FROM seen WHERE last_seen_at < ?", (cutoff,)).rowcount
            db.execute("DELETE FROM hits WHERE matched_at < ?", (cutoff,))
            db.execute("DELETE FROM outbox WHERE COALESCE(sent_at, dead_at) < ?", (cutoff,))
            # A story lives as long as its newest member: expiry follows the seen retention.
            db.execute("DELETE FROM stories WHERE last_joined_at < ?", (cutoff,))
            db.execute(
                """DELETE FROM story_members WHERE NOT EXISTS (SELECT 1 FROM stories s
                   WHERE s.rule = story_members.rule AND s.story = story_members.story)"""
            )
            db.execute(
                "DELETE FROM feed_days WHERE day < ?",
                ((now - retention).date().isoformat(),),
            )
        return int(n)

    # -- web view ------------------------------------------------------------------------------
    # Reads for the status page, rule pages, Atom feeds and the preview, and the bounded store
    # of recent items. Portable SQL (SQLite and PostgreSQL run the same statements).

    @staticmethod
    def _record_recent(db: sqlite3.Connection, items: Sequence[RecentItem]) -> None:
        db.executemany(
            """INSERT INTO recent_items (key, seen_at, feed, title, summary, source, source_url,
               link, published_at, lang, related, words) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT (key) DO NOTHING""",
            [
                (
                    r.key,
                    _ts(r.seen_at),
                    r.feed,
                    r.title[:MAX_RECENT_TITLE],
                    r.summary[:MAX_RECENT_SUMMARY],
                    r.source,
                    r.source_url,
                    r.link,
                    _ts(r.published_at),
                    r.lang,
                    json.dumps(list(r.related[:10]), ensure_ascii=False),
                    r.words,
                )
                for r in items
            ],
        )

    def recent_items(
        self, since: datetime, patterns: Sequence[str] | None = None
    ) -> list[RecentItem]:
        """Items seen since ``since``, newest first; with ``patterns``, only those whose
        ``words`` match one of these LIKE patterns (``%`` and ``_`` escaped with ``\\``)."""
        where = ""
        args: list[Any] = [_ts(since)]
        if patterns is not None:
            if not patterns:
                return []
            where = " AND (" + " OR ".join(["words LIKE ? ESCAPE '\\'"] * len(patterns)) + ")"
            args += list(patterns)
        rows = self._db.execute(
            f"""SELECT {_RECENT_COLS} FROM recent_items WHERE seen_at >= ?{where}
                ORDER BY seen_at DESC, key""",
            args,
        ).fetchall()
        return [_recent_row(r) for r in rows]

    def recent_words(self, since: datetime) -> list[tuple[str, str]]:
        """(key, words) of the items seen since ``since``: what a prefilter reads of each."""
        rows = self._db.execute(
            "SELECT key, words FROM recent_items WHERE seen_at >= ?", (_ts(since),)
        ).fetchall()
        return [(str(k), str(w)) for k, w in rows]

    def recent_by_keys(self, keys: Sequence[str]) -> list[RecentItem]:
        """The recent items named by ``keys`` that are kept, newest first."""
        out: list[RecentItem] = []
        for chunk in _chunks(keys, 500):
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(
                f"SELECT {_RECENT_COLS} FROM recent_items WHERE key IN ({marks})", chunk
            ).fetchall()
            out.extend(_recent_row(r) for r in rows)
        out.sort(key=lambda r: r.key)
        out.sort(key=lambda r: r.seen_at, reverse=True)
        return out

    def recent_span(self, since: datetime) -> tuple[int, datetime | None]:
        """How many recent items were seen since ``since``, and when the oldest of them was."""
        n, oldest = self._db.execute(
            "SELECT count(*), min(seen_at) FROM recent_items WHERE seen_at >= ?", (_ts(since),)
        ).fetchone()
        return int(n), _dt(oldest)

    def prune_recent(self, now: datetime, keep: timedelta, max_items: int) -> int:
        """Forget recent items older than ``keep``, then the oldest beyond ``max_items``."""
        with self._tx() as db:
            n = db.execute(
                "DELETE FROM recent_items WHERE seen_at < ?", (_ts(now - keep),)
            ).rowcount
            row = db.execute(
                "SELECT seen_at FROM recent_items ORDER BY seen_at DESC LIMIT 1 OFFSET ?",
                (max_items,),
            ).fetchone()
            if row is not None:
                n += db.execute("DELETE FROM recent_items WHERE seen_at <= ?", (row[0],)).rowcount
        return int(n)

    def rule_hits_of(self, rule: str, since: datetime, limit: int = 500) -> list[RuleHit]:
        """A rule's hits since ``since``, newest first, each with its story and its text.

        The text comes from the story member, else the recent item, else the seen record
        (a hit of a rule with ``on_repeat: alert`` has no story member).
        """
        rows = self._db.execute(
            """SELECT h.key, h.matched_at, m.story, st.title,
                      COALESCE(m.title, r.title, s.title, ''), COALESCE(r.summary, m.summary, ''),
                      COALESCE(m.link, r.link), COALESCE(m.source, r.source),
                      COALESCE(m.feed, r.feed, s.feed, ''),
                      COALESCE(m.published_at, r.published_at, s.published_at),
                      m.similarity, m.reason
               FROM hits h
               LEFT JOIN story_members m ON m.rule = h.rule AND m.key = h.key
               LEFT JOIN stories st ON st.rule = m.rule AND st.story = m.story
               LEFT JOIN recent_items r ON r.key = h.key
               LEFT JOIN seen s ON s.key = h.key
               WHERE h.rule = ? AND h.matched_at >= ?
               ORDER BY h.matched_at DESC, h.key LIMIT ?""",
            (rule, _ts(since), limit),
        ).fetchall()
        return [
            RuleHit(
                key=str(r[0]),
                rule=rule,
                matched_at=_dt(r[1]) or datetime.now(UTC),
                story=str(r[2] or r[0]),
                story_title=r[3],
                title=str(r[4]),
                summary=str(r[5]),
                link=r[6],
                source=r[7],
                feed=str(r[8]),
                published_at=_dt(r[9]),
                similarity=r[10],
                reason=r[11],
            )
            for r in rows
        ]

    # -- outbox -------------------------------------------------------------------------------

    def pending_alerts(self, now: datetime | None = None, limit: int = 1000) -> list[PendingAlert]:
        """Alerts to deliver now (all undelivered ones without ``now``), oldest first.

        Alerts waiting out a retry backoff are left out, so a channel that keeps failing never
        holds up the alerts of the others.
        """
        rows = self._db.execute(
            f"""SELECT {_OUTBOX_COLS} FROM outbox
               WHERE sent_at IS NULL AND dead_at IS NULL
               AND (? IS NULL OR next_attempt_at IS NULL OR next_attempt_at <= ?)
               ORDER BY id LIMIT ?""",
            (_ts(now), _ts(now), limit),
        ).fetchall()
        return [_outbox_row(r) for r in rows]

    def outbox(self, *, dead: bool = False, limit: int = 1000) -> list[PendingAlert]:
        """Undelivered alerts, oldest first: those still queued, or (``dead``) given up."""
        rows = self._db.execute(
            f"""SELECT {_OUTBOX_COLS} FROM outbox WHERE sent_at IS NULL
                AND (dead_at IS NOT NULL) = ? ORDER BY id LIMIT ?""",
            (int(dead), limit),
        ).fetchall()
        return [_outbox_row(r) for r in rows]

    def outbox_summary(self) -> dict[str, Any]:
        """Queue depth, the oldest alert waiting, and how many were given up."""
        depth, oldest = self._db.execute(
            "SELECT count(*), min(created_at) FROM outbox WHERE sent_at IS NULL AND dead_at IS NULL"
        ).fetchone()
        (dead,) = self._db.execute(
            "SELECT count(*) FROM outbox WHERE sent_at IS NULL AND dead_at IS NOT NULL"
        ).fetchone()
        return {"pending": int(depth), "oldest_pending": _dt(oldest), "dead": int(dead)}

    def retry_alerts(self, ids: Sequence[int] | None, now: datetime) -> int:
        """Queue given-up (or waiting) alerts again, at once, with a fresh lifetime.

        ``ids=None`` retries every dead letter. Returns how many were queued.
        """
        with self._tx() as db:
            if ids is None:
                n = db.execute(
                    """UPDATE outbox SET dead_at = NULL, next_attempt_at = NULL, attempts = 0,
                       created_at = ? WHERE sent_at IS NULL AND dead_at IS NOT NULL""",
                    (_ts(now),),
                ).rowcount
            else:
                n = sum(
                    db.execute(
                        """UPDATE outbox SET dead_at = NULL, next_attempt_at = NULL, attempts = 0,
                           created_at = ? WHERE id = ? AND sent_at IS NULL""",
                        (_ts(now), i),
                    ).rowcount
                    for i in ids
                )
        return int(n)

    def drop_alert(self, alert_id: int) -> bool:
        """Delete one undelivered alert (queued or dead) for good."""
        with self._tx() as db:
            n = db.execute(
                "DELETE FROM outbox WHERE id = ? AND sent_at IS NULL", (alert_id,)
            ).rowcount
        return bool(n)

    def messages_sent(self, channel: str, since: datetime) -> tuple[int, datetime | None]:
        """Messages (not alerts: a digest is one) sent to ``channel`` since ``since``, and when
        the oldest of them went out: what a rate limit counts."""
        count, oldest = self._db.execute(
            """SELECT count(DISTINCT COALESCE(batch, 'id:' || id)), min(sent_at) FROM outbox
               WHERE channel = ? AND sent_at >= ?""",
            (channel, _ts(since)),
        ).fetchone()
        return int(count), _dt(oldest)

    def pending_count(self) -> int:
        return int(
            self._db.execute(
                "SELECT count(*) FROM outbox WHERE sent_at IS NULL AND dead_at IS NULL"
            ).fetchone()[0]
        )

    def mark_sent(self, alert_id: int, at: datetime, *, batch: str | None = None) -> None:
        self.mark_sent_many([alert_id], at, batch=batch)

    def mark_sent_many(self, ids: Sequence[int], at: datetime, *, batch: str | None) -> None:
        """Alerts that went out in one message (``batch`` names it), in one transaction."""
        with self._tx() as db:
            db.executemany(
                """UPDATE outbox SET sent_at = ?, attempts = attempts + 1, last_attempt_at = ?,
                   last_error = NULL, batch = ? WHERE id = ?""",
                [(_ts(at), _ts(at), batch, i) for i in ids],
            )

    def mark_failed(
        self,
        alert_id: int,
        at: datetime,
        error: str,
        *,
        done: Iterable[str] = (),
        retry_at: datetime | None = None,
        dead: bool = False,
        notice: NewAlert | None = None,
    ) -> None:
        """A failed try: remember which URLs took it, when to retry, or that it is given up.

        A given-up alert's operator ``notice`` is queued in the same transaction: a dead letter
        is never silent, even across a crash.
        """
        with self._tx() as db:
            if notice is not None:
                db.executemany(
                    """INSERT OR IGNORE INTO outbox (key, rule, channel, payload, created_at)
                       VALUES (?, ?, ?, ?, ?)""",
                    [
                        (notice.key, notice.rule, ch, json.dumps(dict(notice.payload)), _ts(at))
                        for ch in notice.channels
                    ],
                )
            db.execute(
                """UPDATE outbox SET attempts = attempts + 1, last_attempt_at = ?, last_error = ?,
                   done = ?, next_attempt_at = ?, dead_at = ? WHERE id = ?""",
                (
                    _ts(at),
                    error[:1000],
                    json.dumps(sorted(set(done))),
                    _ts(retry_at),
                    _ts(at) if dead else None,
                    alert_id,
                ),
            )

    def dead_alerts(self) -> list[tuple[str, str, str]]:
        """(rule, channel, last error) of alerts given up on, oldest first."""
        rows = self._db.execute(
            "SELECT rule, channel, last_error FROM outbox WHERE dead_at IS NOT NULL ORDER BY id"
        ).fetchall()
        return [(str(r), str(c), str(e)) for r, c, e in rows]

    def history(self, since: datetime, rule: str | None = None) -> list[dict[str, Any]]:
        """What each rule caught since ``since``, newest first: every alert sent (one row per
        alert, its channels together) and every story member that was recorded without a
        message of its own (a suppressed repeat, or one named in a follow-up)."""
        out: list[dict[str, Any]] = []
        rows = self._db.execute(
            """SELECT key, rule, group_concat(channel, ','), min(sent_at), payload FROM outbox
               WHERE sent_at >= ? AND rule != 'ops' AND (? IS NULL OR rule = ?)
               GROUP BY key, rule""",
            (_ts(since), rule, rule),
        ).fetchall()
        for key, r, channels, at, payload in rows:
            p = json.loads(payload)
            out.append(
                {
                    "at": _dt(at),
                    "rule": str(r),
                    "kind": "follow-up" if p.get("followup") else "sent",
                    "title": p.get("title", ""),
                    "source": p.get("source") or p.get("feed"),
                    "link": p.get("link"),
                    "channels": sorted(str(channels).split(",")),
                    "key": str(key),
                    "story": p.get("story"),
                }
            )
        rows = self._db.execute(
            """SELECT m.rule, m.key, m.story, m.title, COALESCE(m.source, m.feed), m.link,
                      m.joined_at, m.similarity, m.reason, s.title
               FROM story_members m JOIN stories s ON s.rule = m.rule AND s.story = m.story
               WHERE m.joined_at >= ? AND m.key != m.story AND (? IS NULL OR m.rule = ?)""",
            (_ts(since), rule, rule),
        ).fetchall()
        for r, key, story, title, source, link, at, similarity, reason, story_title in rows:
            out.append(
                {
                    "at": _dt(at),
                    "rule": str(r),
                    "kind": "suppressed",
                    "title": str(title),
                    "source": source,
                    "link": link,
                    "channels": [],
                    "key": str(key),
                    "story": str(story),
                    "story_title": str(story_title),
                    "similarity": similarity,
                    "reason": str(reason),
                }
            )
        out.sort(key=lambda e: e["at"] or datetime.min.replace(tzinfo=UTC), reverse=True)
        return out

    def sent_alerts(self) -> list[tuple[str, str, str]]:
        """(key, rule, channel) of every delivered alert still on record, oldest first."""
        rows = self._db.execute(
            "SELECT key, rule, channel FROM outbox WHERE sent_at IS NOT NULL ORDER BY sent_at, id"
        ).fetchall()
        return [(str(k), str(r), str(c)) for k, r, c in rows]


_FEED_COLS = (
    "name, config_url, url, etag, last_modified, first_polled_at, next_poll_at, not_before, "
    "last_attempt_at, last_success_at, last_status, last_error, failures, backoff_seconds, "
    "last_new_item_at, gone, notice, body_hash, rules_fingerprint, ttl_seconds"
)


def _feed_row(r: Sequence[Any]) -> FeedState:
    return FeedState(
        name=r[0],
        config_url=r[1],
        url=r[2],
        etag=r[3],
        last_modified=r[4],
        first_polled_at=_dt(r[5]),
        next_poll_at=_dt(r[6]),
        not_before=_dt(r[7]),
        last_attempt_at=_dt(r[8]),
        last_success_at=_dt(r[9]),
        last_status=r[10],
        last_error=r[11],
        failures=int(r[12]),
        backoff=None if r[13] is None else timedelta(seconds=r[13]),
        last_new_item_at=_dt(r[14]),
        gone=bool(r[15]),
        notice=r[16],
        body_hash=r[17],
        rules_fingerprint=r[18],
        ttl=None if r[19] is None else timedelta(seconds=r[19]),
    )


_OUTBOX_COLS = (
    "id, key, rule, channel, payload, attempts, created_at, done, next_attempt_at, last_error, "
    "dead_at"
)


def _outbox_row(r: Sequence[Any]) -> PendingAlert:
    return PendingAlert(
        id=int(r[0]),
        key=str(r[1]),
        rule=str(r[2]),
        channel=str(r[3]),
        payload=json.loads(r[4]),
        attempts=int(r[5]),
        created_at=_dt(r[6]) or datetime.now(UTC),
        done=frozenset(json.loads(r[7])),
        next_attempt_at=_dt(r[8]),
        last_error=r[9],
        dead_at=_dt(r[10]),
    )


MAX_RECENT_TITLE = 1000
MAX_RECENT_SUMMARY = 2000  # what the preview reads of a summary (the live match reads 4000)

_RECENT_COLS = (
    "key, seen_at, feed, title, summary, source, source_url, link, published_at, lang, related, "
    "words"
)


def _recent_row(r: Sequence[Any]) -> RecentItem:
    return RecentItem(
        key=str(r[0]),
        seen_at=_dt(r[1]) or datetime.now(UTC),
        feed=str(r[2]),
        title=str(r[3]),
        summary=str(r[4]),
        source=r[5],
        source_url=r[6],
        link=r[7],
        published_at=_dt(r[8]),
        lang=r[9],
        related=tuple(json.loads(r[10] or "[]")),
        words=str(r[11]),
    )


_MEMBER_COLS = (
    "rule, key, story, title, summary, related, source, link, feed, published_at, joined_at, "
    "similarity, reason, announced"
)


def _member_row(r: Sequence[Any]) -> StoryMember:
    return StoryMember(
        rule=str(r[0]),
        key=str(r[1]),
        story=str(r[2]),
        title=str(r[3]),
        summary=r[4],
        related=tuple(json.loads(r[5] or "[]")),
        source=r[6],
        link=r[7],
        feed=str(r[8]),
        published_at=_dt(r[9]),
        joined_at=_dt(r[10]) or datetime.now(UTC),
        similarity=r[11],
        reason=str(r[12]),
        announced=bool(r[13]),
    )


def _chunks(seq: Sequence[str], n: int) -> Iterator[Sequence[str]]:
    for i in range(0, len(seq), n):
        yield seq[i : i + n]
