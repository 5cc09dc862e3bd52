"""Real third-party feeds (``shared/fixtures/feeds`` next to the repository), parsed for real.

Without that folder these tests skip, or fail under ``CI=true`` (tests/fixturedata.py).

Expected values are read from the fixture itself with ``xml.etree`` (trusted, local files), so
each pairing checks the parser against the document rather than against a copy of its output.
"""

from __future__ import annotations

import email.utils
import xml.etree.ElementTree as ET
from datetime import UTC
from pathlib import Path

import pytest

from monitor.parse import ParsedFeed, ParseError, parse_feed
from tests.fixturedata import FEEDS as FIXTURES
from tests.fixturedata import fixture_files, require_fixtures

# Fixtures that are not feeds at all, and must say so.
NOT_FEEDS = {
    "rss-parser/unrecognized.rss": "not a feed",  # an HTML "Document Moved" page
    "feed-rs/rss_2.0_invalid_1.xml": "XML not well-formed",  # channel with no item, cut off
}


def parse(relative: str) -> ParsedFeed:
    path = require_fixtures(FIXTURES / relative)
    return parse_feed(
        path.read_bytes(), feed_name=path.stem, url=f"https://fixtures.example/{relative}"
    )


def raw_items(relative: str) -> list[ET.Element]:
    return ET.parse(FIXTURES / relative).getroot().findall("./channel/item")


def text(element: ET.Element, tag: str) -> str:
    child = element.find(tag)
    assert child is not None, tag
    return " ".join((child.text or "").split())


@pytest.mark.timeout(30)
@pytest.mark.parametrize("path", fixture_files(FIXTURES))
def test_every_fixture_parses_or_raises_parse_error(path: Path) -> None:
    require_fixtures(path)
    relative = str(path.relative_to(FIXTURES))
    try:
        feed = parse_feed(path.read_bytes(), feed_name=path.stem, url=path.as_uri())
    except ParseError as e:
        assert relative in NOT_FEEDS, f"{relative}: {e}"
        assert NOT_FEEDS[relative] in str(e)
        return
    assert relative not in NOT_FEEDS
    for item in feed.items:
        assert item.id
        assert item.title == item.title.strip()
        assert "\n" not in item.title
        assert "\t" not in item.summary
        assert item.published is None or item.published.tzinfo is UTC
        assert item.link is None or item.link.startswith(("http://", "https://"))


@pytest.mark.parametrize(
    "relative",
    [
        "bsuir-pythonhomework/google_news.xml",
        "souta-pqr-summary/google_news.xml",
        "prof18-rss-parser/feed-test-source.xml",
    ],
)
def test_google_news_titles_lose_exactly_the_publisher_suffix(relative: str) -> None:
    feed = parse(relative)
    raw = raw_items(relative)
    assert len(feed.items) == len(raw)
    for item, element in zip(feed.items, raw, strict=True):
        source = text(element, "source")
        assert item.source == source
        source_element = element.find("source")
        assert source_element is not None
        assert item.source_url == source_element.get("url")
        raw_title = text(element, "title")
        assert raw_title.endswith(f" - {source}")
        assert item.title == raw_title.removesuffix(f" - {source}")
    # Clusters keep their related headlines (the item's own and "full coverage" excluded).
    with_related = [item for item in feed.items if item.related]
    assert with_related
    for item in with_related:
        assert item.title not in item.related
        assert not any("full coverage" in headline for headline in item.related)


def test_google_news_cluster_counts() -> None:
    # SOURCES.md: 34 of 38 items carry a cluster; 28 of 30 in the Japanese capture.
    assert sum(bool(i.related) for i in parse("bsuir-pythonhomework/google_news.xml").items) == 34
    assert sum(bool(i.related) for i in parse("souta-pqr-summary/google_news.xml").items) == 28


def test_google_news_double_suffix_is_stripped_once() -> None:
    # Yahoo! News headlines already end in " - Yahoo!ニュース"; Google News adds another.
    feed = parse("souta-pqr-summary/google_news.xml")
    doubled = [i for i in feed.items if i.source == "Yahoo!ニュース"]
    assert doubled
    assert all(i.title.endswith(" - Yahoo!ニュース") for i in doubled)


def test_antara_dates_converted_from_plus_0700_to_utc() -> None:
    relative = "newsaggregatortartar-antara/antara.xml"
    feed = parse(relative)
    raw = raw_items(relative)
    assert len(feed.items) == 20
    for item, element in zip(feed.items, raw, strict=True):
        pub = text(element, "pubDate")
        assert pub.endswith("+0700")
        assert item.published == email.utils.parsedate_to_datetime(pub).astimezone(UTC)
    assert feed.items[0].published is not None
    assert feed.items[0].published.hour == 2  # 09:45:21 +0700
    assert all("<img" not in item.summary for item in feed.items)


def test_tempo_cdata_titles_are_stripped() -> None:
    relative = "twitter-clustering-tempo/tempo.xml"
    feed = parse(relative)
    raw = raw_items(relative)
    assert len(feed.items) == 50
    for item, element in zip(feed.items, raw, strict=True):
        assert item.title == text(element, "title")
        assert item.title
        assert item.link is not None
        assert item.link.startswith("https://www.tempo.co/")


def test_detik_descriptions_are_plain_text() -> None:
    feed = parse("tubes1-detik/detik.xml")
    assert len(feed.items) == 25
    for item in feed.items:
        assert "<" not in item.summary
        assert "&lt;" not in item.summary
    assert feed.items[0].lang == "en"  # declared (wrongly) by the feed; reported as declared


@pytest.mark.parametrize(
    ("relative", "expected"),
    [
        ("miniflux/encoding_WINDOWS-1251.xml", "Цитата"),
        ("miniflux/no_encoding_ISO-8859-1.xml", "é"),
        ("feed-rs/rss_1.0_iso8859.xml", "ö"),
        ("greatfire-zh/bbc.xml", "萨达姆"),
    ],
)
def test_encodings(relative: str, expected: str) -> None:
    feed = parse(relative)
    assert any(expected in item.title + item.summary for item in feed.items)
    assert not any("\ufffd" in item.title for item in feed.items)


def test_html_wrapped_atom_feed_is_still_read() -> None:
    # An Atom <feed> inside an XHTML page: items come out, so it counts as a feed.
    feed = parse("feedjira/DuplicateContentAtomFeed.xml")
    assert feed.items
