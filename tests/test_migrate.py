"""``news-monitor migrate``: a SQLite state copied whole into an empty PostgreSQL state."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from monitor.cli import main
from monitor.store import NewAlert, PollRecord, SeenUpdate, SqliteStore, StoryMember, open_store
from monitor.store.records import RecentItem

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def member(key: str, story: str) -> StoryMember:
    return StoryMember(
        "quake", key, story, f"Gempa {key}", None, (), f"outlet {key}", None, "f", None, T0,
        None if key == story else 0.8, "first" if key == story else "headline", key == story,
    )  # fmt: skip


def make_sqlite_state(path: Path) -> None:
    store = SqliteStore(path)
    store.sync_feeds([("f", "https://a.example/rss"), ("g", "https://b.example/rss")], T0)
    alerts = [NewAlert(k, "quake", ("chat", "mail"), {"title": f"Gempa {k}"}) for k in ("k1", "k3")]
    store.record_poll(
        PollRecord(
            feed="f", at=T0, status=200, etag='"e"', last_modified=None, url=None,
            next_poll_at=T0 + timedelta(minutes=10), not_before=None,
            seen=[SeenUpdate(k, "f", f"Gempa {k}", T0, T0) for k in ("k1", "k2", "k3")],
            seen_again=[], hits=[("k1", "quake"), ("k2", "quake"), ("k3", "quake")],
            alerts=alerts,
            story_members=[member("k1", "k1"), member("k2", "k1"), member("k3", "k3")],
            recent=[
                RecentItem(k, "f", f"Gempa {k}", "", None, None, None, T0, "id", (), T0, " gempa ")
                for k in ("k1", "k2", "k3")
            ],
        )
    )  # fmt: skip
    first = store.pending_alerts()[0]
    store.mark_sent(first.id, T0, batch="b1")
    store.run_job("prune", T0, every=timedelta(hours=6), owner="old")
    store.daemon_started(123, "old-host", T0)
    store.close()


def test_migrate_copies_every_record_and_new_alerts_follow_the_old_ids(
    tmp_path: Path, pg_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "state.sqlite3"
    make_sqlite_state(source)
    assert main(["migrate", "--from", str(source), "--to", pg_url]) == 0
    out = capsys.readouterr().out
    assert "copied 2 feeds, 3 seen, 3 hits, 4 outbox" in out and "3 recent_items" in out
    old, new = SqliteStore(source, readonly=True), open_store(pg_url)
    try:
        assert new.feed_states() == old.feed_states()
        assert new.seen_lookup(["k1", "k2", "k3"]) == old.seen_lookup(["k1", "k2", "k3"])
        assert new.hits_lookup(["k1", "k2"]) == old.hits_lookup(["k1", "k2"])
        assert new.pending_alerts() == old.pending_alerts()
        assert new.sent_alerts() == old.sent_alerts()
        since = T0 - timedelta(days=1)
        assert new.story_members(since) == old.story_members(since)
        assert [m.key for _, m in new.story_members_after({}, ["quake"])] == ["k1", "k2", "k3"]
        assert new.daemon_info() is None  # the old process's row stays behind
        assert not new.run_job(
            "prune", T0 + timedelta(hours=1), every=timedelta(hours=6), owner="x"
        )
        top = max(a.id for a in old.pending_alerts())
        notice = NewAlert("n", "ops", ("chat",), {"title": "x"})
        new.record_notice("f", "failing", notice, T0)
        assert max(a.id for a in new.pending_alerts()) == top + 1
    finally:
        old.close()
        new.close()


def test_migrate_refuses_a_destination_that_holds_a_state(
    tmp_path: Path, pg_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "state.sqlite3"
    make_sqlite_state(source)
    assert main(["migrate", "--from", str(source), "--to", pg_url]) == 0
    assert main(["migrate", "--from", str(source), "--to", pg_url]) == 1
    assert "table feeds already holds 2 rows; migrate copies into an empty state only" in (
        capsys.readouterr().err
    )


def test_migrate_needs_a_postgresql_target_and_an_existing_source(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["migrate", "--from", str(tmp_path / "nope"), "--to", "postgresql://x/y"]) == 2
    assert "no such state file" in capsys.readouterr().err
    assert main(["migrate", "--from", str(tmp_path), "--to", str(tmp_path / "b.db")]) == 2
    assert "must be a postgresql:// URL" in capsys.readouterr().err
