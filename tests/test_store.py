"""The state database: migrations, atomic poll records, outbox, pruning, the OS lock."""

from __future__ import annotations

import dataclasses
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from monitor.errors import StateLockedError, StoreError
from monitor.store import SCHEMA_VERSION, NewAlert, PollRecord, SeenUpdate, StateLock, open_store
from monitor.store import SqliteStore as Store
from monitor.store.migrations import MIGRATIONS, statements

Opener = Callable[..., Any]
LEASE = timedelta(minutes=5)

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def poll(feed: str, at: datetime, seen=(), again=(), hits=(), alerts=()) -> PollRecord:  # type: ignore[no-untyped-def]
    return PollRecord(
        feed=feed,
        at=at,
        status=200,
        etag='"e1"',
        last_modified=None,
        url=None,
        next_poll_at=at + timedelta(minutes=10),
        not_before=None,
        seen=list(seen),
        seen_again=list(again),
        hits=list(hits),
        alerts=list(alerts),
    )


def test_migrates_and_reopens(open_state: Opener) -> None:
    store = open_state()
    assert store.schema_version == SCHEMA_VERSION == 6
    store.close()
    store = open_state()
    assert store.schema_version == SCHEMA_VERSION
    assert open_state(readonly=True).schema_version == SCHEMA_VERSION


def test_upgrades_a_sqlite_state_made_by_the_previous_release(tmp_path: Path) -> None:
    """A state the previous release made (schema 4, numbered by PRAGMA user_version, before
    the schema_version table) upgrades in place, keeping what it knew."""
    db = sqlite3.connect(tmp_path / "s.db")
    for migration in MIGRATIONS[:4]:
        db.executescript(migration)
    db.execute("INSERT INTO hits (key, rule, matched_at) VALUES ('url:x', 'r', 1.0)")
    db.execute("INSERT INTO daemon (pid, host, started_at, config_loaded_at) VALUES (1, 'h', 1, 1)")
    db.execute("PRAGMA user_version = 4")
    db.commit()
    db.close()
    store = Store(tmp_path / "s.db")
    try:
        assert store.schema_version == SCHEMA_VERSION
        assert store.hits_lookup(["url:x"]) == {("url:x", "r")}
        assert store.story_members(datetime(2000, 1, 1, tzinfo=UTC)) == []
        store.sync_feeds([("f", "u")], T0)
        assert [s.lease for s in store.claim_feeds(["f"], T0, lease=LEASE, owner="a")] == [1]
    finally:
        store.close()
    db = sqlite3.connect(tmp_path / "s.db")
    assert db.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
    versions = db.execute("SELECT version FROM schema_version ORDER BY version").fetchall()
    assert [v for (v,) in versions] == list(range(1, SCHEMA_VERSION + 1))


def test_upgrades_a_postgresql_state_of_an_older_schema(pg_url: str) -> None:
    """Made by schema 4's migrations (the schema the first PostgreSQL-capable release found on
    SQLite), the state moves to the current schema at open and keeps its stories' order."""
    import psycopg

    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at REAL)")
        for n, migration in enumerate(MIGRATIONS[:4], 1):
            for stmt in statements(migration, "postgres"):
                conn.execute(stmt)  # type: ignore[call-overload]
            conn.execute("INSERT INTO schema_version VALUES (%s, 0)", (n,))
        for key in ("a", "b"):
            conn.execute(
                "INSERT INTO story_members (rule, key, story, title, feed, joined_at, reason) "
                "VALUES ('r', %s, 'a', 'T', 'f', 1, 'first')",
                (key,),
            )
    store = open_store(pg_url)
    try:
        assert store.schema_version == SCHEMA_VERSION
        assert [m.key for _, m in store.story_members_after({}, ["r"])] == ["a", "b"]
    finally:
        store.close()


def test_refuses_a_newer_schema(tmp_path: Path, pg_url: str) -> None:
    db = sqlite3.connect(tmp_path / "s.db")
    db.execute("PRAGMA user_version = 99")
    db.close()
    with pytest.raises(StoreError, match="newer news-monitor"):
        Store(tmp_path / "s.db")
    open_store(pg_url).close()
    import psycopg

    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("INSERT INTO schema_version VALUES (99, 0)")
    with pytest.raises(StoreError, match="newer news-monitor"):
        open_store(pg_url)


