"""The pure core of a poll: eligibility (max_age, first poll), one alert per item and rule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from monitor.config import Feed
from monitor.dedup import item_key, key_items
from monitor.parse import FeedItem
from monitor.poll import backoff_after, next_poll, plan_poll
from monitor.rules import RuleSet, parse_query
from monitor.store import SeenRecord

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
FEED = Feed(
    name="f",
    url="https://example.org/rss",
    interval=timedelta(minutes=10),
    max_age=timedelta(days=2),
    enabled=True,
    allow_private=False,
)
RULES = RuleSet([("kp", parse_query('"Kim Jong Un" AND Putin')), ("bali", parse_query("Bali"))])
CHANNELS = {"kp": ("chat",), "bali": ("chat", "mail")}


def item(title: str, link: str, published: datetime | None, summary: str = "") -> FeedItem:
    return FeedItem(
        id=link,
        link=link,
        title=title,
        summary=summary,
        published=published,
        source="Antara",
        source_url=None,
        feed="f",
        lang=None,
    )


def plan(items: list[FeedItem], *, first_poll: bool = False, seen=None, hits=None, match_seen=True):  # type: ignore[no-untyped-def]
    return plan_poll(
        feed=FEED,
        items=key_items(items),
        match_seen=match_seen,
        now=NOW,
        first_poll=first_poll,
        seen=seen or {},
        hits=hits or set(),
        ruleset=RULES,
        rule_channels=CHANNELS,
    )


def test_recent_match_alerts_once_per_rule() -> None:
    it = item("Kim Jong Un meets Putin in Bali", "https://e.org/1", NOW - timedelta(hours=1))
    p = plan([it])
    assert sorted(a.rule for a in p.alerts) == ["bali", "kp"]
    assert {a.rule: a.channels for a in p.alerts}["bali"] == ("chat", "mail")
    assert len(p.seen) == 1
    kp = next(m for m in p.messages if m.rule == "kp")
    assert kp.matched == ("Kim Jong Un", "Putin")
    # Already alerted for kp: only bali would alert.
    p2 = plan([it], hits={(item_key(it), "kp")})
    assert [a.rule for a in p2.alerts] == ["bali"]


def test_old_items_are_recorded_silently() -> None:
    old = item("Putin and Kim Jong Un", "https://e.org/old", NOW - timedelta(days=3))
    p = plan([old])
    assert p.alerts == [] and len(p.seen) == 1


def test_undated_items_on_first_poll_never_alert() -> None:
    undated = item("Bali news", "https://e.org/u", None)
    p = plan([undated], first_poll=True)
    assert p.alerts == []
    assert p.seen[0].eligible_at is None
    # Seen again later, it still never alerts.
    rec = SeenRecord(item_key(undated), None)
    assert plan([undated], seen={rec.key: rec}).alerts == []


def test_undated_new_item_after_first_poll_alerts() -> None:
    undated = item("Bali news", "https://e.org/u2", None)
    p = plan([undated], first_poll=False)
    assert [a.rule for a in p.alerts] == ["bali"]
    assert p.seen[0].eligible_at == NOW


def test_seen_item_alerts_for_a_new_rule_while_recent() -> None:
    it = item("Bali floods", "https://e.org/3", NOW - timedelta(hours=5))
    rec = SeenRecord(item_key(it), it.published)
    p = plan([it], seen={rec.key: rec})
    assert [a.rule for a in p.alerts] == ["bali"]
    assert p.seen == [] and p.seen_again == [rec.key]
    # Under the same rules as its last parse, an item this feed recorded is not matched again…
    rec = SeenRecord(item_key(it), it.published, "f")
    p = plan([it], seen={rec.key: rec}, match_seen=False)
    assert p.alerts == [] and p.seen_again == [rec.key]
    # …but one another feed recorded first is: its fields here are this feed's own.
    other = SeenRecord(rec.key, it.published, "other-feed")
    p = plan([it], seen={rec.key: other}, match_seen=False)
    assert [a.rule for a in p.alerts] == ["bali"]


def test_same_item_twice_in_one_feed_is_one_item() -> None:
    a = item("Bali", "https://e.org/4?utm_source=x", NOW)
    b = item("Bali", "https://e.org/4", NOW)
    assert len(plan([a, b]).alerts) == 1


def test_schedule_jitter_and_backoff_caps() -> None:
    import random

    rng = random.Random(1)
    nxt = next_poll(FEED, NOW, rng=rng)
    assert NOW + timedelta(minutes=9) <= nxt <= NOW + timedelta(minutes=11)
    # A server asking for a longer interval raises it (capped at 6 h).
    assert next_poll(FEED, NOW, floor=timedelta(days=2), rng=rng) <= NOW + timedelta(hours=6.6)
    assert backoff_after(FEED, 1, rng=rng) <= timedelta(minutes=11)
    assert timedelta(minutes=36) <= backoff_after(FEED, 3, rng=rng) <= timedelta(minutes=44)
    assert backoff_after(FEED, 50, rng=rng) <= timedelta(hours=6.6)
