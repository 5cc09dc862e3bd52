"""Parse time: ``parse_feed`` against bare ``feedparser.parse`` on the same bytes.

Rows: the five largest fixture feeds (``shared/fixtures/feeds``, when present) and hostile
inputs that are slow without the parse stage's caps (bare feedparser is skipped on those whose
uncapped cost is known to be tens of seconds). The ratio is ours / bare; above 1 is the cost of
the pre-pass and of turning HTML into plain text, below 1 is what the caps save.

A second table puts every Atom fixture through ``parse_feed`` twice: on the fast path (when it
takes the feed) and with ``fast=False``, through feedparser; the ratio is fast / feedparser.

Options: ``--repeat=N`` (default 5; the best of N is reported).
"""

from __future__ import annotations

import contextlib
import functools
import io
import re
import time
from collections.abc import Callable
from pathlib import Path

import feedparser

from monitor.parse import ParseError, _fast_parse, parse_feed

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "feeds"


def _rss(items: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>t</title>'
        f"{items}</channel></rss>"
    ).encode()


HOSTILE: dict[str, tuple[bytes, bool]] = {  # name -> (body, run bare feedparser too)
    "author 20,000 chars": (
        _rss(f"<item><title>x</title><author>{'a' * 20_000}</author></item>"),
        True,
    ),
    "unclosed tags in description": (
        _rss(f"<item><title>x</title><description>{'&lt;a ' * 20_000}</description></item>"),
        True,
    ),
    "tag with 10,000 attributes": (
        _rss(
            "<item><title>x</title><link "
            + " ".join(f'a{i}="v"' for i in range(10_000))
            + ">y</link></item>"
        ),
        True,
    ),
    "billion laughs": (
        (
            '<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY a "aaaaaaaaaa">'
            + "".join(
                f'<!ENTITY {c} "{("&" + p + ";") * 10}">'
                for p, c in zip("abcdefg", "bcdefgh", strict=True)
            )
            + ']><rss version="2.0"><channel><title>t</title>'
            + "<item><title>&h;</title></item></channel></rss>"
        ).encode(),
        False,  # bare feedparser: expat refuses, the loose parser then expands
    ),
    "60,000 items (5.9 MB)": (
        _rss(
            "".join(
                f"<item><title>t{i}</title><link>https://e.x/{i}</link></item>"
                for i in range(60_000)
            )
        ),
        True,
    ),
}


def _ours(body: bytes, *, fast: bool = True) -> object:
    return parse_feed(body, feed_name="bench", url="https://bench.example/", fast=fast)


def _bare(body: bytes) -> object:
    return feedparser.parse(io.BytesIO(body), sanitize_html=False, resolve_relative_uris=False)


def _best(fn: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        with contextlib.suppress(ParseError):
            fn()
        best = min(best, time.perf_counter() - start)
    return best


def main(options: list[str]) -> int:
    repeat = 5
    for option in options:
        if option.startswith("--repeat="):
            repeat = int(option.split("=", 1)[1])
    rows: list[tuple[str, bytes, bool]] = []
    if FIXTURES.is_dir():
        biggest = sorted(
            (p for p in FIXTURES.rglob("*") if p.is_file()), key=lambda p: -p.stat().st_size
        )
        rows += [(str(p.relative_to(FIXTURES)), p.read_bytes(), True) for p in biggest[:5]]
    rows += [(name, body, bare) for name, (body, bare) in HOSTILE.items()]
    print(f"parse: best of {repeat}, milliseconds")
    print(f"{'input':<44} {'KiB':>7} {'feedparser':>11} {'parse_feed':>11} {'ratio':>6}")
    for name, body, run_bare in rows:
        ours = _best(functools.partial(_ours, body), repeat)
        if run_bare:
            bare = _best(functools.partial(_bare, body), 1 if len(body) > 1_000_000 else repeat)
            bare_text, ratio = f"{bare * 1000:11.1f}", f"{ours / bare:6.2f}"
        else:
            bare_text, ratio = f"{'skipped':>11}", f"{'':>6}"
        print(f"{name:<44} {len(body) / 1024:7.0f} {bare_text} {ours * 1000:11.1f} {ratio}")
    if FIXTURES.is_dir():
        _atom_rows(repeat)
    return 0


def _atom_rows(repeat: int) -> None:
    """Atom fixtures on the fast path against ``parse_feed(..., fast=False)``."""
    root = re.compile(rb"<(?:[\w.-]+:)?feed[\s>]")  # an Atom root, not <feedburner:...>
    atom = sorted(
        p for p in FIXTURES.rglob("*") if p.is_file() and root.search(p.read_bytes()[:4096])
    )
    print(f"\nAtom fixtures: best of {repeat}, milliseconds")
    print(f"{'input':<44} {'KiB':>7} {'feedparser':>11} {'fast path':>11} {'ratio':>6}")
    for path in atom:
        body = path.read_bytes()
        taken = _fast_parse(body, feed_name="bench", url="https://bench.example/") is not None
        slow = _best(functools.partial(_ours, body, fast=False), repeat)
        if taken:
            fast = _best(functools.partial(_ours, body), repeat)
            fast_text, ratio = f"{fast * 1000:11.1f}", f"{fast / slow:6.2f}"
        else:
            fast_text, ratio = f"{'declined':>11}", f"{'':>6}"
        name = str(path.relative_to(FIXTURES))
        print(f"{name:<44} {len(body) / 1024:7.0f} {slow * 1000:11.1f} {fast_text} {ratio}")
