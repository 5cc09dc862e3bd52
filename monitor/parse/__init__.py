"""Parse stage: feed bytes -> frozen, typed feed items.

This package's face: the public names other stages import, and ``parse_feed``, which picks the
path a body takes. One module per step or format, each owning one thing:

- ``model``: ``FeedItem``, ``ParsedFeed``, ``ParseError``, the ``MAX_*`` caps;
- ``harden``: the pre-pass every XML parser's input gets (DOCTYPE, author caps, tag lengths);
- ``text``: HTML to plain text (a linear tokenizer; no backtracking regex touches markup);
- ``rss_fast``, ``atom_fast``: plain UTF-8 RSS 2.0 and Atom 1.0 on xml.etree, returning exactly
  feedparser's result or declining (``fastxml`` holds what they share);
- ``fallback``: feedparser, for everything else, and the definition of a correct result;
- ``assemble``: feedparser-shaped dicts -> items, shared by the fast paths and feedparser;
- ``jsonfeed``, ``google_news``, ``discover``: JSON Feed, Google News quirks, feed discovery.

The caps bound the parse time (no worker process): ``tests/test_parse.py`` feeds every known
slow path (entity expansion, a 50,000-character ``<author>``, deep nesting, megabytes of markup)
through ``parse_feed`` under a pytest-timeout guard, and ``python -m benchmarks parse`` measures
them. This module may not parse anything itself: it only dispatches.
"""

from __future__ import annotations

from monitor.parse.atom_fast import parse_atom
from monitor.parse.discover import discover_feeds
from monitor.parse.fallback import parse_with_feedparser
from monitor.parse.fastxml import Decline
from monitor.parse.google_news import google_news_url
from monitor.parse.harden import harden, sniff
from monitor.parse.jsonfeed import parse_json_feed
from monitor.parse.model import (
    MAX_BODY_BYTES,
    MAX_ITEMS,
    MAX_SUMMARY_CHARS,
    MAX_TITLE_CHARS,
    FeedItem,
    ParsedFeed,
    ParseError,
)
from monitor.parse.rss_fast import parse_rss
from monitor.parse.text import html_to_text

__all__ = [
    "MAX_BODY_BYTES",
    "MAX_ITEMS",
    "MAX_SUMMARY_CHARS",
    "MAX_TITLE_CHARS",
    "FeedItem",
    "ParseError",
    "ParsedFeed",
    "discover_feeds",
    "google_news_url",
    "html_to_text",
    "parse_feed",
]


def parse_feed(
    body: bytes, *, feed_name: str, url: str, content_type: str | None = None, fast: bool = True
) -> ParsedFeed:
    """Parse RSS 0.9x/1.0/2.0, Atom or JSON Feed bytes. Raises :class:`ParseError` only.

    ``fast=False`` skips the expat fast path (:func:`_fast_parse`) and always runs feedparser,
    which defines the result; the differential tests compare the two.
    """
    if len(body) > MAX_BODY_BYTES:
        raise ParseError(f"body larger than {MAX_BODY_BYTES // (1024 * 1024)} MiB")
    if not body.strip():
        raise ParseError("empty body")
    kind = sniff(body)
    if kind == "json":
        return parse_json_feed(body, feed_name=feed_name, url=url)
    if kind == "junk":
        raise ParseError("not a feed: neither XML nor JSON")
    try:
        parsed = _parse_xml_feed(
            body,
            feed_name=feed_name,
            url=url,
            content_type=content_type,
            fast=fast and kind == "xml",
        )
    except ParseError:
        if kind == "html":
            raise ParseError("not a feed: looks like an HTML page") from None
        raise
    except RecursionError as e:
        raise ParseError("feed nested too deeply") from e
    except Exception as e:  # feedparser is lenient but not total; one bad feed must not escape
        raise ParseError(f"cannot parse feed: {type(e).__name__}: {e}"[:300]) from e
    if kind == "html" and not parsed.items:
        # An HTML page with a feed inside (seen in the wild, e.g. an Atom <feed> in an XHTML
        # page) is accepted only if items came out of it.
        raise ParseError("not a feed: looks like an HTML page")
    return parsed


def _parse_xml_feed(
    body: bytes, *, feed_name: str, url: str, content_type: str | None, fast: bool = True
) -> ParsedFeed:
    data = harden(body)
    if fast:
        try:
            quick = _fast_parse_hardened(data, feed_name=feed_name, url=url,
                                         content_type=content_type)  # fmt: skip
        except Exception:  # a fast-path bug must cost speed, never a feed
            quick = None
        if quick is not None:
            return quick
    return parse_with_feedparser(data, feed_name=feed_name, url=url, content_type=content_type)


def _fast_parse(
    body: bytes, *, feed_name: str, url: str, content_type: str | None = None
) -> ParsedFeed | None:
    """The fast path's result for ``body``, or None where it declines (feedparser decides).

    Raises :class:`ParseError` only where ``parse_feed`` would refuse the bytes before parsing.
    """
    if len(body) > MAX_BODY_BYTES or not body.strip() or sniff(body) != "xml":
        return None
    return _fast_parse_hardened(
        harden(body), feed_name=feed_name, url=url, content_type=content_type
    )


def _fast_parse_hardened(
    data: bytes, *, feed_name: str, url: str, content_type: str | None
) -> ParsedFeed | None:
    # The root element decides; each path checks the rest and declines what it cannot promise.
    fast = parse_rss if b"<rss" in data[:4096] else parse_atom
    try:
        return fast(data, feed_name=feed_name, url=url, content_type=content_type)
    except Decline:
        return None
