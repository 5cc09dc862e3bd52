"""Matching cases that a mutation pass found unpinned in ``monitor/rules/reference.py``, the
reference evaluator the property tests compare :class:`monitor.rules.RuleSet` against: the edits
a fuzzy term allows at the start and in the middle of a word, the characters of a no-space
script term touching, and NEAR in the summary alone or in one field only.

Each case says whether the reference matches and checks that the RuleSet agrees;
``test_rules.py`` says what the language is.
"""

from __future__ import annotations

from monitor.rules import RuleSet, parse_query
from monitor.rules.reference import evaluate


def reference_matches(query: str, **fields: str) -> bool:
    """Whether the reference evaluator matches ``query`` on an item with ``fields``; the
    RuleSet must say the same."""
    q = parse_query(query)
    ok, hits = evaluate(q, fields)
    got = RuleSet([("r", q)]).match(fields)
    assert bool(got) is ok
    assert (set(got[0].hits) if got else set()) == hits
    return ok


def test_a_fuzzy_term_allows_one_letter_dropped_from_its_start() -> None:
    """`Shoigu~1` is within 1 edit of "Hoigu" (the first letter deleted), not of "Oigu"."""
    assert reference_matches("shoigu~1", title="Hoigu tiba di Moskow")
    assert not reference_matches("shoigu~1", title="Oigu tiba di Moskow")


def test_a_fuzzy_term_allows_one_letter_dropped_from_its_middle() -> None:
    """`Shoigu~1` is within 1 edit of "Shoiu" (a letter inside deleted), not of "Shou"."""
    assert reference_matches("shoigu~1", title="Shoiu tiba di Moskow")
    assert not reference_matches("shoigu~1", title="Shou tiba di Moskow")
    assert reference_matches("shoigu~2", title="Shou tiba di Moskow")


def test_a_term_of_a_script_without_spaces_needs_all_its_characters_touching() -> None:
    """`普京` (two characters, matched as a substring) does not match "普 京": its first two
    characters must touch too, not only the later ones."""
    assert reference_matches("普京", title="普京会见金正恩")
    assert not reference_matches("普京", title="普 京会见金正恩")
    assert not reference_matches("普京会见", title="普 京会见")
    assert reference_matches('"普 京"', title="普 京会见")


def test_near_looks_in_the_summary_when_there_is_no_title() -> None:
    """A NEAR with no field looks in the title and the summary, also when the title is empty."""
    assert reference_matches("Kim NEAR/2 Putin", title="", summary="Putin meets Kim")
    assert reference_matches("Kim NEAR/2 Putin", summary="Putin meets Kim")


def test_a_near_limited_to_a_field_ignores_the_other_fields() -> None:
    """`title:(Kim NEAR/1 Putin)` looks in the title only."""
    assert not reference_matches("title:(Kim NEAR/1 Putin)", title="none", summary="Kim, Putin")
    assert reference_matches("title:(Kim NEAR/1 Putin)", title="Kim, Putin", summary="none")
