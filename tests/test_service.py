"""The limits the service puts on what servers and feeds ask for, through the real monitor.

Each test runs ``Monitor`` against loopback servers with an injected clock, so "a day later" is
exact and nothing waits for real time.
"""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from monitor import logs
from monitor.config import load_config
from monitor.fetch import Validators
from monitor.service import Monitor
from monitor.store import SqliteStore as Store
from tests.feeds import Entry, rss
from tests.feedserver import Concurrency, FeedServer, closed_port
from tests.sinks import JsonSink


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


def make_monitor(
    tmp: Path,
    server: FeedServer,
    channel: str,
    *,
    feeds: dict[str, str] | None = None,
    rules: str = "Putin",
    fetch: str = "",
    clock: Clock | None = None,
) -> tuple[Monitor, Store, Clock]:
    feeds = feeds or {"news": "/news.xml"}
    lines = "\n".join(f'  - {{name: {n}, url: "{server.url(p)}"}}' for n, p in feeds.items())
    cfg = tmp / "monitor.yaml"
    cfg.write_text(
        f"""\
state: state.db
defaults: {{interval: 10m, max_age: 2d}}
fetch: {{allow_private: ["127.0.0.1:{server.port}"]{fetch}}}
channels:
  chat: "{channel}"
feeds:
{lines}
rules:
  - {{name: watch, query: '{rules}', notify: [chat]}}
"""
    )
    config = load_config(cfg)
    store = Store(config.state_path)
    clock = clock or Clock()
    return Monitor(config, store, clock=clock), store, clock


def once(monitor: Monitor) -> dict[str, str]:
    """One `once` cycle; each feed's outcome status."""
    return {f.feed: f.status for f in asyncio.run(monitor.run_once()).feeds}


# --- backoff caps ------------------------------------------------------------------------------


