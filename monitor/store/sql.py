"""The queries, written once for both backends.

:class:`SqlStore` holds every query the daemon, delivery and the CLI run, in the SQL that SQLite
and PostgreSQL both read (``?`` placeholders, ``INSERT … ON CONFLICT``, ``RETURNING``). A backend
(:mod:`monitor.store.sqlite`, :mod:`monitor.store.postgres`) supplies the connection, the
transaction, the migrations runner and the few spellings that differ (``_seq``, ``_concat``,
``_db_now``, ``_skip_locked``). Callers never see SQL or connections.

The records:

- ``feeds``: per-feed fetch state (validators, effective URL), the schedule (``next_poll_at`` and
  the current backoff live in the row, so the store holds the schedule, not the scheduler),
  health, and the lease of the daemon polling it now.
- ``seen``: every item identity seen recently, with when it became eligible to alert.
- ``hits``: which (item, rule) pairs have alerted: the record that makes "one alert per rule" hold
  across restarts, feed renames, rule edits and daemons.
- ``outbox``: one row per alert and channel, the one place that knows what is still to deliver.
  It is written in the same transaction that records the item as seen, and a row is marked sent
  only after the channel accepted it: a crash can repeat an alert, never lose one.
- ``stories``/``story_members``: story dedup, per rule.

"Seen" and "to deliver" are separate records so that delivery (retries, digests, dead letters) can
grow without touching identity.

Every public method is one short transaction (or one read) and may be called from any thread:
the poll path calls the store from a worker thread, so a slow disk or database never stalls
fetching. A lock keeps one statement or transaction at a time on the connection.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar, Protocol, Self

from monitor.errors import StoreError
from monitor.store.migrations import MIGRATIONS
from monitor.store.records import (
    FeedState,
    NewAlert,
    PendingAlert,
    PollRecord,
    RecentItem,
    RuleHit,
    SeenRecord,
    StoryInfo,
    StoryMember,
    _dt,
    _ts,
)

SCHEMA_VERSION = len(MIGRATIONS)


class StaleLeaseError(StoreError):
    """A poll was recorded after its lease passed to another daemon: it is dropped, not written.

    The daemon was paused (or its clock jumped) past the lease, and another daemon has polled
    the feed since; writing this poll would record stale validators and could alert twice.
    """


class Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class Conn(Protocol):
    """The part of a DB-API connection the queries use (``sqlite3.Connection`` has it)."""

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> Cursor: ...

    def executemany(self, sql: str, seq_of_parameters: Iterable[Sequence[Any]], /) -> Any: ...


class Rows:
    """A statement's result, fetched whole while the connection was held."""

    def __init__(self, rowcount: int, rows: list[Any]) -> None:
        self._rowcount = rowcount
        self._rows = rows

    @property
    def rowcount(self) -> int:
        return self._rowcount

    def fetchone(self) -> Any:
        return self._rows[0] if self._rows else None

    def fetchall(self) -> list[Any]:
        return self._rows

    def __iter__(self) -> Iterator[Any]:
        return iter(self._rows)


