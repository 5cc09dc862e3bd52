"""Matching cases that ``make mutants`` found unpinned in ``monitor/rules/compile.py``: NEAR in
a field of its own or found only in a later field, prefixes of hyphenated words, the longest
fuzzy terms the index holds, an AND with no indexable operand, and the keys the web preview
searches stored items by (``required_keys``).

Through :class:`monitor.rules.RuleSet` and :func:`monitor.rules.required_keys` only;
``test_rules.py`` says what the language is.
"""

from __future__ import annotations

from monitor.rules import RequiredKeys, RuleSet, parse_query, required_keys


def matches(query: str, **fields: str) -> list[tuple[str, str]]:
    """The (field, matched text) of every hit of ``query`` on an item with ``fields``."""
    got = RuleSet([("r", parse_query(query))]).match(fields)
    return sorted((h.field, fields[h.field][h.start : h.end]) for m in got for h in m.hits)


def test_near_is_found_in_the_summary_when_the_title_lacks_one_side() -> None:
    # The title holds only one side (or none): the pair in the summary still counts.
    summary = "Putin meets Kim in Moscow"
    assert matches("Kim NEAR/2 Putin", title="Kim visits", summary=summary) == [
        ("summary", "Kim"),
        ("summary", "Putin"),
    ]
    assert matches("Kim NEAR/2 Putin", title="Putin speaks", summary=summary) == [
        ("summary", "Kim"),
        ("summary", "Putin"),
    ]
    # An item with no title at all (a JSON Feed item may have none).
    assert matches("Kim NEAR/2 Putin", summary=summary) == [
        ("summary", "Kim"),
        ("summary", "Putin"),
    ]


def test_a_near_limited_to_a_field_looks_there_and_only_there() -> None:
    assert matches("summary:(Kim NEAR/1 Putin)", title="Kim and Putin", summary="none") == []
    assert matches("summary:(Kim NEAR/1 Putin)", title="none", summary="Kim, Putin") == [
        ("summary", "Kim"),
        ("summary", "Putin"),
    ]
    # A field NEAR terms are not looked for by default (`feed:`): found there, in the feed's name.
    assert matches("feed:(bali NEAR/1 post)", title="Bali Post", feed="bali-post") == [
        ("feed", "bali"),
        ("feed", "post"),
    ]
    assert matches("feed:(bali NEAR/1 post)", title="Bali Post", feed="bali-news") == []


def test_a_prefix_of_a_hyphenated_word_completes_only_its_last_part() -> None:
    assert matches("jong-un*", title="Kim Jong-unnie datang") == [("title", "Jong-unnie")]
    assert matches("kim-jong-u*", title="kim-jong-un") == [("title", "kim-jong-un")]
    assert matches("jong-un*", title="Kim Jong-u datang") == []  # shorter than the prefix
    assert matches("jong-un*", title="Kim Jongx-unnie") == []  # only the last part is a prefix
    assert matches("kim-jong-u*", title="kim-jongx-un") == []


def test_the_longest_indexed_fuzzy_term_finds_words_two_insertions_longer() -> None:
    term = "abcdefghijklmnopqrstuvwx"  # 24 letters: the longest fuzzy term kept in the index
    assert matches(f"{term}~2", title=f"zz{term}") == [("title", f"zz{term}")]
    assert matches(f"{term}~2", title=f"{term[:-1]}zz") == [("title", f"{term[:-1]}zz")]
    assert matches(f"{term}~2", title=f"zzz{term}") == []


def test_fuzzy_index_variants_are_single_deletions() -> None:
    # One edit away, found through the deletion index (not by evaluating every rule).
    rules = RuleSet([("r", parse_query("shoigu~1")), ("other", parse_query("Putin"))])
    assert [m.rule for m in rules.match({"title": "Menhan Shoygu datang"})] == ["r"]
    assert [m.rule for m in rules.match({"title": "Menhan Shoiguu datang"})] == ["r"]
    assert [m.rule for m in rules.match({"title": "Menhan Hoigu datang"})] == ["r"]
    assert [m.rule for m in rules.match({"title": "Menhan Sigu datang"})] == []


def test_an_and_of_terms_too_long_to_index_still_compiles_and_matches() -> None:
    a = "abcdefghijklmnopqrstuvwxyz"  # 26 letters: fuzzy terms this long are not indexed
    q = f"{a}~1 AND {a[:-1]}q~1"
    assert matches(q, title=a) == [("title", a), ("title", a)]
    assert matches(q, title="abc") == []


def test_required_keys_are_the_words_prefixes_and_pieces_an_item_must_hold() -> None:
    def keys(query: str) -> RequiredKeys | None:
        return required_keys(parse_query(query))

    empty: frozenset[str] = frozenset()
    assert keys("Putin") == RequiredKeys(frozenset({"putin"}), empty, empty)
    assert keys("Putin OR Xi") == RequiredKeys(frozenset({"putin", "xi"}), empty, empty)
    assert keys("Rusia*") == RequiredKeys(empty, frozenset({"rusia"}), empty)
    # A fuzzy term: k + 1 pieces, the last taking the rest; a word within k edits holds one.
    assert keys("shoigu~1") == RequiredKeys(empty, empty, frozenset({"sho", "igu"}))
    assert keys("shoigu~2") == RequiredKeys(empty, empty, frozenset({"sh", "oi", "gu"}))
    assert keys("abcdefghij~2") == RequiredKeys(empty, empty, frozenset({"abc", "def", "ghij"}))
    assert keys("ab~1") == RequiredKeys(empty, empty, frozenset({"a", "b"}))
    assert keys("a~1") == RequiredKeys(empty, empty, frozenset({"a"}))
    # Exact words and prefixes stay as they are next to a fuzzy term.
    assert keys("Putin OR shoigu~1") == RequiredKeys(
        frozenset({"putin"}), empty, frozenset({"sho", "igu"})
    )
    assert keys("Rusia* OR Xi") == RequiredKeys(frozenset({"xi"}), frozenset({"rusia"}), empty)


def test_every_word_within_the_edits_holds_a_piece_of_the_fuzzy_term() -> None:
    word = "shoigu"
    for k in (1, 2):
        found = required_keys(parse_query(f"{word}~{k}"))
        assert found is not None
        for i in range(len(word)):  # one deletion, one substitution, one insertion at i
            for near in (word[:i] + word[i + 1 :], word[:i] + "x" + word[i + 1 :]):
                assert any(p in near for p in found.pieces), (k, near)
            assert any(p in word[:i] + "x" + word[i:] for p in found.pieces), (k, i)


def test_a_word_longer_than_any_fuzzy_variant_is_still_an_exact_key() -> None:
    word = "Rindfleischetikettierungsgesetz"  # 31 letters
    assert matches(word, title=f"Das {word} fällt") == [("title", word)]


def test_a_rule_without_index_keys_does_not_hide_the_rules_after_it() -> None:
    rules = RuleSet(
        [("long", parse_query("abcdefghijklmnopqrstuvwxyz~1")), ("putin", parse_query("Putin"))]
    )
    assert rules.always_evaluated == 1
    assert [m.rule for m in rules.match({"title": "Putin speaks"})] == ["putin"]
