"""Pytest plugin loaded only by mutation runs (``[tool.mutmut] pytest_add_cli_args``).

Under mutmut every call goes through a trampoline, so code runs several times slower: a
Hypothesis deadline would then "kill" mutants by timing alone, and random examples would make a
mutant's verdict change from one run to the next. The profile drops the deadline and fixes the
examples, so a verdict depends on behaviour only.
"""

from __future__ import annotations

from hypothesis import settings

settings.register_profile("mutation", deadline=None, derandomize=True, database=None)
settings.load_profile("mutation")
