"""Metrics and health over HTTP: Prometheus ``/metrics`` and ``/healthz`` (aiohttp.web).

Off unless ``metrics:`` is set; then it listens on 127.0.0.1:9464 (beyond loopback only with
``web.token_file``), and serves the web view (``monitor.web``) too. Counters
live in a registry of their own, incremented by the poll path, delivery and the daemon; what
the state knows (queue depth, dead letters, each feed's last success) is read from the store
at scrape time, so it is never stale and costs nothing between scrapes.

``/healthz`` is 200 when the event loop answers (it serves the request), the scheduler is
ticking and the state is writable, else 503 with the reason: what a load balancer or a
monitoring check wants, with no secrets (no URL, no token) in either answer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from aiohttp import web

    from monitor.config import Config
    from monitor.store import Store

__all__ = [
    "ALERTS",
    "HITS",
    "ITEMS",
    "POLLS",
    "POLL_SECONDS",
    "REGISTRY",
    "RELOAD_FAILURES",
    "SUPPRESSED",
    "build_app",
    "start_server",
]

REGISTRY = CollectorRegistry(auto_describe=True)
POLLS = Counter("news_monitor_polls", "Feed polls, by outcome.", ["outcome"], registry=REGISTRY)
ITEMS = Counter("news_monitor_items_parsed", "Items parsed from feeds.", registry=REGISTRY)
HITS = Counter(
    "news_monitor_hits", "Rule hits (new matches), by rule.", ["rule"], registry=REGISTRY
)
SUPPRESSED = Counter(
    "news_monitor_dedup_suppressed",
    "Hits that joined a story already alerted (story dedup), by rule.",
    ["rule"],
    registry=REGISTRY,
)
ALERTS = Counter(
    "news_monitor_alerts",
    "Alerts by channel and result: sent, failed (a try that will be retried), dead.",
    ["channel", "result"],
    registry=REGISTRY,
)
RELOAD_FAILURES = Counter(
    "news_monitor_reload_failures",
    "Config reloads refused (the old config kept).",
    registry=REGISTRY,
)
POLL_SECONDS = Histogram(
    "news_monitor_poll_duration_seconds",
    "Wall time of one feed poll (fetch, parse, match, record).",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
    registry=REGISTRY,
)


class StateCollector(Collector):
    """Gauges read from the store when scraped."""

    def __init__(self, store: Callable[[], Store]) -> None:
        self._store = store

    def collect(self) -> Iterator[Any]:
        store = self._store()
        summary = store.outbox_summary()
        yield GaugeMetricFamily(
            "news_monitor_queue_depth", "Alerts waiting for delivery.", value=summary["pending"]
        )
        yield GaugeMetricFamily(
            "news_monitor_dead_letters", "Alerts given up on.", value=summary["dead"]
        )
        last = GaugeMetricFamily(
            "news_monitor_feed_last_success_timestamp_seconds",
            "When each feed was last polled successfully (Unix time).",
            labels=["feed"],
        )
        for state in store.feed_states():
            if state.last_success_at is not None:
                last.add_metric([state.name], state.last_success_at.timestamp())
        yield last


def build_app(
    *,
    store: Callable[[], Store],
    healthy: Callable[[], str | None],
    config: Callable[[], Config] | None = None,
) -> web.Application:
    """``/metrics`` and ``/healthz``, and with ``config`` the web view (``monitor.web``)."""
    from aiohttp import web

    registry = CollectorRegistry()
    registry.register(_Both(REGISTRY, StateCollector(store)))

    async def metrics(_: web.Request) -> web.Response:
        body = generate_latest(registry)
        return web.Response(body=body, headers={"Content-Type": "text/plain; version=0.0.4"})

    async def healthz(_: web.Request) -> web.Response:
        problem = healthy()
        if problem is None:
            return web.json_response({"status": "ok"})
        return web.json_response({"status": "unhealthy", "reason": problem}, status=503)

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    if config is not None:
        from monitor.web.app import setup

        setup(app, config)
    return app


async def start_server(
    host: str,
    port: int,
    *,
    store: Callable[[], Store],
    healthy: Callable[[], str | None],
    config: Callable[[], Config] | None = None,
) -> web.AppRunner:
    """Serve ``/metrics``, ``/healthz`` and the web view; ``healthy()`` returns None or what is
    wrong."""
    from aiohttp import web

    from monitor.web.app import MAX_REQUEST_LINE

    app = build_app(store=store, healthy=healthy, config=config)
    runner = web.AppRunner(app, access_log=None, max_line_size=MAX_REQUEST_LINE)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner


class _Both(Collector):
    """The process-wide counters and the per-run state gauges as one registry's collectors."""

    def __init__(self, counters: CollectorRegistry, state: StateCollector) -> None:
        self._counters = counters
        self._state = state

    def collect(self) -> Iterator[Any]:
        yield from self._counters.collect()
        yield from self._state.collect()