def test_poll_record_is_one_transaction(open_state: Opener) -> None:
    store = open_state()
    store.sync_feeds([("f", "https://example.org/rss")], T0)
    alert = NewAlert("k1", "r", ("chat", "mail"), {"rule": "r", "title": "T"})
    store.record_poll(
        poll("f", T0, seen=[SeenUpdate("k1", "f", "T", T0, T0)], hits=[("k1", "r")], alerts=[alert])
    )
    state = store.feed_state("f")
    assert state is not None
    assert state.etag == '"e1"' and state.first_polled_at == T0 and state.failures == 0
    assert set(store.seen_lookup(["k1", "k2"])) == {"k1"}
    assert store.hits_lookup(["k1"]) == {("k1", "r")}
    pending = store.pending_alerts()
    assert [(p.rule, p.channel) for p in pending] == [("r", "chat"), ("r", "mail")]
    # The same alert recorded again (a crash between record and mark) is not queued twice.
    store.record_poll(poll("f", T0, again=["k1"], alerts=[alert]))
    assert store.pending_count() == 2
    store.mark_sent(pending[0].id, T0)
    store.mark_failed(pending[1].id, T0, "HTTP 500")
    left = store.pending_alerts()
    assert [(p.channel, p.attempts) for p in left] == [("mail", 1)]
    assert store.sent_alerts() == [("k1", "r", "chat")]


def test_failure_keeps_seen_state_and_counts(open_state: Opener) -> None:
    store = open_state()
    store.sync_feeds([("f", "https://example.org/rss")], T0)
    store.record_poll(poll("f", T0, seen=[SeenUpdate("k1", "f", "T", None, None)]))
    n = store.record_failure(
        "f", T0, status=503, error="HTTP 503", next_poll_at=T0, not_before=T0, backoff=None
    )
    n = store.record_failure(
        "f", T0, status=503, error="HTTP 503", next_poll_at=T0, not_before=T0, backoff=None
    )
    assert n == 2
    assert set(store.seen_lookup(["k1"])) == {"k1"}
    state = store.feed_state("f")
    assert state is not None and state.last_error == "HTTP 503" and state.last_status == 503


def test_changed_config_url_resets_feed_state(open_state: Opener) -> None:
    store = open_state()
    store.sync_feeds([("f", "https://a.example/rss")], T0)
    store.record_poll(poll("f", T0))
    store.record_failure(
        "f", T0, status=410, error="gone", next_poll_at=T0, not_before=None, backoff=None, gone=True
    )
    store.sync_feeds([("f", "https://a.example/rss")], T0)
    assert store.feed_state("f").gone  # type: ignore[union-attr]
    store.sync_feeds([("f", "https://b.example/rss")], T0)
    state = store.feed_state("f")
    assert state is not None
    assert (state.url, state.etag, state.gone, state.failures) == (
        "https://b.example/rss",
        None,
        False,
        0,
    )
    # A new source: its undated items are an archive, so its next poll is a first poll again.
    assert state.first_polled_at is None


def test_feeds_parsed_under_other_rules_become_due(open_state: Opener) -> None:
    store = open_state()
    store.sync_feeds([("f", "https://a.example/rss"), ("g", "https://b.example/rss")], T0)
    store.record_poll(dataclasses.replace(poll("f", T0), rules_fingerprint="v1"))
    store.record_poll(dataclasses.replace(poll("g", T0), rules_fingerprint="v1"))
    store.record_failure(
        "g",
        T0,
        status=503,
        error="busy",
        next_poll_at=T0 + timedelta(hours=1),
        not_before=T0 + timedelta(hours=1),
        backoff=None,
    )
    later = T0 + timedelta(minutes=1)
    assert store.due_for_rules("v1", later) == 0
    assert store.due_feeds(["f", "g"], later) == []
    # New rules: f is due now; g stays waiting as its server asked.
    assert store.due_for_rules("v2", later) == 1
    assert [s.name for s in store.due_feeds(["f", "g"], later)] == ["f"]
    assert store.feed_state("f").rules_fingerprint == "v1"  # type: ignore[union-attr]


def test_due_feeds(open_state: Opener) -> None:
    store = open_state()
    store.sync_feeds([("a", "u1"), ("b", "u2")], T0)
    assert {s.name for s in store.due_feeds(["a", "b"], T0)} == {"a", "b"}
    store.record_poll(poll("a", T0))
    assert [s.name for s in store.due_feeds(["a", "b"], T0 + timedelta(minutes=1))] == ["b"]
    assert {s.name for s in store.due_feeds(["a", "b"], T0 + timedelta(minutes=11))} == {"a", "b"}
    assert [s.name for s in store.due_feeds(["a"], T0 + timedelta(minutes=11))] == ["a"]


