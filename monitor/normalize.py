"""Text and URL normalization shared by dedup and rule matching (pure functions).

Folding is what makes ``José`` equal ``Jose`` and ``TÜRKİYE`` equal ``Turkiye``: NFKC, then
casefold, then Latin letters lose their diacritics. Only Latin is stripped: in Cyrillic, Kana,
Devanagari or Thai a mark is part of the letter (Й is not И, ガ is not カ), so folding there would
merge different words.

Matching must report where a term was found in the *original* text, while folding can change
lengths (``ß`` -> ``ss``, ``ﬁ`` -> ``fi``, ``①`` -> ``1``). :func:`fold_with_offsets` therefore
keeps, for every folded character, the span of original text it came from.
"""

from __future__ import annotations

import re
import sys
import unicodedata
from typing import NamedTuple
from urllib.parse import unquote_plus, urlsplit, urlunsplit

__all__ = [
    "Token",
    "canonical_url",
    "fold",
    "fold_with_offsets",
    "folded_words",
    "is_no_space_script",
    "normalize_headline",
    "tokenize",
    "tokenize_folded",
    "word_runs",
]

# Latin letters that carry no Unicode decomposition but are still "a letter with a stroke/ligature"
# to a reader: Øresund = Oresund, Łódź = Lodz, Diyarbakır = Diyarbakir.
_LATIN_SPECIAL = {
    "ø": "o",
    "đ": "d",
    "ð": "d",
    "ħ": "h",
    "ı": "i",
    "ł": "l",
    "ŀ": "l",
    "ŧ": "t",
    "ƚ": "l",
    "ɨ": "i",
    "ƀ": "b",
    "ƶ": "z",
    "æ": "ae",
    "œ": "oe",
    "þ": "th",
    "ĸ": "k",
}

_CACHE_LIMIT = 200_000
_cluster_cache: dict[str, str] = {}


def _is_latin(ch: str) -> bool:
    if ch < "\x80":
        return ch.isalpha()
    return unicodedata.name(ch, "").startswith("LATIN ")


def _is_mark(ch: str) -> bool:
    """True for characters that belong to the preceding character's cluster.

    Hangul conjoining vowels and finals (category Lo, not M) and the half-width Kana voicing marks
    (Lm) are included so that NFKC composes them with their base, as it would for the whole text.
    """
    if ch < "\u0300":
        return False
    if unicodedata.category(ch)[0] == "M":
        return True
    o = ord(ch)
    return 0x1160 <= o <= 0x11FF or 0xD7B0 <= o <= 0xD7FF or 0xFF9E <= o <= 0xFF9F


def _fold_cluster(cluster: str) -> str:
    """Fold one base character with its combining marks."""
    cached = _cluster_cache.get(cluster)
    if cached is not None:
        return cached
    text = unicodedata.normalize("NFKC", cluster).casefold()
    if any(_is_latin(c) for c in text):
        out: list[str] = []
        after_latin = False
        for c in unicodedata.normalize("NFD", text):
            if unicodedata.category(c)[0] == "M":
                if after_latin:
                    continue  # a diacritic on a Latin letter: drop it
                out.append(c)
                continue
            after_latin = _is_latin(c)
            out.append(_LATIN_SPECIAL.get(c, c))
        text = unicodedata.normalize("NFC", "".join(out))
    else:
        special = _LATIN_SPECIAL.get(text)
        if special is not None:
            text = special
    if len(_cluster_cache) >= _CACHE_LIMIT:
        _cluster_cache.clear()  # bounded: adversarial input cannot grow it without limit
    _cluster_cache[cluster] = text
    return text


def fold_with_offsets(text: str) -> tuple[str, list[int] | None, list[int] | None]:
    """Fold ``text``; also return, per folded character, the original span it came from.

    Returns ``(folded, starts, ends)``. ``starts``/``ends`` are ``None`` when folding kept every
    character in place (pure ASCII), meaning folded index == original index.
    """
    if text.isascii():
        return text.lower(), None, None
    out: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    n = len(text)
    i = 0
    while i < n:
        c = text[i]
        j = i + 1
        while j < n and _is_mark(text[j]):
            j += 1
        if j == i + 1 and c < "\x80":
            out.append(c.lower())
            starts.append(i)
            ends.append(j)
        else:
            f = _fold_cluster(text[i:j])
            out.append(f)
            starts.extend([i] * len(f))
            ends.extend([j] * len(f))
        i = j
    return "".join(out), starts, ends


def fold(text: str) -> str:
    """NFKC + casefold + Latin letters folded to their base letter; other scripts untouched."""
    return fold_with_offsets(text)[0]