class SqlStore:
    """The state, on either backend. Subclasses open ``_db`` and run the migrations."""

    backend: ClassVar[str]
    _seq: ClassVar[str] = "rowid"  # the column that orders story members in commit order
    _concat: ClassVar[str] = "group_concat"
    _skip_locked: ClassVar[str] = ""  # what a claim's subquery ends with
    shared: ClassVar[bool] = False  # several daemons may use this state at once

    path: Path  # the SQLite file ("" for PostgreSQL)
    where: str  # where the state is, for logs and messages (no password)
    _db: Conn
    _errors: tuple[type[Exception], ...]

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._depth = 0  # transactions open on this connection (nested ones join the outer)
        self._host = ""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def schema_version(self) -> int:
        raise NotImplementedError

    _begin_sql: ClassVar[str] = "BEGIN"

    @contextmanager
    def _tx(self) -> Iterator[Conn]:
        """One transaction; a ``_tx`` inside another joins it (see :meth:`story_lock`)."""
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield self._db
                finally:
                    self._depth -= 1
                return
            self._depth = 1
            try:
                with self._transaction():
                    yield self._db
            finally:
                self._depth = 0

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """The outermost transaction on the connection (a backend may take it otherwise)."""
        self._db.execute(self._begin_sql)
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        else:
            self._db.execute("COMMIT")

    def _db_now(self, now: datetime) -> float:
        """The time a lease is measured by: the database's clock where several daemons share it
        (no daemon's clock skew can steal a lease), the caller's clock for a private state."""
        return _ts(now) or 0.0

    def _lock_rules(self, rules: Sequence[str]) -> None:
        """Serialise story decisions for ``rules`` with every other daemon (a no-op alone)."""

    # -- feeds --------------------------------------------------------------------------------

    def sync_feeds(self, feeds: Iterable[tuple[str, str]], now: datetime) -> None:
        """Make sure every configured feed has a row; a changed config URL resets its state.

        Editing a feed's URL in the config wins over a stored redirect target, and clears a
        "gone" (410) mark, since the user has pointed it somewhere new. The next poll counts as
        a first poll again: the new source's undated items are its archive, not news.
        """
        with self._tx() as db:
            for name, url in feeds:
                # Insert-or-nothing first: daemons starting together on one state both sync.
                added = db.execute(
                    "INSERT INTO feeds (name, config_url, url, next_poll_at) "
                    "VALUES (?, ?, ?, ?) ON CONFLICT (name) DO NOTHING",
                    (name, url, url, _ts(now)),
                ).rowcount
                if not added:
                    db.execute(
                        """UPDATE feeds SET config_url = ?, url = ?, etag = NULL,
                           last_modified = NULL, body_hash = NULL, first_polled_at = NULL,
                           last_new_item_at = NULL, notice = NULL, gone = 0, failures = 0,
                           backoff_seconds = NULL, not_before = NULL, next_poll_at = ?
                           WHERE name = ? AND config_url != ?""",
                        (url, url, _ts(now), name, url),
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
            self._release(db, rec.feed, rec.lease)
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
                "INSERT INTO hits (key, rule, matched_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                [(k, r, at) for k, r in rec.hits],
            )
            db.executemany(
                """INSERT INTO outbox (key, rule, channel, payload, created_at)
                   VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING""",
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
                       ON CONFLICT(feed, day)
                       DO UPDATE SET items = feed_days.items + excluded.items""",
                    (rec.feed, day, len(rec.seen)),
                )

    @staticmethod
    def _record_stories(db: Conn, rec: PollRecord) -> None:
        at = _ts(rec.at)
        for m in rec.story_members:
            if m.first:
                db.execute(
                    """INSERT INTO stories (rule, story, title, link, source,
                       created_at, last_joined_at) VALUES (?, ?, ?, ?, ?, ?, ?)
                       ON CONFLICT DO NOTHING""",
                    (m.rule, m.story, m.title[:500], m.link, m.source, at, at),
                )
            else:
                db.execute(
                    """UPDATE stories SET last_joined_at = ?, members = members + 1
                       WHERE rule = ? AND story = ?""",
                    (at, m.rule, m.story),
                )
        db.executemany(
            """INSERT INTO story_members (rule, key, story, title, summary, related,
               source, link, feed, published_at, joined_at, similarity, reason, announced)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING""",
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
        lease: int | None = None,
    ) -> None:
        """A poll that found nothing new: a 304, or a body identical to the last one parsed."""
        with self._tx() as db:
            self._release(db, feed, lease)
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
        lease: int | None = None,
    ) -> int:
        """Record a failed poll; returns the consecutive failures. Seen-state is untouched."""
        with self._tx() as db:
            self._release(db, feed, lease)
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
                    """INSERT INTO outbox (key, rule, channel, payload, created_at)
                       VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING""",
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

    # -- several daemons ------------------------------------------------------------------------

    def claim_feeds(
        self,
        names: Iterable[str],
        now: datetime,
        *,
        lease: timedelta,
        owner: str,
        limit: int = 1000,
    ) -> list[FeedState]:
        """Take the due feeds among ``names`` that no live lease holds, each under a new lease.

        The lease runs on the database's clock and bumps the feed's lease generation, which the
        poll's record must still match (:meth:`_release`): two daemons never poll a feed in the
        same interval, and one paused past its lease cannot record a stale poll. Rows another
        daemon is claiming this instant are skipped, not waited for. Oldest due first.
        """
        out: list[FeedState] = []
        wanted = list(dict.fromkeys(names))
        with self._tx() as db:
            clock = self._db_now(now)
            for chunk in _chunks(wanted, 500):
                if len(out) >= limit:
                    break
                marks = ", ".join("?" * len(chunk))
                rows = db.execute(
                    f"""UPDATE feeds SET lease_owner = ?, lease_until = ?,
                        lease_gen = lease_gen + 1
                        WHERE name IN (SELECT name FROM feeds WHERE name IN ({marks})
                          AND gone = 0 AND (next_poll_at IS NULL OR next_poll_at <= ?)
                          AND (lease_until IS NULL OR lease_until <= ?)
                          ORDER BY next_poll_at LIMIT ?{self._skip_locked})
                        RETURNING {_FEED_COLS}""",
                    (
                        owner,
                        clock + lease.total_seconds(),
                        *chunk,
                        _ts(now),
                        clock,
                        limit - len(out),
                    ),
                ).fetchall()
                out.extend(map(_feed_row, rows))
        out.sort(key=lambda s: (_ts(s.next_poll_at) or 0.0, s.name))
        return out

    def release_feed(self, feed: str, lease: int) -> None:
        """Give a claimed feed back unpolled (the poll was skipped or crashed before a record)."""
        with self._tx() as db:
            db.execute(
                """UPDATE feeds SET lease_owner = NULL, lease_until = NULL
                   WHERE name = ? AND lease_gen = ?""",
                (feed, lease),
            )

    @staticmethod
    def _release(db: Conn, feed: str, lease: int | None) -> None:
        """End a poll's lease as it is recorded; refuse the record if the lease passed on."""
        if lease is None:
            return
        n = db.execute(
            """UPDATE feeds SET lease_owner = NULL, lease_until = NULL
               WHERE name = ? AND lease_gen = ?""",
            (feed, lease),
        ).rowcount
        if n == 0:
            raise StaleLeaseError(
                f"feed {feed!r}: its lease passed to another daemon while this one polled; "
                "the poll is not recorded"
            )

    def claim_alerts(
        self,
        now: datetime,
        *,
        lease: timedelta,
        owner: str,
        limit: int = 1000,
        waiting: bool = False,
    ) -> list[PendingAlert]:
        """Take the alerts due now that no other daemon holds, oldest first; with ``waiting``
        also those waiting out a retry backoff (``once`` retries at once).

        A claim keeps other daemons off an alert while this one sends it; a daemon killed
        mid-send leaves it to another once the claim runs out (at most one duplicate). The
        claimer keeps what it claimed before (an alert waiting for a digest) without waiting.
        """
        with self._tx() as db:
            clock = self._db_now(now)
            rows = db.execute(
                f"""UPDATE outbox SET claim_owner = ?, claim_until = ?
                    WHERE id IN (SELECT id FROM outbox WHERE sent_at IS NULL AND dead_at IS NULL
                      AND (? = 1 OR next_attempt_at IS NULL OR next_attempt_at <= ?)
                      AND (claim_until IS NULL OR claim_until <= ? OR claim_owner = ?)
                      ORDER BY id LIMIT ?{self._skip_locked})
                    RETURNING {_OUTBOX_COLS}""",
                (owner, clock + lease.total_seconds(), int(waiting), _ts(now), clock, owner, limit),
            ).fetchall()
        return sorted(map(_outbox_row, rows), key=lambda a: a.id)

    def renew_claims(
        self, ids: Sequence[int], now: datetime, *, lease: timedelta, owner: str
    ) -> set[int]:
        """Extend this daemon's claims on ``ids`` just before sending them; returns the ids it
        still holds (a claim that ran out may have passed to another daemon: not sent twice)."""
        held: set[int] = set()
        with self._tx() as db:
            clock = self._db_now(now)
            for chunk in _chunks([str(i) for i in ids], 500):
                marks = ", ".join("?" * len(chunk))
                rows = db.execute(
                    f"""UPDATE outbox SET claim_until = ? WHERE id IN ({marks})
                        AND claim_owner = ? AND sent_at IS NULL RETURNING id""",
                    (clock + lease.total_seconds(), *map(int, chunk), owner),
                ).fetchall()
                held.update(int(r[0]) for r in rows)
        return held

    def run_job(self, name: str, now: datetime, *, every: timedelta, owner: str) -> bool:
        """Whether this daemon runs the periodic job ``name`` now: true for one daemon of the
        group once per ``every`` (it last ran, anywhere, that long ago or never)."""
        with self._tx() as db:
            n = db.execute(
                """INSERT INTO jobs (name, last_run_at, owner) VALUES (?, ?, ?)
                   ON CONFLICT (name) DO UPDATE SET last_run_at = excluded.last_run_at,
                   owner = excluded.owner WHERE jobs.last_run_at <= ?""",
                (name, _ts(now), owner, _ts(now - every)),
            ).rowcount
        return bool(n)

    @contextmanager
    def story_lock(self, rules: Iterable[str]) -> Iterator[None]:
        """One transaction in which story decisions for ``rules`` are this daemon's alone.

        Other daemons deciding for any of these rules wait until it commits (PostgreSQL
        advisory locks, taken in sorted order so two daemons never deadlock). Inside it, read
        the members others recorded (:meth:`story_members_after`), decide, and record: every
        store call made inside joins the transaction.
        """
        with self._tx():
            self._lock_rules(sorted(set(rules)))
            yield

    def story_members_after(
        self, after: dict[str, int], rules: Iterable[str]
    ) -> list[tuple[int, StoryMember]]:
        """Members of ``rules`` recorded after the sequence numbers in ``after`` (per rule),
        with their sequence numbers, in commit order. ``after`` is advanced in place."""
        out: list[tuple[int, StoryMember]] = []
        for rule in sorted(set(rules)):
            rows = self._db.execute(
                f"""SELECT {self._seq}, {_MEMBER_COLS} FROM story_members
                    WHERE rule = ? AND {self._seq} > ? ORDER BY {self._seq}""",
                (rule, after.get(rule, 0)),
            ).fetchall()
            for r in rows:
                out.append((int(r[0]), _member_row(r[1:])))
            if rows:
                after[rule] = int(rows[-1][0])
        return out

    def story_cursor(self, rules: Iterable[str]) -> dict[str, int]:
        """The latest member sequence number of each rule: where catching up starts."""
        out: dict[str, int] = {}
        for rule in sorted(set(rules)):
            row = self._db.execute(
                f"SELECT max({self._seq}) FROM story_members WHERE rule = ?", (rule,)
            ).fetchone()
            out[rule] = int(row[0] or 0)
        return out

    # -- the daemon -----------------------------------------------------------------------------

    def writable(self) -> str | None:
        """None when a write transaction can start now, else why not (``/healthz``)."""
        try:
            with self._tx() as db:
                db.execute("DELETE FROM jobs WHERE 1 = 0")
        except self._errors as e:
            return f"state not writable: {e}"
        return None

    def daemon_started(self, pid: int, host: str, at: datetime) -> None:
        """This daemon's row; an earlier run's row on the same host is replaced (several hosts
        may share a PostgreSQL state, each with its own row)."""
        self._host = host
        with self._tx() as db:
            db.execute("DELETE FROM daemon WHERE host = ?", (host,))
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
                   WHERE pid = ? AND host = ?""",
                (_ts(at), result[:500], applied, _ts(at), pid, self._host),
            )

    def daemon_ticked(self, pid: int, at: datetime) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE daemon SET last_tick_at = ? WHERE pid = ? AND host = ?",
                (_ts(at), pid, self._host),
            )

    def daemon_stopped(self, pid: int, at: datetime) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE daemon SET stopped_at = ? WHERE pid = ? AND host = ?",
                (_ts(at), pid, self._host),
            )

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
            "SELECT count(*), count(CASE WHEN failures >= ? THEN 1 END), max(last_attempt_at) "
            "FROM feeds",
            (failure_threshold,),
        ).fetchone()
        return int(total), int(failing or 0), _dt(last)

    # -- stories ------------------------------------------------------------------------------

    def story_members(self, since: datetime, rule: str | None = None) -> list[StoryMember]:
        """Members that joined since ``since`` (of one rule, or all), oldest first."""
        rows = self._db.execute(
            f"""SELECT {_MEMBER_COLS} FROM story_members WHERE joined_at >= ?
                AND (? IS NULL OR rule = ?) ORDER BY joined_at, {self._seq}""",
            (_ts(since), rule, rule),
        ).fetchall()
        return [_member_row(r) for r in rows]

    def members_of(self, rule: str, story: str) -> list[StoryMember]:
        rows = self._db.execute(
            f"""SELECT {_MEMBER_COLS} FROM story_members WHERE rule = ? AND story = ?
                ORDER BY joined_at, {self._seq}""",
            (rule, story),
        ).fetchall()
        return [_member_row(r) for r in rows]

    def story_outlets(self, rule: str, story: str) -> tuple[str, ...]:
        """Every outlet that carried a story, first report first."""
        rows = self._db.execute(
            f"""SELECT COALESCE(source, feed) FROM story_members WHERE rule = ? AND story = ?
               ORDER BY joined_at, {self._seq}""",
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
                f"""SELECT COALESCE(source, feed), announced FROM story_members WHERE rule = ?
                   AND story = ? ORDER BY joined_at, {self._seq}""",
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
    def _record_recent(db: Conn, items: Sequence[RecentItem]) -> None:
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
                AND (dead_at IS NOT NULL) = (? = 1) ORDER BY id LIMIT ?""",
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
                   last_error = NULL, batch = ?, claim_until = NULL WHERE id = ?""",
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
                    """INSERT INTO outbox (key, rule, channel, payload, created_at)
                       VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING""",
                    [
                        (notice.key, notice.rule, ch, json.dumps(dict(notice.payload)), _ts(at))
                        for ch in notice.channels
                    ],
                )
            db.execute(
                """UPDATE outbox SET attempts = attempts + 1, last_attempt_at = ?, last_error = ?,
                   done = ?, next_attempt_at = ?, dead_at = ?, claim_until = NULL
                   WHERE id = ?""",
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
            # min(payload): every channel's row of an alert holds the same payload, and
            # PostgreSQL (unlike SQLite) refuses a column neither grouped nor aggregated.
            f"""SELECT key, rule, {self._concat}(channel, ','), min(sent_at), min(payload)
               FROM outbox WHERE sent_at >= ? AND rule != 'ops' AND (? IS NULL OR rule = ?)
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
    "last_new_item_at, gone, notice, body_hash, rules_fingerprint, ttl_seconds, lease_gen"
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
        lease=int(r[20]),
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
