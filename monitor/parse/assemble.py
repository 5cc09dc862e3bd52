"""feedparser-shaped dicts -> ``ParsedFeed``: the one place where a feed's fields become an
item (title and summary as plain text, id, link, date, publisher, Google News cleanup).

The feedparser path and the fast paths both end here, so they share every step after parsing.
It may not parse bytes or XML: its input is the ``feed`` dict and ``entries`` list feedparser
would produce.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from monitor.parse.google_news import is_listing, related_headlines, strip_publisher
from monitor.parse.model import (
    MAX_ITEMS,
    MAX_SUMMARY_CHARS,
    MAX_TITLE_CHARS,
    FeedItem,
    ParsedFeed,
    fallback_id,
    has_content,
    http_link,
)
from monitor.parse.text import cap, collapse, html_to_text


def plain(detail: Mapping[str, Any] | None, value: str | None, *, limit: int) -> str:
    """Plain text of a feedparser text construct, honouring its declared type."""
    if not value:
        return ""
    kind = str((detail or {}).get("type", "") or "")
    if "html" in kind:
        return html_to_text(value, limit=limit)
    return cap(collapse(value), limit)


def _datetime(parsed: time.struct_time | None) -> datetime | None:
    if parsed is None:
        return None
    try:
        return datetime(*parsed[:6], tzinfo=UTC)
    except (TypeError, ValueError, OverflowError):
        return None


def _item(
    entry: dict[str, Any],
    *,
    feed_name: str,
    feed_title: str | None,
    feed_lang: str | None,
    base: str,
) -> FeedItem:
    raw_title = entry.get("title")
    title = plain(entry.get("title_detail"), raw_title if isinstance(raw_title, str) else None,
                   limit=MAX_TITLE_CHARS)  # fmt: skip

    source_info = entry.get("source")
    source = None
    source_url = None
    if isinstance(source_info, Mapping):
        source_title = source_info.get("title")
        if isinstance(source_title, str) and source_title.strip():
            source = collapse(source_title)[:MAX_TITLE_CHARS]
        source_url = http_link(source_info.get("href") or source_info.get("url"), base)

    description = entry.get("summary")
    description = description if isinstance(description, str) else ""
    summary_detail = entry.get("summary_detail")
    contents = entry.get("content")
    first_content = (
        contents[0] if isinstance(contents, list) and contents and isinstance(contents[0], Mapping)
        else None
    )  # fmt: skip
    if first_content is not None and (summary_detail is None or not description.strip()):
        # feedparser copies Atom <content> into "summary" without a summary_detail.
        value = first_content.get("value")
        if isinstance(value, str) and (value.strip() or not description.strip()):
            description = value
            summary_detail = first_content
    if summary_detail is None:
        summary_detail = {"type": "text/html"}  # RSS descriptions are HTML by convention
    summary = plain(summary_detail, description, limit=MAX_SUMMARY_CHARS)

    related: tuple[str, ...] = ()
    if source is not None:
        related = related_headlines(description, strip_publisher(title, source))
        title = strip_publisher(title, source)
        if is_listing(description):
            # The description only repeats headlines and publisher names (kept in title,
            # source and related); as a summary it would make rules match other outlets.
            summary = ""

    link = http_link(entry.get("link"), base)
    raw_id = entry.get("id")
    item_id = raw_id.strip() if isinstance(raw_id, str) else ""
    if not item_id:
        item_id = link or fallback_id(title, summary)

    # dict.get, not entry.get: FeedParserDict maps a missing "updated_parsed" to
    # "published_parsed" with a DeprecationWarning (feedparser issue 310).
    published = _datetime(dict.get(entry, "published_parsed")) or _datetime(
        dict.get(entry, "updated_parsed")
    )
    lang = None
    detail = entry.get("title_detail")
    if isinstance(detail, Mapping) and isinstance(detail.get("language"), str):
        lang = detail["language"] or None
    return FeedItem(
        id=item_id[:2048],
        link=link,
        title=title,
        summary=summary,
        published=published,
        source=source or feed_title,
        source_url=source_url,
        feed=feed_name,
        lang=lang or feed_lang,
        related=related,
    )


def _ttl(value: object) -> timedelta | None:
    if isinstance(value, str) and value.strip().isdigit() and len(value.strip()) < 8:
        minutes = int(value.strip())
        return timedelta(minutes=minutes) if minutes > 0 else None
    return None


def assemble(
    feed: Mapping[str, Any], entries: list[Any], *, feed_name: str, url: str
) -> ParsedFeed:
    """The ParsedFeed of feedparser-shaped ``feed`` and ``entries`` (the fast path's too)."""
    feed_title_raw = feed.get("title")
    feed_title = (
        plain(feed.get("title_detail"), feed_title_raw, limit=MAX_TITLE_CHARS)
        if isinstance(feed_title_raw, str)
        else ""
    ) or None
    feed_lang_raw = feed.get("language")
    feed_lang = collapse(feed_lang_raw)[:35] or None if isinstance(feed_lang_raw, str) else None
    base = url
    items = tuple(
        item
        for entry in entries[:MAX_ITEMS]
        if has_content(
            item := _item(
                entry, feed_name=feed_name, feed_title=feed_title, feed_lang=feed_lang, base=base
            )
        )
    )
    return ParsedFeed(
        title=feed_title,
        link=http_link(feed.get("link"), base),
        items=items,
        ttl=_ttl(feed.get("ttl")),
    )
