"""Parse stage: feed bytes -> frozen, typed feed items.

feedparser does the RSS/Atom/RDF work, but it is only ever handed bytes (``io.BytesIO``):
given a string it may fetch a URL or read a local file. JSON Feed is read with the stdlib.
Plain UTF-8 RSS 2.0 takes a fast path first (``_fast_parse``: xml.etree on the same hardened
bytes, about 4x cheaper) that returns exactly feedparser's result or declines to feedparser.

Hostile input is made harmless *before* feedparser sees it, and the caps are what bound the
parse time (no worker process): ``tests/test_parse.py`` feeds every known slow path (entity
expansion, a 50,000-character ``<author>``, deep nesting, megabytes of markup) through
``parse_feed`` under a pytest-timeout guard, and ``python -m benchmarks parse`` measures them.

- ``<!DOCTYPE`` with an internal subset is removed: no entity is ever defined, so neither
  expat nor feedparser's loose parser can expand one (billion laughs; feedparser's own
  expansion when expat gives up is quadratic).
- Author-like fields are cut to ``_MAX_AUTHOR_BYTES``: feedparser runs an e-mail regex over
  the author that is quadratic in its length (about 9 s for 50,000 characters).
- Whitespace before ``<?xml`` is dropped (expat rejects a late declaration and feedparser then
  falls back to its slower, looser parser).
- HTML in titles and summaries is turned into plain text by a small linear tokenizer on input
  cut to ``_MAX_HTML_CHARS`` (CPython 3.11's ``html.parser`` is quadratic on some inputs); no
  backtracking regex touches untrusted markup.
- A start tag longer than ``_MAX_TAG_BYTES`` is refused: expat hands attributes to feedparser
  through a lookup that is quadratic in their number (25 s for one tag with 50,000).
"""

from __future__ import annotations

import contextlib
import hashlib
import html
import io
import json
import re
import time
import urllib.parse
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import feedparser
from feedparser.datetimes import _parse_date as _fp_parse_date
from feedparser.html import _cp1252
from feedparser.mixin import _FeedParserMixin

from monitor.errors import MonitorError

__all__ = [
    "FeedItem",
    "ParseError",
    "ParsedFeed",
    "discover_feeds",
    "google_news_url",
    "html_to_text",
    "parse_feed",
]

MAX_BODY_BYTES: Final = 16 * 1024 * 1024
"""Bodies above this are refused outright (the fetcher's own cap is lower by default)."""
MAX_TITLE_CHARS: Final = 1_000
MAX_SUMMARY_CHARS: Final = 4_000
MAX_ITEMS: Final = 2_000
"""A news feed lists tens of items; thousands are an archive dump or an attack."""
_MAX_HTML_CHARS: Final = 64 * 1024
_MAX_AUTHOR_BYTES: Final = 1024
_MAX_TAG_BYTES: Final = 8 * 1024
_MAX_RELATED: Final = 20

# Local names of elements feedparser turns into an author string (and runs its regex on).
_AUTHORISH: Final = (
    b"author",
    b"creator",
    b"name",
    b"email",
    b"managingEditor",
    b"webMaster",
    b"contributor",
    b"publisher",
)
# Bounded quantifiers only: every match attempt costs at most a few KiB of scanning.
_AUTHOR_START: Final = re.compile(
    rb"<((?:[A-Za-z_][\w.-]{0,40}:)?(?:" + b"|".join(_AUTHORISH) + rb"))(?=[\s/>])[^<>]{0,1024}>",
    re.IGNORECASE,
)


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


# --- plain text from HTML --------------------------------------------------------------------


