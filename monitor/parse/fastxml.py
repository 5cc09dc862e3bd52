"""What the expat fast paths (``rss_fast``, ``atom_fast``) share: ``Decline``, the UTF-8 check,
and feedparser's own rules for naming elements and cleaning their text, reproduced exactly.

feedparser drives expat through SAX and a Python handler per element: about 13 ms of a 17 ms
parse of an 80-item RSS feed, where xml.etree builds the tree in well under 1 ms. A fast path
reads the same hardened bytes with xml.etree and builds the very dicts feedparser would (the
keys ``assemble`` reads), so both paths share every later step. feedparser stays the definition
of a correct result: a fast path declines (raises ``Decline``) on anything it does not reproduce
exactly (tests/test_parse_fastpath.py runs both paths on every fixture and on generated feeds),
and feedparser then parses the feed.

Knows no feed format (no RSS or Atom element names); it may not build items or call feedparser's
parser, only read its tables.
"""

from __future__ import annotations

import contextlib
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from typing import Any, Final

from feedparser.html import _cp1252
from feedparser.mixin import _FeedParserMixin

FP: Final[Any] = _FeedParserMixin
# Namespace URI (lower case) -> the prefix feedparser files its elements under ("" = core).
FP_NAMESPACES: Final[dict[str, str]] = {k.lower(): v for k, v in FP.namespaces.items()}
# Element names ("prefix_local", lower case) that feedparser has a special handler for;
# any other element is stored under its own name, which no field of ours reads.
FP_HANDLED: Final = frozenset(
    name.split("_", 2)[2] for name in dir(FP) if name.startswith(("_start_", "_end_"))
)
# Keys of feedparser's dicts that assemble reads: an unhandled element of that name
# would be stored there.
FP_RESERVED: Final = frozenset(
    {"title", "title_detail", "summary", "summary_detail", "content", "link", "id", "source",
     "published_parsed", "updated_parsed", "language", "ttl"}
)  # fmt: skip
_URIFIXER: Final = re.compile(r"^([A-Za-z][A-Za-z0-9+-.]*://)(/*)(.*?)")  # feedparser.urls
ENTITY_REF: Final = re.compile(r"&([A-Za-z0-9_]+);")
_XMLNS: Final = re.compile(rb"""xmlns(?::([A-Za-z_][\w.-]*))?\s*=\s*(?:"([^"<]*)"|'([^'<]*)')""")
_DECL_ENCODING: Final = re.compile(rb"""encoding\s*=\s*["']([^"']*)["']""")


class Decline(Exception):
    """The fast path cannot promise feedparser's result for this feed."""


def is_utf8(data: bytes, content_type: str | None) -> bool:
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


def namespace_prefixes(data: bytes) -> dict[str, str]:
    """Namespace URI -> the prefix feedparser files its elements under; raises Decline."""
    declared: dict[str, str] = {}  # prefix -> uri
    for match in _XMLNS.finditer(data):
        prefix = (match.group(1) or b"").decode("ascii", "replace")
        uri = (match.group(2) if match.group(2) is not None else match.group(3) or b"").decode(
            "utf-8", "replace"
        )
        if declared.setdefault(prefix, uri) != uri:
            raise Decline("prefix bound to two namespaces")
    # feedparser maps a document prefix bound to a known namespace onto its own prefix, and
    # looks the lower-cased prefix of every element up in that map.
    remapped = {
        p.lower(): FP_NAMESPACES[u.lower()]
        for p, u in declared.items()
        if u.lower() in FP_NAMESPACES
    }
    out: dict[str, str] = {}
    for prefix, uri in declared.items():
        if not uri:
            continue
        known = FP_NAMESPACES.get(uri.lower())
        if known is None:
            if not prefix or uri in out or prefix.lower() in remapped:
                raise Decline("unknown default namespace or ambiguous prefix")
            out[uri] = prefix.lower()
        elif known and remapped.get(known.lower(), known.lower()) != known.lower():
            raise Decline("known prefix remapped")
    return out


def fp_key(tag: str, prefixes: Mapping[str, str]) -> str:
    """feedparser's name for an element: "prefix_local" or "local", lower case."""
    if tag[:1] != "{":
        return tag.lower()
    uri, _, local = tag[1:].partition("}")
    lowered = uri.lower()
    if "backend.userland.com/rss" in lowered:
        lowered = "http://backend.userland.com/rss"
    prefix = FP_NAMESPACES.get(lowered)
    if prefix is None:
        prefix = prefixes.get(uri)
        if not prefix:
            raise Decline(f"unknown namespace {uri[:80]}")
    elif "}" in uri:
        raise Decline("odd namespace")
    return f"{prefix.lower()}_{local.lower()}" if prefix else local.lower()


def fp_text(element: ET.Element, *, uri: bool = False) -> str:
    """An element's text as feedparser's ``pop`` leaves it (leaf elements only)."""
    if len(element):
        raise Decline("markup inside a text element")
    text = (element.text or "").strip()
    if uri and text:
        text = fp_uri(text)
    return fp_recode(text)


def fp_uri(uri: str) -> str:
    """feedparser's ``resolve_uri`` with no base (it is never given one): its URI fixer only."""
    return _URIFIXER.sub(r"\1\3", uri)


def fp_recode(text: str) -> str:
    if text.isascii():
        return text
    # feedparser "repairs" UTF-8 read as ISO-8859-1, then maps C1 controls to cp1252.
    with contextlib.suppress(UnicodeEncodeError, UnicodeDecodeError):
        text = text.encode("iso-8859-1").decode("utf-8")
    return text.translate(_cp1252)


def no_attributes(element: ET.Element, allowed: frozenset[str] = frozenset()) -> None:
    if element.attrib and not allowed.issuperset(element.attrib):
        raise Decline(f"attributes on <{element.tag}>")


def inert(element: ET.Element, key: str, inert: frozenset[str]) -> None:
    """Pass an element feedparser files away where we never look; else decline."""
    if len(element):
        raise Decline(f"nested markup in <{key}>")
    if key in inert:
        return
    if key in FP_HANDLED or key in FP_RESERVED:
        raise Decline(f"<{key}> may change a field we read")
