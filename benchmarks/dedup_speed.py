"""Story dedup cost: checks per second against windows of 10,000 and 100,000 recent hits.

``python -m benchmarks dedup_speed [--sizes=10000,100000]``

The window is one rule's story index filled with real headlines (Indonesian outlets, UCI, STS:
about 31,000 distinct) and, past that, variants of them with one word swapped for a word of
another headline, so the word frequencies stay those of real news. A check is
``StoryBook.place`` of a new hit: half are real headlines not in the window, half are light
rewrites of window members (the copies story dedup exists for). One core, in this process.

The baseline, measured in the same run, is the naive all-pairs scan: the same ``judge`` of the
new hit against every member of the window (on a sample of checks; its rate is per check, so
extrapolating is exact up to noise). Index memory is what tracemalloc sees the book allocate.
"""

from __future__ import annotations

import gc
import random
import time
import tracemalloc

from benchmarks import _headlines
from monitor.dedup.similarity import judge
from monitor.dedup.stories import Candidate, Member, StoryBook, evidence_of

SEED = 20261203


def _corpus() -> list[str]:
    titles = [t for _, t in _headlines.indonesian()]
    titles += [t for t, _, _ in _headlines.uci()]
    for _, a, b in _headlines.sts():
        titles += [a, b]
    return list(dict.fromkeys(titles))


def _variant(rng: random.Random, title: str, donor: str) -> str:
    words, other = title.split(), donor.split()
    if len(words) > 2 and other:
        words[rng.randrange(len(words))] = rng.choice(other)
    return " ".join(words)


def run(size: int, corpus: list[str], rng: random.Random) -> None:
    held_out = corpus[-2000:]
    pool = corpus[:-2000]
    window = list(pool[:size])
    while len(window) < size:
        window.append(_variant(rng, rng.choice(pool), rng.choice(pool)))
    gc.collect()
    tracemalloc.start()
    started = time.perf_counter()
    book = StoryBook()
    for n, title in enumerate(window):
        book.add("r", Member(str(n), str(n), float(n), evidence_of(title), title))
    build = time.perf_counter() - started
    memory = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    checks = []
    for n in range(2000):
        if n % 2:
            checks.append(held_out[n])
        else:
            checks.append(_variant(rng, rng.choice(window), rng.choice(pool)))
    candidates = [Candidate(f"new{n}", evidence_of(t), t) for n, t in enumerate(checks)]
    started = time.perf_counter()
    joined = 0
    for c in candidates:
        joined += book.place("r", c, since=-1.0).joins
    indexed = len(candidates) / (time.perf_counter() - started)
    members = [m for m in book.indexes["r"].members if m is not None]
    sample = candidates[:20]
    started = time.perf_counter()
    for c in sample:
        for m in members:
            judge(c.evidence, m.evidence)
    naive = len(sample) / (time.perf_counter() - started)
    print(
        f"  {size:>7,} hits: {indexed:>7,.0f} checks/s indexed, {naive:>6.1f} checks/s naive "
        f"({indexed / naive:,.0f}x); index {memory / 2**20:.0f} MB, built in {build:.1f} s; "
        f"{joined} of {len(candidates)} checks joined a story"
    )


def main(options: list[str]) -> int:
    sizes = [10_000, 100_000]
    for opt in options:
        if opt.startswith("--sizes="):
            sizes = [int(x) for x in opt.split("=", 1)[1].split(",")]
    corpus = _corpus()
    print(f"story dedup speed, one rule's window, {len(corpus)} distinct real headlines")
    for size in sizes:
        run(size, corpus, random.Random(SEED))
    return 0
