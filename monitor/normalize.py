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

import contextlib
import re
import unicodedata
from collections.abc import Iterable
from typing import NamedTuple
from urllib.parse import SplitResult, parse_qs, unquote_plus, urlsplit, urlunsplit

import idna
from w3lib.url import canonicalize_url

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


# The Unicode planes that hold letters, marks or numbers: the BMP, the supplementary planes 1-3
# and plane 14 (variation selectors are marks). Planes 4-13 are unassigned and 15-16 are private
# use, so scanning them (two thirds of the code points) only slowed every start by ~0.1 s. A test
# scans all 17 planes and fails the day a Unicode version assigns a letter outside these.
WORD_PLANES = (0, 1, 2, 3, 14)


def _build_classes(planes: Iterable[int] = WORD_PLANES) -> tuple[str, str]:
    """Character classes for words (letters, marks, numbers) and for no-space scripts.

    Built from the running Python's Unicode database so new scripts need no code change. Python's
    ``\\w`` is not enough: it excludes combining marks (it would split Devanagari and Thai words
    at their vowel signs) and includes the underscore.
    """
    ranges: list[tuple[int, int]] = []
    for plane in planes:
        start = -1
        end = (plane + 1) << 16
        for cp in range(plane << 16, end):
            is_word = unicodedata.category(chr(cp))[0] in "LMN"
            if is_word and start < 0:
                start = cp
            elif not is_word and start >= 0:
                ranges.append((start, cp - 1))
                start = -1
        if start >= 0:
            ranges.append((start, end - 1))

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


# --- URL identity ----------------------------------------------------------------------------
#
# RFC 3986 normalization (percent-escape case, unreserved escapes decoded, dot segments, query
# sorted, non-ASCII percent-encoded) is w3lib's ``canonicalize_url``, the function Scrapy
# fingerprints requests with. It was chosen by ``python -m benchmarks urls`` over the feed
# captures: 2-4x faster than url-normalize, and url-normalize folds ``//`` inside a path
# (``/plain/s3://bucket`` becomes ``s3:/bucket``), merging URLs that differ. w3lib's own IDNA step
# is the IDNA 2003 codec, which maps ``faß.de`` to ``fass.de``, a different registered domain, so
# non-ASCII hosts are encoded here first with ``idna`` (IDNA 2008, UTS 46 non-transitional).
# Our rules on top fold what news sites do to one article URL; when in doubt two URLs stay apart.

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
# The same site for desktop, phone and AMP readers. Only a leading label is folded, and only while
# a registered name remains (``m.example.com`` -> ``example.com``, ``www.com`` stays).
_HOST_PREFIXES = ("www.", "m.", "mobile.", "amp.")
# ``?amp=1`` and ``?outputType=amp`` (Washington Post) ask for the AMP rendering of the article.
_AMP_VALUES = frozenset({"", "1", "true"})
_AMP_HTML_RE = re.compile(r"(?:\.amp)+(\.html?)$")
_GOOGLE_HOST_RE = re.compile(r"google\.(?:com|[a-z]{2}|com?\.[a-z]{2})")
# Google's AMP viewer and the AMP cache serve a publisher's page under their own host: the
# original is in the path, ``s/`` meaning https.
_GOOGLE_AMP_PATH_RE = re.compile(r"/amp/(s/)?(.+)")
_AMP_CACHE_PATH_RE = re.compile(r"/[cv]/(s/)?(.+)")
# Redirect wrappers whose target is a query parameter: (host after prefix folding, path) -> the
# parameters to read, in order. Only these are unwrapped: t.co, bit.ly, lnkd.in,
# feedproxy.google.com (``/~r/Feed/~3/TOKEN/``) and news.google.com carry an opaque token that
# needs a request to resolve. feedsportal.com (``/l/0L...0A/story01.htm``) spells its target in an
# undocumented escaping and closed in 2015: its links are kept as they are, apart from each other.
_REDIRECT_PARAMS: dict[tuple[str, str], tuple[str, ...]] = {
    ("l.facebook.com", "/l.php"): ("u",),
    ("lm.facebook.com", "/l.php"): ("u",),
    ("facebook.com", "/l.php"): ("u",),
    ("l.instagram.com", "/"): ("u",),
    ("youtube.com", "/redirect"): ("q",),
    ("bing.com", "/news/apiclick.aspx"): ("url",),
    ("linkedin.com", "/redir/redirect"): ("url",),
    ("slack-redir.net", "/link"): ("url",),
}
_MAX_UNWRAP = 4  # a wrapper wrapping a wrapper: bounded, as a loop of them is possible
_MAX_PATH_ROUNDS = 8
_ODD_ESCAPE_RE = re.compile(r"%(?![0-9A-F]{2})")  # w3lib writes escapes as %XX, uppercase


