"""Rule-language cases that ``make mutants`` found unpinned: error texts and columns (also of
alias expansions and field groups), the mixed AND/OR warning, and fields given to groups.

Through :func:`monitor.rules.parse_query` only; ``test_rules.py`` says what the language is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pytest

from monitor.rules import Query, QueryError, parse_query
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
