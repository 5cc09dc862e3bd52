"""A slow, obviously-correct evaluator of a parsed query: the executable specification.

It scans every word position of every field for every term, with no index, no memo and no
short-circuit, so that :class:`~monitor.rules.RuleSet` (which indexes, interns and skips) can be
checked against it by property tests. Never used on the matching path.
"""

from __future__ import annotations

from collections.abc import Mapping

from monitor.normalize import Token, fold_with_offsets, tokenize_folded
from monitor.rules.compile import Hit
from monitor.rules.syntax import FIELDS, TEXT_FIELDS, And, Near, Node, Not, Or, Query, Term

__all__ = ["edit_distance", "evaluate"]


def edit_distance(a: str, b: str) -> int:
    """Textbook Levenshtein distance (insert, delete, substitute)."""
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


class _Text:
    def __init__(self, text: str) -> None:
        self.folded, self.starts, self.ends = fold_with_offsets(text)
        self.tokens: list[Token] = tokenize_folded(self.folded)

    def span(self, i: int, j: int) -> tuple[int, int]:
        s, e = self.tokens[i].fstart, self.tokens[j - 1].fend
        if self.starts is None or self.ends is None:
            return s, e
        return self.starts[s], self.ends[e - 1]


def _word_matches(term: Term, k: int, word: str) -> bool:
    want = term.words[k]
    if term.fuzzy is not None:
        return edit_distance(want, word) <= term.fuzzy
    if term.prefix and k == len(term.words) - 1:
        return word.startswith(want)
    return word == want


def _occurrences(term: Term, text: _Text) -> list[tuple[int, int]]:
    toks = text.tokens
    n = len(term.words)
    out = []
    for i in range(len(toks) - n + 1):
        if all(_word_matches(term, k, toks[i + k].word) for k in range(n)) and all(
            not term.glue[k] or toks[i + k].fstart == toks[i + k - 1].fend for k in range(1, n)
        ):
            out.append((i, i + n))
    return out


def _fields(name: str | None) -> tuple[str, ...]:
    return (name,) if name else TEXT_FIELDS


def _eval(node: Node, texts: dict[str, _Text]) -> tuple[bool, set[Hit]]:
    if isinstance(node, Term):
        hits = set()
        for name in _fields(node.field):
            if name in texts:
                for i, j in _occurrences(node, texts[name]):
                    s, e = texts[name].span(i, j)
                    hits.add(Hit(node.pattern(), name, s, e))
        return bool(hits), hits
    if isinstance(node, Near):
        hits = set()
        for name in _fields(node.field):
            if name not in texts:
                continue
            text = texts[name]
            left = [(t, o) for t in node.left for o in _occurrences(t, text)]
            right = [(t, o) for t in node.right for o in _occurrences(t, text)]
            for lt, (ls, le) in left:
                for rt, (rs, re_) in right:
                    gap = rs - le if le <= rs else ls - re_ if re_ <= ls else None
                    if gap is not None and gap <= node.distance:
                        hits.add(Hit(lt.pattern(), name, *text.span(ls, le)))
                        hits.add(Hit(rt.pattern(), name, *text.span(rs, re_)))
        return bool(hits), hits
    if isinstance(node, Not):
        ok, _ = _eval(node.child, texts)
        return not ok, set()
    results = [_eval(c, texts) for c in node.children]
    if isinstance(node, And):
        ok = all(r[0] for r in results)
        return ok, set().union(*(r[1] for r in results)) if ok else set()
    assert isinstance(node, Or)
    ok = any(r[0] for r in results)
    return ok, set().union(*(r[1] for r in results if r[0]))


def evaluate(query: Query, fields: Mapping[str, str]) -> tuple[bool, frozenset[Hit]]:
    """Whether ``query`` matches an item, and the hits a match reports."""
    texts = {name: _Text(fields[name]) for name in FIELDS if fields.get(name)}
    ok, hits = _eval(query.root, texts)
    return ok, frozenset(hits) if ok else frozenset()
