"""URL identity cases that ``make mutants`` found untested: each pins what a user sees.

A wrong answer here makes two links to one article alert twice, or merges two articles.
"""

from __future__ import annotations

import re

import pytest

from monitor.normalize import canonical_url, fold_with_offsets

CASES = [
    # Google's AMP viewer without ``s/`` serves a plain-http page: http stays http.
    ("https://www.google.com/amp/example.com/news/1", "http://example.com/news/1"),
    ("https://www.google.com/amp/s/example.com/news/1", "https://example.com/news/1"),
    # The viewer's query string is the article's.
    ("https://www.google.com/amp/s/example.com/story?id=7", "https://example.com/story?id=7"),
    ("https://x-com.cdn.ampproject.org/c/example.com/a?p=2", "http://example.com/a?p=2"),
    # Google's /url reads the first ``url`` and the first ``q``, not a second ``url``.
    (
        "https://www.google.com/url?url=ftp://x.example/f&url=https://example.com/a",
        "https://google.com/url?url=ftp%3A%2F%2Fx.example%2Ff&url=https%3A%2F%2Fexample.com%2Fa",
    ),
    ("https://www.google.com/url?url=ftp://x.example/f&q=https://e.com/b", "https://e.com/b"),
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
    ],
)
def test_a_letter_and_its_marks_fold_as_one_cluster(
    text: str, folded: str, starts: list[int], ends: list[int]
) -> None:
    assert fold_with_offsets(text) == (folded, starts, ends)
