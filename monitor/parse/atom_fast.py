"""The Atom 1.0 fast path: a plain UTF-8 Atom 1.0 document read with xml.etree into the very
dicts feedparser would build, or ``Decline`` where that is not certain.

What it reproduces of feedparser (6.0, ``namespaces/_base.py``): ``<link>`` sets the link when
rel is ``alternate`` and the type HTML (rel and type lower-cased, the last such link wins); an
``<id>`` stands in for the link when there is none; ``<content>`` of a text or HTML type is
copied into an absent summary; text constructs keep their declared type and the language of
the root's ``xml:lang``. It declines on ``xml:base``, any other ``lang``, XHTML or nested markup
in a text construct, ``<source>``, base64 or out-of-line content, a repeated field, and any
element feedparser handles that could touch a field ``assemble`` reads.

It may read only hardened bytes, and hands its dicts to ``assemble``; it builds no item itself.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping
from typing import Any, Final

from feedparser.datetimes import _parse_date as _fp_parse_date

from monitor.parse.assemble import assemble
from monitor.parse.fastxml import (
    Decline,
    fp_key,
    fp_text,
    fp_uri,
    inert,
    is_utf8,
    namespace_prefixes,
    no_attributes,
)
from monitor.parse.model import ParsedFeed

_ATOM: Final = "{http://www.w3.org/2005/Atom}"
_XML_LANG: Final = "{http://www.w3.org/XML/1998/namespace}lang"
_HTML_TYPES: Final = frozenset({"text/html", "application/xhtml+xml"})  # feedparser html_types
# Types of a text construct read as feedparser reads them: any other may be base64 or XHTML.
_TEXT_TYPES: Final = frozenset({"text/plain", "text/html"})
_LINK_ATTRIBUTES: Final = frozenset({"href", "rel", "type", "title", "hreflang", "length"})
# Elements feedparser handles that change no field we read (leaves, or author-like below).
_INERT_FEED: Final = frozenset(
    {"category", "generator", "icon", "logo", "rights", "subtitle", "updated"}
)
_INERT_ENTRY: Final = frozenset(
    {"category", "rights", "georss_point", "georss_line", "georss_polygon", "georss_box",
     "media_thumbnail", "media_content", "media_credit", "media_keywords",
     "media_category", "media_rating", "media_restriction", "media_license"}
)  # fmt: skip
_PEOPLE: Final = frozenset({"author", "contributor"})
_PERSON_CHILDREN: Final = frozenset({"name", "email", "uri"})


def parse_atom(
    data: bytes, *, feed_name: str, url: str, content_type: str | None
) -> ParsedFeed | None:
    if not is_utf8(data, content_type):
        raise Decline("not UTF-8")
    if b"<feed" not in data[:4096] and b":feed" not in data[:4096]:
        raise Decline("not Atom")
    try:
        root = ET.fromstring(data)
    except ET.ParseError as e:
        raise Decline("not well-formed") from e
    if root.tag != _ATOM + "feed":
        raise Decline("not an Atom 1.0 document")
    for element in root.iter():
        for name in element.attrib:
            local = name.rpartition("}")[2]
            if local.rpartition(":")[2].lower() == "base":
                raise Decline("xml:base")  # feedparser resolves links against it
            if local.rpartition(":")[2].lower() == "lang" and name != _XML_LANG:
                raise Decline("lang attribute outside the xml namespace")
            if local != local.lower():
                raise Decline("attribute name feedparser lower-cases")
    no_attributes(root, frozenset({_XML_LANG}))
    lang = _lang(root, None)
    prefixes = namespace_prefixes(data)

    feed: dict[str, Any] = {}
    if lang:
        feed["language"] = lang.replace("_", "-")  # text constructs use the same spelling
    entries: list[dict[str, Any]] = []
    seen: set[str] = set()
    for child in root:
        key = fp_key(child.tag, prefixes)
        if key == "entry":
            entries.append(_entry(child, prefixes, lang))
            continue
        if key in ("title", "id"):
            if key in seen:
                raise Decline(f"second <{key}> in the feed")
            seen.add(key)
        if key == "title":
            feed["title"], feed["title_detail"] = _text_construct(child, lang)
        elif key == "link":
            _link(child, feed)
        elif key == "id":
            _id(child, feed)
        elif key in _PEOPLE:
            _person(child, prefixes)
        else:
            inert(child, key, _INERT_FEED)
    if not entries:
        raise Decline("no entries")  # feedparser words the errors
    return assemble(feed, entries, feed_name=feed_name, url=url)


def _entry(entry: ET.Element, prefixes: Mapping[str, str], lang: str | None) -> dict[str, Any]:
    # rdf:about, lastmod, href: feedparser reads them (_cdf_common)
    no_attributes(entry, frozenset({_XML_LANG}))
    lang = _lang(entry, lang)
    out: dict[str, Any] = {}
    seen: set[str] = set()
    summary: tuple[str, dict[str, Any]] | None = None
    content: dict[str, Any] | None = None
    for child in entry:
        key = fp_key(child.tag, prefixes)
        if key in ("title", "id", "summary", "content", "published", "updated"):
            if key in seen:
                raise Decline(f"second <{key}> in an entry")
            seen.add(key)
        if key == "title":
            out["title"], out["title_detail"] = _text_construct(child, lang)
        elif key == "summary":
            summary = _text_construct(child, lang)
        elif key == "content":
            if "src" in child.attrib:
                raise Decline("out-of-line content")
            value, detail = _text_construct(child, lang, allowed=frozenset({"type", "src"}))
            content = {**detail, "value": value}
        elif key == "link":
            _link(child, out)
        elif key == "id":
            _id(child, out)
        elif key in ("published", "updated"):
            no_attributes(child)
            out[f"{key}_parsed"] = _fp_parse_date(fp_text(child))
        elif key in _PEOPLE:
            _person(child, prefixes)
        elif key == "media_group":
            # A container of media leaves (thumbnails, credits) that feedparser files apart.
            for grandchild in child:
                inert(grandchild, fp_key(grandchild.tag, prefixes), _INERT_ENTRY)
        else:
            inert(child, key, _INERT_ENTRY)
    if content is not None:
        out["content"] = [content]
    if summary is not None:
        # A <summary> overwrites the copy of <content> that feedparser files first.
        out["summary"], out["summary_detail"] = summary
    elif content is not None and content["type"] in _TEXT_TYPES:
        out["summary"] = content["value"]  # copied without a summary_detail
    return out


def _text_construct(
    element: ET.Element, lang: str | None, *, allowed: frozenset[str] = frozenset({"type"})
) -> tuple[str, dict[str, Any]]:
    """A text construct's value and detail as feedparser's ``push_content``/``pop`` leave them."""
    no_attributes(element, allowed | {_XML_LANG})  # mode="base64" and the like decline here
    lang = _lang(element, lang)
    kind = _content_type(element.get("type", "text/plain").lower())
    if kind not in _TEXT_TYPES:
        raise Decline(f"{kind[:40]} text construct")
    return fp_text(element), {"type": kind, "language": lang.replace("_", "-") if lang else None}


def _lang(element: ET.Element, parent: str | None) -> str | None:
    """feedparser's language inside ``element``: its xml:lang ("" for none), else the parent's."""
    own = element.get(_XML_LANG)
    return parent if own is None else own or None


def _content_type(kind: str) -> str:
    """feedparser's ``map_content_type``."""
    return {"text": "text/plain", "plain": "text/plain", "html": "text/html",
            "xhtml": "application/xhtml+xml"}.get(kind, kind)  # fmt: skip


def _link(element: ET.Element, context: dict[str, Any]) -> None:
    """feedparser's ``_start_link``: the last rel="alternate" link of an HTML type is the link."""
    if len(element) or "href" not in element.attrib:
        raise Decline("<link> without href")  # feedparser then reads its text
    no_attributes(element, _LINK_ATTRIBUTES)
    rel = element.get("rel", "alternate").lower()
    default = "application/atom+xml" if rel == "self" else "text/html"
    kind = element.get("type", default).lower()
    if rel == "alternate" and _content_type(kind) in _HTML_TYPES:
        context["link"] = fp_uri(element.attrib["href"])


def _id(element: ET.Element, context: dict[str, Any]) -> None:
    """feedparser's ``_end_guid``: the id, and the link too while there is none."""
    no_attributes(element)
    value = fp_text(element, uri=True)
    context["id"] = value
    context.setdefault("link", value)


def _person(element: ET.Element, prefixes: Mapping[str, str]) -> None:
    """An author or contributor: name, email and uri leaves, filed where we never look."""
    no_attributes(element)
    if (element.text or "").strip():
        raise Decline("text in a person construct")
    for child in element:
        inert(child, fp_key(child.tag, prefixes), _PERSON_CHILDREN)
