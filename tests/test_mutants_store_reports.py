"""Store reports that ``make mutants`` found untested, on SQLite and on PostgreSQL.

``history`` feeds ``news-monitor history``; ``items_per_day``, ``rule_hits`` and
``health_counts`` feed ``status``, the web status page and the daemon's systemd status line;
``story_outlets`` names the outlets of a follow-up; ``rule_hits_of`` feeds the web view's rule
page and Atom feed; ``recent_items`` feeds the web preview and ``backtest``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from monitor.store import (
    NewAlert,
    PollRecord,
    RecentItem,
    RuleHit,
    SeenUpdate,
    Store,
    StoryMember,
)

Opener = Callable[..., Any]

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def minutes(n: float) -> datetime:
    return T0 + timedelta(minutes=n)


def poll(
    at: datetime,
    *,
    feed: str = "wire",
    seen: tuple[SeenUpdate, ...] = (),
    hits: tuple[tuple[str, str], ...] = (),
    alerts: tuple[NewAlert, ...] = (),
    members: tuple[StoryMember, ...] = (),
    recent: tuple[RecentItem, ...] = (),
) -> PollRecord:
    return PollRecord(
        feed=feed,
        at=at,
        status=200,
        etag=None,
        last_modified=None,
        url=None,
        next_poll_at=at + timedelta(minutes=10),
        not_before=None,
        seen=list(seen),
        seen_again=[],
        hits=list(hits),
        alerts=list(alerts),
        story_members=list(members),
        recent=list(recent),
    )


def member(
    rule: str,
    key: str,
    story: str,
    joined: datetime,
    *,
    source: str | None,
    similarity: float | None = None,
    reason: str = "first",
) -> StoryMember:
    return StoryMember(
        rule=rule,
        key=key,
        story=story,
        title=f"title {key}",
        summary=f"summary {key}",
        related=(),
        source=source,
        link=f"https://news.example/{key}",
        feed="wire",
        published_at=T0 - timedelta(hours=1),
        joined_at=joined,
        similarity=similarity,
        reason=reason,
        announced=key == story,
    )


def wire_store(open_state: Opener) -> Store:
    store = open_state()
    store.sync_feeds([("wire", "https://wire.example/feed")], T0 - timedelta(days=30))
    return store


def send(store: Store, sent: dict[tuple[str, str], datetime]) -> None:
    """Mark the pending alerts named by (key, channel) sent at the given time."""
    for p in store.pending_alerts():
        if (p.key, p.channel) in sent:
            store.mark_sent(p.id, sent[(p.key, p.channel)])


# -- history: `news-monitor history` ------------------------------------------------------------


def history_store(open_state: Opener) -> Store:
    store = wire_store(open_state)
    # Sent before the window: not shown.
    store.record_poll(
        poll(T0 - timedelta(hours=1), alerts=(NewAlert("old", "r", ("chat",), {"title": "o"}),))
    )
    send(store, {("old", "chat"): T0 - timedelta(minutes=1)})
    alerts = (
        NewAlert(
            "k1",
            "r",
            ("email", "chat"),
            {
                "title": "Quake hits city",
                "source": "Wire A",
                "feed": "wire",
                "link": "https://news.example/k1",
                "story": "k1",
            },
        ),
        # A follow-up without title, publisher or link: named by its feed.
        NewAlert("k4", "r", ("chat",), {"followup": True, "feed": "wire", "story": "k1"}),
        NewAlert("k5", "q", ("chat",), {"title": "Other", "source": "Wire C", "feed": "wire"}),
        NewAlert("ops1", "ops", ("chat",), {"title": "feed failing"}),
        NewAlert("k6", "r", ("chat",), {"title": "never sent"}),
    )
    members = (
        member("r", "k1", "k1", T0, source="Wire A"),
        member("r", "k0", "k1", minutes(-10), source="Wire Z", similarity=0.9, reason="title"),
        member("r", "k2", "k1", minutes(2), source="Wire B", similarity=0.8, reason="title"),
        member("r", "k3", "k1", minutes(6), source=None, similarity=0.75, reason="link"),
        member("q", "k5", "k5", T0, source="Wire C"),
        member("q", "k8", "k5", minutes(3), source="Wire D", similarity=0.5, reason="related"),
    )
    store.record_poll(poll(T0, alerts=alerts, members=members))
    send(
        store,
        {
            ("k1", "email"): minutes(5),
            ("k1", "chat"): minutes(1),
            ("k4", "chat"): minutes(4),
            ("k5", "chat"): minutes(2.5),
            ("ops1", "chat"): minutes(1.5),
        },
    )
    return store


def suppressed(
    rule: str, key: str, at: datetime, source: str, similarity: float, reason: str, story: str
) -> dict[str, Any]:
    return {
        "at": at,
        "rule": rule,
        "kind": "suppressed",
        "title": f"title {key}",
        "source": source,
        "link": f"https://news.example/{key}",
        "channels": [],
        "key": key,
        "story": story,
        "story_title": f"title {story}",
        "similarity": similarity,
        "reason": reason,
    }


K1_SENT = {
    "at": minutes(1),
    "rule": "r",
    "kind": "sent",
    "title": "Quake hits city",
    "source": "Wire A",
    "link": "https://news.example/k1",
    "channels": ["chat", "email"],
    "key": "k1",
    "story": "k1",
}
K4_FOLLOWUP = {
    "at": minutes(4),
    "rule": "r",
    "kind": "follow-up",
    "title": "",
    "source": "wire",
    "link": None,
    "channels": ["chat"],
    "key": "k4",
    "story": "k1",
}
K5_SENT = {
    "at": minutes(2.5),
    "rule": "q",
    "kind": "sent",
    "title": "Other",
    "source": "Wire C",
    "link": None,
    "channels": ["chat"],
    "key": "k5",
    "story": None,
}
K3 = suppressed("r", "k3", minutes(6), "wire", 0.75, "link", "k1")
K2 = suppressed("r", "k2", minutes(2), "Wire B", 0.8, "title", "k1")
K8 = suppressed("q", "k8", minutes(3), "Wire D", 0.5, "related", "k5")


def test_history_lists_sent_alerts_and_repeats_since_the_start_newest_first(
    open_state: Opener,
) -> None:
    """`news-monitor history`: every alert sent since ``--since`` (one line per alert, its
    channels together, sorted; never the operator's ``ops`` notices, never an unsent one) and
    every story repeat recorded since then, newest first, each with exactly the fields shown."""
    store = history_store(open_state)
    assert store.history(T0) == [K3, K4_FOLLOWUP, K8, K5_SENT, K2, K1_SENT]


def test_history_of_one_rule_shows_only_that_rule(
    open_state: Opener,
) -> None:
    """`news-monitor history --rule q` shows the alerts and repeats of rule q alone; a later
    ``--since`` leaves out what came before it (of an alert, the channels it reached before)."""
    store = history_store(open_state)
    assert store.history(T0, "q") == [K8, K5_SENT]
    k1_email = {**K1_SENT, "at": minutes(5), "channels": ["email"]}
    assert store.history(minutes(2.5), "r") == [K3, k1_email, K4_FOLLOWUP]
    assert store.history(minutes(7)) == []


# -- status ------------------------------------------------------------------------------------


def seen(key: str, at: datetime, feed: str = "wire") -> SeenUpdate:
    return SeenUpdate(key, feed, f"title {key}", at, at)


def test_items_per_day_counts_the_last_seven_days_of_one_feed(open_state: Opener) -> None:
    """`status` and the web status page chart a feed's new items per day: the seven newest days
    by default, each day's polls added up, other feeds not counted."""
    store = wire_store(open_state)
    store.sync_feeds([("wire", "https://wire.example/feed"), ("other", "https://o.example")], T0)
    for d in range(9):
        at = T0 - timedelta(days=d)
        items = tuple(seen(f"d{d}-{i}", at) for i in range(d + 1))
        store.record_poll(poll(at, seen=items))
    store.record_poll(poll(T0 + timedelta(hours=1), seen=(seen("late", T0),)))
    store.record_poll(poll(T0, feed="other", seen=(seen("o1", T0, "other"),)))
    assert store.items_per_day("wire") == {
        "2026-11-01": 2,
        "2026-10-31": 2,
        "2026-10-30": 3,
        "2026-10-29": 4,
        "2026-10-28": 5,
        "2026-10-27": 6,
        "2026-10-26": 7,
    }
    assert store.items_per_day("wire", 2) == {"2026-11-01": 2, "2026-10-31": 2}
    assert store.items_per_day("other") == {"2026-11-01": 1}


def test_rule_hits_counts_each_rules_hits_since_the_start(open_state: Opener) -> None:
    """`status` shows each rule's hits in the last 24 hours; older hits are not counted."""
    store = wire_store(open_state)
    store.record_poll(poll(T0 - timedelta(hours=25), hits=(("k0", "r"),)))
    store.record_poll(poll(T0, hits=(("k1", "r"), ("k2", "r"), ("k1", "q"))))
    store.record_poll(poll(T0 + timedelta(hours=1), hits=(("k3", "r"),)))
    assert store.rule_hits(T0 - timedelta(hours=24)) == {"r": 3, "q": 1}
    assert store.rule_hits(T0 + timedelta(minutes=1)) == {"r": 1}
    assert store.rule_hits(T0 + timedelta(hours=2)) == {}


def fail(store: Store, feed: str, at: datetime) -> None:
    store.record_failure(
        feed,
        at,
        status=503,
        error="HTTP 503",
        next_poll_at=at + timedelta(minutes=5),
        not_before=None,
        backoff=None,
    )


def test_health_counts_gives_feeds_failing_feeds_and_the_last_poll(open_state: Opener) -> None:
    """The daemon's systemd status line: how many feeds, how many failing at least the
    threshold's polls in a row, and when the last poll was."""
    store = open_state()
    assert store.health_counts(2) == (0, 0, None)
    feeds = [("a", "https://a.example"), ("b", "https://b.example"), ("c", "https://c.example")]
    store.sync_feeds(feeds, T0)
    assert store.health_counts(2) == (3, 0, None)
    store.record_poll(poll(minutes(1), feed="a"))
    fail(store, "b", minutes(2))
    fail(store, "b", minutes(3))
    fail(store, "c", minutes(4))
    assert store.health_counts(2) == (3, 1, minutes(4))
    assert store.health_counts(1) == (3, 2, minutes(4))
    assert store.health_counts(3) == (3, 0, minutes(4))


# -- stories -----------------------------------------------------------------------------------


def test_story_outlets_names_each_outlet_once_first_report_first(open_state: Opener) -> None:
    """A follow-up's "also reported by" line: each outlet of the story once, in the order they
    reported it, an outlet without a publisher named by its feed; other stories left out."""
    store = wire_store(open_state)
    members = (
        member("r", "k1", "k1", T0, source="Wire A"),
        member("r", "k3", "k1", minutes(3), source="Wire A", similarity=0.8, reason="title"),
        member("r", "k2", "k1", minutes(2), source=None, similarity=0.8, reason="title"),
        member("r", "k4", "k1", minutes(4), source="Wire B", similarity=0.8, reason="title"),
        member("q", "k5", "k1", T0, source="Wire Q"),
    )
    store.record_poll(poll(T0, members=members))
    assert store.story_outlets("r", "k1") == ("Wire A", "wire", "Wire B")
    assert store.story_outlets("r", "k2") == ()


# -- web view ----------------------------------------------------------------------------------


def recent(key: str, at: datetime, **fields: Any) -> RecentItem:
    values: dict[str, Any] = {
        "key": key,
        "feed": "wire",
        "title": f"recent title {key}",
        "summary": f"recent summary {key}",
        "source": f"Recent {key}",
        "source_url": f"https://pub.example/{key}",
        "link": f"https://recent.example/{key}",
        "published_at": at - timedelta(minutes=30),
        "lang": "en",
        "related": (f"https://rel.example/{key}/1", f"https://rel.example/{key}/2"),
        "seen_at": at,
        "words": f" {key} quake city ",
    }
    values.update(fields)
    return RecentItem(**values)


def test_rule_hits_of_takes_each_hits_text_from_its_member_item_or_seen_record(
    open_state: Opener,
) -> None:
    """The web view's rule page and Atom feed: a rule's hits newest first, each with its story
    and text; the text comes from the story member, else the recent item, else the seen
    record."""
    store = wire_store(open_state)
    store.record_poll(
        poll(
            T0,
            seen=(seen("k1", T0), seen("k2", T0), seen("k3", T0)),
            hits=(("k1", "r"), ("k0", "r")),
            members=(
                StoryMember(
                    rule="r",
                    key="k1",
                    story="k1",
                    title="member title",
                    summary="member summary",
                    related=(),
                    source="Wire A",
                    link="https://news.example/k1",
                    feed="wire",
                    published_at=minutes(-20),
                    joined_at=T0,
                    similarity=None,
                    reason="first",
                    announced=True,
                ),
            ),
            recent=(recent("k1", T0, summary="recent summary k1"),),
        )
    )
    store.record_poll(
        poll(
            minutes(1),
            hits=(("k2", "r"), ("k2", "q")),
            members=(
                StoryMember(
                    rule="r",
                    key="k2",
                    story="k1",
                    title="member title 2",
                    summary=None,
                    related=(),
                    source=None,
                    link=None,
                    feed="wire",
                    published_at=None,
                    joined_at=minutes(1),
                    similarity=0.8,
                    reason="title",
                    announced=False,
                ),
            ),
            recent=(recent("k2", minutes(1)),),
        )
    )
    store.record_poll(poll(minutes(2), hits=(("k3", "r"),)))
    assert store.rule_hits_of("r", T0) == [
        RuleHit(
            key="k3",
            rule="r",
            matched_at=minutes(2),
            story="k3",
            story_title=None,
            title="title k3",
            summary="",
            link=None,
            source=None,
            feed="wire",
            published_at=T0,
            similarity=None,
            reason=None,
        ),
        RuleHit(
            key="k2",
            rule="r",
            matched_at=minutes(1),
            story="k1",
            story_title="member title",
            title="member title 2",
            summary="recent summary k2",
            link="https://recent.example/k2",
            source="Recent k2",
            feed="wire",
            published_at=minutes(-29),
            similarity=0.8,
            reason="title",
        ),
        RuleHit(
            key="k0",
            rule="r",
            matched_at=T0,
            story="k0",
            story_title=None,
            title="",
            summary="",
            link=None,
            source=None,
            feed="",
            published_at=None,
            similarity=None,
            reason=None,
        ),
        RuleHit(
            key="k1",
            rule="r",
            matched_at=T0,
            story="k1",
            story_title="member title",
            title="member title",
            summary="recent summary k1",
            link="https://news.example/k1",
            source="Wire A",
            feed="wire",
            published_at=minutes(-20),
            similarity=None,
            reason="first",
        ),
    ]
    assert [h.key for h in store.rule_hits_of("r", T0, 2)] == ["k3", "k2"]


def test_rule_hits_of_shows_five_hundred_hits_by_default(open_state: Opener) -> None:
    """The rule page shows at most 500 hits unless asked for another number."""
    store = wire_store(open_state)
    store.record_poll(poll(T0, hits=tuple((f"k{i:03}", "r") for i in range(501))))
    hits = store.rule_hits_of("r", T0)
    assert [h.key for h in hits] == [f"k{i:03}" for i in range(500)]


def test_recent_items_reads_back_every_field_newest_first(open_state: Opener) -> None:
    """The web preview and ``backtest`` search the items seen since the start, newest first,
    each with every field as it was written; with patterns, only the items whose words match
    one of them."""
    store = wire_store(open_state)
    a = recent("a", T0)
    b = recent("b", minutes(1), source=None, source_url=None, link=None, published_at=None)
    c = recent("c", minutes(1), lang=None, related=(), words=" c storm ")
    old = recent("old", minutes(-1))
    store.record_poll(poll(T0, recent=(a, old)))
    store.record_poll(poll(minutes(1), recent=(c, b)))
    assert store.recent_items(T0) == [b, c, a]
    assert store.recent_items(T0, ["% storm %", "% nothing %"]) == [c]
    assert store.recent_items(T0, ["% quake %", "% c %"]) == [b, c, a]
    assert store.recent_items(T0, []) == []
