"""Store reads that ``make mutants`` found untested, on a real SQLite file.

Stories feed the "also reported by" follow-ups and ``status``; dead alerts feed ``status``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from monitor.store import FeedState, NewAlert, PollRecord, Store, StoryMember

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
