"""Item identity: what makes two sightings the same item."""

from __future__ import annotations

from dataclasses import replace

from monitor.dedup import item_key, key_items
from monitor.parse import FeedItem

BASE = FeedItem(
    id="https://e.org/a",
    link="https://e.org/a",
    title="Gempa di Bali",
    summary="Gempa mengguncang Bali pagi ini.",
    published=None,
    source="Antara",
    source_url=None,
    feed="antara",
    lang=None,
)


def test_link_identity_ignores_tracking_fragment_case_and_feed() -> None:
    other = replace(
        BASE, link="HTTPS://E.ORG/a?utm_source=rss&utm_medium=x#top", feed="renamed", id="g-1"
    )
    assert item_key(other) == item_key(BASE)
    assert item_key(replace(BASE, link="https://e.org/b")) != item_key(BASE)


def test_google_news_identity_is_headline_and_publisher() -> None:
    gn = replace(BASE, link="https://news.google.com/rss/articles/CBMiAAA?oc=5", id="x1")
    again = replace(gn, link="https://news.google.com/rss/articles/CBMiBBB?oc=5", id="x2")
    assert item_key(gn) == item_key(again)  # new token, new guid: the same story
    assert item_key(replace(gn, source="Kompas")) != item_key(gn)
    assert item_key(replace(gn, title="Gempa di Lombok")) != item_key(gn)


def test_items_without_link_or_guid_are_keyed_by_headline() -> None:
    bare = replace(BASE, link=None, id="sha256:0123")
    edited = replace(bare, summary="Gempa M5.2 mengguncang Bali.", id="sha256:4567")
    assert item_key(bare) == item_key(edited)
    assert item_key(replace(bare, id="guid-1")) != item_key(replace(bare, id="guid-2"))


def test_key_items_folds_repeats_within_one_fetch() -> None:
    keyed = key_items(
        [
            BASE,
            replace(BASE, link="https://e.org/a?utm_campaign=z"),
            replace(BASE, link="https://e.org/c"),
        ]
    )
    assert len(keyed) == 2