def _is_tracking(key: str) -> bool:
    k = unquote_plus(key).lower()
    return k in _TRACKING_PARAMS or k.startswith(_TRACKING_PREFIXES)


def _split_http(url: str) -> SplitResult | None:
    """``url`` split, if it is an absolute http(s) URL with a host (else None)."""
    parts = urlsplit(url.strip())
    if parts.scheme.lower() not in _DEFAULT_PORTS or not (parts.hostname or "").strip("."):
        return None
    _ = parts.port  # raises ValueError on a port out of range
    return parts


def _fold_host(host: str) -> str:
    host = host.rstrip(".")  # ``example.com.`` is the same DNS name
    if ":" in host:
        return host  # IPv6 literal
    while True:
        for prefix in _HOST_PREFIXES:
            if host.startswith(prefix) and "." in host[len(prefix) :]:
                host = host[len(prefix) :]
                break
        else:
            return host


def _unwrap(parts: SplitResult) -> SplitResult | None:
    """The article a redirect wrapper points at, if ``parts`` is one and its target is http(s).

    A key given twice (``u=notaurl&u=https://e.com/a``) is read whole, its values in sorted
    order, not in the order they came, and a value that is not an http(s) URL with a host (or
    has a port out of range) is passed over: query order never changes the result. Reading only the
    first value made the result depend on it, and the canonical form (its query sorted) could
    then unwrap where the link did not, so canonicalizing was not idempotent.
    """
    host = _fold_host(parts.hostname or "")
    path = parts.path
    candidates: list[str] = []
    if _GOOGLE_HOST_RE.fullmatch(host):
        if path == "/url":
            # Google Alerts and search results: /url?rct=j&sa=t&url=TARGET&ct=ga&usg=...
            query = parse_qs(parts.query)
            candidates = [v for key in ("url", "q") for v in sorted(query.get(key, []))]
        elif m := _GOOGLE_AMP_PATH_RE.fullmatch(path):
            candidates = [_from_path(m, parts.query)]
    elif host.endswith(".cdn.ampproject.org"):
        if m := _AMP_CACHE_PATH_RE.fullmatch(path):
            candidates = [_from_path(m, parts.query)]
    elif keys := _REDIRECT_PARAMS.get((host, path or "/")):
        query = parse_qs(parts.query)
        candidates = [v for key in keys for v in sorted(query.get(key, []))]
    for candidate in candidates:
        try:
            target = _split_http(candidate)
        except ValueError:  # a port out of range, a broken IPv6 literal: the next value
            continue
        if target is not None:
            return target
    return None


def _from_path(m: re.Match[str], query: str) -> str:
    scheme = "https" if m.group(1) else "http"
    return f"{scheme}://{m.group(2)}" + (f"?{query}" if query else "")


def _keep_param(pair: str) -> bool:
    key, _, value = pair.partition("=")
    if _is_tracking(key):
        return False
    if key == "amp" and value.lower() in _AMP_VALUES:
        return False
    return not (key == "outputType" and value.lower() == "amp")


