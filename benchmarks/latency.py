"""Alert latency: from a poll finishing to the sink receiving each alert, through the real daemon.

``news-monitor run`` runs as a subprocess against a loopback feed server and a loopback HTTP sink
(apprise ``json://``), both in this process. After a warm-up alert, each round puts a batch of N
new matching items in the feed and makes it due at once (a padding rule is edited, then SIGHUP),
so one poll brings N simultaneous hits for one rule and one channel. Per alert the latency is
the sink's arrival time minus the ``feed_fetched status=ok`` timestamp of that poll (also shown:
from the moment the feed server answered, which adds parsing, matching and recording).

The baseline, measured in the same run against the same sink: a bare apprise ``json://`` notify
loop in another process, N notifies in a row, each latency counted from the loop's start. The
ratio is what the outbox, rendering and the delivery worker cost on top of apprise itself.

Options: ``--sizes=1,100,1000``; ``--rounds=20,3,1`` (rounds per size; samples = size x rounds).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import platform
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

WAIT = 120.0  # bound on every wait; reached only when something is broken


def machine() -> str:
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (
        f"nproc {cpus}, {model}, Python {platform.python_version()}"
        f" ({platform.python_implementation()}), {platform.system()} {platform.release()}"
    )


class Arrivals:
    """What the sink received: (arrival time, title), waitable."""

    def __init__(self) -> None:
        self.items: list[tuple[float, str]] = []
        self.cond = threading.Condition()

    def add(self, title: str) -> None:
        at = time.time()
        with self.cond:
            self.items.append((at, title))
            self.cond.notify_all()

    def tagged(self, tag: str, n: int) -> list[float]:
        """Wait for ``n`` alerts whose title holds ``tag``; their arrival times."""

        def times() -> list[float]:
            return [at for at, title in self.items if tag in title]

        with self.cond:
            if not self.cond.wait_for(lambda: len(times()) >= n, WAIT):
                raise SystemExit(f"the sink did not get {n} x {tag!r} within {WAIT:.0f} s")
            return times()


def sink(arrivals: Arrivals) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            arrivals.add(str(json.loads(raw).get("title", "")))
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class Feed:
    """Serves the current batch: ``size`` matching items, all new; notes when it answered."""

    def __init__(self) -> None:
        self.batch, self.size = 0, 1
        self.answered: dict[int, float] = {}  # batch -> first answer carrying it
        self.now = datetime.now(UTC) - timedelta(minutes=5)
        self.lock = threading.Lock()

    def body(self) -> tuple[int, bytes]:
        with self.lock:
            batch, size = self.batch, self.size
        date = format_datetime(self.now)
        items = "".join(
            f"<item><title>Putin receives Kim Jong Un, item-{batch}-{i}</title>"
            f"<link>https://news.example/{batch}/{i}</link><pubDate>{date}</pubDate>"
            "<description>The two leaders met in Vladivostok on Tuesday.</description></item>"
            for i in range(size)
        )
        rss = (
            '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>Bench'
            f"</title><link>https://news.example/</link>{items}</channel></rss>"
        )
        return batch, rss.encode()

    def server(self) -> ThreadingHTTPServer:
        feed = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                batch, body = feed.body()
                self.send_response(200)
                self.send_header("Content-Type", "application/rss+xml; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                self.wfile.flush()
                with feed.lock:
                    feed.answered.setdefault(batch, time.time())

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server


class Log:
    """The daemon's JSON log lines, read in a thread."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.events: list[dict[str, Any]] = []
        self.cond = threading.Condition()
        threading.Thread(target=self._read, args=(proc,), daemon=True).start()

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            with self.cond:
                self.events.append(event)
                self.cond.notify_all()

    def wait(self, done: Callable[[dict[str, Any]], bool], after: int = 0) -> dict[str, Any]:
        found: list[dict[str, Any]] = []

        def seen() -> bool:
            found[:] = [e for e in self.events[after:] if done(e)]
            return bool(found)

        with self.cond:
            if not self.cond.wait_for(seen, WAIT):
                raise SystemExit(f"no such event in the daemon's log within {WAIT:.0f} s")
        return found[0]


def config(tmp: Path, feed_port: int, sink_port: int, generation: int) -> Path:
    cfg = tmp / "monitor.yaml"
    cfg.write_text(
        f"""\
state: state.db
defaults: {{interval: 10s}}
fetch: {{allow_private: ["127.0.0.1:{feed_port}"]}}
channels:
  chat: ["json://127.0.0.1:{sink_port}/notify"]
feeds:
  - {{name: bench, url: "http://127.0.0.1:{feed_port}/feed.xml"}}
rules:
  - name: kim-putin
    query: '"Kim Jong Un" AND Putin'
    notify: [chat]
    dedup: {{on_repeat: alert}}
  - name: padding
    query: zzpad{generation}
    notify: [chat]
"""
    )
    return cfg


