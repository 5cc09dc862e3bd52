"""Coordination in the store: leases on feeds, claims on alerts, periodic jobs, story locks.

Run on both backends (SQLite keeps the same bookkeeping for its one daemon); the tests that
need two daemons at once run on PostgreSQL, each "daemon" with a connection of its own.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from monitor.errors import StoreError
from monitor.store import (
    NewAlert,
    PollRecord,
    SeenUpdate,
    StaleLeaseError,
    StoryMember,
    open_store,
)

Opener = Callable[..., Any]
T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
LEASE = timedelta(minutes=5)


def poll(feed: str, at: datetime, lease: int | None, **kw: Any) -> PollRecord:
    return PollRecord(
        feed=feed,
        at=at,
        status=200,
        etag=None,
        last_modified=None,
        url=None,
        next_poll_at=at + timedelta(minutes=10),
        not_before=None,
        seen=kw.get("seen", []),
        seen_again=[],
        hits=kw.get("hits", []),
        alerts=kw.get("alerts", []),
        story_members=kw.get("members", ()),
        lease=lease,
    )


def test_a_claimed_feed_is_nobody_elses_until_recorded(open_state: Opener) -> None:
    a = open_state()
    a.sync_feeds([("f", "u1"), ("g", "u2")], T0)
    got = a.claim_feeds(["f", "g"], T0, lease=LEASE, owner="a")
    assert [s.name for s in got] == ["f", "g"]
    assert a.claim_feeds(["f", "g"], T0, lease=LEASE, owner="b") == []
    a.record_poll(poll("f", T0, got[0].lease))
    a.release_feed("g", got[1].lease)
    # f was polled: not due for its interval; g was given back: due at once.
    assert [s.name for s in a.claim_feeds(["f", "g"], T0, lease=LEASE, owner="b")] == ["g"]
    later = T0 + timedelta(minutes=11)
    assert [s.name for s in a.claim_feeds(["f"], later, lease=LEASE, owner="b")] == ["f"]


def test_a_poll_recorded_after_its_lease_passed_on_is_refused(
    open_state: Opener, backend: str
) -> None:
    a = open_state()
    a.sync_feeds([("f", "u")], T0)
    (first,) = a.claim_feeds(["f"], T0, lease=timedelta(0), owner="a")  # expires at once
    (second,) = a.claim_feeds(["f"], T0, lease=LEASE, owner="b")
    assert second.lease == first.lease + 1
    alert = NewAlert("k", "r", ("chat",), {"title": "T"})
    stale = poll("f", T0, first.lease, seen=[SeenUpdate("k", "f", "T", T0, T0)], alerts=[alert])
    with pytest.raises(StaleLeaseError, match="lease passed to another daemon"):
        a.record_poll(stale)
    with pytest.raises(StaleLeaseError):
        a.record_not_modified("f", T0, T0, None, lease=first.lease)
    with pytest.raises(StaleLeaseError):
        a.record_failure(
            "f", T0, status=500, error="x", next_poll_at=T0, not_before=None, backoff=None,
            lease=first.lease,
        )  # fmt: skip
    # Nothing of the stale poll was written: not the item, not its alert, not the feed.
    assert a.seen_lookup(["k"]) == {} and a.pending_count() == 0
    assert a.feed_state("f").failures == 0  # type: ignore[union-attr]
    a.record_poll(poll("f", T0, second.lease, seen=[SeenUpdate("k", "f", "T", T0, T0)]))
    assert set(a.seen_lookup(["k"])) == {"k"}


def test_alert_claims_keep_others_off_until_sent_or_expired(open_state: Opener) -> None:
    a = open_state()
    a.sync_feeds([("f", "u")], T0)
    alerts = [NewAlert(f"k{i}", "r", ("chat",), {"title": f"T{i}"}) for i in range(3)]
    a.record_poll(poll("f", T0, None, alerts=alerts))
    mine = a.claim_alerts(T0, lease=LEASE, owner="a")
    assert [x.key for x in mine] == ["k0", "k1", "k2"]
    assert a.claim_alerts(T0, lease=LEASE, owner="b") == []
    assert len(a.claim_alerts(T0, lease=LEASE, owner="a")) == 3  # the claimer keeps its own
    a.mark_sent(mine[0].id, T0)
    a.mark_failed(mine[1].id, T0, "HTTP 500", retry_at=T0 + timedelta(minutes=1))
    # k1 waits for its retry; k2 is still a's until the claim runs out (a "died").
    assert a.claim_alerts(T0, lease=LEASE, owner="b") == []
    a.claim_alerts(T0, lease=timedelta(0), owner="a")  # a's claims end now
    later = T0 + timedelta(minutes=2)
    assert [x.key for x in a.claim_alerts(later, lease=LEASE, owner="b")] == ["k1", "k2"]


def test_a_periodic_job_runs_once_per_period_for_the_group(open_state: Opener) -> None:
    a = open_state()
    every = timedelta(hours=6)
    assert a.run_job("prune", T0, every=every, owner="a")
    assert not a.run_job("prune", T0 + timedelta(hours=1), every=every, owner="b")
    assert a.run_job("prune", T0 + every, every=every, owner="b")
    assert a.run_job("digest", T0, every=every, owner="b")  # each job on its own


def test_members_are_read_back_in_commit_order_per_rule(open_state: Opener) -> None:
    a = open_state()
    a.sync_feeds([("f", "u")], T0)
    cursor = a.story_cursor(["r", "s"])
    assert cursor == {"r": 0, "s": 0}

    def member(rule: str, key: str, story: str) -> StoryMember:
        return StoryMember(
            rule, key, story, f"title {key}", None, (), "outlet", None, "f", None, T0,
            None if key == story else 0.9, "first" if key == story else "headline", True,
        )  # fmt: skip

    a.record_poll(poll("f", T0, None, members=[member("r", "k1", "k1"), member("s", "k9", "k9")]))
    a.record_poll(poll("f", T0, None, members=[member("r", "k2", "k1")]))
    got = a.story_members_after(cursor, ["r"])
    assert [m.key for _, m in got] == ["k1", "k2"]
    assert (cursor["r"] == got[-1][0] and "s" not in cursor) or cursor["s"] == 0
    assert a.story_members_after(cursor, ["r"]) == []  # the cursor moved past them


def test_two_daemons_claim_disjoint_feeds_at_the_same_moment(pg_url: str) -> None:
    """Two connections claim at once: SKIP LOCKED splits the feeds, none is claimed twice."""
    setup = open_store(pg_url)
    names = [f"f{i}" for i in range(200)]
    setup.sync_feeds([(n, f"u{n}") for n in names], T0)
    stores = [open_store(pg_url) for _ in range(2)]
    got: list[list[str]] = [[], []]
    start = threading.Barrier(2)

    def claim(i: int) -> None:
        start.wait()
        for _ in range(20):
            got[i] += [
                s.name for s in stores[i].claim_feeds(names, T0, lease=LEASE, owner=str(i), limit=7)
            ]

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(got[0] + got[1]) == sorted(names)
    assert not set(got[0]) & set(got[1])
    for s in (setup, *stores):
        s.close()


def test_a_rule_lock_makes_the_second_daemon_wait_and_then_see_the_first(pg_url: str) -> None:
    a, b = open_store(pg_url), open_store(pg_url)
    a.sync_feeds([("f", "u")], T0)
    cursor = b.story_cursor(["r"])
    inside, proceed, seen_by_b = threading.Event(), threading.Event(), []

    def first() -> None:
        with a.story_lock(["r"]):
            inside.set()
            proceed.wait(10)
            m = StoryMember("r", "k1", "k1", "T", None, (), None, None, "f", None, T0, None,
                            "first", True)  # fmt: skip
            a.record_poll(poll("f", T0, None, members=[m]))

    def second() -> None:
        with b.story_lock(["r"]):
            seen_by_b.extend(m.key for _, m in b.story_members_after(cursor, ["r"]))

    t1 = threading.Thread(target=first)
    t1.start()
    assert inside.wait(10)
    t2 = threading.Thread(target=second)
    t2.start()
    t2.join(0.5)
    assert t2.is_alive()  # waiting for a's lock on rule r
    proceed.set()
    t1.join(10)
    t2.join(10)
    assert seen_by_b == ["k1"]  # b decides only after a's member is visible
    a.close()
    b.close()


def test_an_unreachable_database_is_a_clear_error() -> None:
    with pytest.raises(StoreError, match="cannot connect to the state database"):
        open_store("postgresql://nobody@127.0.0.1:1/none", readonly=True)


def test_the_tick_follows_the_shortest_interval(tmp_path: Path) -> None:
    """A 10 s feed is looked at every 3.3 s (not every 15 s, which would make it a 15 s feed)."""
    from monitor.config import load_config
    from monitor.daemon import TICK, poll_tick

    cfg = tmp_path / "monitor.yaml"
    cfg.write_text("feeds:\n  - {name: a, url: 'https://e.example/a'}\n")
    assert poll_tick(load_config(cfg, env={})) == TICK == timedelta(seconds=15)
    cfg.write_text(
        "feeds:\n  - {name: a, url: 'https://e.example/a'}\n"
        "  - {name: b, url: 'https://e.example/b', interval: 10s}\n"
    )
    assert poll_tick(load_config(cfg, env={})) == timedelta(seconds=10) / 3


def test_the_store_reconnects_after_the_database_restarts(pg_cluster: Any) -> None:
    """A daemon runs for months; its database may restart under it (an upgrade, a failover):
    the next store call gets a new connection instead of failing for good."""
    url = pg_cluster.new_schema()
    store = open_store(url)
    store.sync_feeds([("f", "u")], T0)
    assert pg_cluster.restart() is None
    assert [s.name for s in store.feed_states()] == ["f"]
    store.close()
