"""Delivery for people, through the real outbox and apprise to loopback sinks (injected clock):
digests, quiet hours across midnight, rate limits and bursts, grouping, outages, dead letters."""

from __future__ import annotations

import asyncio
import http.server
import json
import textwrap
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from monitor.cli import main
from monitor.config import Config, load_config
from monitor.service import Monitor
from monitor.store import SqliteStore as Store
from tests.feeds import Entry, rss
from tests.feedserver import FeedServer, closed_port
from tests.pgserver import on_both_backends, sqlite_only
from tests.sinks import JsonSink

backend_for_module = on_both_backends(__name__)

# 2026-12-03 09:10 in Bali (UTC+8).
START = datetime(2026, 12, 3, 1, 10, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def second_sink() -> Iterator[JsonSink]:
    sink = JsonSink()
    sink.start()
    try:
        yield sink
    finally:
        sink.stop()


def setup(
    tmp: Path,
    server: FeedServer,
    channels: str,
    rules: str,
    *,
    extra: str = "",
) -> Config:
    cfg = tmp / "monitor.yaml"
    cfg.write_text(
        textwrap.dedent(
            f"""\
            state: state.db
            timezone: Asia/Makassar
            fetch: {{allow_private: ["127.0.0.1:{server.port}"]}}
            feeds:
              - {{name: news, url: "{server.url("/news.xml")}"}}
            """
        )
        + "channels:\n"
        + textwrap.indent(textwrap.dedent(channels), "  ")
        + "rules:\n"
        + textwrap.indent(textwrap.dedent(rules), "  ")
        + extra
    )
    return load_config(cfg)


def serve(server: FeedServer, titles: list[str], now: datetime) -> None:
    entries = [
        Entry(t, f"https://e.example/{n}-{abs(hash(t))}", age=timedelta(minutes=5 + n))
        for n, t in enumerate(titles)
    ]
    server.route("/news.xml", body=rss(entries, now=now))


def cycle(monitor: Monitor) -> None:
    asyncio.run(monitor.run_once())


def step(monitor: Monitor, clock: Clock, to: datetime) -> int:
    """Move the clock and run one daemon delivery pass; returns alerts sent."""
    clock.now = to
    return asyncio.run(monitor.delivery.deliver_pending())[0]


def test_an_hourly_digest_is_one_message_grouped_by_rule(
    tmp_path: Path, feed_server: FeedServer, json_sink: JsonSink
) -> None:
    clock = Clock(START)
    config = setup(
        tmp_path,
        feed_server,
        f'chat: {{urls: "{json_sink.url()}", deliver: {{every: 1h}}}}\n',
        """\
        - {name: gempa, query: gempa, notify: chat}
        - {name: banjir, query: banjir, notify: chat}
        """,
    )
    serve(
        feed_server, ["Gempa guncang Karangasem", "Banjir di Jembrana", "Gempa susulan Bali"], START
    )
    with Store(config.state_path) as store:
        monitor = Monitor(config, store, clock=clock)
        cycle(monitor)
        assert json_sink.messages == []  # 09:10: the digest is at 10:00
        assert step(monitor, clock, START + timedelta(minutes=49)) == 0
        assert step(monitor, clock, START + timedelta(minutes=50)) == 3  # 10:00 Bali
    [digest] = json_sink.messages
    assert "3 alerts" in digest.title and "09:00–10:00" in digest.title
    body = digest.message
    assert body.index("gempa (2)") < body.index("banjir (1)")
    assert body.index("guncang Karangasem") < body.index("susulan Bali")  # newest first


def test_quiet_hours_defer_to_one_digest_and_urgent_rules_go_through(
    tmp_path: Path, feed_server: FeedServer, json_sink: JsonSink
) -> None:
    night = datetime(2026, 12, 3, 15, 0, tzinfo=UTC)  # 23:00 in Bali
    clock = Clock(night)
    config = setup(
        tmp_path,
        feed_server,
        f'chat: {{urls: "{json_sink.url()}", quiet_hours: "22:00-06:00"}}\n',
        """\
        - {name: gempa, query: gempa, notify: chat}
        - {name: tsunami, query: tsunami, notify: chat, urgent: true}
        """,
    )
    serve(
        feed_server, ["Gempa guncang Karangasem", "Gempa susulan Bali", "Peringatan tsunami"], night
    )
    with Store(config.state_path) as store:
        monitor = Monitor(config, store, clock=clock)
        cycle(monitor)
        assert [m.title for m in json_sink.messages] == ["[tsunami] Peringatan tsunami"]
        assert store.pending_count() == 2  # held, not dropped
        assert step(monitor, clock, datetime(2026, 12, 3, 21, 59, tzinfo=UTC)) == 0  # 05:59
        assert step(monitor, clock, datetime(2026, 12, 3, 22, 0, tzinfo=UTC)) == 2  # 06:00
    assert len(json_sink.messages) == 2
    assert "quiet hours 22:00–06:00" in json_sink.messages[1].title


def test_a_daily_digest_follows_its_zone_across_the_dst_change(
    tmp_path: Path, feed_server: FeedServer, json_sink: JsonSink
) -> None:
    saturday = datetime(2026, 3, 28, 11, 0, tzinfo=UTC)  # 12:00 in Berlin (CET)
    clock = Clock(saturday)
    config = setup(
        tmp_path,
        feed_server,
        f'desk: {{urls: "{json_sink.url()}", deliver: {{daily: "08:00"}}, '
        "timezone: Europe/Berlin}\n",
        "- {name: gempa, query: gempa, notify: desk}\n",
    )
    serve(feed_server, ["Gempa guncang Karangasem"], saturday)
    with Store(config.state_path) as store:
        monitor = Monitor(config, store, clock=clock)
        cycle(monitor)
        # Sunday 08:00 is 06:00 UTC (summer time began at 02:00), not 07:00.
        assert step(monitor, clock, datetime(2026, 3, 29, 5, 59, tzinfo=UTC)) == 0
        assert step(monitor, clock, datetime(2026, 3, 29, 6, 0, tzinfo=UTC)) == 1
    assert "daily 2026-03-29 08:00" in json_sink.messages[0].title


def test_rate_limit_folds_overflow_into_a_digest_and_a_burst_is_one_message(
    tmp_path: Path, feed_server: FeedServer, json_sink: JsonSink, second_sink: JsonSink
) -> None:
    clock = Clock(START)
    config = setup(
        tmp_path,
        feed_server,
        f'limited: {{urls: "{json_sink.url()}", rate_limit: 2/min}}\n'
        f'bursty: {{urls: "{second_sink.url()}", burst: 3}}\n',
        "- {name: gempa, query: gempa, notify: [limited, bursty]}\n",
    )
    serve(feed_server, [f"Gempa ke-{n} guncang Karangasem" for n in range(4)], START)
    with Store(config.state_path) as store:
        monitor = Monitor(config, store, clock=clock)
        cycle(monitor)
        # 2/min: one alert alone, the other three in one digest; nothing dropped.
        assert len(json_sink.messages) == 2
        assert "3 alerts" in json_sink.messages[1].title
        assert "rate limit" in json_sink.messages[1].title
        # Four due at once with burst: 3 is a burst: one message, not four.
        [burst] = second_sink.messages
        assert "4 alerts" in burst.title and "burst" in burst.title
        assert store.pending_count() == 0
        # The window is full: a new alert waits for it to move on, then goes.
        serve(feed_server, ["Gempa baru guncang Karangasem"], START)
        clock.now = START + timedelta(seconds=10)
        cycle(monitor)
        assert len(json_sink.messages) == 2 and store.pending_count() == 1
        assert step(monitor, clock, START + timedelta(seconds=61)) == 1
    assert len(json_sink.messages) == 3


def test_one_item_matching_several_rules_is_one_message_naming_them(
    tmp_path: Path, feed_server: FeedServer, json_sink: JsonSink
) -> None:
    config = setup(
        tmp_path,
        feed_server,
        f'chat: "{json_sink.url()}"\n',
        """\
        - {name: gempa, query: gempa, notify: chat}
        - {name: bali, query: karangasem, notify: chat}
        """,
    )
    serve(feed_server, ["Gempa guncang Karangasem"], START)
    with Store(config.state_path) as store:
        cycle(Monitor(config, store, clock=Clock(START)))
        assert len(store.sent_alerts()) == 2
    [message] = json_sink.messages
    assert message.title == "[gempa, bali] Gempa guncang Karangasem"


class _HeldSink:
    """An HTTP server that holds every request until the test releases it."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.arrived = threading.Event()
        held = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                held.arrived.set()
                held.release.wait(30)
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self) -> str:
        return f"json://127.0.0.1:{self.server.server_address[1]}/held"

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def test_a_hanging_channel_does_not_hold_up_another(
    tmp_path: Path, feed_server: FeedServer, json_sink: JsonSink
) -> None:
    held = _HeldSink()
    try:
        config = setup(
            tmp_path,
            feed_server,
            f'slow: "{held.url()}"\nfast: "{json_sink.url()}"\n',
            "- {name: gempa, query: gempa, notify: [slow, fast]}\n",
        )
        serve(feed_server, ["Gempa guncang Karangasem"], START)
        with Store(config.state_path) as store:
            monitor = Monitor(config, store, clock=Clock(START))
            cycle_done = threading.Event()

            def run_cycle() -> None:
                cycle(monitor)
                cycle_done.set()

            worker = threading.Thread(target=run_cycle)
            worker.start()
            assert held.arrived.wait(20)  # the slow channel's send is in progress…
            json_sink.wait_for(1)  # …and the other channel's alert arrived anyway,
            with Store(config.state_path, readonly=True) as view:
                # …while the slow one was still being tried (nothing recorded for it yet).
                slow = [a for a in view.pending_alerts(None) if a.channel == "slow"]
                assert [a.attempts for a in slow] == [0]
            assert not cycle_done.is_set()
            held.release.set()
            worker.join(30)
            assert cycle_done.is_set()
    finally:
        held.close()


def test_an_outage_is_retried_in_order_without_delaying_the_other_channel(
    tmp_path: Path, feed_server: FeedServer, json_sink: JsonSink, second_sink: JsonSink
) -> None:
    clock = Clock(START)
    config = setup(
        tmp_path,
        feed_server,
        f'down: "{json_sink.url()}"\nup: "{second_sink.url()}"\n',
        "- {name: gempa, query: gempa, notify: [down, up]}\n",
    )
    json_sink.status = 503
    with Store(config.state_path) as store:
        monitor = Monitor(config, store, clock=clock)
        sent_up: list[int] = []
        for n in range(3):  # three alerts, ten minutes apart, during the outage
            clock.now = START + timedelta(minutes=10 * n)
            serve(
                feed_server, [f"Gempa ke-{m} guncang Karangasem" for m in range(n + 1)], clock.now
            )
            asyncio.run(_poll(monitor))
            asyncio.run(monitor.delivery.deliver_pending())
            sent_up.append(len(second_sink.messages))
        assert sent_up == [1, 2, 3]  # the working channel got each alert in its own pass
        # An hour of 503s, with the daemon's passes every 30 s: retried, never given up.
        t = clock.now
        while t < START + timedelta(minutes=60):
            t += timedelta(seconds=30)
            step(monitor, clock, t)
        assert store.pending_count() == 3
        failures = len(json_sink.messages)
        json_sink.status = 200
        # Past the longest wait: retry.max (15 min) at its most jittered (+20 %), 18 min.
        from monitor.config import RetrySettings

        retry = RetrySettings()  # the channel's, all defaults
        t += retry.max * (1 + retry.jitter) + timedelta(seconds=1)
        for _ in range(3):
            step(monitor, clock, t)
        assert store.pending_count() == 0
    delivered = [m.title for m in json_sink.messages[failures:]]
    assert delivered == [
        "[gempa] Gempa ke-0 guncang Karangasem",
        "[gempa] Gempa ke-1 guncang Karangasem",
        "[gempa] Gempa ke-2 guncang Karangasem",
    ]  # once each, in order
    assert len(second_sink.messages) == 3  # and the other channel never saw a repeat


async def _poll(monitor: Monitor) -> None:
    async with monitor.fetcher() as fetcher:
        for feed in monitor.config.enabled_feeds():
            await monitor.poller.guarded_poll(fetcher, feed, dry_run=False)


@sqlite_only
def test_a_dead_letter_is_never_silent(
    tmp_path: Path, feed_server: FeedServer, json_sink: JsonSink, capsys: pytest.CaptureFixture[str]
) -> None:
    clock = Clock(START)
    dead = f"json://127.0.0.1:{closed_port()}/x"
    config = setup(
        tmp_path,
        feed_server,
        f'broken: {{urls: "{dead}", retry: {{lifetime: 1h}}}}\nops: "{json_sink.url()}"\n',
        "- {name: gempa, query: gempa, notify: broken}\n",
        extra="ops: ops\n",
    )
    serve(feed_server, ["Gempa guncang Karangasem"], START)
    with Store(config.state_path) as store:
        monitor = Monitor(config, store, clock=clock)
        cycle(monitor)
        step(monitor, clock, START + timedelta(hours=2))  # past its lifetime: given up
        step(monitor, clock, START + timedelta(hours=2, seconds=1))  # the ops notice goes out
        assert store.outbox_summary()["dead"] == 1
    notices = [m for m in json_sink.messages if "given up" in m.title]
    assert len(notices) == 1
    assert "'broken'" in notices[0].title and "Gempa guncang Karangasem" in notices[0].title
    assert "reason:" in notices[0].message
    # The queue, for a person: list, retry, drop, and status shows it.
    capsys.readouterr()
    cfg = str(config.path)
    assert main(["-c", cfg, "outbox", "list", "--dead", "--json"]) == 0
    [record] = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert record["channel"] == "broken" and record["dead_at"] and record["last_error"]
    assert main(["-c", cfg, "status", "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["outbox"]["dead"] == 1 and status["outbox"]["pending"] == 0
    assert main(["-c", cfg, "outbox", "retry", str(record["id"])]) == 0
    assert "queued again: 1" in capsys.readouterr().out
    assert main(["-c", cfg, "outbox", "list", "--json"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 1  # waiting again, with a fresh lifetime
    assert main(["-c", cfg, "outbox", "drop", str(record["id"])]) == 0
    assert main(["-c", cfg, "outbox", "drop", str(record["id"])]) == 1  # already gone
    capsys.readouterr()
    assert main(["-c", cfg, "outbox", "list", "--json"]) == 0
    assert capsys.readouterr().out.count("\n") == 0


def test_a_failing_channel_is_tried_once_per_pass_not_once_per_alert(
    tmp_path: Path, feed_server: FeedServer, json_sink: JsonSink
) -> None:
    config = setup(
        tmp_path,
        feed_server,
        f'chat: "{json_sink.url()}"\n',
        "- {name: gempa, query: gempa, notify: chat}\n",
    )
    json_sink.status = 503
    serve(feed_server, [f"Gempa ke-{n} guncang Karangasem" for n in range(3)], START)
    with Store(config.state_path) as store:
        cycle(Monitor(config, store, clock=Clock(START)))
        assert store.pending_count() == 3
    assert len(json_sink.messages) == 1  # the first failed: the others wait for its retry


def test_a_digest_names_every_outlet_that_carried_the_story(
    tmp_path: Path, feed_server: FeedServer, json_sink: JsonSink
) -> None:
    from tests import stories_seed as seed

    clock = Clock(START)
    urls = seed.serve_all(feed_server, START)
    cfg = tmp_path / "monitor.yaml"
    cfg.write_text(
        textwrap.dedent(
            f"""\
            state: state.db
            timezone: Asia/Makassar
            fetch: {{allow_private: ["127.0.0.1:{feed_server.port}"]}}
            channels:
              chat: {{urls: "{json_sink.url()}", deliver: {{every: 1h}}}}
            rules:
              - {{name: gempa, query: '{seed.RULE_QUERY}', notify: chat}}
            feeds:
            """
        )
        + "".join(f'  - {{name: {n}, url: "{u}"}}\n' for n, u in urls.items())
    )
    config = load_config(cfg)
    with Store(config.state_path) as store:
        monitor = Monitor(config, store, clock=clock)
        cycle(monitor)
        assert step(monitor, clock, START + timedelta(minutes=50)) == 2  # 10:00: the digest
    [digest] = json_sink.messages
    m51 = digest.message.split("M5,1")[1].split("M4,2")[0]
    assert "also: " in m51 and "beritabali.com" in m51


def test_a_failed_pass_says_when_to_come_back(
    tmp_path: Path, feed_server: FeedServer, json_sink: JsonSink
) -> None:
    """The daemon sleeps until the next thing is due: after a failure, that is its retry."""
    clock = Clock(START)
    config = setup(
        tmp_path,
        feed_server,
        f'chat: {{urls: "{json_sink.url()}", retry: {{first: 5s, jitter: 0}}}}\n',
        "- {name: gempa, query: gempa, notify: chat}\n",
    )
    json_sink.status = 503
    serve(feed_server, ["Gempa guncang Karangasem"], START)
    with Store(config.state_path) as store:
        monitor = Monitor(config, store, clock=clock)
        asyncio.run(_poll(monitor))
        report = asyncio.run(monitor.delivery.run_pass())
        assert report.failed == 1
        assert report.next_due == START + timedelta(seconds=5)
