"""Feed discovery: the feed URLs an HTML page advertises in its ``<head>``.

Reads HTML with the tokenizer of ``text``; it may not fetch (the caller fetches) or parse feeds.
"""

from __future__ import annotations

from typing import Final

from monitor.parse.model import http_link
from monitor.parse.text import Tag, attrs, tokens

_FEED_TYPES: Final = frozenset(
    {
        "application/rss+xml",
        "application/atom+xml",
        "application/feed+json",
        "application/rdf+xml",
        "application/json",
    }
)


def discover_feeds(body: bytes, base_url: str) -> list[str]:
    """Feed URLs advertised by an HTML page (``<link rel="alternate" type="...">``), absolute."""
    text = body[: 2 * 1024 * 1024].decode("utf-8", "replace")
    base = base_url
    found: list[str] = []
    for token in tokens(text):
        if not isinstance(token, Tag) or token.closing:
            continue
        if token.name == "body":
            break  # feed links live in <head>
        if token.name not in ("link", "base"):
            continue
        a = attrs(token.attrs[:8192])
        if token.name == "base":
            base = http_link(a.get("href"), base_url) or base
            continue
        rels = a.get("rel", "").lower().split()
        kind = a.get("type", "").lower().split(";")[0].strip()
        if "alternate" not in rels or kind not in _FEED_TYPES:
            continue
        if kind == "application/json" and "feed" not in a.get("title", "").lower():
            continue  # plain JSON alternates are usually oEmbed/API links, not feeds
        link = http_link(a.get("href"), base)
        if link and link not in found:
            found.append(link)
    return found