def _fold_path(path: str) -> str:
    """``/amp/`` segments, a trailing slash and ``.amp.html`` fold to the article's path.

    ``path`` comes out of w3lib, which is not always a fixed point of itself, nor of our folding:
    ``/%%30a`` becomes ``/%0a``, then ``/%0A``; ``/.;/`` folds to ``/.;``, which w3lib reads as
    ``/.`` with empty parameters, that is ``/``. Such a path goes back through w3lib until
    nothing changes it, so that canonicalizing stays idempotent; well-formed paths (escapes
    already uppercase, nothing folded) skip the extra round.
    """
    for _ in range(_MAX_PATH_ROUNDS):
        folded = "/".join(s for s in path.split("/") if s != "amp").rstrip("/")
        folded = _AMP_HTML_RE.sub(r"\1", folded) or "/"
        if folded == path and _ODD_ESCAPE_RE.search(path) is None:
            break
        again = urlsplit(canonicalize_url(f"http://h{folded}")).path
        if again == path:
            break
        path = again
    return path


def _netloc(parts: SplitResult, host: str) -> str:
    """``parts``' authority with ``host`` and without the scheme's default port."""
    if ":" in host:
        host = f"[{host}]"  # IPv6 literal
    port = parts.port
    netloc = host if port is None or port == _DEFAULT_PORTS.get(parts.scheme) else f"{host}:{port}"
    if "@" in parts.netloc:
        netloc = f"{parts.netloc.rpartition('@')[0]}@{netloc}"
    return netloc


def _canonical(parts: SplitResult) -> str:
    host = parts.hostname or ""
    if not host.isascii():
        with contextlib.suppress(idna.IDNAError):
            host = idna.encode(host, uts46=True).decode("ascii")
        # else not a valid IDNA 2008 name: w3lib encodes it as best it can
    parts = parts._replace(scheme=parts.scheme.lower())
    url = canonicalize_url(
        urlunsplit(parts._replace(netloc=_netloc(parts, host))), keep_fragments=True
    )
    out = urlsplit(url)
    out_host = out.hostname or ""
    if not out_host.strip("."):
        # No host out of w3lib: the input is its own key. (w3lib keeps a host it cannot encode
        # as it was, ``http://%2e/`` included, so this guards a change in w3lib, not a case seen.)
        raise ValueError(url)
    query = "&".join(p for p in out.query.split("&") if p and _keep_param(p))
    fragment = out.fragment if out.fragment.startswith(("!", "/")) else ""
    netloc = _netloc(out, _fold_host(out_host))
    return urlunsplit((out.scheme, netloc, _fold_path(out.path), query, fragment))


def canonical_url(url: str) -> str:
    """One spelling per article URL, for identity and dedup.

    Two links are the same item when they differ only in what never changes the article:

    - spelling (RFC 3986 section 6.2.2): scheme and host case, percent-escape case (``%2f`` is
      ``%2F``), escaped unreserved characters (``%7E`` is ``~``), ``.`` and ``..`` segments,
      non-ASCII characters and their UTF-8 escapes, IDN hosts and their ``xn--`` form, the default
      port, an empty path, a trailing slash, a trailing dot on the host, query order, ``+`` and
      ``%20`` in the query;
    - ``www.``, ``m.``, ``mobile.`` and ``amp.`` host prefixes;
    - the AMP rendering: ``/amp/`` segments, a trailing ``/amp``, ``.amp.html``, ``?amp=1``,
      ``?outputType=amp``;
    - tracking parameters (``utm_*``, ``fbclid``, ...);
    - fragments, except routes (``#!/news/1``, ``#/news/1``), which single-page sites use as the
      article's address;
    - redirect wrappers that carry the article's URL (Google Alerts ``google.com/url?url=``,
      Facebook ``l.php?u=``, Google's AMP viewer and cache, ...): the article is what counts.

    Everything else keeps two links apart, including http vs https and ``/a`` vs ``/a%2Fb``-style
    escaped delimiters. Anything that is not an absolute http(s) URL is returned unchanged.
    """
    try:
        parts = _split_http(url)
        if parts is None:
            return url
        for _ in range(_MAX_UNWRAP):
            target = _unwrap(parts)
            if target is None:
                break
            parts = target
        else:
            if _unwrap(parts) is not None:
                # Wrappers nested deeper than the bound (or a loop of them): the link is its own
                # key. Canonicalizing what is left would give a wrapper that unwraps once more.
                return url
        return _canonical(parts)
    except ValueError:  # includes UnicodeError; a URL is data here, never a reason to fail
        return url
