"""Synthetic news feeds for the poll benchmark, and the loopback server that serves them.

Every feed is an RSS 2.0 document of 50-100 items shaped like an Indonesian outlet's feed:
a headline (~80 characters with the outlet suffix), a 300-600 character description with a
little HTML in CDATA, link, guid and pubDate. Text comes from the headline fixtures when they
are present, else from generated words; everything is derived from the seed and the feed and
item numbers, so two runs serve the same bytes.

Feeds behave by their number (``i % 10``), as a real list of outlets does per cycle:

- 0-1 (20%) ``changing``: each generation adds 1-5 items at the top (the oldest fall off) and
  gets a new ETag;
- 2-6 (50%) ``conditional``: never change and answer ``If-None-Match`` with 304;
- 7-9 (30%) ``plain``: never change and send no validators at all (the same body every time).

The server runs in its own process (its CPU must not be counted as the poller's, nor share its
GIL) and is driven through a pipe: switch generation, switch to naive mode (ignore
``If-None-Match``), report its own CPU time, stop.
"""

from __future__ import annotations

import asyncio
import csv
import email.utils
import multiprocessing
import random
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

HEADLINES = (
    Path(__file__).resolve().parents[2]
    / "shared"
    / "fixtures"
    / "datasets"
    / "narasipal-id-headlines"
)
WIB = timezone(timedelta(hours=7))
CHANGING, CONDITIONAL, PLAIN = "changing", "conditional", "plain"
OUTLETS = (
    ("Kompas.com", "www.kompas.com"),
    ("detikNews", "news.detik.com"),
    ("Tempo.co", "nasional.tempo.co"),
    ("CNN Indonesia", "www.cnnindonesia.com"),
    ("Republika", "news.republika.co.id"),
    ("CNBC Indonesia", "www.cnbcindonesia.com"),
    ("Antara", "www.antaranews.com"),
    ("Liputan6", "www.liputan6.com"),
)
_SYLLABLES = [
    "ka",
    "ri",
    "mo",
    "ta",
    "nu",
    "se",
    "wi",
    "ra",
    "do",
    "lan",
    "pur",
    "jan",
    "tor",
    "vek",
    "zan",
    "mir",
    "bas",
    "gul",
    "fen",
    "hok",
]


def feed_kind(i: int) -> str:
    r = i % 10
    return CHANGING if r < 2 else CONDITIONAL if r < 7 else PLAIN


def _mix(*parts: int) -> int:
    """A cheap deterministic hash of a few integers (Knuth's multiplicative step)."""
    h = 0x9E3779B9
    for p in parts:
        h = ((h ^ p) * 2654435761 + 0x7F4A7C15) & 0xFFFFFFFF
    return h


def invented_word(rng: random.Random) -> str:
    return "".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(3, 4))).capitalize()


def load_headlines(seed: int) -> tuple[list[str], str]:
    """Headlines from the fixture CSVs, or generated ones when the fixtures are absent."""
    out: list[str] = []
    for path in sorted(HEADLINES.glob("*_master.csv")) if HEADLINES.is_dir() else []:
        with path.open(newline="", encoding="utf-8", errors="replace") as f:
            rows = csv.reader(f)
            next(rows, None)
            out.extend(row[-1].strip() for row in rows if row and row[-1].strip())
    rng = random.Random(seed)
    if len(out) >= 1_000:
        rng.shuffle(out)
        return out, f"{len(out)} fixture headlines ({HEADLINES.name})"
    vocab = [invented_word(rng) for _ in range(4_000)]
    common = [
        "di",
        "ke",
        "dan",
        "yang",
        "dari",
        "untuk",
        "pada",
        "dengan",
        "akan",
        "ini",
        "itu",
        "tidak",
    ]
    gen = [
        " ".join(rng.choice(common) if rng.random() < 0.35 else rng.choice(vocab) for _ in range(9))
        for _ in range(20_000)
    ]
    return gen, "generated headlines (fixtures absent)"


