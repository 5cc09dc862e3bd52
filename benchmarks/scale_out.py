"""Scale-out on PostgreSQL: 1, 2 and 3 daemons on one state, polls per second and claim latency.

What runs is the real daemon (``news-monitor run`` in its own process, as many as asked) on a
fresh PostgreSQL schema of a throwaway cluster (``tests/pgserver.py``: ``initdb``/``pg_ctl``
from the Debian ``postgresql`` package), against the loopback feed server of the poll benchmark
(``benchmarks/_feeds.py``, in a process of its own: 50-100 items per feed). Every feed is due
at once; the figure is the time until every feed has been polled once (read from the state's
``last_attempt_at``), as polls per second, and its ratio to one daemon measured in the same run.
The same for one daemon on SQLite gives the SQLite/PostgreSQL ratio.

Claim latency is measured apart, on the database alone: 1, 2 and 3 connections claim the due
feeds of a 10,000-feed state 50 at a time, all at once, until none is left; the median and
95th percentile of one claim, as ratios to one claimer.

All processes share this machine's cores: the feed server, PostgreSQL and the daemons. On two
cores three daemons cannot each have one, so the ratios say what the store's coordination
costs and allows, not what three machines would do.

Usage: ``python -m benchmarks scale_out`` (``--feeds=10000``, ``--daemons=1,2,3``,
``--no-sqlite``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from benchmarks._feeds import FeedServer

ROOT = Path(__file__).resolve().parents[1]


def write_config(tmp: Path, port: int, n: int, state: str) -> Path:
    feeds = "".join(
        f'  - {{name: f{i}, url: "http://127.0.0.1:{port}/feed/{i}"}}\n' for i in range(n)
    )
    cfg = tmp / "monitor.yaml"
    cfg.write_text(
        f"""\
state: "{state}"
log_level: warning
defaults: {{interval: 1h, max_age: 3000d, retention: 3650d}}
fetch: {{timeout: 30s, concurrency: 50, per_host: 50, allow_private: ["127.0.0.1:{port}"]}}
channels:
  chat: "json://127.0.0.1:{port}/sink"
rules:
  - {{name: never, query: zzqxnevermatches, notify: chat}}
feeds:
"""
        + feeds
    )
    return cfg


def polled(state: str) -> int:
    from monitor.store import open_store

    store = open_store(state, readonly=True)
    try:
        return sum(1 for s in store.feed_states() if s.last_attempt_at is not None)
    finally:
        store.close()


def run_daemons(cfg: Path, state: str, n_daemons: int, n_feeds: int) -> float:
    """Seconds until ``n_daemons`` daemons have polled every feed once."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = []
    began = time.monotonic()
    for _ in range(n_daemons):
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "monitor", "-c", str(cfg), "run"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env=env,
            )
        )
    try:
        while True:
            time.sleep(0.5)
            if any(p.poll() is not None for p in procs):
                raise RuntimeError("a daemon exited early")
            try:
                if polled(state) >= n_feeds:
                    return time.monotonic() - began
            except Exception:  # the state is being created by the daemons
                continue
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(60)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def claim_latency(url: str, n_feeds: int, claimers: int) -> tuple[float, float]:
    """Median and p95 seconds of one claim of 50, with ``claimers`` claiming at once."""
    from monitor.store import open_store

    setup = open_store(url)
    now = datetime.now(UTC)
    names = [f"f{i}" for i in range(n_feeds)]
    setup.sync_feeds([(n, f"u{n}") for n in names], now)
    setup.close()
    stores = [open_store(url) for _ in range(claimers)]
    times: list[float] = []
    lock = threading.Lock()
    start = threading.Barrier(claimers)

    def claim(i: int) -> None:
        start.wait()
        while True:
            t = time.perf_counter()
            got = stores[i].claim_feeds(
                names, now, lease=timedelta(hours=1), owner=str(i), limit=50
            )
            dt = time.perf_counter() - t
            if not got:
                return
            with lock:
                times.append(dt)

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(claimers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for s in stores:
        s.close()
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.95)]


def main(options: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks scale_out")
    ap.add_argument("--feeds", type=int, default=10_000)
    ap.add_argument("--daemons", default="1,2,3")
    ap.add_argument("--no-sqlite", action="store_true")
    args = ap.parse_args(options)
    sys.path.insert(0, str(ROOT))
    from tests.pgserver import Cluster, _bindir

    bindir = _bindir()
    if bindir is None:
        print("scale_out: PostgreSQL is not installed (apt-get install postgresql)")
        return 1
    cluster = Cluster(bindir)
    why = cluster.start()
    if why:
        print(f"scale_out: {why}")
        return 1
    server = FeedServer(args.feeds, seed=7, base=datetime.now(UTC) - timedelta(days=1))
    n = args.feeds
    try:
        print(
            f"scale_out: {n} loopback feeds, {os.cpu_count()} cores, "
            f"Python {sys.version.split()[0]}"
        )
        rates: dict[str, float] = {}
        with tempfile.TemporaryDirectory() as tmp:
            if not args.no_sqlite:
                state = str(Path(tmp) / "state.sqlite3")
                secs = run_daemons(write_config(Path(tmp), server.port, n, state), state, 1, n)
                rates["sqlite"] = n / secs
                print(f"  1 daemon,  SQLite:     {secs:7.1f} s  {n / secs:7.0f} polls/s")
            for d in (int(x) for x in args.daemons.split(",")):
                url = cluster.new_schema()
                secs = run_daemons(write_config(Path(tmp), server.port, n, url), url, d, n)
                rates[f"pg{d}"] = n / secs
                ratio = f"{rates[f'pg{d}'] / rates['pg1']:.2f}x" if "pg1" in rates else ""
                print(
                    f"  {d} daemon(s), PostgreSQL: {secs:7.1f} s  {n / secs:7.0f} polls/s  {ratio}"
                )
        if "sqlite" in rates and "pg1" in rates:
            print(f"  one daemon, PostgreSQL / SQLite: {rates['pg1'] / rates['sqlite']:.2f}x")
        base = None
        for c in (1, 2, 3):
            med, p95 = claim_latency(cluster.new_schema(), n, c)
            base = base or med
            print(
                f"  claim of 50, {c} claimer(s): median {med * 1000:6.2f} ms, "
                f"p95 {p95 * 1000:6.2f} ms  ({med / base:.2f}x the median of one)"
            )
    finally:
        server.stop()
        cluster.stop()
    return 0
