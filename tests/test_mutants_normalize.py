"""URL identity cases that ``make mutants`` found untested: each pins what a user sees.

A wrong answer here makes two links to one article alert twice, or merges two articles.
"""

from __future__ import annotations

import re
from urllib.parse import quote

import pytest

from monitor.normalize import canonical_url, fold_with_offsets, tokenize_folded

CASES = [
    # Google's AMP viewer without ``s/`` serves a plain-http page: http stays http.
    ("https://www.google.com/amp/example.com/news/1", "http://example.com/news/1"),
    ("https://www.google.com/amp/s/example.com/news/1", "https://example.com/news/1"),
    # The viewer's query string is the article's.
    ("https://www.google.com/amp/s/example.com/story?id=7", "https://example.com/story?id=7"),
    ("https://x-com.cdn.ampproject.org/c/example.com/a?p=2", "http://example.com/a?p=2"),
    # Google's /url reads every ``url``, then every ``q``; a key given twice is read in sorted
    # order, so the order of the query never changes the article (the first value alone made
    # the canonical form, its query sorted, unwrap where the link did not).
    (
        "https://www.google.com/url?url=ftp://x.example/f&url=https://example.com/a",
        "https://example.com/a",
    ),
    (
        "https://www.google.com/url?url=https://example.com/a&url=ftp://x.example/f",
        "https://example.com/a",
    ),
    ("https://www.google.com/url?url=ftp://x.example/f&q=https://e.com/b", "https://e.com/b"),
    ("https://l.facebook.com/l.php?u=notaurl&u=http://e.com/a", "http://e.com/a"),
    ("https://l.facebook.com/l.php?u=http://b.com/1&u=http://a.com/2", "http://a.com/2"),
    ("https://l.facebook.com/l.php?u=http://a.com/2&u=http://b.com/1", "http://a.com/2"),
    # ... and a value with a port out of range is passed over, wherever it comes.
    ("https://l.facebook.com/l.php?u=http://b.com/&u=http://a.com:99999/", "http://b.com/"),
    ("https://l.facebook.com/l.php?u=http://a.com:99999/&u=http://b.com/", "http://b.com/"),
    # A wrapper whose target is missing or not an http(s) URL with a host is its own article.
    ("https://l.facebook.com/l.php?x=1", "https://l.facebook.com/l.php?x=1"),
    (
        "https://www.google.com/url?url=http://./&x=1",
        "https://google.com/url?url=http%3A%2F%2F.%2F&x=1",
    ),
    ("https://www.google.com/url?url=http:///x&q=http://e.com/b", "http://e.com/b"),
    # Instagram's wrapper is at ``/``, which a link may leave out.
    ("https://l.instagram.com?u=https://e.com/a", "https://e.com/a"),
    # Hosts: IDNA 2008 with UTS 46 mapping (``ß`` kept, full-width letters mapped), and w3lib's
    # encoding for a name IDNA 2008 refuses (a symbol); a host no one can spell keeps the link.
    ("http://faß.ｄｅ/a", "http://xn--fa-hia.de/a"),
    ("http://☃.net/a", "http://xn--n3h.net/a"),
    ("http://%2e/", "http://%2e/"),
    # The user part is everything before the last ``@``.
    ("http://a@b@example.com/x", "http://a%40b@example.com/x"),
    # Only slashes end a path, and an escape w3lib reads twice is read until it stays put.
    ("http://e.com/ID/X", "http://e.com/ID/X"),
    ("http://e.com/%%30a", "http://e.com/%0A"),
    # Only the first ``=`` ends a key: a tracking key stays tracking whatever its value holds.
    ("https://example.com/a?utm_source=a=b&id=5", "https://example.com/a?id=5"),
    ("https://example.com/a?id=x=amp", "https://example.com/a?id=x%3Damp"),
    # ``amp=TRUE`` is ``amp=true``: the AMP rendering.
    ("https://example.com/a?amp=TRUE", "https://example.com/a"),
    # ``amp`` as another parameter's value, or outputType asking for something else, is kept.
    ("https://example.com/a?format=amp", "https://example.com/a?format=amp"),
    ("https://example.com/a?outputType=print", "https://example.com/a?outputType=print"),
]


# Thai, Lao, Myanmar, Hangul Jamo, Khmer, CJK marks, Kana, Bopomofo, Hangul compatibility,
# Bopomofo extended, CJK extension A, Han, Hangul Jamo A, Hangul syllables and Jamo B, CJK
# compatibility, half-width Kana and Hangul, the supplementary ideographic planes.
NO_SPACE = [
    (0x0E00, 0x0EFF),
    (0x1000, 0x109F),
    (0x1100, 0x11FF),
    (0x1780, 0x17FF),
    (0x3005, 0x3007),
    (0x3040, 0x30FF),
    (0x3100, 0x312F),
    (0x3130, 0x318F),
    (0x31A0, 0x31FF),
    (0x3400, 0x4DBF),
    (0x4E00, 0x9FFF),
    (0xA960, 0xA97F),
    (0xAC00, 0xD7FF),
    (0xF900, 0xFAFF),
    (0xFF66, 0xFF9F),
    (0xFFA0, 0xFFDC),
    (0x20000, 0x3FFFF),
]


