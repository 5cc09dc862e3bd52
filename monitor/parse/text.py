"""HTML to plain text: a small linear tokenizer, ``html_to_text`` and the text helpers
(``collapse``, ``cap``) every format uses for titles and summaries.

Works on ``str`` only and knows no feed format; it may import nothing of the parse stage but
``model`` (for the caps).
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

from monitor.parse.model import MAX_SUMMARY_CHARS

MAX_HTML_CHARS: Final = 64 * 1024

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
class Tag:
    name: str  # lower case
    closing: bool
    attrs: str  # raw attribute text, unparsed


def tokens(markup: str) -> Iterator[str | Tag]:
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
        yield Tag(name, closing, inner[name_match.end() :])
        if not closing and name in _RAW_TEXT:
            if lower is None:
                lower = markup.lower()
            close = lower.find("</" + name, i)
            if close < 0:
                return
            if name == "textarea":
                yield markup[i:close]
            i = close


def attrs(raw: str) -> dict[str, str]:
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


def collapse(text: str) -> str:
    return " ".join(text.split())


def cap(text: str, limit: int) -> str:
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
        return cap(collapse(markup), limit)
    parts: list[str] = []
    size = 0
    for token in tokens(markup[:MAX_HTML_CHARS]):
        if isinstance(token, Tag):
            if token.name in _BLOCK:
                parts.append(" ")
            continue
        parts.append(token)
        size += len(token)
        if size > limit * 2:
            break
    return cap(collapse(html.unescape("".join(parts))), limit)
