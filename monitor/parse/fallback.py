"""The feedparser path: every XML feed the fast paths decline (RSS 0.9x/1.0, Atom 0.3, odd
encodings, malformed XML), and the definition of a correct result for the fast paths.

Owns the call to feedparser and its arguments. feedparser is only ever handed the hardened bytes
(``io.BytesIO``): given a string it may fetch a URL or read a local file. It may not read the
network, the file system or unhardened bytes, and it turns feedparser's dicts into items through
``assemble`` only.
"""

from __future__ import annotations

import dataclasses
import io

import feedparser

from monitor.parse.assemble import assemble
from monitor.parse.model import ParsedFeed, ParseError


def _feedparser_headers(content_type: str | None) -> dict[str, str]:
    """Headers for feedparser's encoding detection (it is never told to fetch anything).

    Only an explicit charset from HTTP is passed on: RFC 3023 makes a charset-less ``text/xml``
    mean US-ASCII, which breaks every UTF-8 feed served that way; and a feed mislabelled
    ``text/html`` would be flagged non-XML. The XML declaration and BOM decide otherwise.
    """
    # No content-location: feedparser would resolve guids against it ("lead-1" becoming
    # "https://host/lead-1"); links are made absolute by http_link instead.
    headers = {"content-type": "application/xml"}
    if content_type:
        for param in content_type.split(";")[1:]:
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "charset" and value.strip().strip("\"'"):
                headers["content-type"] = f"application/xml; charset={value.strip().strip(chr(34))}"
    return headers


def _syntax_error(exc: object) -> str:
    line = getattr(exc, "getLineNumber", None)
    message = getattr(exc, "getMessage", None)
    where = f" at line {line()}" if callable(line) else ""
    what = f": {message()}" if callable(message) else ""
    return f"XML not well-formed{where}{what}"


def parse_with_feedparser(
    data: bytes, *, feed_name: str, url: str, content_type: str | None
) -> ParsedFeed:
    """feedparser's reading of hardened ``data``; raises :class:`ParseError` for a non-feed."""
    parsed = feedparser.parse(
        io.BytesIO(data),
        response_headers=_feedparser_headers(content_type),
        sanitize_html=False,  # we reduce everything to plain text ourselves
        resolve_relative_uris=False,  # links inside summaries are dropped with the markup
    )
    feed = parsed.get("feed") or {}
    entries = parsed.get("entries") or []
    version = parsed.get("version") or ""
    if not entries:
        if parsed.get("bozo"):
            exc = parsed.get("bozo_exception")
            if hasattr(exc, "getLineNumber"):
                raise ParseError(_syntax_error(exc) + " (no items)")
            if not version:
                raise ParseError("not a feed: no RSS, Atom or RDF root element")
        if not version:
            raise ParseError("not a feed: no RSS, Atom or RDF root element")

    result = assemble(feed, entries, feed_name=feed_name, url=url)
    exc = parsed.get("bozo_exception") if parsed.get("bozo") else None
    if hasattr(exc, "getLineNumber"):
        # Not well-formed, yet items came out: feedparser's loose parser recovered what it
        # could (a body cut off halfway, say). The feed works, but not whole: "degraded".
        return dataclasses.replace(result, problem=_syntax_error(exc) + " (items recovered)")
    return result