@pytest.mark.parametrize(("url", "expected"), CASES)
def test_canonical_url(url: str, expected: str) -> None:
    assert canonical_url(url) == expected
    assert canonical_url(expected) == expected


def test_wrappers_nested_deeper_than_four_are_the_links_own_key() -> None:
    """Four wrappers deep unwrap to the article; a fifth (or a loop of wrappers) keeps the link
    as it is, since canonicalizing what four unwraps leave would unwrap once more next time."""
    link = "http://e.com/a"
    for depth in range(1, 7):
        link = "https://l.facebook.com/l.php?u=" + quote(link, safe="")
        expected = "http://e.com/a" if depth <= 4 else link
        assert canonical_url(link) == expected, depth
        assert canonical_url(expected) == expected, depth


def test_a_no_space_run_then_latin_letters_splits_only_the_no_space_characters() -> None:
    """``普京abc`` (no space between scripts): each Han character is a word, ``abc`` is one."""
    tokens = tokenize_folded("普京abc")
    assert [(t.word, t.fstart, t.fend) for t in tokens] == [
        ("普", 0, 1),
        ("京", 1, 2),
        ("abc", 2, 5),
    ]


def test_character_classes_as_built() -> None:
    """The classes are built once at import, before a mutation run switches a mutant on: build
    them again here so that a change to how they are built is seen."""
    from monitor.normalize import _build_classes

    word, no_space = _build_classes()
    word_re = re.compile(f"[{word}]+")
    # Letters, combining marks and digits of every script, up to the last code point.
    for text in ("a", "Z", "é", "9", "٣", "क्षि", "ไทย", "中", "\U0002a6d6", "\U000e0100"):
        assert word_re.fullmatch(text), text
    for text in ("_", " ", "-", "!", "\u200b", "\U0010ffff"):
        assert word_re.search(text) is None, text
    for a, b in ("az", "AZ", "09"):  # the edges of a run
        assert word_re.fullmatch(a + b)
        assert word_re.search(chr(ord(a) - 1) + chr(ord(b) + 1)) is None
    no_space_re = re.compile(f"[{no_space}]")
    for first, last in NO_SPACE:
        assert no_space_re.match(chr(first)) and no_space_re.match(chr(last)), hex(first)
    for outside in (
        ord("X"),
        0x0DFF,
        0x0F00,
        0x0FFF,
        0x10A0,
        0x1200,
        0x177F,
        0x1800,
        0x3004,
        0x3008,
    ):
        assert no_space_re.match(chr(outside)) is None, hex(outside)
    for outside in (0x303F, 0x3190, 0x319F, 0x3200, 0x33FF, 0x4DC0, 0x4DFF, 0xA000, 0xA95F):
        assert no_space_re.match(chr(outside)) is None, hex(outside)
    for outside in (0xA980, 0xABFF, 0xD800, 0xF8FF, 0xFB00, 0xFF65, 0xFFDD, 0x1FFFF, 0x40000):
        assert no_space_re.match(chr(outside)) is None, hex(outside)


@pytest.mark.parametrize(
    ("text", "folded", "starts", "ends"),
    [
        ("ﾊﾟ", "パ", [0], [2]),  # half-width kana and its semi-voiced mark (U+FF9F) compose
        ("ｶﾞ", "ガ", [0], [2]),  # ... and its voiced mark (U+FF9E)
        ("\u1100\u1161\u11a8", "각", [0], [3]),  # conjoining jamo compose into one syllable
        ("e\u0300", "e", [0], [2]),  # U+0300, the first combining mark, on a Latin letter
        ("ре\u0300", "рѐ", [0, 1], [1, 3]),  # on a Cyrillic letter it stays
        ("a\u0301\u0323b", "ab", [0, 3], [3, 4]),  # two marks on a Latin letter: both dropped
        ("क\u093fत", "कित", [0, 0, 2], [2, 2, 3]),  # a Devanagari vowel sign stays with its base
        # A mark after the "." that NFKC gives "㏂" (a.m.): not on a Latin letter, so it stays.
        ("\u33c2\u0301", "a.m.\u0301", [0] * 5, [2] * 5),
    ],
)
def test_a_letter_and_its_marks_fold_as_one_cluster(
    text: str, folded: str, starts: list[int], ends: list[int]
) -> None:
    assert fold_with_offsets(text) == (folded, starts, ends)