def test_a_failing_feed_is_retried_at_least_every_six_hours(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    feed_server.route("/news.xml", status=500, body=b"down")
    monitor, store, clock = make_monitor(tmp_path, feed_server, "json://127.0.0.1:1/x")
    # 10 minutes doubling: without the cap the 7th failure would wait 10 h 40 min.
    for _ in range(10):
        assert once(monitor) == {"news": "failed"}
        clock.advance(timedelta(hours=7))  # above 6 h plus 10% jitter
    assert len(feed_server.requests) == 10
    store.close()


def test_a_failing_alert_is_retried_at_least_every_hour(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    feed_server.route("/news.xml", body=rss([Entry("Putin visits Bali", "https://e/1")]))
    dead = f"json://127.0.0.1:{closed_port()}/x"
    monitor, store, clock = make_monitor(tmp_path, feed_server, dead)
    report = asyncio.run(monitor.run_once())
    assert report.delivery_failed == 1
    # 1 minute doubling: without the cap the 7th retry would come after 64 minutes.
    for _ in range(10):
        clock.advance(timedelta(hours=1))
        assert asyncio.run(monitor.delivery.deliver_pending()) == (0, 1)
    assert store.pending_alerts(None)[0].attempts == 11
    store.close()


# --- Retry-After -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "retry_after",
    [
        str(7 * 24 * 3600),  # a week
        "9" * 20,  # more seconds than a timedelta holds
    ],
    ids=["a-week", "20-digits"],
)
def test_retry_after_is_honoured_for_at_most_a_day(
    tmp_path: Path, feed_server: FeedServer, retry_after: str
) -> None:
    feed_server.route("/news.xml", status=503, headers={"Retry-After": retry_after})
    monitor, store, clock = make_monitor(tmp_path, feed_server, "json://127.0.0.1:1/x")
    assert once(monitor) == {"news": "failed"}
    state = store.feed_state("news")
    assert state is not None and state.last_error == "HTTP 503: Service Unavailable"
    clock.advance(timedelta(hours=23))
    assert once(monitor) == {"news": "skipped"}  # the server's wish is respected…
    clock.advance(timedelta(hours=1, seconds=1))
    assert once(monitor) == {"news": "failed"}  # …for a day at most
    assert len(feed_server.requests) == 2
    store.close()


# --- future publication dates ------------------------------------------------------------------


def test_a_future_dated_item_is_eligible_for_max_age_from_when_it_was_seen(
    tmp_path: Path, feed_server: FeedServer, json_sink: JsonSink
) -> None:
    # A wrong clock or timezone at the publisher dates an item a month ahead. It counts as
    # published when first seen; otherwise it would stay "recent" for a month plus max_age,
    # and any rule added meanwhile would alert it.
    clock = Clock()
    item = Entry("Putin visits Bali", "https://e/future", age=-timedelta(days=30))
    feed_server.route("/news.xml", body=rss([item], now=clock.now))
    monitor, store, _ = make_monitor(tmp_path, feed_server, json_sink.url(), rules="Jakarta")
    assert once(monitor) == {"news": "ok"}
    assert json_sink.messages == []

    # Three days later (max_age is two) a rule that matches it is added.
    clock.advance(timedelta(days=3))
    store.close()
    monitor, store, _ = make_monitor(
        tmp_path, feed_server, json_sink.url(), rules="Bali", clock=clock
    )
    report = asyncio.run(monitor.run_once())
    assert report.feeds[0].status == "ok" and report.feeds[0].alerts == 0
    assert json_sink.messages == []
    store.close()


def test_a_future_dated_item_alerts_at_once_when_first_seen(
    tmp_path: Path, feed_server: FeedServer, json_sink: JsonSink
) -> None:
    item = Entry("Putin visits Bali", "https://e/future", age=-timedelta(days=30))
    feed_server.route("/news.xml", body=rss([item]))
    monitor, store, _ = make_monitor(tmp_path, feed_server, json_sink.url(), rules="Bali")
    assert asyncio.run(monitor.run_once()).delivered == 1
    sent = json_sink.wait_for(1)[0]
    assert "Putin visits Bali" in sent.title + sent.message
    store.close()


# --- per-host connections ----------------------------------------------------------------------


def test_fetch_per_host_from_the_config_limits_concurrent_requests(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    counter = Concurrency(expected=2, limit=1, body=rss([Entry("x", "https://e/x")]))
    feed_server.route("/hold", handler=counter)
    monitor, store, _ = make_monitor(
        tmp_path,
        feed_server,
        "json://127.0.0.1:1/x",
        feeds={"a": "/hold?a", "b": "/hold?b"},
        fetch=", per_host: 1",
    )
    assert once(monitor) == {"a": "ok", "b": "ok"}
    assert counter.peak == 1
    store.close()


# --- fetch.trust_env ---------------------------------------------------------------------------


@pytest.mark.parametrize(("setting", "proxied"), [("", False), (", trust_env: true", True)])
def test_fetch_trust_env_decides_whether_the_environment_proxy_is_used(
    tmp_path: Path,
    feed_server_factory: Callable[[], FeedServer],
    monkeypatch: pytest.MonkeyPatch,
    setting: str,
    proxied: bool,
) -> None:
    feeds, proxy = feed_server_factory(), feed_server_factory()
    feeds.route("/news.xml", body=rss([Entry("direct", "https://e/direct")]))
    proxy.route(feeds.url("/news.xml"), body=rss([Entry("proxied", "https://e/proxied")]))
    monkeypatch.setenv("HTTP_PROXY", proxy.url())
    for name in ("http_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monitor, store, _ = make_monitor(tmp_path, feeds, "json://127.0.0.1:1/x", fetch=setting)
    assert once(monitor) == {"news": "ok"}
    assert (len(proxy.requests), len(feeds.requests)) == ((1, 0) if proxied else (0, 1))
    store.close()


# --- an unexpected error in a poll -------------------------------------------------------------


class CrashingFetcher:
    """A fetcher (our own seam) with a bug: every fetch raises."""

    async def fetch(self, url: str, validators: Validators | None = None, **kw: Any) -> Any:
        raise RuntimeError("bug in a stage")


def test_a_crashed_poll_logs_feed_failed_with_its_feed(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    monitor, store, _ = make_monitor(tmp_path, feed_server, "json://127.0.0.1:1/x")
    (feed,) = monitor.config.enabled_feeds()
    out = io.StringIO()
    logs.configure(level="info", json=True, stream=out)
    try:
        outcome, _ = asyncio.run(
            monitor.poller.guarded_poll(CrashingFetcher(), feed, dry_run=False)
        )
    finally:
        logs.configure(level="info", json=True)
    assert outcome.status == "failed"
    events = {e["event"]: e for e in map(json.loads, out.getvalue().splitlines())}
    assert events["feed_crashed"]["feed"] == "news"
    assert events["feed_failed"]["feed"] == "news"
    assert events["feed_failed"]["reason"] == "internal error: RuntimeError('bug in a stage')"
    store.close()
