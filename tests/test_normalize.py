"""Folding, tokenizing with offsets into the original text, canonical URLs, headline keys."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.normalize import (
    canonical_url,
    fold,
    fold_with_offsets,
    normalize_headline,
    tokenize,
    word_runs,
)


@pytest.mark.parametrize(
    ("text", "folded"),
    [
        ("José", "jose"),
        ("TÜRKİYE", "turkiye"),
        ("Diyarbakır", "diyarbakir"),
        ("Øresund", "oresund"),
        ("Straße", "strasse"),
        ("Łódź", "lodz"),
        ("Ærøskøbing", "aeroskobing"),
        ("Cafe\u0301", "cafe"),  # decomposed accent on a Latin letter
        ("ﬁnance", "finance"),  # NFKC ligature
        ("Ｐｕｔｉｎ", "putin"),  # full-width
        ("①", "1"),
        ("ガザ", "ガザ"),  # Kana keeps its voicing mark
        ("ｶﾞｻﾞ", "ガザ"),  # half-width Kana composes under NFKC
        ("カ\u3099", "ガ"),  # decomposed dakuten composes
        ("Й", "й"),  # Cyrillic keeps its breve
        ("Ελλάδα", "ελλάδα"),  # Greek keeps its tonos
        ("नमस्ते", "नमस्ते"),  # Devanagari keeps vowel signs
        ("ปูติน", "ปูติน"),  # Thai keeps vowel signs
        ("푸틴", "푸틴"),
        ("普京", "普京"),
    ],
)
def test_fold(text: str, folded: str) -> None:
    assert fold(text) == folded


def test_fold_does_not_merge_marked_letters_of_other_scripts() -> None:
    assert fold("ガザ") != fold("カサ")
    assert fold("Й") != fold("И")
    assert fold("नमस्ते") != fold("नमसत")


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("Putin's visit", ["putin", "s", "visit"]),
        ("Kim Jong-un", ["kim", "jong", "un"]),
        ("COVID-19 naik", ["covid", "19", "naik"]),
        ("snake_case", ["snake", "case"]),
        ("नमस्ते दुनिया", ["नमस्ते", "दुनिया"]),
        ("푸틴과", ["푸", "틴", "과"]),  # no-space scripts: one word per character
        ("Putin普京", ["putin", "普", "京"]),
        ("ปูติน", ["ปู", "ติ", "น"]),  # a Thai vowel sign stays with its consonant
    ],
)
def test_tokenize_words(text: str, words: list[str]) -> None:
    assert [w for w, _, _ in tokenize(text)] == words


def test_tokenize_offsets_point_into_the_original_text() -> None:
    text = "Die Straße, ﬁnance: Ｐｕｔｉｎ"
    got = tokenize(text)
    assert [(w, text[s:e]) for w, s, e in got] == [
        ("die", "Die"),
        ("strasse", "Straße"),
        ("finance", "ﬁnance"),
        ("putin", "Ｐｕｔｉｎ"),
    ]


@given(st.text(max_size=60))
def test_every_token_comes_from_its_original_span(text: str) -> None:
    folded, starts, ends = fold_with_offsets(text)
    if starts is not None and ends is not None:
        assert len(starts) == len(ends) == len(folded)
        assert all(0 <= s < e <= len(text) for s, e in zip(starts, ends, strict=True))
    for word, s, e in tokenize(text):
        assert 0 <= s < e <= len(text)
        assert word in fold(text[s:e])


@given(st.text(alphabet=st.characters(codec="latin-1"), max_size=40))
def test_fold_is_idempotent_on_latin_text(text: str) -> None:
    assert fold(fold(text)) == fold(text)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("Ingin Temui Putin, Kim Jong Un Berangkat!", "ingin temui putin kim jong un berangkat"),
        ("  KIM   Jong-un's  train ", "kim jong un s train"),
        ("José: «Olá»", "jose ola"),
        ("普京会见 金正恩", "普京会见 金正恩"),
        ("", ""),
    ],
)
def test_normalize_headline(text: str, key: str) -> None:
    assert normalize_headline(text) == key


def test_word_runs_keep_no_space_scripts_whole() -> None:
    assert word_runs("普京会见, Putin") == ["普京会见", "putin"]


@pytest.mark.parametrize(
    ("url", "canonical"),
    [
        (
            "HTTPS://Example.COM:443/a/B?utm_source=x&b=2&a=1&fbclid=3#frag",
            "https://example.com/a/B?a=1&b=2",
        ),
        ("http://example.com:80", "http://example.com/"),
        ("http://example.com:8080/x", "http://example.com:8080/x"),
        ("https://x.id/berita?gclid=1&mc_cid=2&mc_eid=3&ref_src=t&igshid=4", "https://x.id/berita"),
        ("https://x.id/a?UTM_Medium=rss&id=5", "https://x.id/a?id=5"),
        ("https://x.id/a?q=a%20b&p=c+d", "https://x.id/a?p=c+d&q=a+b"),
        ("https://user:pw@Host.example/a", "https://user:pw@host.example/a"),
        ("http://[::1]:80/a", "http://[::1]/a"),
        ("https://x.id/a?", "https://x.id/a"),
    ],
)
def test_canonical_url(url: str, canonical: str) -> None:
    assert canonical_url(url) == canonical


@pytest.mark.parametrize(
    "url", ["", "not a url", "/relative/path?utm_source=x", "http://[::1/x", "http://h:99999/"]
)
def test_canonical_url_returns_unparseable_input_unchanged(url: str) -> None:
    assert canonical_url(url) == url


@given(st.text(max_size=80))
def test_canonical_url_never_raises_and_is_idempotent(url: str) -> None:
    once = canonical_url(url)
    assert canonical_url(once) == once


def test_the_word_classes_skip_only_planes_without_letters_marks_or_numbers() -> None:
    """Word classes are built from the planes that hold letters, marks and numbers only (a
    faster start). Scanning all 17 planes must give the same classes: this fails the day a
    Unicode version assigns one elsewhere, and ``WORD_PLANES`` must then grow."""
    from monitor import normalize

    assert normalize._build_classes(range(17)) == normalize._build_classes()
    assert normalize._build_classes()[0] == normalize._WORD_CLASS