def test_prune_by_last_seen(open_state: Opener) -> None:
    store = open_state()
    store.sync_feeds([("f", "u")], T0)
    store.record_poll(poll("f", T0, seen=[SeenUpdate("old", "f", "T", None, None)]))
    store.record_poll(poll("f", T0, seen=[SeenUpdate("kept", "f", "T", None, None)]))
    # "kept" is still listed by the feed 40 days later; "old" is not.
    store.record_poll(poll("f", T0 + timedelta(days=40), again=["kept"]))
    removed = store.prune(T0 + timedelta(days=41), timedelta(days=30))
    assert removed == 1
    assert set(store.seen_lookup(["old", "kept"])) == {"kept"}


LOCKER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from monitor.store import StateLock
    StateLock(Path(sys.argv[1])).acquire()
    print("locked", flush=True)
    sys.stdin.read()
    """
)


def test_lock_is_exclusive_and_released_when_the_holder_dies(tmp_path: Path) -> None:
    state = tmp_path / "s.db"
    proc = subprocess.Popen(
        [sys.executable, "-c", LOCKER, str(state)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
        with pytest.raises(StateLockedError, match="another news-monitor is using this state"):
            StateLock(state).acquire()
    finally:
        proc.kill()  # SIGKILL: no chance to clean up
        proc.wait(timeout=10)
    lock = StateLock(state)
    lock.acquire()  # the kernel released the dead holder's lock
    lock.release()


# -- web view: recent items and a rule's hits, on both backends ---------------------------------


def test_recent_items_for_the_preview(open_state: Opener) -> None:
    from monitor.parse import FeedItem
    from monitor.poll import recent_item
    from monitor.store import StoryMember
    from monitor.web.backtest import like_patterns

    store = open_state()
    store.sync_feeds([("f", "https://example.org/rss")], T0)

    def item(n: int, title: str) -> Any:
        fi = FeedItem(f"i{n}", f"https://e.example/{n}", title, "", None, "Pub", None, "f", "id")
        return recent_item(f"k{n}", fi, T0 + timedelta(minutes=n))

    recent = [item(0, "Gempa guncang Bali"), item(1, "Gémpa 100% a_b"), item(2, "Cuaca Bali")]
    member = StoryMember(
        "r", "k0", "k0", "Gempa guncang Bali", None, (), "Pub", None, "f", None, T0, None,
        "first", True,
    )  # fmt: skip
    seen = [SeenUpdate(r.key, "f", r.title, None, T0) for r in recent]
    record = dataclasses.replace(
        poll("f", T0, seen=seen, hits=[("k0", "r"), ("k1", "r")]),
        recent=recent,
        story_members=[member],
    )
    store.record_poll(record)
    store.record_poll(record)  # again: nothing twice
    assert store.recent_span(T0 - timedelta(days=1)) == (3, T0)
    assert [r.key for r in store.recent_items(T0)] == ["k2", "k1", "k0"]  # newest first
    got = store.recent_items(T0, like_patterns([" gempa "]))
    assert [r.key for r in got] == ["k1", "k0"]  # folded: "Gémpa" is "gempa"
    assert got[0].words == " gempa 100 a b pub e example f id "  # source: publisher, domain
    assert [r.key for r in store.recent_items(T0, like_patterns(["%", "_"]))] == []
    assert [r.key for r in store.recent_items(T0, like_patterns([" cuac"]))] == ["k2"]
    assert store.recent_items(T0, []) == []
    assert sorted(k for k, _ in store.recent_words(T0)) == ["k0", "k1", "k2"]
    assert [r.key for r in store.recent_by_keys(["k0", "k2", "nope"])] == ["k2", "k0"]
    hits = store.rule_hits_of("r", T0 - timedelta(days=1))
    assert [(h.key, h.story, h.title, h.link) for h in hits] == [
        ("k0", "k0", "Gempa guncang Bali", "https://e.example/0"),
        ("k1", "k1", "Gémpa 100% a_b", "https://e.example/1"),  # no story: its own
    ]
    assert store.prune_recent(T0, timedelta(days=7), 2) == 1  # the oldest beyond 2
    assert [r.key for r in store.recent_items(T0)] == ["k2", "k1"]
    assert store.prune_recent(T0 + timedelta(days=8), timedelta(days=7), 1000) == 2
    assert store.recent_span(T0 - timedelta(days=1)) == (0, None)
