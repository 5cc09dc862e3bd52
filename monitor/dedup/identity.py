"""Item identity: decides whether an item is new or one already seen (stories: ``stories.py``).

An item's key must survive what feeds do to their items between fetches, so that "one alert per
item and rule" holds across restarts, feed renames and the same item arriving through two feeds:

- Google News items are keyed by headline + publisher: their links are opaque redirect tokens and
  their guids are not stable for some publishers, so neither identifies the story.
- Other items are keyed by their canonical link (``monitor.normalize.canonical_url``: tracking
  parameters, host prefixes, AMP forms and redirect wrappers folded, route fragments kept), so
  the same article from two feeds, or with a different tracking tag, is one item.
- Items without a link fall back to their guid; items with neither are keyed by headline and
  publisher, so an edited description does not make them new.

Keys are hashed to a fixed length; the prefix says which identity was used, for debugging.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from urllib.parse import urlsplit

from monitor.normalize import canonical_url, fold, normalize_headline
from monitor.parse import FeedItem

GOOGLE_NEWS_HOSTS = frozenset({"news.google.com"})


def _digest(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).hexdigest()


def is_google_news(item: FeedItem) -> bool:
    host = urlsplit(item.link or "").hostname or ""
    return host in GOOGLE_NEWS_HOSTS


def item_key(item: FeedItem) -> str:
    """The identity an item is remembered by (see the module docstring for why)."""
    if is_google_news(item) and item.title:
        publisher = fold(item.source or "")
        return "gn:" + _digest(normalize_headline(item.title) + "\x1f" + publisher)
    if item.link:
        return "url:" + _digest(canonical_url(item.link))
    if item.id.startswith("sha256:") and item.title:
        # Neither link nor guid: the parser's fallback id hashes the summary too, and a feed
        # that edits a description would make the item look new. The headline is the story.
        return "hl:" + _digest(normalize_headline(item.title) + "\x1f" + fold(item.source or ""))
    return "id:" + _digest(item.id)


@dataclass(frozen=True)
class Keyed:
    """An item with its identity; items of one fetch that share a key are folded into the first."""

    key: str
    item: FeedItem


def key_items(items: tuple[FeedItem, ...] | list[FeedItem]) -> list[Keyed]:
    out: list[Keyed] = []
    seen: set[str] = set()
    for item in items:
        key = item_key(item)
        if key not in seen:
            seen.add(key)
            out.append(Keyed(key, item))
    return out
