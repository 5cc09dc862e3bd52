"""Rule matching throughput: the indexed RuleSet against a naive loop, at 100 to 100,000 rules.

Items are real headlines (Indonesian outlets, English news) from the shared fixtures: the title is
one headline, the summary two others from the same file, so an item has ~30-40 words. When the
fixtures are absent, items are generated text. Rules have a realistic shape: mostly 2-4 terms,
terms drawn from the corpus' less frequent words (names, places) and from invented names that
never occur, some phrases, some OR, some NOT, a few prefixes and fuzzy terms.

The naive baseline evaluates every rule in turn, each term a compiled ``\\b...\\b`` regex
(IGNORECASE) searched in title and summary, with short-circuit AND/OR (a fuzzy term is searched
as its exact word, which flatters the baseline). At large rule counts it runs
on a sample of the items and its rate is extrapolated (items/s is per item, so this is exact up to
sampling noise); the report says how many items each side saw.

Options: ``--quick`` (100 and 1,000 rules only), ``--sizes=100,1000`` (explicit sizes).
"""

from __future__ import annotations

import csv
import gc
import itertools
import os
import platform
import random
import re
import subprocess
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from monitor.normalize import word_runs
from monitor.rules import Query, RuleSet, parse_query
from monitor.rules.syntax import And, Near, Node, Not, Or, Term

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "datasets"
SEED = 20240927
SIZES = (100, 1_000, 10_000, 100_000)
MATCH_SECONDS = 3.0  # time budget per measurement of the indexed matcher
NAIVE_SECONDS = 4.0  # ... and of the naive loop (fewer items at large rule counts)
NAIVE_MIN_ITEMS = 20


# --- items --------------------------------------------------------------------------------------


def _headlines() -> list[tuple[str, str]]:
    """(outlet, headline) pairs from the fixture datasets, or [] when they are absent."""
    out: list[tuple[str, str]] = []
    narasipal = FIXTURES / "narasipal-id-headlines"
    for path in sorted(narasipal.glob("*_master.csv")) if narasipal.is_dir() else []:
        outlet = path.name.split("_")[0]
        with path.open(newline="", encoding="utf-8", errors="replace") as f:
            for row in csv.reader(f):
                if row and row[-1] and row[-1] not in ("article_title", "title"):
                    out.append((outlet, row[-1].strip()))
    uci = FIXTURES / "uci-news-aggregator-first999" / "uci-news-aggregator.csv"
    if uci.is_file():
        with uci.open(newline="", encoding="utf-8", errors="replace") as f:
            for rec in csv.DictReader(f):
                out.append((rec.get("PUBLISHER") or "uci", (rec.get("TITLE") or "").strip()))
    semeval = FIXTURES / "semeval-sts-headlines"
    for path in sorted(semeval.glob("*.tsv")) if semeval.is_dir() else []:
        with path.open(encoding="utf-8", errors="replace") as f:
            for line in f:
                for h in line.rstrip("\n").split("\t")[1:3]:
                    out.append(("emm", h.strip()))
    return [(o, h) for o, h in out if h]


def _generated_headlines(rng: random.Random, n: int) -> list[tuple[str, str]]:
    vocab = [_name(rng) for _ in range(5_000)]
    common = [
        "di",
        "ke",
        "dan",
        "yang",
        "the",
        "of",
        "in",
        "to",
        "for",
        "on",
        "a",
        "is",
        "with",
        "dari",
        "untuk",
    ]
    out = []
    for _ in range(n):
        words = [rng.choice(common) if rng.random() < 0.4 else rng.choice(vocab) for _ in range(9)]
        out.append(("generated", " ".join(words).capitalize()))
    return out


def build_items(rng: random.Random) -> tuple[list[dict[str, str]], str]:
    heads = _headlines()
    origin = "fixture headlines"
    if len(heads) < 1_000:
        heads = _generated_headlines(rng, 20_000)
        origin = "generated text (fixtures absent)"
    rng.shuffle(heads)
    items = []
    for i, (outlet, title) in enumerate(heads):
        summary = f"{heads[(i + 1) % len(heads)][1]}. {heads[(i + 2) % len(heads)][1]}."
        items.append({"title": title, "summary": summary, "source": outlet, "feed": outlet})
    return items, origin


