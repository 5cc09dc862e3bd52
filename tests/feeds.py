"""Build small RSS documents for tests, with publication dates relative to now.

Fixed dates in test files would age past ``max_age`` and turn tests that expect an alert into
tests that pass for the wrong reason; dates here are computed from the test's own clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from xml.sax.saxutils import escape


@dataclass(frozen=True)
class Entry:
    title: str
    link: str
    age: timedelta | None = timedelta(hours=1)  # None: the item has no date
    description: str = ""
    guid: str | None = None
    source: str | None = None  # Google News style <source>


def rss(entries: list[Entry], *, title: str = "Test feed", now: datetime | None = None) -> bytes:
    now = now or datetime.now(UTC)
    items = []
    for e in entries:
        parts = [f"<title>{escape(e.title)}</title>", f"<link>{escape(e.link)}</link>"]
        if e.description:
            parts.append(f"<description>{escape(e.description)}</description>")
        if e.guid:
            parts.append(f'<guid isPermaLink="false">{escape(e.guid)}</guid>')
        if e.age is not None:
            parts.append(f"<pubDate>{format_datetime(now - e.age)}</pubDate>")
        if e.source:
            parts.append(f'<source url="https://publisher.example">{escape(e.source)}</source>')
        items.append("<item>" + "".join(parts) + "</item>")
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0"><channel>'
        f"<title>{escape(title)}</title><link>https://example.org/</link>"
        "<description>test</description>" + "".join(items) + "</channel></rss>"
    ).encode()
