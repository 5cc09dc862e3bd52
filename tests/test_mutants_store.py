"""Store reads that ``make mutants`` found untested, on a real SQLite file.

Stories feed the "also reported by" follow-ups and ``status``; dead alerts feed ``status``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from monitor.errors import StateLockedError, StoreError
from monitor.store import (
    SCHEMA_VERSION,
    FeedState,
    NewAlert,
    PollRecord,
    SqliteStore,
    StateLock,
    Store,
    StoryMember,
)

Opener = Callable[..., Any]

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def member(key: str, story: str, source: str | None, *, announced: bool) -> StoryMember:
    return StoryMember(
        rule="r",
        key=key,
        story=story,
        title=f"title {key}",
        summary=f"summary {key}",
        related=("https://a.example/1", "https://b.example/2"),
        source=source,
        link=f"https://news.example/{key}",
        feed="wire",
        published_at=T0 - timedelta(hours=1),
        joined_at=T0,
        similarity=None if key == story else 0.8,
        reason="first" if key == story else "title",
        announced=announced,
    )


def poll(at: datetime, members: list[StoryMember], alerts: tuple[NewAlert, ...] = ()) -> PollRecord:
    return PollRecord(
        feed="wire",
        at=at,
        status=200,
        etag=None,
        last_modified=None,
        url=None,
        next_poll_at=at + timedelta(minutes=10),
        not_before=None,
        seen=[],
        seen_again=[],
        hits=[],
        alerts=list(alerts),
        story_members=members,
    )


def story_store(open_state: Opener) -> Store:
    store = open_state()
    store.sync_feeds([("wire", "https://wire.example/feed")], T0)
    first = member("k1", "k1", "Wire A", announced=True)
    store.record_poll(poll(T0, [first]))
    store.record_poll(
        poll(
            T0 + timedelta(minutes=5),
            [
                member("k2", "k1", "Wire B", announced=False),
                member("k3", "k1", None, announced=False),
            ],
        )
    )
    return store


def test_stories_info_reports_the_story_as_stored(open_state: Opener) -> None:
    store = story_store(open_state)
    info = store.stories_info([("r", "k1")])[("r", "k1")]
    assert (info.rule, info.story, info.title) == ("r", "k1", "title k1")
    assert (info.link, info.source) == ("https://news.example/k1", "Wire A")
    assert info.created_at == T0
    assert info.updated_at is None
    assert info.members == 3
    # A member without a source is named by its feed.
    assert info.unannounced == ("Wire B", "wire")
    assert info.announced == ("Wire A",)
    store.close()


def test_stories_info_skips_unknown_stories_and_keeps_the_rest(open_state: Opener) -> None:
    store = story_store(open_state)
    # Each call holds one unknown pair; set order varies by pair, so over many calls the unknown
    # one comes first in some, and the known story must still be returned.
    for n in range(40):
        got = store.stories_info([("r", f"missing-{n}"), ("r", "k1")])
        assert list(got) == [("r", "k1")]
    store.close()


def test_members_of_lists_a_story_in_join_order(open_state: Opener) -> None:
    store = story_store(open_state)
    members = store.members_of("r", "k1")
    assert [m.key for m in members] == ["k1", "k2", "k3"]
    assert members[0] == member("k1", "k1", "Wire A", announced=True)
    assert members[1] == member("k2", "k1", "Wire B", announced=False)
    assert members[2].source is None
    assert store.members_of("r", "k2") == []
    store.close()


def test_dead_alert_keeps_the_first_thousand_characters_of_the_error(
    open_state: Opener,
) -> None:
    store = open_state()
    store.sync_feeds([("wire", "https://wire.example/feed")], T0)
    alert = NewAlert("k1", "r", ("chat",), {"title": "t"})
    store.record_poll(poll(T0, [], (alert,)))
    (pending,) = store.pending_alerts()
    store.mark_failed(pending.id, T0, "x" * 999 + "yz", dead=True)
    assert store.dead_alerts() == [("r", "chat", "x" * 999 + "y")]
    store.close()


def test_a_new_feed_state_names_the_feed_and_its_configured_url() -> None:
    state = FeedState.new("wire", "https://wire.example/feed")
    url = "https://wire.example/feed"
    assert (state.name, state.config_url, state.url) == ("wire", url, url)
    assert state.etag is None and state.failures == 0


# -- every field written is read back (the poll path and `status` read them) -------------------


def seen_update(key: str, at: datetime) -> Any:
    from monitor.store import SeenUpdate

    return SeenUpdate(key, "wire", f"title {key}", at, at)


def test_a_feed_state_reads_back_every_field_a_poll_wrote(open_state: Opener) -> None:
    store = open_state()
    store.sync_feeds([("wire", "https://wire.example/feed")], T0)
    t1, t2, t3 = T0 + timedelta(minutes=1), T0 + timedelta(minutes=2), T0 + timedelta(minutes=3)
    rec = replace(
        poll(t1, []),
        etag='"v1"',
        last_modified="Sun, 01 Nov 2026 12:00:00 GMT",
        url="https://wire.example/moved",
        not_before=t3,
        seen=[seen_update("k1", t1)],
        body_hash="b1",
        rules_fingerprint="f1",
        ttl=timedelta(minutes=30),
        problem="2 of 3 entries could not be read",
    )
    store.record_poll(rec)
    assert store.feed_state("wire") == FeedState(
        name="wire",
        config_url="https://wire.example/feed",
        url="https://wire.example/moved",
        etag='"v1"',
        last_modified="Sun, 01 Nov 2026 12:00:00 GMT",
        first_polled_at=t1,
        next_poll_at=t1 + timedelta(minutes=10),
        not_before=t3,
        last_attempt_at=t1,
        last_success_at=t1,
        last_status=200,
        last_error="2 of 3 entries could not be read",
        failures=0,
        backoff=None,
        last_new_item_at=t1,
        gone=False,
        notice=None,
        body_hash="b1",
        rules_fingerprint="f1",
        ttl=timedelta(minutes=30),
        lease=0,
    )
    # A failure counts, keeps the last success and the validators, and says why.
    assert (
        store.record_failure(
            "wire",
            t2,
            status=503,
            error="HTTP 503",
            next_poll_at=t3,
            not_before=t3,
            backoff=timedelta(minutes=4),
            gone=True,
        )
        == 1
    )
    failed = store.feed_state("wire")
    assert failed is not None
    assert (failed.last_attempt_at, failed.last_success_at, failed.last_status) == (t2, t1, 503)
    assert (failed.last_error, failed.failures, failed.backoff, failed.gone) == (
        "HTTP 503",
        1,
        timedelta(minutes=4),
        True,
    )
    assert (failed.etag, failed.next_poll_at, failed.not_before) == ('"v1"', t3, t3)
    # A 304 clears the failure count and its error, and takes the new validators.
    store.record_notice("wire", "failing since 12:02", None, t2)
    store.record_not_modified(
        "wire", t3, t3 + timedelta(minutes=10), None, validators=('"v2"', None)
    )
    ok = store.feed_state("wire")
    assert ok is not None
    assert (ok.last_attempt_at, ok.last_success_at, ok.last_status, ok.failures) == (t3, t3, 304, 0)
    assert (ok.last_error, ok.backoff, ok.not_before) == (None, None, None)
    assert (ok.etag, ok.last_modified, ok.next_poll_at) == (
        '"v2"',
        None,
        t3 + timedelta(minutes=10),
    )
    assert (ok.notice, ok.first_polled_at, ok.last_new_item_at) == ("failing since 12:02", t1, t1)


def test_the_daemon_row_reads_back_what_each_event_wrote(open_state: Opener) -> None:
    store = open_state()
    assert store.daemon_info() is None
    t = [T0 + timedelta(minutes=i) for i in range(6)]
    store.daemon_started(41, "host-a", t[0])
    store.daemon_reloaded(41, t[1], "ok", applied=True)
    store.daemon_ticked(41, t[2])
    assert store.daemon_info() == {
        "pid": 41,
        "host": "host-a",
        "started_at": t[0],
        "config_loaded_at": t[1],
        "reload_at": t[1],
        "reload_result": "ok",
        "last_tick_at": t[2],
        "stopped_at": None,
    }
    # A failed reload is recorded, but the config in force is still the one loaded before.
    why = "failed: watchlists/w.yaml:2:5: bad"
    store.daemon_reloaded(41, t[3], why, applied=False)
    store.daemon_stopped(41, t[4])
    info = store.daemon_info()
    assert info is not None
    assert (info["config_loaded_at"], info["reload_at"]) == (t[1], t[3])
    assert (info["reload_result"], info["stopped_at"]) == (
        "failed: watchlists/w.yaml:2:5: bad",
        t[4],
    )
    # The latest start is the one `status` shows.
    store.daemon_started(42, "host-a", t[5])
    info = store.daemon_info()
    assert info is not None and (info["pid"], info["started_at"], info["stopped_at"]) == (
        42,
        t[5],
        None,
    )


# -- the outbox as `outbox`, `outbox retry`, `outbox drop` and the rate limits read it ----------


def outbox_store(open_state: Opener) -> tuple[Store, list[int]]:
    """Three alerts queued by one poll at T0: k1 to chat, k2 to chat and mail, ids in order."""
    store = open_state()
    store.sync_feeds([("wire", "https://wire.example/feed")], T0)
    alerts = (
        NewAlert("k1", "r", ("chat",), {"title": "one"}),
        NewAlert("k2", "s", ("chat", "mail"), {"title": "two", "n": 2}),
    )
    store.record_poll(poll(T0, [], alerts))
    return store, [a.id for a in store.pending_alerts()]


def test_a_queued_alert_reads_back_every_field_through_each_failure(open_state: Opener) -> None:
    from monitor.store import PendingAlert

    store, ids = outbox_store(open_state)
    first = PendingAlert(ids[0], "k1", "r", "chat", {"title": "one"}, 0, T0, frozenset())
    assert store.pending_alerts() == [
        first,
        PendingAlert(ids[1], "k2", "s", "chat", {"title": "two", "n": 2}, 0, T0, frozenset()),
        PendingAlert(ids[2], "k2", "s", "mail", {"title": "two", "n": 2}, 0, T0, frozenset()),
    ]
    retry = T0 + timedelta(minutes=5)
    store.mark_failed(ids[0], T0, "boom", done=["u2", "u1", "u1"], retry_at=retry)
    failed = replace(
        first, attempts=1, done=frozenset({"u1", "u2"}), next_attempt_at=retry, last_error="boom"
    )
    # Waiting out its backoff, it is not due, but it is still queued.
    assert [a.id for a in store.pending_alerts(T0 + timedelta(minutes=4))] == ids[1:]
    assert store.pending_alerts(retry)[0] == failed
    assert store.pending_alerts(limit=1) == [failed]
    store.mark_failed(ids[1], T0 + timedelta(minutes=1), "gone", dead=True)
    dead = store.outbox(dead=True)
    assert [(a.id, a.attempts, a.last_error, a.dead_at) for a in dead] == [
        (ids[1], 1, "gone", T0 + timedelta(minutes=1))
    ]
    assert [a.id for a in store.outbox()] == [ids[0], ids[2]]
    assert [a.id for a in store.outbox(limit=1)] == [ids[0]]
    assert store.outbox_summary() == {"pending": 2, "oldest_pending": T0, "dead": 1}
    assert store.pending_count() == 2
    store.close()


def test_retry_and_drop_touch_only_undelivered_alerts(open_state: Opener) -> None:
    store, ids = outbox_store(open_state)
    later = T0 + timedelta(hours=1)
    store.mark_failed(ids[0], T0, "gone", dead=True)
    store.mark_failed(ids[1], T0, "slow", retry_at=T0 + timedelta(hours=3))
    store.mark_sent(ids[2], T0)
    # Every dead letter again, at once, with a fresh lifetime.
    assert store.retry_alerts(None, later) == 1
    (again,) = [a for a in store.pending_alerts(later) if a.id == ids[0]]
    assert (again.attempts, again.created_at, again.next_attempt_at, again.dead_at) == (
        0,
        later,
        None,
        None,
    )
    # Named ones: a waiting alert is retried now; a sent one is not queued again.
    assert store.retry_alerts([ids[1], ids[2]], later) == 1
    assert [a.id for a in store.pending_alerts(later)] == ids[:2]
    assert store.outbox_summary() == {"pending": 2, "oldest_pending": later, "dead": 0}
    assert store.drop_alert(ids[2]) is False  # sent: history, not the queue
    assert store.drop_alert(ids[0]) is True
    assert store.drop_alert(ids[0]) is False
    assert [a.id for a in store.outbox()] == [ids[1]]
    assert store.sent_alerts() == [("k2", "s", "mail")]
    store.close()


def test_messages_sent_counts_a_digest_once_per_channel_since_a_time(open_state: Opener) -> None:
    store, ids = outbox_store(open_state)
    t1, t2 = T0 + timedelta(minutes=1), T0 + timedelta(minutes=2)
    store.mark_sent_many(ids[:2], t1, batch="digest-1")  # both to chat, in one message
    store.mark_sent(ids[2], t2)  # mail
    assert store.messages_sent("chat", T0) == (1, t1)
    assert store.messages_sent("chat", t2) == (0, None)
    assert store.messages_sent("mail", T0) == (1, t2)
    assert store.messages_sent("mail", t2) == (1, t2)  # since is inclusive
    store.close()


def test_renewing_claims_keeps_only_this_daemons_unsent_alerts(open_state: Opener) -> None:
    store, ids = outbox_store(open_state)
    now = T0
    claimed = store.claim_alerts(now, lease=timedelta(0), owner="a")
    assert [a.id for a in claimed] == ids
    store.mark_sent(ids[2], now)
    # A claim of no length has run out at once: another daemon could take it, until renewed.
    assert store.renew_claims(ids, now, lease=timedelta(hours=1), owner="b") == set()
    assert store.renew_claims(ids, now, lease=timedelta(hours=1), owner="a") == set(ids[:2])
    assert store.claim_alerts(now, lease=timedelta(hours=1), owner="b") == []
    assert [a.id for a in store.claim_alerts(now, lease=timedelta(0), owner="a")] == ids[:2]
    store.close()


def test_giving_up_an_alert_queues_its_operator_notice_in_the_same_write(
    open_state: Opener,
) -> None:
    """A dead letter is never silent: the notice to the ``ops:`` channel is queued with it,
    once however often the give-up is written."""
    store, ids = outbox_store(open_state)
    at = T0 + timedelta(minutes=3)
    notice = NewAlert("dead:k1", "ops", ("ops", "mail"), {"title": "given up", "id": ids[0]})
    store.mark_failed(ids[0], at, "gone", dead=True, notice=notice)
    store.mark_failed(ids[0], at, "gone", dead=True, notice=notice)
    queued = [a for a in store.pending_alerts() if a.rule == "ops"]
    assert [(a.key, a.channel, a.payload, a.created_at, a.attempts) for a in queued] == [
        ("dead:k1", "ops", {"title": "given up", "id": ids[0]}, at, 0),
        ("dead:k1", "mail", {"title": "given up", "id": ids[0]}, at, 0),
    ]
    store.close()


# -- opening a SQLite state and its lock: the errors a person reads, word for word -------------


def test_a_state_in_a_new_folder_opens_and_names_where_it_is(tmp_path: Path) -> None:
    import threading

    path = tmp_path / "var" / "lib" / "monitor.db"  # folders made as needed
    with SqliteStore(path) as store:
        assert store.where == str(path)  # what `daemon_started` logs as `state=`
        store.sync_feeds([("wire", "https://wire.example/feed")], T0)
    with SqliteStore(path, readonly=True) as reader:
        names: list[str] = []
        # Store calls run in the store's own thread, not the one that opened it.
        worker = threading.Thread(target=lambda: names.extend(s.name for s in reader.feed_states()))
        worker.start()
        worker.join(10)
        assert names == ["wire"]
        assert reader.where == str(path)
    with SqliteStore(path) as store:
        got: list[int] = []
        worker = threading.Thread(target=lambda: got.append(store.pending_count()))
        worker.start()
        worker.join(10)
        assert got == [0]


def test_opening_a_state_that_cannot_be_read_says_why(tmp_path: Path) -> None:
    missing = tmp_path / "none.db"
    with pytest.raises(StoreError) as e:
        SqliteStore(missing, readonly=True)
    assert str(e.value) == f"{missing}: no state yet (news-monitor has not run here)"
    assert not missing.exists()  # a read opens nothing new
    folder = tmp_path / "a-folder"
    folder.mkdir()
    with pytest.raises(StoreError) as e:
        SqliteStore(folder)
    assert str(e.value) == f"{folder}: cannot open the state database: unable to open database file"
    old = tmp_path / "old.db"
    with SqliteStore(old) as store:
        store._raw.execute("DELETE FROM schema_version WHERE version = ?", (SCHEMA_VERSION,))
    with pytest.raises(StoreError) as e:
        SqliteStore(old, readonly=True)
    assert str(e.value) == f"{old}: state schema {SCHEMA_VERSION - 1} is not current"


def test_the_state_lock_names_the_process_that_holds_it(tmp_path: Path) -> None:
    import os
    import stat

    state = tmp_path / "var" / "lib" / "monitor.db"  # the lock comes first: it makes the folders
    held = StateLock(state)
    held.acquire()
    lockfile = tmp_path / "var" / "lib" / "monitor.db.lock"
    assert lockfile.read_text() == str(os.getpid())
    assert stat.S_IMODE(lockfile.stat().st_mode) == 0o600
    with pytest.raises(StateLockedError) as e:
        StateLock(state).acquire()
    assert str(e.value) == (
        f"{state}: another news-monitor is using this state (pid {os.getpid()}); "
        "stop it first, or give this one its own 'state:'"
    )
    os.truncate(lockfile, 0)  # a holder that has not written its pid yet
    with pytest.raises(StateLockedError) as e:
        StateLock(state).acquire()
    assert str(e.value).startswith(f"{state}: another news-monitor is using this state; stop")
    held.release()
    again = StateLock(state)
    again.acquire()  # free once released
    assert lockfile.read_text() == str(os.getpid())
    again.release()


def test_a_follow_up_marks_its_story_updated_and_every_member_announced(
    open_state: Opener,
) -> None:
    """The "also reported by" follow-up: once queued, the story shows when it was updated and
    the outlets it named count as announced, so the next follow-up does not repeat them."""
    store = story_store(open_state)
    at = T0 + timedelta(minutes=30)
    store.record_poll(replace(poll(at, []), followups=[("r", "k1")]))
    info = store.stories_info([("r", "k1")])[("r", "k1")]
    assert info.updated_at == at
    assert info.unannounced == ()
    assert info.announced == ("Wire A", "Wire B", "wire")
    assert info.members == 3
    store.close()


def test_a_story_member_keeps_its_text_within_the_stored_limits(open_state: Opener) -> None:
    store = open_state()
    store.sync_feeds([("wire", "https://wire.example/feed")], T0)
    long = replace(
        member("k1", "k1", "Wire A", announced=True),
        title="t" * 600,
        summary="s" * 1200,
        related=tuple(f"https://r.example/{n}" for n in range(12)),
    )
    empty = replace(
        member("k2", "k1", None, announced=False), summary="", related=("https://ü.example/",)
    )
    store.record_poll(poll(T0, [long, empty]))
    first, second = store.members_of("r", "k1")
    assert (first.title, first.summary) == ("t" * 500, "s" * 1000)
    assert first.related == tuple(f"https://r.example/{n}" for n in range(10))
    assert second.summary is None  # an empty summary is no summary
    assert second.related == ("https://ü.example/",)
    assert store.stories_info([("r", "k1")])[("r", "k1")].title == "t" * 500
    store.close()


def test_seen_lookup_gives_each_known_key_its_eligibility_and_feed(open_state: Opener) -> None:
    from monitor.store import SeenRecord

    store = open_state()
    store.sync_feeds([("wire", "https://wire.example/feed")], T0)
    store.record_poll(replace(poll(T0, []), seen=[seen_update("k1", T0), seen_update("k2", T0)]))
    assert store.seen_lookup(["k2", "nope", "k1"]) == {
        "k1": SeenRecord("k1", T0, "wire"),
        "k2": SeenRecord("k2", T0, "wire"),
    }
    many = [f"x{n}" for n in range(1200)] + ["k1"]  # past one chunk of 500 keys
    assert list(store.seen_lookup(many)) == ["k1"]
    store.close()


def test_a_synced_feed_is_due_at_once_and_again_when_its_url_changes(open_state: Opener) -> None:
    store = open_state()
    store.sync_feeds([("wire", "https://wire.example/feed")], T0)
    state = store.feed_state("wire")
    assert state is not None and state.next_poll_at == T0
    later = T0 + timedelta(hours=1)
    store.sync_feeds([("wire", "https://wire.example/feed")], later)  # unchanged: untouched
    state = store.feed_state("wire")
    assert state is not None and state.next_poll_at == T0
    store.sync_feeds([("wire", "https://wire.example/v2")], later)
    state = store.feed_state("wire")
    assert state is not None
    assert (state.config_url, state.url, state.next_poll_at) == (
        "https://wire.example/v2",
        "https://wire.example/v2",
        later,
    )
    store.close()


def test_store_calls_run_in_the_stores_own_thread() -> None:
    import asyncio
    import threading

    from monitor.store import off_loop

    def call(a: int, *, b: int) -> tuple[int, str]:
        return a * 10 + b, threading.current_thread().name

    value, thread = asyncio.run(off_loop(call, 4, b=2))
    assert value == 42
    assert thread.startswith("news-monitor-store")


def test_state_urls_of_either_postgresql_scheme_are_shared(tmp_path: Path) -> None:
    from monitor.store import is_shared_url, open_store

    assert is_shared_url("postgresql://u@h/db") and is_shared_url("postgres://u@h/db")
    assert not is_shared_url(str(tmp_path / "postgres.db"))
    with pytest.raises(StoreError, match="no state yet"):
        open_store(tmp_path / "none.db", readonly=True)  # readonly reaches the SQLite store


def test_claiming_past_one_chunk_of_names_takes_exactly_the_limit_oldest_first(
    open_state: Opener,
) -> None:
    """A daemon claims at most as many feeds as it has free slots, oldest due first, however
    many feeds the config names (the names go to the database 500 at a time)."""
    store = open_state()
    names = [f"f{n:04d}" for n in range(1200)]
    # Feeds synced in reverse name order, and due in an order unlike either.
    for n, name in enumerate(reversed(names)):
        store.sync_feeds([(name, f"https://e.example/{name}")], T0 + timedelta(seconds=n % 7))
    claimed = store.claim_feeds(
        names, T0 + timedelta(minutes=1), lease=timedelta(hours=1), owner="a"
    )
    assert len(claimed) == 1000  # the default limit
    taken = store.claim_feeds(names, T0 + timedelta(minutes=1), lease=timedelta(hours=1), owner="b")
    assert len(taken) == 200  # the rest: nothing claimed twice
    assert not {s.name for s in claimed} & {s.name for s in taken}
    for got in (claimed, taken):
        assert [(s.next_poll_at, s.name) for s in got] == sorted(
            (s.next_poll_at, s.name) for s in got
        )
    others = [f"g{n:04d}" for n in range(1200)]  # all due at once: by name
    store.sync_feeds([(name, f"https://e.example/{name}") for name in others], T0)
    got = store.claim_feeds(others, T0, lease=timedelta(hours=1), owner="a", limit=600)
    assert len(got) == 600
    assert [s.name for s in got] == sorted(s.name for s in got)
    store.close()


def test_pruning_keeps_the_days_within_retention_of_the_items_per_day(open_state: Opener) -> None:
    """`status` shows a feed's new items per day: pruning forgets only days past retention."""
    store = open_state()
    store.sync_feeds([("wire", "https://wire.example/feed")], T0)
    old = T0 - timedelta(days=40)
    store.record_poll(replace(poll(old, []), seen=[seen_update("k0", old)]))
    store.record_poll(replace(poll(T0, []), seen=[seen_update("k1", T0), seen_update("k2", T0)]))
    store.prune(T0, timedelta(days=30))
    assert store.items_per_day("wire") == {T0.date().isoformat(): 2}
    store.close()


def test_pruning_recent_items_counts_both_the_old_and_the_surplus(open_state: Opener) -> None:
    from monitor.store import RecentItem

    def item(n: int, at: datetime) -> RecentItem:
        return RecentItem(f"k{n}", "wire", f"t{n}", "", None, None, None, None, None, (), at)

    store = open_state()
    store.sync_feeds([("wire", "https://wire.example/feed")], T0)
    items = [item(0, T0 - timedelta(days=10))] + [
        item(n, T0 + timedelta(minutes=n)) for n in range(1, 6)
    ]
    store.record_poll(replace(poll(T0, []), recent=items))
    # One older than a week, then two beyond the newest three.
    assert store.prune_recent(T0 + timedelta(hours=1), timedelta(days=7), 3) == 3
    assert store.prune_recent(T0 + timedelta(hours=1), timedelta(days=7), 3) == 0
    store.close()


def test_a_writable_state_says_so_and_a_read_only_one_says_why_not(tmp_path: Path) -> None:
    """What `/healthz` reports of the state."""
    path = tmp_path / "monitor.db"
    with SqliteStore(path) as store:
        assert store.writable() is None
    with SqliteStore(path, readonly=True) as reader:
        assert reader.writable() == "state not writable: attempt to write a readonly database"
