"""How many examples a property test runs: all of them in ``make test`` and CI, a quarter in
``make quick`` (``NEWS_MONITOR_QUICK=1``), the inner loop, where the suite's time matters more.

Hypothesis's own profiles cannot do this: a test's ``@settings(max_examples=N)`` overrides the
profile. Tests with no count of their own get the profile's (``tests/conftest.py``).
"""

from __future__ import annotations

import os

QUICK = os.environ.get("NEWS_MONITOR_QUICK") == "1"
QUICK_FLOOR = 25  # the fewest examples a property test runs in make quick


def examples(n: int) -> int:
    return max(QUICK_FLOOR, n // 4) if QUICK else n