def _build_classes() -> tuple[str, str]:
    """Character classes for words (letters, marks, numbers) and for no-space scripts.

    Built from the running Python's Unicode database so new scripts need no code change. Python's
    ``\\w`` is not enough: it excludes combining marks (it would split Devanagari and Thai words
    at their vowel signs) and includes the underscore.
    """
    ranges: list[tuple[int, int]] = []
    start = -1
    for cp in range(sys.maxunicode + 1):
        is_word = unicodedata.category(chr(cp))[0] in "LMN"
        if is_word and start < 0:
            start = cp
        elif not is_word and start >= 0:
            ranges.append((start, cp - 1))
            start = -1
    if start >= 0:
        ranges.append((start, sys.maxunicode))

    def cls(rs: list[tuple[int, int]]) -> str:
        return "".join(
            re.escape(chr(a)) if a == b else f"{re.escape(chr(a))}-{re.escape(chr(b))}"
            for a, b in rs
        )

    # Scripts written without spaces between words: Thai, Lao, Myanmar, Khmer, Hangul, Kana, Han
    # (and Bopomofo/CJK extensions). A term in them matches as a substring.
    no_space = [
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
    return cls(ranges), cls(no_space)


_WORD_CLASS, _NO_SPACE_CLASS = _build_classes()
# Fixed character classes, never built from user text: linear time on any input.
_WORD_RE = re.compile(f"[{_WORD_CLASS}]+")
_NO_SPACE_RE = re.compile(f"[{_NO_SPACE_CLASS}]")
_ASCII_WORD_RE = re.compile("[a-z0-9]+")  # the same words as _WORD_RE on folded ASCII text


def is_no_space_script(ch: str) -> bool:
    """True if ``ch`` belongs to a script written without spaces (Han, Kana, Hangul, Thai, ...)."""
    return _NO_SPACE_RE.match(ch) is not None


class Token(NamedTuple):
    """One word of a folded text: ``fstart``/``fend`` index the folded text."""

    word: str
    fstart: int
    fend: int


def tokenize_folded(folded: str) -> list[Token]:
    """Split already-folded text into words.

    A word is a run of letters, combining marks and digits. Inside a run, every character of a
    no-space script (with its marks) is a word of its own, so a term in those scripts is matched as
    a sequence of adjacent characters, i.e. as a substring (``푸틴`` in ``푸틴과``).
    """
    tokens: list[Token] = []
    for m in _WORD_RE.finditer(folded):
        run = m.group()
        s = m.start()
        if run.isascii() or _NO_SPACE_RE.search(run) is None:
            tokens.append(Token(run, s, m.end()))
            continue
        i = 0
        n = len(run)
        while i < n:
            if _NO_SPACE_RE.match(run, i):
                j = i + 1
                while j < n and _is_mark(run[j]):
                    j += 1
            else:
                j = i + 1
                while j < n and not _NO_SPACE_RE.match(run, j):
                    j += 1
            tokens.append(Token(run[i:j], s + i, s + j))
            i = j
    return tokens


def folded_words(folded: str) -> list[str]:
    """The words of :func:`tokenize_folded`, without offsets (fast on ASCII text)."""
    if folded.isascii():
        return _ASCII_WORD_RE.findall(folded)
    return [t.word for t in tokenize_folded(folded)]


def tokenize(text: str) -> list[tuple[str, int, int]]:
    """Folded words of ``text`` with ``(start, end)`` offsets into the ORIGINAL text."""
    folded, starts, ends = fold_with_offsets(text)
    toks = tokenize_folded(folded)
    if starts is None or ends is None:
        return [(t.word, t.fstart, t.fend) for t in toks]
    return [(t.word, starts[t.fstart], ends[t.fend - 1]) for t in toks]


def word_runs(text: str) -> list[str]:
    """Folded words of ``text``, without splitting no-space scripts into characters."""
    return _WORD_RE.findall(fold(text))


def normalize_headline(text: str) -> str:
    """Folded words joined by single spaces, punctuation dropped: a key for headline dedup."""
    return " ".join(word_runs(text))


# Query parameters that identify a campaign or a click, never the article. Dropping them makes
# the same story shared through different channels one URL.
_TRACKING_PARAMS = frozenset(
    {
        "fbclid",
        "gclid",
        "dclid",
        "gbraid",
        "wbraid",
        "msclkid",
        "yclid",
        "twclid",
        "igshid",
        "mc_cid",
        "mc_eid",
        "ref_src",
        "ref_url",
        "_ga",
        "_gl",
        "_hsenc",
        "_hsmi",
        "mkt_tok",
        "oly_anon_id",
        "oly_enc_id",
        "vero_id",
        "wt_mc",
        "cmpid",
        "s_cid",
        "at_medium",
        "at_campaign",
    }
)
_TRACKING_PREFIXES = ("utm_", "pk_", "mtm_")
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _is_tracking(key: str) -> bool:
    k = unquote_plus(key).lower()
    return k in _TRACKING_PARAMS or k.startswith(_TRACKING_PREFIXES)


def canonical_url(url: str) -> str:
    """One spelling per article URL, for identity and dedup.

    Lowercases scheme and host (RFC 3986 section 6.2.2.1), drops the default port and an empty
    path becomes ``/`` (section 6.2.3), drops the fragment (never sent to the server), drops
    tracking parameters and sorts the rest. Parameter bytes are kept as they were (no re-encoding),
    so a server that cares about ``%20`` vs ``+`` still gets what it published. Anything that does
    not parse as an absolute URL is returned unchanged.
    """
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return url
    if not parts.scheme or not parts.netloc or parts.hostname is None:
        return url
    scheme = parts.scheme.lower()
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"  # IPv6 literal
    netloc = host
    if port is not None and _DEFAULT_PORTS.get(scheme) != port:
        netloc = f"{host}:{port}"
    if parts.username is not None or parts.password is not None:
        userinfo = parts.netloc.rpartition("@")[0]
        netloc = f"{userinfo}@{netloc}"
    path = parts.path
    if not path and scheme in _DEFAULT_PORTS:
        path = "/"
    pairs = [p for p in parts.query.split("&") if p and not _is_tracking(p.partition("=")[0])]
    query = "&".join(sorted(pairs))
    return urlunsplit((scheme, netloc, path, query, ""))
