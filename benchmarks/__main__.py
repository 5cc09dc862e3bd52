"""``python -m benchmarks [name ...]``: run the named benchmarks (all when none is given)."""

from __future__ import annotations

import sys
from collections.abc import Callable

from benchmarks import rules

BENCHMARKS: dict[str, Callable[[list[str]], int]] = {
    "rules": rules.main,
}


def main(argv: list[str]) -> int:
    names = [a for a in argv if not a.startswith("-")] or list(BENCHMARKS)
    options = [a for a in argv if a.startswith("-")]
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}")
        return 2
    for name in names:
        status = BENCHMARKS[name](options)
        if status:
            return status
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