# --- rules --------------------------------------------------------------------------------------

_SYLLABLES = [
    "ka",
    "ri",
    "mo",
    "su",
    "ten",
    "bar",
    "lo",
    "vi",
    "zan",
    "dor",
    "pe",
    "qu",
    "ash",
    "mir",
    "tov",
    "gul",
    "ek",
    "yan",
    "shi",
    "ro",
]


def _name(rng: random.Random) -> str:
    return "".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 4))).capitalize()


class RuleMaker:
    """Random rules shaped like real watch lists (seeded, so every run builds the same rules)."""

    def __init__(self, items: list[dict[str, str]], rng: random.Random) -> None:
        self.rng = rng
        counts: Counter[str] = Counter()
        bigrams: Counter[tuple[str, str]] = Counter()
        for it in items[:20_000]:
            words = word_runs(it["title"])
            counts.update(words)
            bigrams.update(itertools.pairwise(words))
        common = {w for w, _ in counts.most_common(300)}
        # Names and places: present in the corpus but rare (as most watched names are).
        self.rare = [
            w for w, c in counts.items() if 2 <= c <= 60 and len(w) >= 4 and w not in common
        ]
        self.phrases = [
            f"{a} {b}" for (a, b), c in bigrams.items() if c >= 3 and a not in common and len(b) > 2
        ]
        self.prefixable = [w for w in self.rare if len(w) >= 6]

    def term(self) -> str:
        r = self.rng.random()
        if r < 0.45:
            return self.rng.choice(self.rare)
        if r < 0.55 and self.phrases:
            return f'"{self.rng.choice(self.phrases)}"'
        if r < 0.58 and self.prefixable:
            return self.rng.choice(self.prefixable)[:5] + "*"
        return _name(self.rng)  # an invented name: never in any item

    def rule(self) -> str:
        rng = self.rng
        n = rng.choice((2, 2, 3, 3, 4))
        terms = [self.term() for _ in range(n)]
        r = rng.random()
        if r < 0.15:
            terms[0] = f"({terms[0]} OR {self.term()} OR {self.term()})"
        elif r < 0.25:
            terms[-1] = "-" + terms[-1].lstrip("-")
        elif r < 0.27:
            terms[-1] = _name(rng) + "~"  # fuzzy, alongside indexable terms
        elif r < 0.30:
            return f"{terms[0]} OR {terms[1]}"
        elif r < 0.305:
            return rng.choice(self.rare) + "~"  # fuzzy alone (e.g. a transliterated name)
        return " ".join(terms)


# --- naive baseline -----------------------------------------------------------------------------


Naive = Callable[[str, str], bool]


def _naive_term(t: Term) -> Naive:
    body = r"\W+".join(re.escape(w) for w in t.text.split() or [t.text])
    if t.prefix:
        body += r"\w*"
    rx = re.compile(rf"\b{body}\b", re.IGNORECASE)
    if t.field == "title":
        return lambda title, summary: rx.search(title) is not None
    if t.field == "summary":
        return lambda title, summary: rx.search(summary) is not None
    return lambda title, summary: rx.search(title) is not None or rx.search(summary) is not None


def naive_compile(node: Node) -> Naive:
    if isinstance(node, Term):
        return _naive_term(node)
    if isinstance(node, Not):
        child = naive_compile(node.child)
        return lambda a, b: not child(a, b)
    if isinstance(node, And):
        cs = [naive_compile(c) for c in node.children]
        return lambda a, b: all(c(a, b) for c in cs)
    if isinstance(node, Or):
        cs = [naive_compile(c) for c in node.children]
        return lambda a, b: any(c(a, b) for c in cs)
    assert not isinstance(node, Near), "benchmark rules use no NEAR"
    raise TypeError(node)


# --- measurement --------------------------------------------------------------------------------


