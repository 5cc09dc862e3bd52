"""The web view's preview (and ``backtest``): one query over 100,000 stored recent items.

``python -m benchmarks preview [--items=100000] [--runs=3]``

The state is a real SQLite file holding ``--items`` recent items recorded through
``Store.record_poll`` exactly as the poll path records them (``poll.recent_item``: fields and
folded words). Titles are real headlines (Indonesian outlets, UCI, STS: about 31,000 distinct)
and, past that, variants with one word swapped for a word of another headline; each summary is
two more headlines. Queries are the kinds of rules people write: a name, an OR of topics, a
phrase AND a name, a prefix with an exclusion, a field, and a fuzzy word (which has no index key
keyed by pieces of the word), and a list of ten alternatives.

Each query runs through :func:`monitor.web.backtest.backtest` (prefilter on: the query's index
keys as LIKE patterns over the stored words, then matching and story clustering) and through
the naive scan measured in the same run (every row read and matched, then clustered: the same
answer, checked). Pinned to one core. Best of ``--runs``.
"""

from __future__ import annotations

import os
import random
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from benchmarks import _headlines
from monitor.parse import FeedItem
from monitor.poll import recent_item
from monitor.rules import parse_query
from monitor.store import PollRecord, SqliteStore
from monitor.web.backtest import backtest

SEED = 20261203
QUERIES = (
    "Jokowi",
    "gempa OR banjir OR longsor",
    '"Kim Jong Un" AND Putin',
    "Rusia* -sepak",
    "title:Prabowo AND (debat OR kampanye)",
    "harga AND (beras OR minyak OR cabai)",
    "Vladimr~",  # fuzzy: keyed by pieces of the word
    "gempa OR banjir OR longsor OR kebakaran OR tsunami OR erupsi OR puting OR beliung OR "
    "kekeringan OR abrasi",  # ten keys: the database tests ten patterns per row
)
TARGET = 1.0  # seconds


def _corpus() -> list[str]:
    titles = [t for _, t in _headlines.indonesian()]
    titles += [t for t, _, _ in _headlines.uci()]
    for _, a, b in _headlines.sts():
        titles += [a, b]
    return list(dict.fromkeys(titles))


def build(path: Path, n: int, now: datetime) -> float:
    corpus = _corpus()
    rng = random.Random(SEED)
    started = time.perf_counter()
    with SqliteStore(path) as store:
        batch = []
        for i in range(n):
            title = corpus[i] if i < len(corpus) else _variant(rng, corpus)
            summary = f"{rng.choice(corpus)}. {rng.choice(corpus)}"
            item = FeedItem(
                id=f"i{i}",
                link=f"https://news{i % 50}.example/a/{i}",
                title=title,
                summary=summary,
                published=None,
                source=f"Outlet {i % 50}",
                source_url=None,
                feed=f"feed{i % 200}",
                lang="id",
            )
            # Spread over the last 6 days, oldest first, as polls would have seen them.
            seen = now - timedelta(days=6) + timedelta(seconds=i * 6 * 86400 / n)
            batch.append(recent_item(f"url:{i}", item, seen))
            if len(batch) == 1000 or i == n - 1:
                store.record_poll(_record(batch[-1].seen_at, batch))
                batch = []
    return time.perf_counter() - started


def _variant(rng: random.Random, corpus: list[str]) -> str:
    words, other = rng.choice(corpus).split(), rng.choice(corpus).split()
    if len(words) > 2 and other:
        words[rng.randrange(len(words))] = rng.choice(other)
    return " ".join(words)


def _record(at: datetime, recent: list[object]) -> PollRecord:
    return PollRecord(
        feed="bench",
        at=at,
        status=200,
        etag=None,
        last_modified=None,
        url=None,
        next_poll_at=at,
        not_before=None,
        seen=[],
        seen_again=[],
        hits=[],
        alerts=[],
        recent=recent,  # type: ignore[arg-type]
    )


def main(options: list[str]) -> int:
    items, runs = 100_000, 3
    for opt in options:
        if opt.startswith("--items="):
            items = int(opt.split("=", 1)[1])
        elif opt.startswith("--runs="):
            runs = int(opt.split("=", 1)[1])
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    now = datetime.now(UTC)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "state.db"
        seconds = build(path, items, now)
        size = path.stat().st_size + sum(
            p.stat().st_size for p in Path(tmp).glob("state.db-*") if p.exists()
        )
        print(
            f"preview over {items:,} stored items (state {size / 2**20:.0f} MiB, recorded in "
            f"{seconds:.1f} s), one core, best of {runs}"
        )
        print(
            f"  {'query':<40} {'matched':>7} {'stories':>7} {'rows read':>9} "
            f"{'preview':>8} {'naive':>8} {'naive/ours':>10}"
        )
        worst = 0.0
        with SqliteStore(path, readonly=True) as store:
            for q in QUERIES:
                query = parse_query(q)
                fast = slow = float("inf")
                for _ in range(runs):
                    a = backtest(
                        store, query, since=now - timedelta(days=7), window=timedelta(hours=48)
                    )
                    fast = min(fast, a.seconds)
                    b = backtest(
                        store,
                        query,
                        since=now - timedelta(days=7),
                        window=timedelta(hours=48),
                        prefilter=False,
                    )
                    slow = min(slow, b.seconds)
                same = [m.item.key for s in a.stories for m in s.all] == [
                    m.item.key for s in b.stories for m in s.all
                ]
                assert same, f"{q}: the prefilter changed the answer"
                worst = max(worst, fast)
                more = "+" if a.truncated else ""
                label = q if len(q) <= 40 else q[:37] + "..."
                print(
                    f"  {label:<40} {a.matched:>6}{more:<1} {len(a.stories):>7} {a.read:>9,} "
                    f"{fast:>7.3f}s {slow:>7.3f}s {slow / fast:>9.1f}x"
                )
        verdict = "met" if worst < TARGET else "MISSED"
        print(f"  slowest preview {worst:.3f} s: target under {TARGET:.0f} s {verdict}")
    return 0 if worst < TARGET else 1
