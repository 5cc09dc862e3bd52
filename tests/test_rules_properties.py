"""Property tests: the indexed RuleSet agrees with the reference evaluator; parse never crashes;
printing and re-parsing is the identity."""

from __future__ import annotations

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from monitor.rules import Query, QueryError, RuleSet, parse_query
from monitor.rules.reference import evaluate
from tests.proptest import examples

# A small vocabulary, so random queries and random texts actually meet: accents, case, inner
# punctuation, fuzzy neighbours (shoigu/shoygu), prefixes (rusia/rusianya), no-space scripts.
WORDS = [
    "Putin",
    "putin",
    "Kim",
    "Jong",
    "un",
    "Rusia",
    "rusianya",
    "José",
    "jose",
    "Straße",
    "strasse",
    "shoigu",
    "Shoygu",
    "syoigu",
    "COVID-19",
    "ke-43",
    "and",
    "普京",
    "会见",
    "푸틴",
    "과",
    "ガザ",
]
SINGLE = [w for w in WORDS if w.isalpha() and w.isascii()]  # usable with `~`
PREFIXABLE = [w for w in WORDS if len(w) >= 3 and w.isascii()]
FIELD_NAMES = ["title", "summary", "source", "feed", "lang"]

bare = st.sampled_from(WORDS)
phrase = st.lists(st.sampled_from(WORDS), min_size=1, max_size=3).map(
    lambda ws: '"' + " ".join(ws) + '"'
)
prefix = st.sampled_from(PREFIXABLE).map(lambda w: w + "*")
fuzzy = st.tuples(st.sampled_from(SINGLE), st.sampled_from(["~", "~0", "~1", "~2"])).map("".join)
plain_leaf = st.one_of(bare, bare, phrase, prefix, fuzzy)
leaf = st.one_of(
    plain_leaf,
    st.tuples(st.sampled_from(FIELD_NAMES), plain_leaf).map(lambda t: f"{t[0]}:{t[1]}"),
)
near = st.tuples(plain_leaf, st.integers(0, 4), plain_leaf).map(
    lambda t: f"{t[0]} NEAR/{t[1]} {t[2]}"
)


def _compound(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    pair = st.lists(children, min_size=2, max_size=3)
    return st.one_of(
        pair.map(lambda cs: "(" + " AND ".join(cs) + ")"),
        pair.map(lambda cs: "(" + " ".join(cs) + ")"),
        pair.map(lambda cs: "(" + " OR ".join(cs) + ")"),
        pair.map(lambda cs: " OR ".join(cs)),  # unparenthesized: exercises precedence
        children.map(lambda c: f"NOT {c}"),
        children.map(lambda c: f"-({c})"),
        st.tuples(st.sampled_from(FIELD_NAMES), children).map(lambda t: f"{t[0]}:({t[1]})"),
    )


sub_query = st.recursive(st.one_of(leaf, near), _compound, max_leaves=8)
# Most random trees with NOT only exclude (an error); a positive leaf in front keeps most valid.
query_text = st.one_of(sub_query, st.tuples(leaf, sub_query).map(" ".join))

SEPARATORS = [" ", " ", ", ", "-", "'s ", ": ", ""]


@st.composite
def field_text(draw: st.DrawFn) -> str:
    words = draw(st.lists(st.sampled_from([*WORDS, "Moskow", "x"]), max_size=16))
    out = []
    for w in words:
        style = draw(st.sampled_from(["same", "upper", "lower"]))
        w = w.upper() if style == "upper" else w.lower() if style == "lower" else w
        out.append(w + draw(st.sampled_from(SEPARATORS)))
    return "".join(out)


item = st.fixed_dictionaries(
    {"title": field_text()}, optional={name: field_text() for name in FIELD_NAMES[1:]}
)


def _parse_or_reject(text: str) -> Query:
    try:
        return parse_query(text)
    except QueryError:
        assume(False)
        raise  # pragma: no cover - assume(False) raises


@settings(max_examples=examples(400), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(query_text, min_size=1, max_size=6), item)
def test_ruleset_agrees_with_reference(texts: list[str], fields: dict[str, str]) -> None:
    queries = [_parse_or_reject(t) for t in texts]
    rules = [(f"r{i}", q) for i, q in enumerate(queries)]
    got = {m.rule: set(m.hits) for m in RuleSet(rules).match(fields)}
    want = {}
    for name, q in rules:
        ok, hits = evaluate(q, fields)
        if ok:
            want[name] = set(hits)
    assert got == want


@settings(max_examples=examples(300), deadline=None)
@given(query_text)
def test_print_then_parse_is_identity(text: str) -> None:
    q = _parse_or_reject(text)
    again = parse_query(str(q))
    assert again == q
    assert str(again) == str(q)


QUERY_ALPHABET = st.sampled_from(
    [
        *'()"-*~:@/ \t\n',
        *["AND", "OR", "NOT", "NEAR/", "NEAR/2", "title:", "feed:", "x"],
        *["ab", "abc", "Putin", "普京", "1", "9999999999", "é", "_", "@kim", "ß"],
    ]
)


@settings(max_examples=examples(500), deadline=None)
@given(st.one_of(st.text(max_size=40), st.lists(QUERY_ALPHABET, max_size=25).map("".join)))
def test_parse_gives_query_or_query_error(text: str) -> None:
    try:
        q = parse_query(text, {"kim": ['"Kim Jong Un"', "김정은"]})
    except QueryError as e:
        assert e.column >= 1
        assert e.line >= 1
        assert str(e).startswith(f"query:{e.line}:{e.column}: ")
        return
    assert isinstance(q, Query)
    assert parse_query(str(q)) == q


TINY = st.sampled_from(["a", "b", "c", '"a b"', '"b a"', "abc*", "abd~"])


@settings(max_examples=examples(300), deadline=None)
@given(
    st.tuples(TINY, st.integers(0, 3), TINY).map(lambda t: f"{t[0]} NEAR/{t[1]} {t[2]}"),
    st.lists(st.sampled_from(["a", "b", "c", "abc", "abcd", "x"]), max_size=12).map(" ".join),
)
def test_near_agrees_with_reference(text: str, title: str) -> None:
    # A dense vocabulary: every distance and overlap case of NEAR occurs often.
    q = parse_query(text)
    got = RuleSet([("r", q)]).match({"title": title})
    ok, hits = evaluate(q, {"title": title})
    assert bool(got) == ok
    assert (set(got[0].hits) if got else set()) == hits
