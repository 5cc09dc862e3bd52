"""The pre-pass: what the bytes are (``sniff``) and the hardening every XML parser's input gets
(``harden``) *before* expat or feedparser sees it. The caps here are what bound the parse time.

- ``<!DOCTYPE`` with an internal subset is removed: no entity is ever defined, so neither
  expat nor feedparser's loose parser can expand one (billion laughs; feedparser's own
  expansion when expat gives up is quadratic).
- Author-like fields are cut to ``_MAX_AUTHOR_BYTES``: feedparser runs an e-mail regex over
  the author that is quadratic in its length (about 9 s for 50,000 characters).
- Whitespace before ``<?xml`` is dropped (expat rejects a late declaration and feedparser then
  falls back to its slower, looser parser).
- A start tag longer than ``_MAX_TAG_BYTES`` is refused: expat hands attributes to feedparser
  through a lookup that is quadratic in their number (25 s for one tag with 50,000).

Bytes in, bytes out (or ``ParseError``); it may not parse XML or build items.
"""

from __future__ import annotations

import re
from typing import Final

from monitor.parse.model import ParseError

_MAX_AUTHOR_BYTES: Final = 1024
_MAX_TAG_BYTES: Final = 8 * 1024

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


def sniff(body: bytes) -> str:
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


def harden(body: bytes) -> bytes:
    """The bytes every XML parser is given: no DOCTYPE, author fields capped, tags bounded."""
    data = _cap_author_fields(_strip_doctype(_strip_leading_junk(body)))
    _check_tag_lengths(data)
    return data
