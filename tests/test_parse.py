"""The parse stage on feeds written for these tests (tests/data/feeds) and hostile inputs."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.errors import MonitorError
from monitor.parse import (
    MAX_SUMMARY_CHARS,
    FeedItem,
    ParsedFeed,
    ParseError,
    discover_feeds,
    google_news_url,
    html_to_text,
    parse_feed,
)
from monitor.parse.harden import _cap_author_fields, _strip_doctype
from tests.proptest import examples

DATA = Path(__file__).parent / "data" / "feeds"
URL = "https://kabar.example/feeds/main.xml"

# A guard against hangs, not a timing assertion: a regression in the caps turns into a failure
# instead of a stuck suite. Each of these inputs parses in well under a second when capped.
hang_guard = pytest.mark.timeout(20)


def parse(name: str, content_type: str | None = None) -> ParsedFeed:
    return parse_feed(
        (DATA / name).read_bytes(), feed_name="test", url=URL, content_type=content_type
    )


def rss(items: str, *, head: str = "") -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/"><channel><title>T</title>'
        f"{head}{items}</channel></rss>"
    ).encode()


# --- formats -----------------------------------------------------------------------------------


def test_rss20() -> None:
    feed = parse("rss20.xml")
    assert feed.title == "Kabar Contoh"
    assert feed.link == "https://kabar.example/"
    assert feed.ttl == timedelta(minutes=15)
    first, second, third, fourth = feed.items
    assert first == FeedItem(
        id="kabar-1001",
        link="https://kabar.example/gempa-bali",
        title="Gempa M5,2 guncang Bali & Lombok",
        summary="BMKG mencatat gempa pukul 09.30 WITA. Tidak berpotensi tsunami & warga diminta"
        " tenang.",
        published=datetime(2024, 4, 15, 2, 30, tzinfo=UTC),
        source="Kabar Contoh",
        source_url=None,
        feed="test",
        lang="id",
    )
    # A relative link is resolved against the feed URL; without a guid the link is the id.
    assert second.link == "https://kabar.example/ekonomi/harga-beras"
    assert second.id == second.link
    # Neither guid nor link: a stable hash of the content.
    assert third.link is None
    assert third.id.startswith("sha256:")
    assert third.id == parse("rss20.xml").items[2].id
    # Only http(s) links survive.
    assert fourth.link is None
    assert fourth.id == "kabar-1004"


def test_script_content_never_reaches_the_summary() -> None:
    assert "alert" not in parse("rss20.xml").items[0].summary


def test_atom() -> None:
    feed = parse("atom.xml")
    assert feed.title == "Example Atom"
    floods, receded = feed.items
    assert floods.id == "tag:atom.example,2024:floods"
    assert floods.title == "Floods hit Jakarta"
    assert floods.summary == "Heavy rain flooded north Jakarta."
    assert floods.published == datetime(2024, 4, 15, 1, 0, tzinfo=UTC)  # published, not updated
    assert floods.lang == "en"
    assert receded.summary == "Air mulai surut."  # xhtml <content> as plain text
    assert receded.published == datetime(2024, 4, 16, 1, 0, tzinfo=UTC)  # only <updated>
    assert receded.lang == "id"


def test_rss10() -> None:
    feed = parse("rss10.rdf")
    (item,) = feed.items
    assert item.title == "Wahl in Berlin"
    assert item.link == "https://rdf.example/a"
    assert item.published == datetime(2024, 4, 15, 10, 0, tzinfo=UTC)
    assert item.lang == "de"


def test_json_feed_1_1() -> None:
    feed = parse("feed.json")
    assert feed.title == "JSON News"
    assert feed.link == "https://json.example/"
    first, second, third, fourth = feed.items  # the non-object item is skipped
    assert first.title == "First item"
    assert first.summary == "Hello world & friends"
    assert first.published == datetime(2024, 4, 15, 3, 0, tzinfo=UTC)
    assert first.lang == "en"
    assert second.summary == "Short summary"
    assert second.published == datetime(2024, 4, 15, 11, 0, tzinfo=UTC)
    assert second.lang == "id"
    assert third.link == "https://elsewhere.example/3"
    assert third.title == ""
    assert fourth.id == "https://json.example/4"
    assert fourth.published is None


def test_json_feed_1_0_numeric_id() -> None:
    (item,) = parse("feed-v1.json").items
    assert item.id == "42"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b'{"title": "no version"}', "without a JSON Feed version"),
        (b"[1, 2]", "not an object"),
        (b'{"version": "https://jsonfeed.org/version/1.1"', "invalid JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b'{"version": "https://jsonfeed.org/version/1.1", "items": 3}', "without items"),
    ],
)
def test_bad_json(body: bytes, reason: str) -> None:
    with pytest.raises(ParseError, match=reason):
        parse_feed(body, feed_name="j", url=URL)


# --- Google News -------------------------------------------------------------------------------


def test_google_news_publisher_stripped_and_related_kept() -> None:
    first, second, third = parse("google_news.xml").items
    assert first.title == "Banjir rendam 20 RT di Jakarta Utara"
    assert first.source == "ANTARA News"
    assert first.source_url == "https://www.antaranews.com"
    assert first.related == (
        "Hujan deras, 20 RT di Jakarta terendam",
        "BPBD: genangan di Jakarta Utara mulai surut & warga kembali",
    )
    # The description only lists headlines; it is not a summary.
    assert first.summary == ""
    # Only the suffix equal to <source> goes; an earlier " - " in the headline stays.
    assert second.title == "Wawancara - Gubernur"
    assert second.related == ()
    # The suffix differs from <source> ("Tempo" vs "Tempo.co"): kept.
    assert third.title == "Pemprov siapkan pompa - Tempo"
    assert third.source == "Tempo.co"


def test_google_news_url() -> None:
    url = google_news_url('"banjir jakarta" OR rob', lang="id", country="ID", when="1d")
    parts = urlsplit(url)
    assert parts.scheme == "https"
    assert parts.netloc == "news.google.com"
    assert parts.path == "/rss/search"
    query = parse_qs(parts.query)
    assert query == {
        "q": ['"banjir jakarta" OR rob when:1d'],
        "hl": ["id"],
        "gl": ["ID"],
        "ceid": ["ID:id"],
    }
    assert " " not in url
    assert parse_qs(urlsplit(google_news_url("x")).query)["ceid"] == ["US:en"]


# --- encodings and odd framing -----------------------------------------------------------------


def test_iso_8859_1_without_any_declaration() -> None:
    feed = parse("latin1-undeclared.xml")
    assert feed.title == "Journal français"
    assert feed.items[0].title == "Café crème à Noël"
    assert feed.items[0].summary == "Déjà vu, garçon !"


def test_windows_1251_declared() -> None:
    feed = parse("windows-1251.xml")
    assert feed.items[0].title == "Привет, мир"


def test_charset_from_http_header_is_used() -> None:
    body = rss("<item><title>Ça va</title></item>").replace(b"utf-8", b"iso-8859-1")
    body = body.decode().encode("iso-8859-1")
    feed = parse_feed(body, feed_name="x", url=URL, content_type="text/xml; charset=ISO-8859-1")
    assert feed.items[0].title == "Ça va"


def test_utf8_served_as_charsetless_text_xml_is_not_read_as_ascii() -> None:
    # RFC 3023 would make this us-ascii; real servers mean "whatever the document says".
    body = rss("<item><title>Kabar terkini — Jakarta</title></item>")
    feed = parse_feed(body, feed_name="x", url=URL, content_type="text/xml")
    assert feed.items[0].title == "Kabar terkini — Jakarta"


def test_feed_served_as_text_html_still_parses() -> None:
    feed = parse("rss20.xml", content_type="text/html; charset=utf-8")
    assert len(feed.items) == 4


def test_leading_blank_lines_before_xml_declaration() -> None:
    feed = parse("leading-newline.xml")
    assert feed.title == "Leading blank lines"
    assert feed.items[0].id == "lead-1"  # guids are never resolved as URLs


def test_cdata_padded_with_whitespace() -> None:
    feed = parse("cdata-padded.xml")
    assert feed.title == "Tempo-like feed"
    (item,) = feed.items
    assert item.title == "Presiden resmikan bendungan baru"
    assert item.link == "https://cdata.example/bendungan"
    assert item.summary == "Bendungan baru diresmikan."


# --- hostile and broken input ------------------------------------------------------------------


@hang_guard
def test_entity_expansion_does_not_blow_up() -> None:
    feed = parse("entities.xml")
    (item,) = feed.items
    assert "lol" * 100 not in item.title
    assert len(item.summary) < 100


@hang_guard
def test_entity_declarations_after_a_long_prolog_are_stripped_too() -> None:
    body = (DATA / "entities.xml").read_bytes()
    declaration, rest = body.split(b"\n", 1)
    padded = declaration + b"\n<!--" + b" padding " * 2000 + b"-->\n" + rest
    (item,) = parse_feed(padded, feed_name="x", url=URL).items
    assert len(item.summary) < 100


def test_doctype_and_internal_subset_are_removed_before_feedparser() -> None:
    body = b'<?xml version="1.0"?>\n<!DOCTYPE rss [<!ENTITY a "b">\n<!ENTITY c "&a;&a;">]>\n<rss/>'
    assert _strip_doctype(body) == b'<?xml version="1.0"?>\n\n<rss/>'
    assert _strip_doctype(b'<!doctype rss SYSTEM "x.dtd"><rss/>') == b"<rss/>"
    assert _strip_doctype(b"<rss><!DOCTYPE inside></rss>") == b"<rss><!DOCTYPE inside></rss>"


@pytest.mark.parametrize(
    ("element", "inner"),
    [
        ("author", "a@" * 25_000),
        ("dc:creator", "<![CDATA[" + "b" * 50_000 + "]]>"),
        ("name", "&amp;" * 10_000),
        ("managingEditor", "é" * 25_000),
    ],
)
def test_author_like_fields_are_cut_before_feedparser(element: str, inner: str) -> None:
    # feedparser's author regex is quadratic: about 9 s for 50,000 characters uncapped.
    body = f"<rss><item><{element}>{inner}</{element.split()[0]}><title>t</title></item></rss>"
    capped = _cap_author_fields(body.encode())
    assert len(capped) < 1300
    assert capped.endswith(f"</{element}><title>t</title></item></rss>".encode())
    capped.decode("utf-8")  # never cut inside a UTF-8 sequence
    if "&amp;" in inner:
        assert capped.count(b"&") == capped.count(b"&amp;")  # never cut inside an entity


def test_utf16_with_bom() -> None:
    body = '<?xml version="1.0" encoding="utf-16"?>'.encode("utf-16") + rss(
        "<item><title>Dua ribu dua puluh</title></item>"
    ).split(b"?>", 1)[1].decode().encode("utf-16-le")
    assert parse_feed(body, feed_name="x", url=URL).items[0].title == "Dua ribu dua puluh"


@hang_guard
@pytest.mark.parametrize(
    "author",
    [
        "<author>{}</author>",
        "<dc:creator><![CDATA[{}]]></dc:creator>",
        "<dc:creator>{}</dc:creator>",
    ],
)
def test_50000_character_author_is_capped(author: str) -> None:
    body = rss("<item><title>x</title>" + author.format("a@" * 25_000) + "</item>")
    (item,) = parse_feed(body, feed_name="x", url=URL).items
    assert item.title == "x"


@hang_guard
def test_50000_character_atom_author_name() -> None:
    body = (
        '<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>t</title>'
        "<entry><title>x</title><author><name>" + "n" * 50_000 + "</name></author></entry></feed>"
    ).encode()
    assert parse_feed(body, feed_name="x", url=URL).items[0].title == "x"


@hang_guard
def test_unclosed_tags_in_a_description_are_linear() -> None:
    # 3.11's html.parser needs about 30 s for this; the tokenizer is linear.
    body = rss("<item><title>x</title><description>" + "&lt;a " * 100_000 + "</description></item>")
    (item,) = parse_feed(body, feed_name="x", url=URL).items
    assert item.summary == ""


@hang_guard
def test_tag_with_thousands_of_attributes_is_refused() -> None:
    attrs = " ".join(f'a{i}="v"' for i in range(50_000))
    body = rss(f"<item><title>x</title><link {attrs}>y</link></item>")
    with pytest.raises(ParseError, match="tag longer than 8 KiB"):
        parse_feed(body, feed_name="x", url=URL)


def test_long_text_inside_cdata_is_not_a_long_tag() -> None:
    image = '<img src="data:image/png;base64,' + "A" * 20_000 + '">'
    body = rss(
        f"<item><title>x</title><description><![CDATA[{image}<p>ok</p>]]></description></item>"
    )
    assert parse_feed(body, feed_name="x", url=URL).items[0].summary == "ok"


def test_summary_and_title_are_capped() -> None:
    body = rss(
        f"<item><title>{'judul ' * 1000}</title><description>{'kata ' * 5000}</description></item>"
    )
    (item,) = parse_feed(body, feed_name="x", url=URL).items
    assert len(item.title) <= 1000
    assert len(item.summary) <= MAX_SUMMARY_CHARS
    assert item.summary.endswith("…")


def test_truncated_xml_keeps_the_complete_items() -> None:
    feed = parse("truncated.xml")
    assert [item.id for item in feed.items] == ["cut-1", "cut-2"]


def test_truncated_before_any_item_is_an_error() -> None:
    with pytest.raises(ParseError, match=r"XML not well-formed at line 2"):
        parse("truncated-early.xml")


def test_html_page_is_not_a_feed() -> None:
    with pytest.raises(ParseError, match="not a feed: looks like an HTML page"):
        parse("page.html")


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "empty body"),
        (b"   \n ", "empty body"),
        (b"hello world", "not a feed"),
        (b"<html><body>hi</body></html>", "HTML page"),
        (b'<?xml version="1.0"?><note><to>x</to></note>', "not a feed"),
        (b"\x00\x01\x02 binary junk", "not a feed"),
    ],
)
def test_not_a_feed(body: bytes, reason: str) -> None:
    with pytest.raises(ParseError, match=reason):
        parse_feed(body, feed_name="x", url=URL)


def test_parse_error_is_a_monitor_error() -> None:
    assert issubclass(ParseError, MonitorError)


def test_empty_channel_is_a_feed_without_items() -> None:
    assert parse_feed(rss(""), feed_name="x", url=URL).items == ()


@settings(max_examples=examples(200), deadline=None)
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_raise_only_parse_error(body: bytes) -> None:
    with contextlib.suppress(ParseError):
        parse_feed(body, feed_name="x", url=URL)


@settings(max_examples=examples(200), deadline=None)
@given(st.text(alphabet=st.sampled_from(list("<>/&;!?-[]\"'= abcp#x\n")), max_size=400))
def test_arbitrary_markup_raises_only_parse_error(text: str) -> None:
    for body in (text.encode(), rss(f"<item><title>{text}</title></item>")):
        with contextlib.suppress(ParseError):
            parse_feed(body, feed_name="x", url=URL)


# --- plain text --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("markup", "text"),
    [
        ("<p>Hello <b>world</b></p><p>again</p>", "Hello world again"),
        ("a &amp; b &lt;c&gt; &#8212; &eacute;", "a & b <c> — é"),
        ("x<script>alert(1)</script>y", "x y".replace(" ", "")),
        ("<style>p{}</style>text", "text"),
        ("line<br>break", "line break"),
        ("1 < 2 and 3 > 2", "1 < 2 and 3 > 2"),
        ("unterminated <a href='x", "unterminated"),
        ("<!-- hidden -->shown<!-- never closed", "shown"),
        ("  spaced \n\t out  ", "spaced out"),
    ],
)
def test_html_to_text(markup: str, text: str) -> None:
    assert html_to_text(markup) == text


@given(st.text(max_size=300))
def test_html_to_text_output_is_collapsed(markup: str) -> None:
    text = html_to_text(markup)
    assert text == text.strip()
    assert "  " not in text
    assert len(text) <= MAX_SUMMARY_CHARS


# --- discovery ---------------------------------------------------------------------------------


def test_discover_feeds_from_an_html_page() -> None:
    body = (DATA / "page.html").read_bytes()
    assert discover_feeds(body, "https://kabar.example/") == [
        "https://kabar.example/news/rss.xml",  # relative to <base href>
        "https://kabar.example/atom.xml?x=1&y=2",  # entity in the attribute decoded
        "https://cdn.example/feed.json",
    ]


def test_discover_feeds_without_base_uses_page_url() -> None:
    body = b'<head><link rel="ALTERNATE" type="application/atom+xml" href="feed.atom"></head>'
    assert discover_feeds(body, "https://x.example/dir/page") == ["https://x.example/dir/feed.atom"]


def test_discover_feeds_none() -> None:
    assert discover_feeds(b"<html><head></head><body>no feeds</body></html>", "https://x/") == []