def daemon_rounds(
    sizes: list[int], rounds: list[int], arrivals: Arrivals, port: int
) -> dict[int, tuple[list[float], list[float]]]:
    """Per size: latencies from ``feed_fetched`` and from the feed's answer, in seconds."""
    feed = Feed()
    feed_server = feed.server()
    out: dict[int, tuple[list[float], list[float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        generation = 0
        cfg = config(Path(tmp), feed_server.server_address[1], port, generation)
        proc = subprocess.Popen(
            [sys.executable, "-m", "monitor", "-c", str(cfg), "run"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            log = Log(proc)
            log.wait(lambda e: e["event"] == "daemon_started")
            arrivals.tagged("item-0-0", 1)  # the warm-up alert
            for size, n_rounds in zip(sizes, rounds, strict=True):
                from_fetched: list[float] = []
                from_answer: list[float] = []
                for _ in range(n_rounds):
                    generation += 1
                    mark = len(log.events)
                    with feed.lock:
                        feed.batch, feed.size = generation, size
                    config(Path(tmp), feed_server.server_address[1], port, generation)
                    proc.send_signal(signal.SIGHUP)
                    fetched = log.wait(
                        lambda e, n=size: e["event"] == "feed_fetched" and e.get("alerts") == n,
                        after=mark,
                    )
                    times = arrivals.tagged(f"item-{generation}-", size)
                    t_fetched = datetime.fromisoformat(fetched["timestamp"]).timestamp()
                    t_answer = feed.answered[generation]
                    from_fetched += [at - t_fetched for at in times]
                    from_answer += [at - t_answer for at in times]
                out[size] = (from_fetched, from_answer)
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=WAIT)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    feed_server.shutdown()
    return out


def _bare_apprise(conn: Connection, url: str) -> None:
    """In its own process, like the daemon: N notifies in a row per request from the parent."""
    import apprise

    a = apprise.Apprise()
    a.add(url)
    a.notify(title="warm-up", body="warm-up")
    conn.send("ready")
    while (job := conn.recv()) is not None:
        tag, size = job
        start = time.time()
        for i in range(size):
            a.notify(
                title=f"[kim-putin] Putin receives Kim Jong Un, {tag}{i}",
                body="Bench (feed: bench)\n2026-01-01 10:00 UTC\nhttps://news.example/x\n"
                "matched: Kim Jong Un, Putin",
            )
        conn.send(start)
    conn.close()


def baseline_rounds(
    sizes: list[int], rounds: list[int], arrivals: Arrivals, url: str
) -> dict[int, list[float]]:
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_bare_apprise, args=(child, url))
    proc.start()
    out: dict[int, list[float]] = {}
    try:
        assert parent.recv() == "ready"
        for size, n_rounds in zip(sizes, rounds, strict=True):
            lat: list[float] = []
            for r in range(n_rounds):
                tag = f"bare-{size}-{r}-"
                parent.send((tag, size))
                start = parent.recv()
                lat += [at - start for at in arrivals.tagged(tag, size)]
            out[size] = lat
        parent.send(None)
    finally:
        proc.join(WAIT)
        if proc.is_alive():
            proc.kill()
    return out


def pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(p / 100 * len(s) + 0.5) - 1))]


def main(options: list[str]) -> int:
    sizes, rounds = [1, 100, 1000], [20, 3, 1]
    for opt in options:
        if opt.startswith("--sizes="):
            sizes = [int(x) for x in opt.split("=", 1)[1].split(",")]
        elif opt.startswith("--rounds="):
            rounds = [int(x) for x in opt.split("=", 1)[1].split(",")]
        else:
            print(f"latency: unknown option {opt}")
            return 2
    if len(rounds) != len(sizes):
        rounds = [max(1, 20 // s) if s < 100 else max(1, 300 // s) for s in sizes]
    print(f"latency: {machine()}")
    arrivals = Arrivals()
    server = sink(arrivals)
    port = server.server_address[1]
    url = f"json://127.0.0.1:{port}/notify"
    began = time.monotonic()
    bare = baseline_rounds(sizes, rounds, arrivals, url)
    ours = daemon_rounds(sizes, rounds, arrivals, port)
    server.shutdown()
    print(
        f"{'hits':>6} {'samples':>8} | {'p50':>8} {'p99':>8} from feed_fetched | "
        f"{'p50':>8} {'p99':>8} from feed answer | {'bare p50':>8} {'bare p99':>8} | "
        f"{'p50 x':>6} {'p99 x':>6}"
    )
    for size in sizes:
        fetched, answer = ours[size]
        b50, b99 = pct(bare[size], 50), pct(bare[size], 99)
        f50, f99 = pct(fetched, 50), pct(fetched, 99)
        print(
            f"{size:>6} {len(fetched):>8} | {f50 * 1000:>6.1f}ms {f99 * 1000:>6.1f}ms"
            f"{'':>18} | {pct(answer, 50) * 1000:>6.1f}ms {pct(answer, 99) * 1000:>6.1f}ms"
            f"{'':>17} | {b50 * 1000:>6.1f}ms {b99 * 1000:>6.1f}ms | "
            f"{f50 / b50:>5.1f}x {f99 / b99:>5.1f}x"
        )
    target = 100 in ours and pct(ours[100][0], 99) < 1.0
    if 100 in ours:
        print(f"target p99 < 1 s for 100 hits to one channel: {'met' if target else 'MISSED'}")
    print(f"latency: {time.monotonic() - began:.1f} s")
    return 0
