"""The RSS 2.0 fast path: a plain UTF-8 RSS 2.0 document read with xml.etree into the very dicts
feedparser would build, or ``Decline`` where that is not certain.

It may read only hardened bytes, and hands its dicts to ``assemble``; it builds no item itself.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, Final

from feedparser.datetimes import _parse_date as _fp_parse_date

from monitor.parse.assemble import assemble
from monitor.parse.fastxml import (
    ENTITY_REF,
    FP,
    Decline,
    fp_key,
    fp_text,
    inert,
    is_utf8,
    namespace_prefixes,
    no_attributes,
)
from monitor.parse.model import ParsedFeed

# Handled elements that do not touch any field we read, inside <item> and <channel> (leaves).
_FP_INERT_ITEM: Final = frozenset(
    {"category", "author", "enclosure", "dc_creator", "dc_subject", "dc_rights", "dc_publisher",
     "dc_language", "media_content", "media_thumbnail", "media_credit", "media_category",
     "media_keywords", "media_rating", "media_restriction", "media_license", "dcterms_created",
     "itunes_author", "itunes_category", "itunes_subtitle", "itunes_keywords", "itunes_explicit",
     "itunes_block", "itunes_image", "itunes_email", "itunes_name", "copyright", "rights"}
)  # fmt: skip
_FP_INERT_CHANNEL: Final = frozenset(
    {"description", "copyright", "managingeditor", "webmaster", "pubdate", "lastbuilddate",
     "category", "generator", "cloud", "dc_creator", "dc_subject", "dc_rights", "dc_publisher",
     "dc_date", "dcterms_modified", "dcterms_created", "author", "rights", "subtitle",
     "feedburner_browserfriendly", "itunes_author", "itunes_category", "itunes_subtitle",
     "itunes_keywords", "itunes_explicit", "itunes_block", "itunes_image"}
)  # fmt: skip
_IMAGE_CHILDREN: Final = frozenset({"url", "title", "link", "width", "height", "description"})
_TEXTINPUT_CHILDREN: Final = frozenset({"title", "link", "description", "name"})
# RFC 822 dates in the one shape feedparser's w3dtf parser rejects and its rfc822 parser
# reads field by field (day name ignored, numeric zone as hours and minutes).
_RFC822: Final = re.compile(
    r"(?:(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), )?(\d{1,2}) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct"
    r"|Nov|Dec) (\d{4}) (\d{2}):(\d{2})(?::(\d{2}))? ([+-]\d{4}|GMT|UTC?|Z|[ECMP][SD]T)"
)
_MONTHS: Final = {
    m: i
    for i, m in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1
    )
}
_ZONES: Final = {"GMT": 0, "UT": 0, "UTC": 0, "Z": 0, "EST": -5, "EDT": -4, "CST": -6,
                 "CDT": -5, "MST": -7, "MDT": -6, "PST": -8, "PDT": -7}  # fmt: skip


def _text_type(raw: str) -> str:
    """feedparser's type for an RSS text element: plain unless it looks like HTML."""
    if ("<" in raw or "&" in raw) and FP.looks_like_html(raw):
        return "text/html"
    return "text/plain"


def _rfc822_date(value: str) -> tuple[int, ...] | None:
    """feedparser's published_parsed for an RSS pubDate.

    The usual shape ("Mon, 15 Apr 2024 09:30:00 +0700") is read here, as feedparser's rfc822
    parser reads it (its w3dtf parser, tried first, rejects that shape); any other string, and
    any date that does not exist, goes to feedparser's own date parsers: the same function on
    the same string, so the same result, only slower.
    """
    if not value:
        return None
    match = _RFC822.fullmatch(value)
    if match is not None:
        day, month, year, hour, minute, second, zone = match.groups()
        if zone[0] in "+-":
            hours, minutes = int(zone[1:3]), int(zone[3:5])
            if zone[0] == "-":
                hours, minutes = -hours, -minutes
        else:
            hours, minutes = _ZONES[zone], 0
        try:
            stamp = datetime(int(year), _MONTHS[month], int(day), int(hour), int(minute),
                             int(second or 0))  # fmt: skip
            return tuple((stamp - timedelta(hours=hours, minutes=minutes)).utctimetuple())
        except (ValueError, OverflowError):
            pass
    parsed = _fp_parse_date(value)
    return None if parsed is None else tuple(parsed)


def _check_leaves(element: ET.Element, names: frozenset[str], prefixes: Mapping[str, str]) -> None:
    for child in element:
        if fp_key(child.tag, prefixes) not in names or len(child):
            raise Decline("unexpected element in image/textInput")


