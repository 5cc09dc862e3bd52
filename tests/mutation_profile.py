"""Pytest plugin loaded only by mutation runs (``[tool.mutmut] pytest_add_cli_args``).

Under mutmut every call goes through a trampoline, so code runs several times slower: a
Hypothesis deadline would then "kill" mutants by timing alone, and random examples would make a
mutant's verdict change from one run to the next. The profile drops the deadline and fixes the
examples, so a verdict depends on behaviour only.

``MUTANTS_TESTS`` (set by ``make mutants TESTS=...``) names the test files of a first, fast pass:
every other test is deselected, so a mutant is tried against the module's own tests and not the
daemon tests that merely call it. Such a pass can kill a mutant but not clear one: ``make
mutants`` runs every mutant that survived it again without ``MUTANTS_TESTS``, against all the
tests that call it, and only that verdict stands. mutmut's listing and stats runs are not
narrowed (it would forget which other tests call what); its clean and forced-fail runs are.
``MUTANTS_SKIP`` (``make mutants SKIP=...``) also drops, in that first pass, the tests whose id
contains one of its words, such as ``[postgres``: a mutant run is a fresh pytest session, which
would start a PostgreSQL cluster of its own for every mutant.

The trampoline also adds frames to every call: the rule parser's deepest allowed query (50
levels, through aliases) then passed Python's default limit of 1,000 frames, and the stats run,
which stops at the first failing test, failed with "failed to collect stats".
"""

from __future__ import annotations

import os
import sys

import pytest
from hypothesis import settings

settings.register_profile("mutation", deadline=None, derandomize=True, database=None)
settings.load_profile("mutation")
sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    first_pass = tuple(os.environ.get("MUTANTS_TESTS", "").split())
    if not first_pass or os.environ.get("MUTANT_UNDER_TEST") in ("stats", "list_all_tests"):
        return
    skip = os.environ.get("MUTANTS_SKIP", "").split()

    def kept(item: pytest.Item) -> bool:
        return item.nodeid.startswith(first_pass) and not any(w in item.nodeid for w in skip)

    keep = [i for i in items if kept(i)]
    dropped = [i for i in items if not kept(i)]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep
