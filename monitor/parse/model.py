"""What the parse stage hands on: ``ParsedFeed`` of frozen ``FeedItem`` values, ``ParseError``,
the caps every format applies, and the few rules all formats share for building an item (links
made absolute and http(s) only, the fallback id, when an item is empty).

Imports nothing of the parse stage; every other module of it may import this one.
"""

from __future__ import annotations

import hashlib
import urllib.parse
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from monitor.errors import MonitorError

MAX_BODY_BYTES: Final = 16 * 1024 * 1024
"""Bodies above this are refused outright (the fetcher's own cap is lower by default)."""
MAX_TITLE_CHARS: Final = 1_000
MAX_SUMMARY_CHARS: Final = 4_000
MAX_ITEMS: Final = 2_000
"""A news feed lists tens of items; thousands are an archive dump or an attack."""


class ParseError(MonitorError):
    """The body is not a feed we can read; the message says why."""


@dataclass(frozen=True)
class FeedItem:
    id: str
    """guid/id if present, else the link, else a hash of title + summary."""
    link: str | None
    title: str
    """Plain text; a Google News " - Publisher" suffix is removed when it equals <source>."""
    summary: str
    """Description, summary or content as plain text, capped at MAX_SUMMARY_CHARS."""
    published: datetime | None
    """Aware UTC: published, else updated."""
    source: str | None
    """Publisher: RSS <source> (Google News), else the feed title."""
    source_url: str | None
    feed: str
    lang: str | None
    related: tuple[str, ...] = ()
    """Google News: headlines of the other articles listed in the description."""


@dataclass(frozen=True)
class ParsedFeed:
    title: str | None
    link: str | None
    items: tuple[FeedItem, ...]
    ttl: timedelta | None = None
    problem: str | None = None
    """Why only part of the feed could be read (malformed XML from which items were
    recovered), or None when it parsed whole."""


def http_link(value: object, base: str) -> str | None:
    if not isinstance(value, str):
        return None
    link = value.strip()
    if not link:
        return None
    try:
        link = urllib.parse.urljoin(base, link)
        scheme = urllib.parse.urlsplit(link).scheme
    except ValueError:
        return None
    return link if scheme in ("http", "https") else None


def fallback_id(title: str, summary: str) -> str:
    digest = hashlib.sha256(f"{title}\n{summary}".encode("utf-8", "surrogatepass")).hexdigest()
    return f"sha256:{digest[:32]}"


def has_content(item: FeedItem) -> bool:
    """Drop items with nothing to match or show (e.g. the cut-off tail of a truncated feed)."""
    return bool(item.title or item.summary or item.link)
