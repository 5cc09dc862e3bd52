"""Google News: its search URL, and what its RSS items carry that others do not (a
" - Publisher" title suffix, related headlines in an HTML description).

Pure string functions over already parsed fields; it may not read feed bytes or XML.
"""

from __future__ import annotations

import html
import urllib.parse
from typing import Final

from monitor.parse.model import MAX_TITLE_CHARS
from monitor.parse.text import MAX_HTML_CHARS, Tag, cap, collapse, tokens

_MAX_RELATED: Final = 20


def related_headlines(description: str, own_title: str) -> tuple[str, ...]:
    """Headlines of ``<li><a>headline</a> <font>Publisher</font></li>`` in a GN description."""
    if "<li" not in description:
        return ()
    related: list[str] = []
    headline: list[str] | None = None  # collecting inside <li>
    in_a = strong = False

    def flush() -> None:
        if headline is None:
            return
        text = collapse(html.unescape("".join(headline)))
        # The last entry of a cluster is "View full coverage on Google News", in <strong>.
        if text and not strong and text != own_title and text not in related:
            related.append(cap(text, MAX_TITLE_CHARS))

    for token in tokens(description[:MAX_HTML_CHARS]):
        if isinstance(token, Tag):
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


def is_listing(description: str) -> bool:
    """A Google News description: links to news.google.com with ``<font>`` publisher names."""
    return "<font" in description and "news.google.com/" in description


def strip_publisher(title: str, source: str | None) -> str:
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
