"""Compiled rule sets: an index over the rules' required words, then exact evaluation.

Matching an item costs one tokenization of its fields plus the evaluation of *candidate* rules
only: at compile time every rule gets a set of index keys (words, prefixes for ``Rusia*``,
deletion variants for ``Shoigu~``) such that the rule cannot match unless the item contains one of
them. An item's words are looked up in that index, so the cost grows with the number of rules that
could match, not with the number of rules. A rule without such a key (its only required term a
fuzzy word over 24 letters) is evaluated for every item.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TypeAlias

from rapidfuzz.distance import Levenshtein

from monitor.normalize import fold_with_offsets, folded_words, tokenize_folded
from monitor.rules.syntax import FIELDS, TEXT_FIELDS, And, Near, Node, Not, Query, Term

__all__ = ["Hit", "RequiredKeys", "RuleMatch", "RuleSet", "required_keys"]

_WORD_CACHE_LIMIT = 200_000
# Fuzzy terms up to this length are indexed by their deletion variants (at most ~300 for 24
# letters and 2 edits); an item word longer than this plus 2 cannot be within 2 edits of one.
_MAX_INDEXED_FUZZY = 24
_FIELD_ORDER = {name: i for i, name in enumerate(FIELDS)}


@dataclass(frozen=True)
class Hit:
    """Where a term matched: ``start``/``end`` index the ORIGINAL text of ``field``."""

    term: str
    field: str
    start: int
    end: int


@dataclass(frozen=True)
class RuleMatch:
    rule: str
    hits: tuple[Hit, ...]


class _Field:
    """One field of an item: folded words; word positions and offsets computed on demand.

    Most items contain no word of most rules, so the position map and the offsets (needed only to
    check phrases and to report hits) are built the first time a candidate rule asks for them.
    """

    __slots__ = ("_fends", "_fstarts", "_pos", "folded", "name", "oends", "ostarts", "words")

    def __init__(self, name: str, text: str) -> None:
        self.folded, self.ostarts, self.oends = fold_with_offsets(text)
        self.name = name
        self.words = folded_words(self.folded)
        self._pos: dict[str, list[int]] | None = None
        self._fstarts: list[int] | None = None
        self._fends: list[int] | None = None

    @property
    def pos(self) -> dict[str, list[int]]:
        if self._pos is None:
            pos: dict[str, list[int]] = {}
            for i, w in enumerate(self.words):
                p = pos.get(w)
                if p is None:
                    pos[w] = [i]
                else:
                    p.append(i)
            self._pos = pos
        return self._pos

    def offsets(self) -> tuple[list[int], list[int]]:
        """Folded-text start and end of every word."""
        if self._fstarts is None or self._fends is None:
            toks = tokenize_folded(self.folded)
            self._fstarts = [t.fstart for t in toks]
            self._fends = [t.fend for t in toks]
        return self._fstarts, self._fends

    def span(self, i: int, j: int) -> tuple[int, int]:
        """Original-text offsets of words ``i`` .. ``j - 1``."""
        starts, ends = self.offsets()
        fs, fe = starts[i], ends[j - 1]
        if self.ostarts is None or self.oends is None:
            return fs, fe
        return self.ostarts[fs], self.oends[fe - 1]


_Occ: TypeAlias = tuple[int, int]  # word positions [start, end) within one field


class _Doc:
    __slots__ = ("fields", "memo")

    def __init__(self, fields: Mapping[str, str]) -> None:
        self.fields: dict[str, _Field] = {}
        for name in FIELDS:
            text = fields.get(name)
            if text:
                self.fields[name] = _Field(name, text)
        self.memo: dict[_TermM, dict[str, list[_Occ]]] = {}


class _TermM:
    """A compiled term. Shared between rules (interned), so its occurrences are memoized once."""

    __slots__ = ("fields", "fuzzy", "glue", "label", "n", "prefix", "simple", "words")

    def __init__(self, term: Term) -> None:
        self.words = term.words
        self.glue = term.glue
        self.n = len(term.words)
        self.prefix = term.prefix
        self.fuzzy = term.fuzzy
        self.fields = (term.field,) if term.field else TEXT_FIELDS
        self.label = term.pattern()
        self.simple = self.n == 1 and not self.prefix and self.fuzzy is None

    def occurrences(self, doc: _Doc) -> dict[str, list[_Occ]]:
        got = doc.memo.get(self)
        if got is None:
            got = {}
            for name in self.fields:
                f = doc.fields.get(name)
                if f is not None:
                    occ = self.find(f)
                    if occ:
                        got[name] = occ
            doc.memo[self] = got
        return got

    def find(self, f: _Field) -> list[_Occ]:
        words = self.words
        if self.fuzzy is not None:
            w, k = words[0], self.fuzzy
            lw = len(w)
            ps: list[int] = []
            for cand, at in f.pos.items():
                if abs(len(cand) - lw) <= k and Levenshtein.distance(w, cand, score_cutoff=k) <= k:
                    ps.extend(at)
            return [(p, p + 1) for p in sorted(ps)]
        n = self.n
        if n == 1:
            if not self.prefix:
                return [(p, p + 1) for p in f.pos.get(words[0], ())]
            ps = []
            for cand, at in f.pos.items():
                if cand.startswith(words[0]):
                    ps.extend(at)
            return [(p, p + 1) for p in sorted(ps)]
        out: list[_Occ] = []
        fw = f.words
        glued = any(self.glue)
        fs, fe = f.offsets() if glued else ([], [])
        last = n - 1
        limit = len(fw) - n
        for p in f.pos.get(words[0], ()):
            if p > limit:
                break
            for i in range(1, n):
                w = fw[p + i]
                ok = w.startswith(words[i]) if (self.prefix and i == last) else w == words[i]
                if not ok or (glued and self.glue[i] and fs[p + i] != fe[p + i - 1]):
                    break
            else:
                out.append((p, p + n))
        return out

    def ev(self, doc: _Doc) -> bool:
        if self.simple:  # the common case: one exact word, a dict lookup per field
            w = self.words[0]
            for name in self.fields:
                f = doc.fields.get(name)
                if f is not None and w in f.pos:
                    return True
            return False
        return bool(self.occurrences(doc))

    def hits(self, doc: _Doc, out: list[Hit]) -> None:
        for name, occ in self.occurrences(doc).items():
            f = doc.fields[name]
            for i, j in occ:
                s, e = f.span(i, j)
                out.append(Hit(self.label, name, s, e))


class _NearM:
    __slots__ = ("distance", "fields", "left", "right")

    def __init__(self, near: Near, left: list[_TermM], right: list[_TermM]) -> None:
        self.left = left
        self.right = right
        self.distance = near.distance
        self.fields = (near.field,) if near.field else TEXT_FIELDS

    def _side(self, terms: list[_TermM], doc: _Doc, name: str) -> list[tuple[_TermM, _Occ]]:
        f = doc.fields.get(name)
        if f is None:
            return []
        out: list[tuple[_TermM, _Occ]] = []
        for t in terms:
            # NEAR operands carry no field of their own; the NEAR's field decides where to look.
            occ = t.occurrences(doc).get(name, []) if name in t.fields else t.find(f)
            out.extend((t, o) for o in occ)
        return out

    def _pairs(self, doc: _Doc, first_only: bool) -> list[tuple[str, _TermM, _Occ]]:
        """Occurrences on either side that have a partner within ``distance`` words.

        Sorted start and end positions plus bisection keep this O((n + m) log m) per field, so a
        text repeating both terms thousands of times stays fast.
        """
        found: list[tuple[str, _TermM, _Occ]] = []
        for name in self.fields:
            if name not in doc.fields:
                continue
            left = self._side(self.left, doc, name)
            if not left:
                continue
            right = self._side(self.right, doc, name)
            if not right:
                continue
            r_starts = sorted(o[0] for _, o in right)
            r_ends = sorted(o[1] for _, o in right)
            for t, o in left:
                if self._partner(o, r_starts, r_ends):
                    if first_only:
                        return [(name, t, o)]
                    found.append((name, t, o))
            if found:
                l_starts = sorted(o[0] for _, o in left)
                l_ends = sorted(o[1] for _, o in left)
                found.extend((name, t, o) for t, o in right if self._partner(o, l_starts, l_ends))
        return found

    def _partner(self, occ: _Occ, starts: list[int], ends: list[int]) -> bool:
        """Is some other occurrence within ``distance`` words after or before ``occ``?"""
        s, e = occ
        d = self.distance
        # after: an occurrence starting in [e, e + d]
        k = bisect_left(starts, e)
        if k < len(starts) and starts[k] <= e + d:
            return True
        # before: an occurrence ending in [s - d, s]
        k = bisect_right(ends, s)
        return k > 0 and ends[k - 1] >= s - d

    def ev(self, doc: _Doc) -> bool:
        return bool(self._pairs(doc, True))

    def hits(self, doc: _Doc, out: list[Hit]) -> None:
        for name, t, (i, j) in self._pairs(doc, False):
            s, e = doc.fields[name].span(i, j)
            out.append(Hit(t.label, name, s, e))


class _NotM:
    __slots__ = ("child",)

    def __init__(self, child: _Matcher) -> None:
        self.child = child

    def ev(self, doc: _Doc) -> bool:
        return not self.child.ev(doc)

    def hits(self, doc: _Doc, out: list[Hit]) -> None:
        return None  # an absence has no location


class _AndM:
    __slots__ = ("children",)

    def __init__(self, children: list[_Matcher]) -> None:
        # Cheap, selective checks first: plain terms, then NEAR, then negations.
        self.children = sorted(children, key=_cost)

    def ev(self, doc: _Doc) -> bool:
        for c in self.children:  # noqa: SIM110 - a generator is measurably slower on the hot path
            if not c.ev(doc):
                return False
        return True

    def hits(self, doc: _Doc, out: list[Hit]) -> None:
        for c in self.children:
            c.hits(doc, out)


class _OrM:
    __slots__ = ("children",)

    def __init__(self, children: list[_Matcher]) -> None:
        self.children = sorted(children, key=_cost)

    def ev(self, doc: _Doc) -> bool:
        for c in self.children:  # noqa: SIM110 - a generator is measurably slower on the hot path
            if c.ev(doc):
                return True
        return False

    def hits(self, doc: _Doc, out: list[Hit]) -> None:
        for c in self.children:
            if c.ev(doc):
                c.hits(doc, out)


_Matcher: TypeAlias = _TermM | _NearM | _NotM | _AndM | _OrM


def _cost(m: _Matcher) -> int:
    if isinstance(m, _TermM):
        return 2 if m.fuzzy is not None else 0
    if isinstance(m, _NearM):
        return 1
    if isinstance(m, _NotM):
        return 3
    return 2


# Index keys: ("w", word) means the item must contain that word; ("p", prefix) a word starting
# with it; ("d", variant) a word that becomes ``variant`` after deleting up to ``max_deletes``
# letters (fuzzy terms, below). None means no key guarantees a match (a NOT): always evaluate.
_Key: TypeAlias = tuple[str, str]
_Keys: TypeAlias = frozenset[_Key] | None


def _terms_of(node: Node) -> list[Term]:
    if isinstance(node, Term):
        return [node]
    if isinstance(node, Near):
        return [*node.left, *node.right]
    if isinstance(node, Not):
        return _terms_of(node.child)
    return [t for c in node.children for t in _terms_of(c)]


class _KeyChooser:
    """Picks each rule's index keys, preferring words few rules mention.

    Without corpus statistics, "mentioned by many rules" is the best available sign of a common
    word (every rule about Russia says Putin); among equally rare words the longest wins.
    """

    def __init__(self, queries: Sequence[Query]) -> None:
        self.rules_per_word: dict[str, int] = {}
        for q in queries:
            for w in {w for t in _terms_of(q.root) for w in t.words}:
                self.rules_per_word[w] = self.rules_per_word.get(w, 0) + 1

    def cost(self, keys: frozenset[_Key]) -> tuple[int, int]:
        return (
            sum(1 + self.rules_per_word.get(w, 0) for _, w in keys),
            -min(len(w) for _, w in keys),
        )

    def term(self, t: Term) -> _Keys:
        if t.fuzzy and len(t.words[0]) > _MAX_INDEXED_FUZZY:
            return None  # its variants would flood the index; such a term is evaluated directly
        if t.fuzzy:
            # Deletion neighbourhood (as in SymSpell): if two words are within k edits, deleting
            # at most k letters from each gives a common string. So a fuzzy term is indexed by
            # its own <=k-deletion variants and an item word looks up its variants.
            return frozenset(("d", v) for v in deletions(t.words[0], t.fuzzy))
        exact = t.words[:-1] if t.prefix else t.words
        if exact:
            return min((frozenset({("w", w)}) for w in exact), key=self.cost)
        return frozenset({("p", t.words[-1])})

    def best(self, keys: list[_Keys]) -> _Keys:
        usable = [k for k in keys if k is not None]
        return min(usable, key=self.cost) if usable else None

    def keys(self, node: Node) -> _Keys:
        if isinstance(node, Term):
            return self.term(node)
        if isinstance(node, Near):
            return self.best(
                [
                    _union([self.term(t) for t in node.left]),
                    _union([self.term(t) for t in node.right]),
                ]
            )
        if isinstance(node, Not):
            return None
        if isinstance(node, And):
            return self.best([self.keys(c) for c in node.children])
        return _union([self.keys(c) for c in node.children])


@dataclass(frozen=True)
class RequiredKeys:
    """Folded strings one of which every item matching a query contains (see required_keys)."""

    words: frozenset[str]  # a whole word
    prefixes: frozenset[str]  # the start of a word
    pieces: frozenset[str]  # a substring of a word (fuzzy terms)


class _StoredKeys(_KeyChooser):
    """The index's choice, with a fuzzy term keyed by substrings instead of deletion variants.

    Split a word into k + 1 pieces: a word within k edits of it still holds one of them whole,
    since each edit touches at most one piece. A substring test is what a stored row allows.
    """

    def term(self, t: Term) -> _Keys:
        if not t.fuzzy:
            return super().term(t)
        w, k = t.words[0], t.fuzzy
        size = max(1, len(w) // (k + 1))
        starts = [i * size for i in range(k + 1)]
        pieces = [w[a:b] for a, b in zip(starts, [*starts[1:], len(w)], strict=True)]
        return frozenset(("s", p) for p in pieces if p)


def required_keys(query: Query) -> RequiredKeys | None:
    """What an item must contain to match ``query``: one of these words, prefixes or pieces.

    The keys the :class:`RuleSet` index uses for the query (fuzzy terms by substrings), for
    searching stored items: a row whose words hold none of them cannot match. None when the
    query has no such keys (it is evaluated for every item): every row must be read.
    """
    keys = _StoredKeys([query]).keys(query.root)
    if keys is None:
        return None
    by_kind: dict[str, set[str]] = {"w": set(), "p": set(), "s": set()}
    for kind, key in keys:
        by_kind[kind].add(key)
    return RequiredKeys(frozenset(by_kind["w"]), frozenset(by_kind["p"]), frozenset(by_kind["s"]))


def deletions(word: str, k: int) -> set[str]:
    """``word`` and every string obtained from it by deleting up to ``k`` characters."""
    out = {word}
    level = {word}
    for _ in range(k):
        level = {w[:i] + w[i + 1 :] for w in level for i in range(len(w))}
        out |= level
    return out


def _union(keys: list[_Keys]) -> _Keys:
    out: set[_Key] = set()
    for k in keys:
        if k is None:
            return None
        out |= k
    return frozenset(out)


class RuleSet:
    """Rules compiled once per configuration load; :meth:`match` is called per item."""

    def __init__(self, rules: Sequence[tuple[str, Query]]) -> None:
        self._names: list[str] = []
        self._matchers: list[_Matcher] = []
        self._terms: dict[tuple[object, ...], _TermM] = {}
        words: dict[str, list[int]] = {}
        prefixes: dict[str, list[int]] = {}
        variants: dict[str, list[int]] = {}
        self._max_deletes = 0
        always: list[int] = []
        chooser = _KeyChooser([q for _, q in rules])
        for rid, (name, query) in enumerate(rules):
            self._names.append(name)
            self._matchers.append(self._compile(query.root))
            keys = chooser.keys(query.root)
            if keys is None:
                always.append(rid)
                continue
            for kind, key in keys:
                index = words if kind == "w" else prefixes if kind == "p" else variants
                index.setdefault(key, []).append(rid)
            self._max_deletes = max(
                [self._max_deletes] + [t.fuzzy or 0 for t in _terms_of(query.root)]
            )
        self._words = {k: tuple(v) for k, v in words.items()}
        self._prefixes = {k: tuple(v) for k, v in prefixes.items()}
        self._variants = {k: tuple(v) for k, v in variants.items()}
        self._prefix_lengths = sorted({len(k) for k in prefixes})
        self._always = tuple(always)
        self._word_cache: dict[str, tuple[int, ...]] = {}
        self._terms.clear()  # only needed while compiling

    def __len__(self) -> int:
        return len(self._names)

    @property
    def always_evaluated(self) -> int:
        """How many rules have no index key and are evaluated for every item."""
        return len(self._always)

    def _term(self, t: Term) -> _TermM:
        # The label is part of the key: `"Kim Jong Un"` and `Kim-Jong-Un` find the same words but
        # report different terms.
        key = (t.words, t.glue, t.prefix, t.fuzzy, t.field, t.pattern())
        m = self._terms.get(key)
        if m is None:
            m = self._terms[key] = _TermM(t)
        return m

    def _compile(self, node: Node) -> _Matcher:
        if isinstance(node, Term):
            return self._term(node)
        if isinstance(node, Near):
            return _NearM(
                node, [self._term(t) for t in node.left], [self._term(t) for t in node.right]
            )
        if isinstance(node, Not):
            return _NotM(self._compile(node.child))
        if isinstance(node, And):
            return _AndM([self._compile(c) for c in node.children])
        return _OrM([self._compile(c) for c in node.children])

    def candidates(self, fields: Mapping[str, str]) -> int:
        """How many rules :meth:`match` would evaluate for this item (for benchmarks)."""
        return len(self._candidates(_Doc(fields)))

    def _word_rules(self, w: str) -> tuple[int, ...]:
        """Rules one of whose index keys this item word satisfies (exact, prefix or fuzzy)."""
        found: set[int] = set(self._words.get(w, ()))
        for n in self._prefix_lengths:
            if n > len(w):
                break
            found.update(self._prefixes.get(w[:n], ()))
        if self._variants and len(w) <= _MAX_INDEXED_FUZZY + self._max_deletes:
            vindex = self._variants
            for v in deletions(w, self._max_deletes):
                found.update(vindex.get(v, ()))
        return tuple(found)

    def _candidates(self, doc: _Doc) -> set[int]:
        cands: set[int] = set(self._always)
        seen: set[str] = set()
        for f in doc.fields.values():
            seen.update(f.words)
        if not self._prefix_lengths and not self._variants:
            index = self._words
            for w in seen:
                r = index.get(w)
                if r is not None:
                    cands.update(r)
            return cands
        # Prefix and fuzzy keys cost several lookups per word; news vocabulary repeats, so the
        # answer per word is cached (bounded; a lost entry is only recomputed).
        cache = self._word_cache
        for w in seen:
            r = cache.get(w)
            if r is None:
                r = self._word_rules(w)
                if len(cache) >= _WORD_CACHE_LIMIT:
                    cache.clear()
                cache[w] = r
            cands.update(r)
        return cands

    def match(self, fields: Mapping[str, str]) -> list[RuleMatch]:
        """Rules matching an item, in rule order, each with what hit and where.

        ``fields`` keys are ``title``, ``summary``, ``source``, ``feed`` and ``lang``; a missing key
        is an empty field and other keys are ignored.
        """
        doc = _Doc(fields)
        out: list[RuleMatch] = []
        for rid in sorted(self._candidates(doc)):
            m = self._matchers[rid]
            if m.ev(doc):
                hits: list[Hit] = []
                m.hits(doc, hits)
                out.append(RuleMatch(self._names[rid], _sorted_hits(hits)))
        return out


def _sorted_hits(hits: list[Hit]) -> tuple[Hit, ...]:
    return tuple(sorted(set(hits), key=lambda h: (_FIELD_ORDER[h.field], h.start, h.end, h.term)))