@dataclass(frozen=True)
class FeedSet:
    """The N feeds: which items each lists at a given generation, and their bytes."""

    n: int
    seed: int
    base: datetime  # publication time of every feed's top item at generation 0
    headlines: tuple[str, ...]

    @classmethod
    def create(cls, n: int, seed: int, base: datetime) -> FeedSet:
        heads, _ = load_headlines(seed)
        return cls(n, seed, base, tuple(heads))

    def size(self, i: int) -> int:
        return 50 + _mix(self.seed, i) % 51

    def added(self, i: int, gen: int) -> int:
        """Items feed ``i`` gains when the server moves to generation ``gen`` (>= 1)."""
        return 1 + _mix(self.seed, i, gen) % 5 if feed_kind(i) == CHANGING and gen > 0 else 0

    def top(self, i: int, gen: int) -> int:
        return self.size(i) - 1 + sum(self.added(i, g) for g in range(1, gen + 1))

    def content_gen(self, i: int, gen: int) -> int:
        return gen if feed_kind(i) == CHANGING else 0

    def etag(self, i: int, gen: int) -> str | None:
        if feed_kind(i) == PLAIN:
            return None
        return f'"{i:x}-{self.content_gen(i, gen)}"'

    def published(self, i: int, k: int) -> datetime:
        first_new = self.size(i)
        if k < first_new:  # the backlog: one item every 15 minutes before `base`
            return self.base - timedelta(minutes=15 * (first_new - 1 - k))
        return self.base + timedelta(minutes=k - first_new + 1)

    def _headline(self, h: int) -> str:
        return self.headlines[h % len(self.headlines)]

    def item(self, i: int, k: int) -> str:
        outlet, host = OUTLETS[i % len(OUTLETS)]
        h = _mix(self.seed, i, k)
        title = f"{self._headline(h)} - {outlet}"
        slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:70]
        link = f"https://{host}/read/{i}/{k}/{slug}"
        want = 240 + h % 301  # sentences overshoot: ~300-600 characters
        sentences: list[str] = []
        length = 0
        j = 1
        while length < want:
            s = self._headline(_mix(h, j)).rstrip(".!?") + "."
            sentences.append(s)
            length += len(s) + 1
            j += 1
        sentences[0] = f"<b>{sentences[0]}</b>"
        text = " ".join(sentences)
        img = f'<img src="https://cdn.{host}/img/{i}/{k}.jpg" width="300" alt="" />'
        more = f'<a href="{link}">Baca selengkapnya</a>'
        pub = email.utils.format_datetime(self.published(i, k).astimezone(WIB))
        return (
            f"<item><title>{_esc(title)}</title><link>{link}</link>"
            f'<guid isPermaLink="true">{link}</guid><pubDate>{pub}</pubDate>'
            f"<category>Nasional</category>"
            f"<description><![CDATA[{img}<p>{text}</p><p>{more}</p>]]></description></item>\n"
        )

    def body(self, i: int, gen: int) -> bytes:
        outlet, host = OUTLETS[i % len(OUTLETS)]
        top = self.top(i, gen)
        items = "".join(self.item(i, k) for k in range(top, top - self.size(i), -1))
        built = email.utils.format_datetime(self.published(i, top).astimezone(WIB))
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            '<rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom"><channel>\n'
            f"<title>{_esc(outlet)} - Kanal {i}</title><link>https://{host}/</link>"
            f"<description>Berita terkini kanal {i}</description><language>id</language>"
            f"<lastBuildDate>{built}</lastBuildDate><ttl>5</ttl>\n{items}</channel></rss>\n"
        ).encode()


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# --- the server process ---------------------------------------------------------------------


def _serve(conn: Connection, n: int, seed: int, base_ts: float) -> None:
    from aiohttp import web

    feeds = FeedSet.create(n, seed, datetime.fromtimestamp(base_ts, UTC))
    gen = 0
    naive = False
    bodies = [feeds.body(i, 0) for i in range(n)]
    etags = [feeds.etag(i, 0) for i in range(n)]
    counts = {"200": 0, "304": 0, "bytes": 0}

    async def feed(request: web.Request) -> web.StreamResponse:
        i = int(request.match_info["i"])
        etag = etags[i]
        headers = {"ETag": etag} if etag else {}
        if etag and not naive and request.headers.get("If-None-Match") == etag:
            counts["304"] += 1
            return web.Response(status=304, headers=headers)
        counts["200"] += 1
        counts["bytes"] += len(bodies[i])
        return web.Response(
            body=bodies[i],
            headers={**headers, "Content-Type": "application/rss+xml; charset=UTF-8"},
        )

    async def sink(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(text="ok")

    def command(msg: tuple[Any, ...]) -> Any:
        nonlocal gen, naive
        if msg[0] == "gen":
            gen = int(msg[1])
            for i in range(n):
                if feed_kind(i) == CHANGING:
                    bodies[i] = feeds.body(i, gen)
                    etags[i] = feeds.etag(i, gen)
            return gen
        if msg[0] == "naive":
            naive = bool(msg[1])
            return naive
        if msg[0] == "stats":
            out = {**counts, "cpu": time.process_time()}
            counts.update({"200": 0, "304": 0, "bytes": 0})
            return out
        raise ValueError(msg)

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/feed/{i}", feed)
        app.router.add_post("/sink", sink)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=2048)
        await site.start()
        conn.send(runner.addresses[0][1])
        loop = asyncio.get_running_loop()
        while True:
            msg = await loop.run_in_executor(None, conn.recv)
            if msg[0] == "stop":
                break
            # Commands run on the loop, between requests: a generation switch is atomic.
            conn.send(command(msg))
        await runner.cleanup()
        conn.send("stopped")

    asyncio.run(main())


class FeedServer:
    """Handle on the server process: ``port``, and ``call(...)`` for the pipe commands."""

    def __init__(self, n: int, seed: int, base: datetime) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc: BaseProcess = ctx.Process(
            target=_serve, args=(child, n, seed, base.timestamp()), daemon=True
        )
        self._proc.start()
        child.close()
        self.port: int = self._conn.recv()

    def call(self, *msg: Any) -> Any:
        self._conn.send(msg)
        return self._conn.recv()

    def stop(self) -> None:
        try:
            self._conn.send(("stop",))
            self._conn.recv()
        except (EOFError, OSError):
            pass
        self._proc.join(10)
        if self._proc.is_alive():
            self._proc.terminate()
