"""JSON Feed 1.0/1.1 (https://jsonfeed.org/version/1.1), read with the stdlib ``json``.

Bytes in, ``ParsedFeed`` out; it shares the item rules of ``model`` and the text helpers, and
touches neither XML nor feedparser.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from monitor.parse.model import (
    MAX_ITEMS,
    MAX_SUMMARY_CHARS,
    MAX_TITLE_CHARS,
    FeedItem,
    ParsedFeed,
    ParseError,
    fallback_id,
    has_content,
    http_link,
)
from monitor.parse.text import cap, collapse, html_to_text


def _json_date(value: object) -> datetime | None:
    if not isinstance(value, str) or len(value) > 64:
        return None
    try:
        when = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)  # RFC 3339 requires an offset; assume UTC if missing
    return when.astimezone(UTC)


def _json_text(value: object, limit: int) -> str:
    return cap(collapse(value), limit) if isinstance(value, str) else ""


def parse_json_feed(body: bytes, *, feed_name: str, url: str) -> ParsedFeed:
    """JSON Feed 1.0/1.1 (https://jsonfeed.org/version/1.1)."""
    try:
        doc = json.loads(body)
    except RecursionError as e:
        raise ParseError("not a feed: JSON nested too deeply") from e
    except (ValueError, UnicodeDecodeError) as e:
        raise ParseError(f"not a feed: invalid JSON: {e}"[:200]) from e
    if not isinstance(doc, dict):
        raise ParseError("not a feed: JSON document is not an object")
    version = doc.get("version")
    if not isinstance(version, str) or not version.startswith("https://jsonfeed.org/version/"):
        raise ParseError("not a feed: JSON without a JSON Feed version")
    raw_items = doc.get("items")
    if not isinstance(raw_items, list):
        raise ParseError("not a feed: JSON Feed without items")
    feed_title = _json_text(doc.get("title"), MAX_TITLE_CHARS) or None
    feed_lang = _json_text(doc.get("language"), 35) or None
    items: list[FeedItem] = []
    for raw in raw_items[:MAX_ITEMS]:
        if not isinstance(raw, dict):
            continue
        item = _json_item(
            raw, feed_name=feed_name, feed_title=feed_title, feed_lang=feed_lang, base=url
        )
        if has_content(item):
            items.append(item)
    return ParsedFeed(
        title=feed_title,
        link=http_link(doc.get("home_page_url"), url),
        items=tuple(items),
        ttl=None,
    )


def _json_item(
    raw: Mapping[str, Any],
    *,
    feed_name: str,
    feed_title: str | None,
    feed_lang: str | None,
    base: str,
) -> FeedItem:
    title = _json_text(raw.get("title"), MAX_TITLE_CHARS)
    summary = _json_text(raw.get("summary"), MAX_SUMMARY_CHARS)
    if not summary:
        summary = _json_text(raw.get("content_text"), MAX_SUMMARY_CHARS)
    if not summary and isinstance(raw.get("content_html"), str):
        summary = html_to_text(raw["content_html"])
    link = http_link(raw.get("url"), base) or http_link(raw.get("external_url"), base)
    raw_id = raw.get("id")
    # JSON Feed 1.0 allowed numeric ids; 1.1 says strings. Both identify the item.
    item_id = str(raw_id).strip() if isinstance(raw_id, str | int) else ""
    return FeedItem(
        id=(item_id or link or fallback_id(title, summary))[:2048],
        link=link,
        title=title,
        summary=summary,
        published=_json_date(raw.get("date_published")) or _json_date(raw.get("date_modified")),
        source=feed_title,
        source_url=None,
        feed=feed_name,
        lang=_json_text(raw.get("language"), 35) or feed_lang,
    )