def parse_rss(
    data: bytes, *, feed_name: str, url: str, content_type: str | None
) -> ParsedFeed | None:
    if not is_utf8(data, content_type):
        raise Decline("not UTF-8")
    head = data[:4096]
    if b"<rss" not in head:
        raise Decline("not RSS")
    try:
        root = ET.fromstring(data)
    except ET.ParseError as e:
        raise Decline("not well-formed") from e
    if root.tag != "rss" or len(root) != 1 or root[0].tag != "channel":
        raise Decline("not a plain RSS 2.0 document")
    no_attributes(root, frozenset({"version"}))
    channel = root[0]
    no_attributes(channel)
    for element in root.iter():
        for name in element.attrib:
            if name.rpartition("}")[2].rpartition(":")[2].lower() == "base":
                # feedparser resolves links against xml:base, and does not always restore the
                # outer base when the element ends.
                raise Decline("xml:base")
    prefixes = namespace_prefixes(data) if b"xmlns" in data else {}

    feed: dict[str, Any] = {}
    entries: list[dict[str, Any]] = []
    seen: set[str] = set()
    for child in channel:
        key = fp_key(child.tag, prefixes)
        if key == "item":
            entries.append(_fast_rss_item(child, prefixes))
            continue
        if key == "link" and child.tag != "link":
            _atom_link(child)
            continue
        if key in ("title", "link", "ttl", "language", "dc_language"):
            no_attributes(child)
            if key in seen and key not in ("language", "dc_language"):
                raise Decline(f"second <{key}> in channel")
            seen.add(key)
        if key == "title":
            raw = (child.text or "").strip()
            feed["title"] = fp_text(child)
            feed["title_detail"] = {"type": _text_type(raw), "language": None}
        elif key == "link":
            feed["link"] = ENTITY_REF.sub(r"&\g<1>", fp_text(child, uri=True))
        elif key in ("language", "dc_language"):
            feed["language"] = fp_text(child)  # both are filed as "language"; the last wins
        elif key == "ttl":
            feed["ttl"] = fp_text(child)
        elif key == "image":
            no_attributes(child)
            _check_leaves(child, _IMAGE_CHILDREN, prefixes)
        elif key == "textinput":
            no_attributes(child)
            _check_leaves(child, _TEXTINPUT_CHILDREN, prefixes)
        elif key in ("skiphours", "skipdays"):
            _check_leaves(child, frozenset({"hour", "day"}), prefixes)
        else:
            inert(child, key, _FP_INERT_CHANNEL)
    if not entries:
        raise Decline("no items")  # feedparser words the errors
    return assemble(feed, entries, feed_name=feed_name, url=url)


def _atom_link(element: ET.Element) -> None:
    """An Atom <link> inside RSS: passed only when it cannot become the link (rel="self")."""
    attrs = element.attrib
    if len(element) or not attrs.get("href") or "url" in attrs or "uri" in attrs:
        raise Decline("atom:link that may set the link")
    if attrs.get("rel", "alternate").lower() == "alternate":
        raise Decline("atom:link rel=alternate")
    no_attributes(element, frozenset({"href", "rel", "type", "title", "hreflang", "length"}))


def _fast_rss_item(item: ET.Element, prefixes: Mapping[str, str]) -> dict[str, Any]:
    for name in item.attrib:
        # rdf:about becomes the id, lastmod and href dates and links (feedparser _cdf_common),
        # lang the language of the title; anything else (turbo="true") is ignored.
        if name.rpartition("}")[2].rpartition(":")[2].lower() in ("about", "lastmod", "href",
                                                                   "lang"):  # fmt: skip
            raise Decline("item attributes feedparser reads")
    entry: dict[str, Any] = {}
    seen: set[str] = set()
    guid_link: str | None = None
    media_title = False
    updated = False
    content: str | None = None
    for child in item:
        key = fp_key(child.tag, prefixes)
        if key == "link" and child.tag != "link":
            _atom_link(child)
            continue
        if key in ("title", "link", "description", "guid", "pubdate", "source", "content_encoded"):
            if key in seen:
                raise Decline(f"second <{key}> in an item")
            seen.add(key)
        if key == "title":
            no_attributes(child)
            raw = (child.text or "").strip()
            entry["title"] = fp_text(child)
            entry["title_detail"] = {"type": _text_type(raw), "language": None}
        elif key == "description":
            no_attributes(child)
            entry["summary"] = fp_text(child)
            entry["summary_detail"] = {"type": "text/html"}
        elif key == "content_encoded":
            no_attributes(child)
            content = fp_text(child)
        elif key == "link":
            no_attributes(child)
            link = fp_text(child, uri=True).replace("&amp;", "&")
            entry["link"] = ENTITY_REF.sub(r"&\g<1>", link)
        elif key == "guid":
            if child.tag != "guid":
                raise Decline("namespaced guid")
            no_attributes(child, frozenset({"isPermaLink"}))
            is_link = child.get("isPermaLink", "true") == "true"
            entry["id"] = fp_text(child, uri=is_link)
            if is_link:
                guid_link = entry["id"]
        elif key == "pubdate":
            no_attributes(child)
            entry["published_parsed"] = _rfc822_date(fp_text(child))
        elif key == "source":
            no_attributes(child, frozenset({"url"}))
            source: dict[str, str] = {}
            if "url" in child.attrib:
                source["href"] = child.attrib["url"]
            title = fp_text(child)
            if title:
                source["title"] = title
            entry["source"] = source
        elif key == "media_title":
            if len(child):
                raise Decline("nested media:title")
            media_title = True
        elif key in ("dc_date", "dcterms_modified", "updated"):
            if len(child):
                raise Decline("nested date")
            updated = True
        elif key in ("media_group", "media_content"):
            # Containers for media leaves (credits, thumbnails) that feedparser files apart.
            for grandchild in child:
                inert(grandchild, fp_key(grandchild.tag, prefixes), _FP_INERT_ITEM)
        else:
            inert(child, key, _FP_INERT_ITEM)
    if media_title and (not entry.get("title") or "source" in seen):
        # A non-empty <title> makes feedparser skip media:title, unless <source> reset that.
        raise Decline("media:title may stand in for the title")
    if updated and entry.get("published_parsed") is None:
        raise Decline("dc:date may stand in for pubDate")
    if content is not None:
        # feedparser keeps content:encoded as content and copies it into an absent summary;
        # assemble prefers it over a blank description.
        description = entry.get("summary")
        if not description:
            entry["summary"] = content
            entry["summary_detail"] = {"type": "text/html"}
    if guid_link is not None and "link" not in seen:
        entry["link"] = guid_link
    return entry
