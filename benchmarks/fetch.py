"""Fetch throughput: ``Fetcher.fetch`` against a bare ``aiohttp`` GET, on loopback.

A server in a separate process (so it does not share the event loop or the GIL with the client)
serves one ~57 KiB RSS document, with an ETag. Every client runs the same number of concurrent
workers for a fixed time. The ratio (Fetcher / bare aiohttp) is what the fetcher's deadline,
address policy (resolver filter and peer check), manual redirects, streaming size cap and
``trust_env`` (proxy variables; aiohttp then looks up netrc and proxies in a thread per request,
shown separately) cost per request. The last column is conditional GETs answered 304.

Options: ``--seconds=N`` per measurement (default 3), ``--concurrency=1,50``.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from multiprocessing.connection import Connection

import aiohttp
from aiohttp import web

from monitor.fetch import Fetched, Fetcher, FetchLimits, NotModified, Validators

ETAG = '"bench-1"'


def _body() -> bytes:
    items = "".join(
        f"<item><title>Headline number {i} about something</title>"
        f"<link>https://example.org/news/{i}</link><guid>bench-{i}</guid>"
        f"<description>{'Lorem ipsum dolor sit amet. ' * 12}</description></item>"
        for i in range(120)
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Bench</title>'
        f"{items}</channel></rss>"
    ).encode()


def _serve(conn: Connection) -> None:
    body = _body()

    async def feed(request: web.Request) -> web.Response:
        if request.headers.get("If-None-Match") == ETAG:
            return web.Response(status=304, headers={"ETag": ETAG})
        return web.Response(body=body, content_type="application/rss+xml", headers={"ETag": ETAG})

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/feed", feed)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
        await site.start()
        port = runner.addresses[0][1]
        conn.send(port)
        await asyncio.get_running_loop().run_in_executor(None, conn.recv)  # until told to stop
        await runner.cleanup()

    asyncio.run(main())


async def _rate(worker: Callable[[], Awaitable[None]], concurrency: int, seconds: float) -> float:
    done = 0
    stop_at = time.perf_counter() + seconds

    async def loop() -> None:
        nonlocal done
        while time.perf_counter() < stop_at:
            await worker()
            done += 1

    start = time.perf_counter()
    await asyncio.gather(*(loop() for _ in range(concurrency)))
    return done / (time.perf_counter() - start)


async def _bare(url: str, concurrency: int, seconds: float, *, trust_env: bool) -> float:
    connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=concurrency)
    async with aiohttp.ClientSession(connector=connector, trust_env=trust_env) as session:

        async def bare() -> None:
            async with session.get(url) as resp:
                await resp.read()
                assert resp.status == 200

        return await _rate(bare, concurrency, seconds)


async def _measure(url: str, concurrency: int, seconds: float) -> tuple[float, float, float, float]:
    baseline = await _bare(url, concurrency, seconds, trust_env=False)
    # trust_env (proxy variables) makes aiohttp look up netrc and proxies in a thread per request.
    with_env = await _bare(url, concurrency, seconds, trust_env=True)

    limits = FetchLimits(
        timeout=timedelta(seconds=30), allow_private=frozenset({url.split("/")[2]})
    )
    async with Fetcher(limits, max_connections=concurrency, per_host=concurrency) as fetcher:

        async def full() -> None:
            assert isinstance(await fetcher.fetch(url), Fetched)

        async def conditional() -> None:
            assert isinstance(await fetcher.fetch(url, Validators(etag=ETAG)), NotModified)

        ours = await _rate(full, concurrency, seconds)
        not_modified = await _rate(conditional, concurrency, seconds)
    return baseline, with_env, ours, not_modified


def main(options: list[str]) -> int:
    seconds = 3.0
    levels = [1, 50]
    for option in options:
        if option.startswith("--seconds="):
            seconds = float(option.split("=", 1)[1])
        elif option.startswith("--concurrency="):
            levels = [int(x) for x in option.split("=", 1)[1].split(",")]
    parent, child = multiprocessing.Pipe()
    server = multiprocessing.get_context("spawn").Process(target=_serve, args=(child,))
    server.start()
    try:
        port = parent.recv()
        url = f"http://127.0.0.1:{port}/feed"
        print(f"fetch: {len(_body()) // 1024} KiB RSS over loopback, {seconds:g}s per row")
        header = ("workers", "aiohttp", "+trust_env", "Fetcher", "ratio", "Fetcher 304")
        print("{:>8} {:>10} {:>11} {:>10} {:>6} {:>12}   (requests/s)".format(*header))
        for concurrency in levels:
            baseline, with_env, ours, not_modified = asyncio.run(
                _measure(url, concurrency, seconds)
            )
            print(
                f"{concurrency:>8} {baseline:>10.0f} {with_env:>11.0f} {ours:>10.0f}"
                f" {ours / baseline:>6.2f} {not_modified:>12.0f}"
            )
    finally:
        parent.send("stop")
        server.join(timeout=10)
        if server.is_alive():
            server.terminate()
    return 0
