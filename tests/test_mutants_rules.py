"""Rule-language cases that ``make mutants`` found unpinned: error texts and columns (also of
alias expansions and field groups), the mixed AND/OR warning, and fields given to groups.

Through :func:`monitor.rules.parse_query` only; ``test_rules.py`` says what the language is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pytest

from monitor.rules import Query, QueryError, RuleSet, parse_query
from monitor.rules.syntax import And, Not, Term


def error(query: str, aliases: Mapping[str, Sequence[str]] | None = None) -> str:
    with pytest.raises(QueryError) as e:
        parse_query(query, aliases)
    return str(e.value)


def test_operators_without_an_operand_are_named_quoted() -> None:
    assert error("Putin -") == "query:1:8: expected a term right after '-'"
    assert error("Putin (") == "query:1:8: expected a term after '('"


def test_mixing_and_with_or_is_explained() -> None:
    assert parse_query("a AND b OR c").warnings() == [
        "query mixes AND and OR without parentheses; AND binds tighter, so it reads as: "
        + str(parse_query("a AND b OR c"))
    ]


def test_an_alias_may_be_one_string_and_may_not_be_empty() -> None:
    assert parse_query("@k", {"k": "Kim"}).root == Term("Kim")
    assert error("Putin @e", {"e": []}) == "query:1:7: alias '@e' is empty"


def test_what_an_alias_brings_in_is_reported_at_the_alias() -> None:
    # Only the alias's words could make the query exclude-only: the column is the '@'.
    assert error("Putin OR @neg", {"neg": ["-Xi"]}).startswith("query:1:10: query only excludes")
    assert error("Putin OR @neg", {"neg": ["-Xi -Jinping"]}).startswith("query:1:10: ")
    assert error("Putin OR @neg", {"neg": ["Kim", "-Xi"]}).startswith("query:1:10: ")


def test_a_field_applies_to_a_group_below_it_and_the_innermost_field_wins() -> None:
    q: Query = parse_query("title:(Putin -Xi summary:Kim)")
    assert q.root == And(
        (Term("Putin", field="title"), Not(Term("Xi", field="title")), Term("Kim", field="summary"))
    )
    assert error("title:(-Xi) OR Putin").startswith("query:1:1: query only excludes")


def test_errors_in_a_query_of_several_lines_name_line_and_column() -> None:
    assert error("Putin\nOR Xi\nAND (") == "query:3:6: expected a term after '('"
    assert error("\nPutin (") == "query:2:8: expected a term after '('"
    assert error("a ( )\nb") == "query:1:5: empty parentheses: expected a term inside"


def test_near_operands_that_cannot_be_are_explained() -> None:
    assert error("Putin NEAR/3 (a AND b)") == (
        "query:1:14: NEAR operands must be terms or phrases (or an OR of them)"
    )
    assert error("a NEAR/3 title:b") == (
        "query:1:10: NEAR operands take no field; put it before the group: title:(a NEAR/3 b)"
    )


# -- found by the run over all of rules/syntax.py ----------------------------------------------


def test_a_minus_before_a_closing_parenthesis_or_a_not_is_named() -> None:
    assert error("a -)") == "query:1:4: expected a term after '-'"
    assert error("(a -)") == "query:1:5: expected a term after '-'"
    assert error("-NOT a") == "query:1:2: expected a term after '-'"
    assert error("title:-") == "query:1:8: expected a term right after '-'"


def test_nesting_counts_depth_not_how_many_groups_or_nots_a_query_has() -> None:
    assert str(parse_query(" ".join(["(a)"] * 60))) == " AND ".join(["a"] * 60)
    many_nots = "x " + " ".join(f"NOT a{i}" for i in range(60))
    assert str(parse_query(many_nots)).count("NOT") == 60


def test_near_takes_a_phrase_or_an_alias_on_its_right() -> None:
    kim = {"kim": ['"Kim Jong Un"', "김정은"]}
    assert str(parse_query('a NEAR/2 "b c"')) == 'a NEAR/2 "b c"'
    assert str(parse_query("Putin NEAR/2 @kim", kim)) == 'Putin NEAR/2 ("Kim Jong Un" OR 김정은)'
    assert str(parse_query("title:@kim", kim)) == 'title:"Kim Jong Un" OR title:김정은'


def test_an_alias_with_a_not_compiles_and_excludes() -> None:
    rules = RuleSet([("r", parse_query("@k", {"k": ["kim -jong"]}))])
    assert rules.match({"title": "Kim Jong Un"}) == []
    assert [m.rule for m in rules.match({"title": "Kim Il Sung"})] == ["r"]


def test_an_excluding_field_group_is_reported_at_its_column() -> None:
    assert error("title:(-b)") == (
        "query:1:1: query only excludes (NOT/-); add a term it must contain"
    )
    assert error("title:(NOT b)") == (
        "query:1:1: query only excludes (NOT/-); add a term it must contain"
    )


def test_aliases_count_towards_the_nesting_limit() -> None:
    chain: dict[str, list[str]] = {f"c{i}": [f"(@c{i + 1})"] for i in range(1, 40)}
    chain["c40"] = ["x"]
    assert str(parse_query("@c15", chain)) == "x"  # 26 aliases, each in parentheses
    message = error("@c14", chain)
    assert message.startswith("query:1:1: in alias '@c14' value '(@c15)': ")
    assert message.endswith(": query nests deeper than 50 levels")


def test_stray_marks_are_reported_where_they_are() -> None:
    assert error("a~b~1") == "query:1:2: '~' is allowed only at the end of a term"
    assert error("*abc") == "query:1:1: '*' is allowed only at the end of a term"
    assert error("ab*c") == "query:1:3: '*' is allowed only at the end of a term"


def test_a_bare_tilde_allows_two_edits_from_eight_letters_on() -> None:
    eight, seven = parse_query("abcdefgh~").root, parse_query("abcdefg~").root
    assert isinstance(eight, Term) and eight.fuzzy == 2
    assert isinstance(seven, Term) and seven.fuzzy == 1


def test_mixing_is_seen_in_any_or_branch() -> None:
    for q in ("a OR b c", "a OR b OR c d"):
        assert parse_query(q).mixes_and_or_without_parens, q
    assert not parse_query("a OR b OR c").mixes_and_or_without_parens


def test_characters_of_a_no_space_term_must_touch() -> None:
    rules = RuleSet([("r", parse_query("普京"))])
    assert rules.match({"title": "普 京会见"}) == []
    assert [m.rule for m in rules.match({"title": "普京会见"})] == ["r"]


def test_groups_and_nots_before_a_deep_group_do_not_lift_the_limit() -> None:
    deep = "(" * 51 + "a" + ")" * 51
    assert error("(a) " * 30 + deep) == "query:1:171: query nests deeper than 50 levels"
    assert error("x " + "NOT a " * 30 + deep) == "query:1:233: query nests deeper than 50 levels"
    assert str(parse_query("(" * 50 + "a" + ")" * 50)) == "a"


def test_an_excluding_minus_is_reported_at_its_column() -> None:
    assert error("a OR -b") == "query:1:6: query only excludes (NOT/-); add a term it must contain"
