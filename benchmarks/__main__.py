"""``python -m benchmarks [name ...] [--options]``: run the named benchmarks (all when none given).

Each benchmark module has ``main(options: list[str]) -> int`` and is imported only when run, so
one benchmark's dependencies never stop another from running.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable


def _module(name: str) -> Callable[[list[str]], int]:
    def run(options: list[str]) -> int:
        main: Callable[[list[str]], int] = importlib.import_module(f"benchmarks.{name}").main
        return main(options)

    return run


BENCHMARKS: dict[str, Callable[[list[str]], int]] = {
    "rules": _module("rules"),
    "fetch": _module("fetch"),
    "parse": _module("parse"),
    "polls": _module("polls"),
    "dedup_quality": _module("dedup_quality"),
    "dedup_speed": _module("dedup_speed"),
    "urls": _module("urls"),
    "latency": _module("latency"),
    "preview": _module("preview"),
    "scale_out": _module("scale_out"),
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
