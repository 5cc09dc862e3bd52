"""Delivery through the outbox: per-URL retries, backoff, dead letters (injected clock)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

from monitor.config import load_config
from monitor.service import Monitor
from monitor.store import SqliteStore as Store
from tests.feeds import Entry, rss
from tests.feedserver import FeedServer, closed_port
from tests.sinks import JsonSink


def make_config(tmp: Path, server: FeedServer, urls: list[str], channels: str = "") -> Path:
    cfg = tmp / "monitor.yaml"
    quoted = ", ".join(f'"{u}"' for u in urls)
    cfg.write_text(
        f"""\
state: state.db
fetch: {{allow_private: ["127.0.0.1:{server.port}"]}}
channels:
  both: [{quoted}]
{channels}
feeds:
  - {{name: news, url: "{server.url("/news.xml")}"}}
rules:
  - {{name: kp, query: '"Kim Jong Un" AND Putin', notify: [both]}}
"""
    )
    return cfg


def test_a_failing_url_is_retried_alone_with_backoff_then_given_up(
    tmp_path: Path, feed_server: FeedServer, json_sink: JsonSink
) -> None:
    feed_server.route("/news.xml", body=rss([Entry("Putin sambut Kim Jong Un", "https://e/1")]))
    dead = f"json://127.0.0.1:{closed_port()}/x"
    config = load_config(make_config(tmp_path, feed_server, [json_sink.url(), dead]))
    now = [datetime.now(UTC)]
    store = Store(config.state_path)
    monitor = Monitor(config, store, clock=lambda: now[0])

    report = asyncio.run(monitor.run_once())
    assert (report.delivered, report.delivery_failed) == (0, 1)
    assert len(json_sink.messages) == 1
    # `once` retries at once, but only the URL that failed: no repeat to the working one.
    report = asyncio.run(monitor.run_once())
    assert report.delivery_failed == 1
    assert len(json_sink.messages) == 1
    # The daemon honours the backoff: 2 attempts so far, the next after 60 s ± 20 % (the
    # default retry: 30 s doubling to 15 min, jittered).
    assert asyncio.run(monitor.delivery.deliver_pending()) == (0, 0)
    now[0] += timedelta(seconds=45)
    assert asyncio.run(monitor.delivery.deliver_pending()) == (0, 0)
    now[0] += timedelta(seconds=30)
    assert asyncio.run(monitor.delivery.deliver_pending()) == (0, 1)
    assert store.pending_count() == 1
    # After the delivery lifetime (24 h) it is given up, with its reason kept.
    now[0] += timedelta(hours=24)
    assert asyncio.run(monitor.delivery.deliver_pending()) == (0, 1)
    assert store.pending_count() == 0
    ((rule, channel, reason),) = store.dead_alerts()
    assert (rule, channel) == ("kp", "both") and "failure" in reason
    assert len(json_sink.messages) == 1
    store.close()


def test_the_url_that_failed_gets_it_when_it_comes_back(
    tmp_path: Path, feed_server: FeedServer, json_sink: JsonSink
) -> None:
    feed_server.route("/news.xml", body=rss([Entry("Putin sambut Kim Jong Un", "https://e/1")]))
    config = load_config(
        make_config(tmp_path, feed_server, [json_sink.url("/a"), json_sink.url("/b")])
    )
    store = Store(config.state_path)
    monitor = Monitor(config, store)
    json_sink.status = 500
    asyncio.run(monitor.run_once())
    assert sorted(m.path for m in json_sink.messages) == ["/a", "/b"]
    json_sink.status = 200
    report = asyncio.run(monitor.run_once())
    assert report.delivered == 1
    assert sorted(m.path for m in json_sink.messages) == ["/a", "/a", "/b", "/b"]
    store.close()


def test_alert_for_a_removed_channel_is_given_up_with_a_reason(
    tmp_path: Path, feed_server: FeedServer, json_sink: JsonSink
) -> None:
    feed_server.route("/news.xml", body=rss([Entry("Putin sambut Kim Jong Un", "https://e/1")]))
    dead = f"json://127.0.0.1:{closed_port()}/x"
    path = make_config(tmp_path, feed_server, [dead])
    config = load_config(path)
    store = Store(config.state_path)
    asyncio.run(Monitor(config, store).run_once())
    assert store.pending_count() == 1
    path.write_text(
        path.read_text()
        .replace(f'both: ["{dead}"]', f'other: ["{json_sink.url()}"]')
        .replace("notify: [both]", "notify: [other]")
    )
    report = asyncio.run(Monitor(load_config(path), store).run_once())
    assert report.delivery_failed == 1
    assert store.pending_count() == 0
    assert store.dead_alerts()[0][2] == "channel 'both' is no longer in the config"
    assert json_sink.messages == []
    store.close()


def test_a_failing_channel_does_not_hold_up_the_others_in_a_pass(
    tmp_path: Path, feed_server: FeedServer, json_sink: JsonSink
) -> None:
    feed_server.route(
        "/news.xml",
        body=rss([Entry(f"Putin sambut Kim Jong Un {i}", f"https://e/{i}") for i in range(3)]),
    )
    dead = f"json://127.0.0.1:{closed_port()}/x"
    path = make_config(tmp_path, feed_server, [dead], channels=f'  good: ["{json_sink.url()}"]')
    path.write_text(path.read_text().replace("notify: [both]", "notify: [both, good]"))
    config = load_config(path)
    store = Store(config.state_path)
    report = asyncio.run(Monitor(config, store).run_once())
    assert report.delivered == 3 and report.delivery_failed == 1
    assert len(json_sink.messages) == 3
    # The dead channel was tried once in the pass; its other alerts wait, untried.
    attempts = sorted(a.attempts for a in store.pending_alerts(None))
    assert attempts == [0, 0, 1]
    store.close()