def _rss_kib() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * (os.sysconf("SC_PAGE_SIZE") // 1024)
    except OSError:
        return 0


def _rate(
    fn: Callable[[dict[str, str]], object],
    items: list[dict[str, str]],
    budget: float,
    chunk: int,
    min_items: int = 0,
    cycle: bool = True,
) -> tuple[float, int]:
    """items/s of ``fn`` over ``items`` (cycled) for ``budget`` s and ``min_items``; items done."""
    n = i = 0
    start = time.perf_counter()
    while True:
        batch = items[i : i + chunk]
        if not batch:
            if not cycle:
                break
            i = 0
            continue
        for it in batch:
            fn(it)
        n += len(batch)
        i += len(batch)
        elapsed = time.perf_counter() - start
        if elapsed >= budget and n >= min_items:
            break
    return n / (time.perf_counter() - start), n


def machine() -> str:
    model = platform.processor() or platform.machine()
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except OSError:
        pass
    return f"{os.cpu_count()} CPUs, {model}, Python {platform.python_version()}"


def run(sizes: tuple[int, ...]) -> None:
    rng = random.Random(SEED)
    items, origin = build_items(rng)
    maker = RuleMaker(items, rng)
    rule_texts = [maker.rule() for _ in range(max(sizes))]
    print(f"machine: {machine()}")
    print(f"items: {len(items)} from {origin}; rules: seeded random, shapes as documented")
    print(
        f"{'rules':>7} {'parse s':>8} {'compile s':>9} {'alloc MB':>8} {'RSS MB':>7} "
        f"{'always':>6} {'cand/item':>9} {'match/item':>10} {'items/s':>9} {'items':>6} "
        f"{'naive/s':>9} {'naive n':>7} {'ratio':>7}"
    )
    for size in sizes:
        texts = rule_texts[:size]
        gc.collect()
        t0 = time.perf_counter()
        queries: list[Query] = [parse_query(t) for t in texts]
        t1 = time.perf_counter()
        rss0 = _rss_kib()
        ruleset = RuleSet([(f"r{i}", q) for i, q in enumerate(queries)])
        t2 = time.perf_counter()
        rss_mb = (_rss_kib() - rss0) / 1024
        # Allocated memory of parse + compile, measured on a second build of the same rules.
        tracemalloc.start()
        again = RuleSet([(f"r{i}", parse_query(t)) for i, t in enumerate(texts)])
        alloc_mb = tracemalloc.get_traced_memory()[0] / 1e6
        tracemalloc.stop()
        del again

        # One pass at most, from a fresh RuleSet: its per-word cache starts empty.
        fast, n_fast = _rate(ruleset.match, items, MATCH_SECONDS, 100, cycle=False)
        sample = items[:500]
        cand = sum(ruleset.candidates(it) for it in sample) / len(sample)
        matched = sum(len(ruleset.match(it)) for it in sample) / len(sample)

        naive_rules = [naive_compile(q.root) for q in queries]

        def naive(it: dict[str, str], rules: list[Naive] = naive_rules) -> list[int]:
            title, summary = it["title"], it["summary"]
            return [i for i, r in enumerate(rules) if r(title, summary)]

        slow, n_slow = _rate(naive, items, NAIVE_SECONDS, 1, NAIVE_MIN_ITEMS)
        print(
            f"{size:>7} {t1 - t0:>8.2f} {t2 - t1:>9.2f} {alloc_mb:>8.1f} {rss_mb:>7.1f} "
            f"{ruleset.always_evaluated:>6} {cand:>9.1f} {matched:>10.2f} {fast:>9.0f} {n_fast:>6} "
            f"{slow:>9.1f} {n_slow:>7} {fast / slow:>6.0f}x",
            flush=True,
        )


def main(options: list[str]) -> int:
    sizes = SIZES
    for opt in options:
        if opt == "--quick":
            sizes = (100, 1_000)
        elif opt.startswith("--sizes="):
            sizes = tuple(int(s) for s in opt.split("=", 1)[1].split(","))
        else:
            print(f"unknown option {opt}")
            return 2
    run(sizes)
    return 0