# A small linear tokenizer instead of html.parser: CPython 3.11's HTMLParser is quadratic on
# runs of unclosed start tags (30 s for 120 KB of "<a "; CVE-2025-6069 and friends, fixed only
# in later patch releases). Every scan below moves forward, so the work is linear in the input.
_TAG_NAME: Final = re.compile(r"[A-Za-z][A-Za-z0-9:_-]{0,40}")
_RAW_TEXT: Final = frozenset({"script", "style", "template", "noscript", "textarea", "title"})
_BLOCK: Final = frozenset(
    {"p", "div", "br", "li", "ul", "ol", "tr", "td", "th", "h1", "h2", "h3", "h4", "h5", "h6",
     "blockquote", "section", "article", "header", "footer", "table", "hr", "dd", "dt", "img",
     "figure", "figcaption", "pre"}
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class _Tag:
    name: str  # lower case
    closing: bool
    attrs: str  # raw attribute text, unparsed


def _tokens(markup: str) -> Iterator[str | _Tag]:
    """Text runs (entities still encoded) and tags of an HTML fragment, in order."""
    n = len(markup)
    i = 0
    gt = -1  # cached position of the next ">" at or after the current tag start
    lower: str | None = None
    while i < n:
        lt = markup.find("<", i)
        if lt < 0:
            yield markup[i:]
            return
        if lt > i:
            yield markup[i:lt]
        if markup.startswith("<!--", lt):
            close = markup.find("-->", lt + 4)
            if close < 0:
                return  # an unterminated comment swallows the rest, as in browsers
            i = close + 3
            continue
        nxt = markup[lt + 1 : lt + 2]
        if not (nxt.isalpha() or nxt in ("/", "!", "?")):
            yield "<"
            i = lt + 1
            continue
        if gt <= lt:
            gt = markup.find(">", lt + 1)
        if gt < 0:
            return  # an unterminated tag: the rest is markup debris
        inner = markup[lt + 1 : gt]
        i = gt + 1
        if nxt in ("!", "?"):
            continue  # declarations, processing instructions, CDATA markers
        closing = nxt == "/"
        name_match = _TAG_NAME.match(inner, 1 if closing else 0)
        if name_match is None:
            continue
        name = name_match.group(0).lower()
        yield _Tag(name, closing, inner[name_match.end() :])
        if not closing and name in _RAW_TEXT:
            if lower is None:
                lower = markup.lower()
            close = lower.find("</" + name, i)
            if close < 0:
                return
            if name == "textarea":
                yield markup[i:close]
            i = close


def _attrs(raw: str) -> dict[str, str]:
    """Attributes of a tag (names lower-cased, values unescaped); linear, lenient."""
    attrs: dict[str, str] = {}
    i, n = 0, len(raw)
    while i < n:
        while i < n and (raw[i].isspace() or raw[i] == "/"):
            i += 1
        start = i
        while i < n and not raw[i].isspace() and raw[i] not in "=/":
            i += 1
        name = raw[start:i].lower()
        while i < n and raw[i].isspace():
            i += 1
        value = ""
        if i < n and raw[i] == "=":
            i += 1
            while i < n and raw[i].isspace():
                i += 1
            if i < n and raw[i] in "\"'":
                quote = raw[i]
                close = raw.find(quote, i + 1)
                close = n if close < 0 else close
                value = raw[i + 1 : close]
                i = close + 1
            else:
                start = i
                while i < n and not raw[i].isspace():
                    i += 1
                value = raw[start:i]
        if name and name not in attrs:
            attrs[name] = html.unescape(value)
        if i == start and i < n:
            i += 1  # a stray character: step over it
    return attrs


def _collapse(text: str) -> str:
    return " ".join(text.split())


def _cap(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    if space > limit * 3 // 4:
        cut = cut[:space]
    return cut.rstrip() + "…"


def html_to_text(markup: str, *, limit: int = MAX_SUMMARY_CHARS) -> str:
    """Plain text of an HTML fragment: tags dropped, entities decoded, whitespace collapsed."""
    if "<" not in markup and "&" not in markup:
        return _cap(_collapse(markup), limit)
    parts: list[str] = []
    size = 0
    for token in _tokens(markup[:_MAX_HTML_CHARS]):
        if isinstance(token, _Tag):
            if token.name in _BLOCK:
                parts.append(" ")
            continue
        parts.append(token)
        size += len(token)
        if size > limit * 2:
            break
    return _cap(_collapse(html.unescape("".join(parts))), limit)


def _plain(detail: Mapping[str, Any] | None, value: str | None, *, limit: int) -> str:
    """Plain text of a feedparser text construct, honouring its declared type."""
    if not value:
        return ""
    kind = str((detail or {}).get("type", "") or "")
    if "html" in kind:
        return html_to_text(value, limit=limit)
    return _cap(_collapse(value), limit)


# --- Google News -----------------------------------------------------------------------------


def _google_news_related(description: str, own_title: str) -> tuple[str, ...]:
    """Headlines of ``<li><a>headline</a> <font>Publisher</font></li>`` in a GN description."""
    if "<li" not in description:
        return ()
    related: list[str] = []
    headline: list[str] | None = None  # collecting inside <li>
    in_a = strong = False

    def flush() -> None:
        if headline is None:
            return
        text = _collapse(html.unescape("".join(headline)))
        # The last entry of a cluster is "View full coverage on Google News", in <strong>.
        if text and not strong and text != own_title and text not in related:
            related.append(_cap(text, MAX_TITLE_CHARS))

    for token in _tokens(description[:_MAX_HTML_CHARS]):
        if isinstance(token, _Tag):
            if token.name == "li" or (token.name == "ol" and token.closing):
                flush()
                headline = [] if token.name == "li" and not token.closing else None
                in_a = strong = False
            elif token.name == "a" and headline is not None:
                in_a = not token.closing
            elif token.name == "strong" and headline is not None and not token.closing:
                strong = True
        elif in_a and headline is not None:
            headline.append(token)
        if len(related) >= _MAX_RELATED:
            break
    flush()
    return tuple(related[:_MAX_RELATED])


def _is_google_news_listing(description: str) -> bool:
    """A Google News description: links to news.google.com with ``<font>`` publisher names."""
    return "<font" in description and "news.google.com/" in description


def _strip_publisher(title: str, source: str | None) -> str:
    """Google News appends " - Publisher"; strip it only when it is exactly the <source>."""
    if source:
        suffix = f" - {source}"
        if title.endswith(suffix) and len(title) > len(suffix):
            return title[: -len(suffix)].rstrip()
    return title


def google_news_url(
    query: str, *, lang: str = "en-US", country: str = "US", when: str | None = None
) -> str:
    """The Google News RSS search URL for ``query`` (``when`` like ``"1d"``, ``"12h"``)."""
    q = f"{query} when:{when}" if when else query
    base_lang = lang.split("-", 1)[0]
    params = {"q": q, "hl": lang, "gl": country.upper(), "ceid": f"{country.upper()}:{base_lang}"}
    return "https://news.google.com/rss/search?" + urllib.parse.urlencode(
        params, quote_via=urllib.parse.quote
    )


# --- pre-parse hardening ---------------------------------------------------------------------


def _strip_leading_junk(body: bytes) -> bytes:
    """Drop whitespace before the first ``<`` (after a UTF-8 BOM); leave UTF-16/32 alone."""
    if body.startswith((b"\xff\xfe", b"\xfe\xff", b"\x00")) or body[1:2] == b"\x00":
        return body
    bom = b"\xef\xbb\xbf" if body.startswith(b"\xef\xbb\xbf") else b""
    return bom + body[len(bom) :].lstrip(b" \t\r\n\x0c")


_FIRST_ELEMENT: Final = re.compile(rb"<[A-Za-z_]")


def _strip_doctype(body: bytes) -> bytes:
    """Remove ``<!DOCTYPE ...>`` including an internal ``[...]`` subset, by plain scanning."""
    first_element = _FIRST_ELEMENT.search(body)
    prolog = body[: first_element.start() if first_element else len(body)]
    start = prolog.lower().find(b"<!doctype")
    if start < 0:
        return body
    i = start + len(b"<!doctype")
    bracket = body.find(b"[", i)
    close = body.find(b">", i)
    if close < 0:
        return body[:start]
    if 0 <= bracket < close:
        # Internal subset: skip to "]" then ">"; quoted ">" inside it does not matter because
        # the whole subset goes away.
        end_subset = body.find(b"]", bracket)
        if end_subset < 0:
            return body[:start]
        close = body.find(b">", end_subset)
        if close < 0:
            return body[:start]
    return body[:start] + body[close + 1 :]


def _safe_cut(text: bytes, limit: int) -> bytes:
    """``text`` cut to about ``limit`` bytes without splitting a UTF-8 sequence or an entity."""
    cut = text[:limit]
    while cut and 0x80 <= cut[-1] < 0xC0:  # continuation byte: back off to a lead byte
        cut = cut[:-1]
    if cut and cut[-1] >= 0xC0:  # dangling lead byte
        cut = cut[:-1]
    amp = cut.rfind(b"&", max(0, len(cut) - 12))
    if amp >= 0 and b";" not in cut[amp:]:
        cut = cut[:amp]
    return cut


def _cap_author_fields(body: bytes) -> bytes:
    """Cut the text of author-like elements to ``_MAX_AUTHOR_BYTES`` (feedparser's slow regex)."""
    out: list[bytes] = []
    pos = 0
    for match in _AUTHOR_START.finditer(body):
        if match.start() < pos or match.group(0).endswith(b"/>"):
            continue
        content_start = match.end()
        close = body.find(b"</" + match.group(1), content_start)
        if close < 0:
            continue
        content = body[content_start:close]
        if len(content) <= _MAX_AUTHOR_BYTES:
            continue
        if content.lstrip().startswith(b"<![CDATA["):
            inner_start = content.find(b"<![CDATA[") + 9
            inner_end = content.rfind(b"]]>")
            if inner_end < inner_start:
                continue
            inner = content[inner_start:inner_end]
            replacement = b"<![CDATA[" + _safe_cut(inner, _MAX_AUTHOR_BYTES) + b"]]>"
        elif b"<" in content:
            continue  # has child elements (Atom <author><name>): they are matched themselves
        else:
            replacement = _safe_cut(content, _MAX_AUTHOR_BYTES)
        out.append(body[pos:content_start])
        out.append(replacement)
        pos = close
    if not out:
        return body
    out.append(body[pos:])
    return b"".join(out)


_LONG_TAG: Final = re.compile(rb"<[A-Za-z_][^<>]{%d}" % _MAX_TAG_BYTES)


def _check_tag_lengths(body: bytes) -> None:
    """Refuse a start tag longer than ``_MAX_TAG_BYTES`` outside CDATA.

    Each search attempt starts at a "<" and stops at the next "<" or ">", so the scan is
    linear. Long runs inside CDATA (inline data: images in content:encoded) are text, and fine.
    """
    pos = 0
    while (match := _LONG_TAG.search(body, pos)) is not None:
        cdata = body.rfind(b"<![CDATA[", pos, match.start())
        if cdata >= 0:
            cdata_end = body.find(b"]]>", cdata)
            if cdata_end < 0:
                return  # the rest is one unterminated CDATA section: text to expat
            if cdata_end > match.start():
                pos = cdata_end + 3
                continue
        raise ParseError(f"tag longer than {_MAX_TAG_BYTES // 1024} KiB at byte {match.start()}")


def _sniff(body: bytes) -> str:
    """``"json"``, ``"html"``, ``"xml"`` or ``"junk"`` from the first bytes, not Content-Type."""
    if body.startswith((b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff")) or body[1:2] == b"\x00":
        return "xml"  # UTF-16/32: let feedparser's encoding detection handle it
    head = body[:2048].lstrip(b"\xef\xbb\xbf \t\r\n\x0c").lower()
    if head.startswith((b"{", b"[")):
        return "json"
    if not head.startswith(b"<"):
        return "junk"
    probe = head
    # Skip an XML declaration and comments to see the first element.
    for _ in range(8):
        if probe.startswith(b"<?"):
            end = probe.find(b"?>")
            probe = probe[end + 2 :].lstrip() if end >= 0 else b""
        elif probe.startswith(b"<!--"):
            end = probe.find(b"-->")
            probe = probe[end + 3 :].lstrip() if end >= 0 else b""
        else:
            break
    if probe.startswith((b"<!doctype html", b"<html", b"<head", b"<body")):
        return "html"
    return "xml"


def _feedparser_headers(content_type: str | None) -> dict[str, str]:
    """Headers for feedparser's encoding detection (it is never told to fetch anything).

    Only an explicit charset from HTTP is passed on: RFC 3023 makes a charset-less ``text/xml``
    mean US-ASCII, which breaks every UTF-8 feed served that way; and a feed mislabelled
    ``text/html`` would be flagged non-XML. The XML declaration and BOM decide otherwise.
    """
    # No content-location: feedparser would resolve guids against it ("lead-1" becoming
    # "https://host/lead-1"); links are made absolute by _http_link instead.
    headers = {"content-type": "application/xml"}
    if content_type:
        for param in content_type.split(";")[1:]:
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "charset" and value.strip().strip("\"'"):
                headers["content-type"] = f"application/xml; charset={value.strip().strip(chr(34))}"
    return headers


# --- main entry points ---------------------------------------------------------------------


def _datetime(parsed: time.struct_time | None) -> datetime | None:
    if parsed is None:
        return None
    try:
        return datetime(*parsed[:6], tzinfo=UTC)
    except (TypeError, ValueError, OverflowError):
        return None


def _http_link(value: object, base: str) -> str | None:
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


def _fallback_id(title: str, summary: str) -> str:
    digest = hashlib.sha256(f"{title}\n{summary}".encode("utf-8", "surrogatepass")).hexdigest()
    return f"sha256:{digest[:32]}"


def _item(
    entry: dict[str, Any],
    *,
    feed_name: str,
    feed_title: str | None,
    feed_lang: str | None,
    base: str,
) -> FeedItem:
    raw_title = entry.get("title")
    title = _plain(entry.get("title_detail"), raw_title if isinstance(raw_title, str) else None,
                   limit=MAX_TITLE_CHARS)  # fmt: skip

    source_info = entry.get("source")
    source = None
    source_url = None
    if isinstance(source_info, Mapping):
        source_title = source_info.get("title")
        if isinstance(source_title, str) and source_title.strip():
            source = _collapse(source_title)[:MAX_TITLE_CHARS]
        source_url = _http_link(source_info.get("href") or source_info.get("url"), base)

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
    summary = _plain(summary_detail, description, limit=MAX_SUMMARY_CHARS)

    related: tuple[str, ...] = ()
    if source is not None:
        related = _google_news_related(description, _strip_publisher(title, source))
        title = _strip_publisher(title, source)
        if _is_google_news_listing(description):
            # The description only repeats headlines and publisher names (kept in title,
            # source and related); as a summary it would make rules match other outlets.
            summary = ""

    link = _http_link(entry.get("link"), base)
    raw_id = entry.get("id")
    item_id = raw_id.strip() if isinstance(raw_id, str) else ""
    if not item_id:
        item_id = link or _fallback_id(title, summary)

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


def _has_content(item: FeedItem) -> bool:
    """Drop items with nothing to match or show (e.g. the cut-off tail of a truncated feed)."""
    return bool(item.title or item.summary or item.link)


def _ttl(value: object) -> timedelta | None:
    if isinstance(value, str) and value.strip().isdigit() and len(value.strip()) < 8:
        minutes = int(value.strip())
        return timedelta(minutes=minutes) if minutes > 0 else None
    return None


def _syntax_error(exc: object) -> str:
    line = getattr(exc, "getLineNumber", None)
    message = getattr(exc, "getMessage", None)
    where = f" at line {line()}" if callable(line) else ""
    what = f": {message()}" if callable(message) else ""
    return f"XML not well-formed{where}{what}"


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
    kind = _sniff(body)
    if kind == "json":
        return _parse_json_feed(body, feed_name=feed_name, url=url)
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


def _harden(body: bytes) -> bytes:
    """The bytes every XML parser is given: no DOCTYPE, author fields capped, tags bounded."""
    data = _cap_author_fields(_strip_doctype(_strip_leading_junk(body)))
    _check_tag_lengths(data)
    return data


def _parse_xml_feed(
    body: bytes, *, feed_name: str, url: str, content_type: str | None, fast: bool = True
) -> ParsedFeed:
    data = _harden(body)
    if fast:
        try:
            quick = _fast_parse_hardened(data, feed_name=feed_name, url=url,
                                         content_type=content_type)  # fmt: skip
        except Exception:  # a fast-path bug must cost speed, never a feed
            quick = None
        if quick is not None:
            return quick
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

    return _assemble(feed, entries, feed_name=feed_name, url=url)


def _assemble(
    feed: Mapping[str, Any], entries: list[Any], *, feed_name: str, url: str
) -> ParsedFeed:
    """The ParsedFeed of feedparser-shaped ``feed`` and ``entries`` (the fast path's too)."""
    feed_title_raw = feed.get("title")
    feed_title = (
        _plain(feed.get("title_detail"), feed_title_raw, limit=MAX_TITLE_CHARS)
        if isinstance(feed_title_raw, str)
        else ""
    ) or None
    feed_lang_raw = feed.get("language")
    feed_lang = _collapse(feed_lang_raw)[:35] or None if isinstance(feed_lang_raw, str) else None
    base = url
    items = tuple(
        item
        for entry in entries[:MAX_ITEMS]
        if _has_content(
            item := _item(
                entry, feed_name=feed_name, feed_title=feed_title, feed_lang=feed_lang, base=base
            )
        )
    )
    return ParsedFeed(
        title=feed_title,
        link=_http_link(feed.get("link"), base),
        items=items,
        ttl=_ttl(feed.get("ttl")),
    )


# --- fast path: RSS 2.0 through expat directly ----------------------------------------------

# feedparser drives expat through SAX and a Python handler per element: about 13 ms of a
# 17 ms parse of an 80-item RSS feed, where xml.etree builds the tree in well under 1 ms.
# The fast path reads the same hardened bytes with xml.etree and builds the very dicts
# feedparser would (the keys ``_assemble`` reads), so both paths share every later step.
# feedparser stays the definition of a correct result: the fast path declines (returns None)
# on anything it does not reproduce exactly (tests/test_parse_fastpath.py runs both paths on
# every fixture and on generated feeds), and feedparser then parses the feed.

_FP: Final[Any] = _FeedParserMixin
# Namespace URI (lower case) -> the prefix feedparser files its elements under ("" = core).
_FP_NAMESPACES: Final[dict[str, str]] = {k.lower(): v for k, v in _FP.namespaces.items()}
# Element names ("prefix_local", lower case) that feedparser has a special handler for;
# any other element is stored under its own name, which no field of ours reads.
_FP_HANDLED: Final = frozenset(
    name.split("_", 2)[2] for name in dir(_FP) if name.startswith(("_start_", "_end_"))
)
# Keys of feedparser's dicts that _assemble/_item read: an unhandled element of that name
# would be stored there.
_FP_RESERVED: Final = frozenset(
    {"title", "title_detail", "summary", "summary_detail", "content", "link", "id", "source",
     "published_parsed", "updated_parsed", "language", "ttl"}
)  # fmt: skip
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
_URIFIXER: Final = re.compile(r"^([A-Za-z][A-Za-z0-9+-.]*://)(/*)(.*?)")  # feedparser.urls
_ENTITY_REF: Final = re.compile(r"&([A-Za-z0-9_]+);")
_XMLNS: Final = re.compile(rb"""xmlns(?::([A-Za-z_][\w.-]*))?\s*=\s*(?:"([^"<]*)"|'([^'<]*)')""")
_DECL_ENCODING: Final = re.compile(rb"""encoding\s*=\s*["']([^"']*)["']""")
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


class _Decline(Exception):
    """The fast path cannot promise feedparser's result for this feed."""


def _fast_parse(
    body: bytes, *, feed_name: str, url: str, content_type: str | None = None
) -> ParsedFeed | None:
    """The fast path's result for ``body``, or None where it declines (feedparser decides).

    Raises :class:`ParseError` only where ``parse_feed`` would refuse the bytes before parsing.
    """
    if len(body) > MAX_BODY_BYTES or not body.strip() or _sniff(body) != "xml":
        return None
    return _fast_parse_hardened(
        _harden(body), feed_name=feed_name, url=url, content_type=content_type
    )


def _fast_parse_hardened(
    data: bytes, *, feed_name: str, url: str, content_type: str | None
) -> ParsedFeed | None:
    try:
        return _fast_rss(data, feed_name=feed_name, url=url, content_type=content_type)
    except _Decline:
        return None


def _is_utf8(data: bytes, content_type: str | None) -> bool:
    """UTF-8 by every rule feedparser and expat apply (HTTP charset, BOM, XML declaration)."""
    if content_type:
        for param in content_type.split(";")[1:]:
            name, _, value = param.partition("=")
            if name.strip().lower() == "charset" and value.strip().strip("\"'").lower() not in (
                "utf-8",
                "",
            ):
                return False
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    if not data.startswith(b"<"):
        return False  # UTF-16/32 or junk
    if data.startswith(b"<?xml"):
        end = data.find(b"?>")
        match = _DECL_ENCODING.search(data[: end if end >= 0 else 200])
        if match is not None and match.group(1).lower() != b"utf-8":
            return False
    return True


def _namespace_prefixes(data: bytes) -> dict[str, str]:
    """Namespace URI -> the prefix feedparser files its elements under; raises _Decline."""
    declared: dict[str, str] = {}  # prefix -> uri
    for match in _XMLNS.finditer(data):
        prefix = (match.group(1) or b"").decode("ascii", "replace")
        uri = (match.group(2) if match.group(2) is not None else match.group(3) or b"").decode(
            "utf-8", "replace"
        )
        if declared.setdefault(prefix, uri) != uri:
            raise _Decline("prefix bound to two namespaces")
    # feedparser maps a document prefix bound to a known namespace onto its own prefix, and
    # looks the lower-cased prefix of every element up in that map.
    remapped = {
        p.lower(): _FP_NAMESPACES[u.lower()]
        for p, u in declared.items()
        if u.lower() in _FP_NAMESPACES
    }
    out: dict[str, str] = {}
    for prefix, uri in declared.items():
        if not uri:
            continue
        known = _FP_NAMESPACES.get(uri.lower())
        if known is None:
            if not prefix or uri in out or prefix.lower() in remapped:
                raise _Decline("unknown default namespace or ambiguous prefix")
            out[uri] = prefix.lower()
        elif known and remapped.get(known.lower(), known.lower()) != known.lower():
            raise _Decline("known prefix remapped")
    return out


def _fp_key(tag: str, prefixes: Mapping[str, str]) -> str:
    """feedparser's name for an element: "prefix_local" or "local", lower case."""
    if tag[:1] != "{":
        return tag.lower()
    uri, _, local = tag[1:].partition("}")
    lowered = uri.lower()
    if "backend.userland.com/rss" in lowered:
        lowered = "http://backend.userland.com/rss"
    prefix = _FP_NAMESPACES.get(lowered)
    if prefix is None:
        prefix = prefixes.get(uri)
        if not prefix:
            raise _Decline(f"unknown namespace {uri[:80]}")
    elif "}" in uri:
        raise _Decline("odd namespace")
    return f"{prefix.lower()}_{local.lower()}" if prefix else local.lower()


def _fp_text(element: ET.Element, *, uri: bool = False) -> str:
    """An element's text as feedparser's ``pop`` leaves it (leaf elements only)."""
    if len(element):
        raise _Decline("markup inside a text element")
    text = (element.text or "").strip()
    if uri and text:
        text = _URIFIXER.sub(r"\1\3", text)
    return _fp_recode(text)


def _fp_recode(text: str) -> str:
    if text.isascii():
        return text
    # feedparser "repairs" UTF-8 read as ISO-8859-1, then maps C1 controls to cp1252.
    with contextlib.suppress(UnicodeEncodeError, UnicodeDecodeError):
        text = text.encode("iso-8859-1").decode("utf-8")
    return text.translate(_cp1252)


def _text_type(raw: str) -> str:
    """feedparser's type for an RSS text element: plain unless it looks like HTML."""
    if ("<" in raw or "&" in raw) and _FP.looks_like_html(raw):
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


def _no_attributes(element: ET.Element, allowed: frozenset[str] = frozenset()) -> None:
    if element.attrib and not allowed.issuperset(element.attrib):
        raise _Decline(f"attributes on <{element.tag}>")


def _check_leaves(element: ET.Element, names: frozenset[str], prefixes: Mapping[str, str]) -> None:
    for child in element:
        if _fp_key(child.tag, prefixes) not in names or len(child):
            raise _Decline("unexpected element in image/textInput")


def _inert(element: ET.Element, key: str, inert: frozenset[str]) -> None:
    """Pass an element feedparser files away where we never look; else decline."""
    if len(element):
        raise _Decline(f"nested markup in <{key}>")
    if key in inert:
        return
    if key in _FP_HANDLED or key in _FP_RESERVED:
        raise _Decline(f"<{key}> may change a field we read")


def _fast_rss(
    data: bytes, *, feed_name: str, url: str, content_type: str | None
) -> ParsedFeed | None:
    if not _is_utf8(data, content_type):
        raise _Decline("not UTF-8")
    head = data[:4096]
    if b"<rss" not in head:
        raise _Decline("not RSS")
    try:
        root = ET.fromstring(data)
    except ET.ParseError as e:
        raise _Decline("not well-formed") from e
    if root.tag != "rss" or len(root) != 1 or root[0].tag != "channel":
        raise _Decline("not a plain RSS 2.0 document")
    _no_attributes(root, frozenset({"version"}))
    channel = root[0]
    _no_attributes(channel)
    for element in root.iter():
        for name in element.attrib:
            if name.rpartition("}")[2].rpartition(":")[2].lower() == "base":
                # feedparser resolves links against xml:base, and does not always restore the
                # outer base when the element ends.
                raise _Decline("xml:base")
    prefixes = _namespace_prefixes(data) if b"xmlns" in data else {}

    feed: dict[str, Any] = {}
    entries: list[dict[str, Any]] = []
    seen: set[str] = set()
    for child in channel:
        key = _fp_key(child.tag, prefixes)
        if key == "item":
            entries.append(_fast_rss_item(child, prefixes))
            continue
        if key == "link" and child.tag != "link":
            _atom_link(child)
            continue
        if key in ("title", "link", "ttl", "language", "dc_language"):
            _no_attributes(child)
            if key in seen and key not in ("language", "dc_language"):
                raise _Decline(f"second <{key}> in channel")
            seen.add(key)
        if key == "title":
            raw = (child.text or "").strip()
            feed["title"] = _fp_text(child)
            feed["title_detail"] = {"type": _text_type(raw), "language": None}
        elif key == "link":
            feed["link"] = _ENTITY_REF.sub(r"&\g<1>", _fp_text(child, uri=True))
        elif key in ("language", "dc_language"):
            feed["language"] = _fp_text(child)  # both are filed as "language"; the last wins
        elif key == "ttl":
            feed["ttl"] = _fp_text(child)
        elif key == "image":
            _no_attributes(child)
            _check_leaves(child, _IMAGE_CHILDREN, prefixes)
        elif key == "textinput":
            _no_attributes(child)
            _check_leaves(child, _TEXTINPUT_CHILDREN, prefixes)
        elif key in ("skiphours", "skipdays"):
            _check_leaves(child, frozenset({"hour", "day"}), prefixes)
        else:
            _inert(child, key, _FP_INERT_CHANNEL)
    if not entries:
        raise _Decline("no items")  # feedparser words the errors
    return _assemble(feed, entries, feed_name=feed_name, url=url)


def _atom_link(element: ET.Element) -> None:
    """An Atom <link> inside RSS: passed only when it cannot become the link (rel="self")."""
    attrs = element.attrib
    if len(element) or not attrs.get("href") or "url" in attrs or "uri" in attrs:
        raise _Decline("atom:link that may set the link")
    if attrs.get("rel", "alternate").lower() == "alternate":
        raise _Decline("atom:link rel=alternate")
    _no_attributes(element, frozenset({"href", "rel", "type", "title", "hreflang", "length"}))


def _fast_rss_item(item: ET.Element, prefixes: Mapping[str, str]) -> dict[str, Any]:
    for name in item.attrib:
        # rdf:about becomes the id, lastmod and href dates and links (feedparser _cdf_common),
        # lang the language of the title; anything else (turbo="true") is ignored.
        if name.rpartition("}")[2].rpartition(":")[2].lower() in ("about", "lastmod", "href",
                                                                   "lang"):  # fmt: skip
            raise _Decline("item attributes feedparser reads")
    entry: dict[str, Any] = {}
    seen: set[str] = set()
    guid_link: str | None = None
    media_title = False
    updated = False
    content: str | None = None
    for child in item:
        key = _fp_key(child.tag, prefixes)
        if key == "link" and child.tag != "link":
            _atom_link(child)
            continue
        if key in ("title", "link", "description", "guid", "pubdate", "source", "content_encoded"):
            if key in seen:
                raise _Decline(f"second <{key}> in an item")
            seen.add(key)
        if key == "title":
            _no_attributes(child)
            raw = (child.text or "").strip()
            entry["title"] = _fp_text(child)
            entry["title_detail"] = {"type": _text_type(raw), "language": None}
        elif key == "description":
            _no_attributes(child)
            entry["summary"] = _fp_text(child)
            entry["summary_detail"] = {"type": "text/html"}
        elif key == "content_encoded":
            _no_attributes(child)
            content = _fp_text(child)
        elif key == "link":
            _no_attributes(child)
            link = _fp_text(child, uri=True).replace("&amp;", "&")
            entry["link"] = _ENTITY_REF.sub(r"&\g<1>", link)
        elif key == "guid":
            if child.tag != "guid":
                raise _Decline("namespaced guid")
            _no_attributes(child, frozenset({"isPermaLink"}))
            is_link = child.get("isPermaLink", "true") == "true"
            entry["id"] = _fp_text(child, uri=is_link)
            if is_link:
                guid_link = entry["id"]
        elif key == "pubdate":
            _no_attributes(child)
            entry["published_parsed"] = _rfc822_date(_fp_text(child))
        elif key == "source":
            _no_attributes(child, frozenset({"url"}))
            source: dict[str, str] = {}
            if "url" in child.attrib:
                source["href"] = child.attrib["url"]
            title = _fp_text(child)
            if title:
                source["title"] = title
            entry["source"] = source
        elif key == "media_title":
            if len(child):
                raise _Decline("nested media:title")
            media_title = True
        elif key in ("dc_date", "dcterms_modified", "updated"):
            if len(child):
                raise _Decline("nested date")
            updated = True
        elif key in ("media_group", "media_content"):
            # Containers for media leaves (credits, thumbnails) that feedparser files apart.
            for grandchild in child:
                _inert(grandchild, _fp_key(grandchild.tag, prefixes), _FP_INERT_ITEM)
        else:
            _inert(child, key, _FP_INERT_ITEM)
    if media_title and (not entry.get("title") or "source" in seen):
        # A non-empty <title> makes feedparser skip media:title, unless <source> reset that.
        raise _Decline("media:title may stand in for the title")
    if updated and entry.get("published_parsed") is None:
        raise _Decline("dc:date may stand in for pubDate")
    if content is not None:
        # feedparser keeps content:encoded as content and copies it into an absent summary;
        # _item prefers it over a blank description.
        description = entry.get("summary")
        if not description:
            entry["summary"] = content
            entry["summary_detail"] = {"type": "text/html"}
    if guid_link is not None and "link" not in seen:
        entry["link"] = guid_link
    return entry


# --- JSON Feed -------------------------------------------------------------------------------


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
    return _cap(_collapse(value), limit) if isinstance(value, str) else ""


def _parse_json_feed(body: bytes, *, feed_name: str, url: str) -> ParsedFeed:
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
        if _has_content(item):
            items.append(item)
    return ParsedFeed(
        title=feed_title,
        link=_http_link(doc.get("home_page_url"), url),
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
    link = _http_link(raw.get("url"), base) or _http_link(raw.get("external_url"), base)
    raw_id = raw.get("id")
    # JSON Feed 1.0 allowed numeric ids; 1.1 says strings. Both identify the item.
    item_id = str(raw_id).strip() if isinstance(raw_id, str | int) else ""
    return FeedItem(
        id=(item_id or link or _fallback_id(title, summary))[:2048],
        link=link,
        title=title,
        summary=summary,
        published=_json_date(raw.get("date_published")) or _json_date(raw.get("date_modified")),
        source=feed_title,
        source_url=None,
        feed=feed_name,
        lang=_json_text(raw.get("language"), 35) or feed_lang,
    )


# --- discovery -------------------------------------------------------------------------------

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
    for token in _tokens(text):
        if not isinstance(token, _Tag) or token.closing:
            continue
        if token.name == "body":
            break  # feed links live in <head>
        if token.name not in ("link", "base"):
            continue
        a = _attrs(token.attrs[:8192])
        if token.name == "base":
            base = _http_link(a.get("href"), base_url) or base
            continue
        rels = a.get("rel", "").lower().split()
        kind = a.get("type", "").lower().split(";")[0].strip()
        if "alternate" not in rels or kind not in _FEED_TYPES:
            continue
        if kind == "application/json" and "feed" not in a.get("title", "").lower():
            continue  # plain JSON alternates are usually oEmbed/API links, not feeds
        link = _http_link(a.get("href"), base)
        if link and link not in found:
            found.append(link)
    return found
