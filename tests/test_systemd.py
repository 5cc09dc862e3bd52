"""The operator's view, made true: the sd_notify contract on a real datagram socket, a watchdog
that stops when the loop freezes, reloads that apply everything (or say what they cannot) and
keep the old rules on any broken edit, watched watchlists, a SIGHUP storm, and `status`."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import textwrap
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from monitor.cli import main
from monitor.config import Config, load_config
from monitor.daemon import Daemon, monotonic_usec
from monitor.service import Monitor
from monitor.store import SqliteStore as Store
from tests.feeds import Entry, rss
from tests.feedserver import FeedServer, Route, SeenRequest
from tests.sinks import JsonSink
from tests.test_cli import EventReader, start_daemon


class NotifySocket:
    """A datagram socket standing in for systemd's NOTIFY_SOCKET; records what arrives."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.2)
        self.got: list[tuple[float, str]] = []
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(65536).decode()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._cond:
                self.got.append((time.monotonic(), data))
                self._cond.notify_all()

    def wait_for(self, prefix: str, count: int = 1, timeout: float = 20) -> list[str]:
        with self._cond:
            ok = self._cond.wait_for(
                lambda: len([d for _, d in self.got if d.startswith(prefix)]) >= count, timeout
            )
            assert ok, f"no {count} x {prefix!r} in {[d for _, d in self.got]}"
            return [d for _, d in self.got if d.startswith(prefix)]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


def setup(tmp: Path, server: FeedServer, sink: JsonSink, query: str = "gempa") -> Path:
    server.route("/news.xml", body=rss([Entry("Gempa guncang Karangasem", "https://e/1")]))
    (tmp / "watchlists").mkdir(exist_ok=True)
    write_rules(tmp, f"  - {{name: r1, query: '{query}', notify: chat}}\n")
    cfg = tmp / "monitor.yaml"
    cfg.write_text(
        textwrap.dedent(
            f"""\
            state: state/monitor.db
            fetch: {{allow_private: ["127.0.0.1:{server.port}"], concurrency: 5}}
            channels: {{chat: "{sink.url()}"}}
            feeds:
              - {{name: news, url: "{server.url("/news.xml")}"}}
            watchlists: ["watchlists/*.yaml"]
            """
        )
    )
    return cfg


def write_rules(tmp: Path, rules: str) -> None:
    (tmp / "watchlists" / "w.yaml").write_text("rules:\n" + rules)


@pytest.fixture
def notify(tmp_path: Path) -> object:
    ns = NotifySocket(tmp_path / "notify.sock")
    yield ns
    ns.close()


def test_the_sd_notify_contract(
    tmp_path: Path, feed_server: FeedServer, json_sink: JsonSink, notify: NotifySocket
) -> None:
    cfg = setup(tmp_path, feed_server, json_sink)
    env = {**os.environ, "NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": "1000000"}
    proc = start_daemon(cfg, env)
    try:
        reader = EventReader(proc)
        [ready] = notify.wait_for("READY=1")
        assert "STATUS=" in ready and "1 rules" in ready and "feeds ok" in ready
        notify.wait_for("WATCHDOG=1", count=3)  # every 0.5 s: half of WATCHDOG_USEC
        before = monotonic_usec()
        proc.send_signal(signal.SIGHUP)
        reader.wait_for("config_reloaded")
        [reloading] = notify.wait_for("RELOADING=1")
        usec = int(reloading.split("MONOTONIC_USEC=")[1].split("\n")[0])
        assert before <= usec <= monotonic_usec()  # CLOCK_MONOTONIC, as systemd compares it
        readies = notify.wait_for("READY=1", count=2)
        assert "reloaded" in readies[1]
        order = [d.split("=")[0] for _, d in notify.got if d.startswith(("RELOADING", "READY"))]
        assert order == ["READY", "RELOADING", "READY"]
        proc.send_signal(signal.SIGTERM)
        notify.wait_for("STOPPING=1")
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()


def test_a_frozen_event_loop_gets_no_watchdog_pings(
    tmp_path: Path,
    feed_server: FeedServer,
    json_sink: JsonSink,
    notify: NotifySocket,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Block the daemon's own event loop: while it is frozen, no WATCHDOG=1 goes out."""
    from datetime import timedelta

    monkeypatch.setenv("NOTIFY_SOCKET", notify.path)
    monkeypatch.setenv("WATCHDOG_USEC", "200000")  # a ping every 0.1 s while healthy
    config = load_config(setup(tmp_path, feed_server, json_sink))
    frozen: dict[str, float] = {}

    async def scenario(daemon: Daemon) -> None:
        loop = asyncio.get_running_loop()
        await asyncio.to_thread(notify.wait_for, "WATCHDOG=1", 3)

        def freeze() -> None:
            frozen["start"] = time.monotonic()
            time.sleep(1.5)  # the loop itself is blocked: this is the frozen daemon
            frozen["end"] = time.monotonic()

        loop.call_soon(freeze)
        await asyncio.sleep(0)
        count = len([d for _, d in notify.got if d == "WATCHDOG=1"])
        await asyncio.to_thread(notify.wait_for, "WATCHDOG=1", count + 3)  # pings resume
        daemon.stop.set()

    async def run() -> None:
        with Store(config.state_path) as store:
            daemon = Daemon(Monitor(config, store), tick=timedelta(seconds=0.2))
            await asyncio.gather(daemon.run(), scenario(daemon))

    asyncio.run(run())
    inside = [t for t, d in notify.got if d == "WATCHDOG=1" and frozen["start"] < t < frozen["end"]]
    assert inside == []
    assert any(t > frozen["end"] for t, d in notify.got if d == "WATCHDOG=1")


BROKEN = {
    "syntax error": "rules:\n  - {name: r1, query: gempa\n",
    "unknown key": "rules:\n  - {name: r1, query: gempa, notify: chat, colour: red}\n",
    "duplicate key": "rules:\n  - {name: r1, query: gempa, query: x, notify: chat}\n",
    "bad query": "rules:\n  - {name: r1, query: 'gempa AND', notify: chat}\n",
    "unknown channel": "rules:\n  - {name: r1, query: gempa, notify: pager}\n",
    "failing example": (
        "rules:\n  - name: r1\n    query: gempa\n    notify: chat\n"
        "    examples: {match: ['banjir di Jakarta']}\n"
    ),
    "10 MiB file": "rules: []\n# " + "x" * (10 * 1024 * 1024) + "\n",
}


def test_each_broken_edit_keeps_the_old_rules_matching(
    tmp_path: Path, feed_server: FeedServer, json_sink: JsonSink
) -> None:
    """Each kind of broken watchlist is refused with its FILE:LINE:COL, and the old rule goes on
    matching: the feed's next poll (its interval passed on the injected clock) alerts a new item.
    (A daemon process logging ``config_reload_failed`` is test_cli's.)"""
    from datetime import timedelta

    from monitor.daemon import load_for_reload
    from monitor.errors import ConfigError

    cfg = setup(tmp_path, feed_server, json_sink)
    cfg.write_text(cfg.read_text().replace("url: ", "interval: 10s, url: "))
    wl = tmp_path / "watchlists" / "w.yaml"
    config = load_config(cfg)
    now = [datetime.now(UTC)]
    load = load_for_reload(str(cfg))
    errors: list[str] = []

    def reload() -> Config:
        try:
            return load()
        except ConfigError as e:
            errors.append(str(e))
            raise

    async def run() -> None:
        with Store(config.state_path) as store:
            monitor = Monitor(config, store, clock=lambda: now[0])
            daemon = Daemon(monitor, reload_config=reload, tick=timedelta(seconds=0.05))

            async def scenario() -> None:
                await asyncio.to_thread(json_sink.wait_for, 1)
                for kind, text in BROKEN.items():
                    before = len(errors)
                    wl.write_text(text)
                    daemon._request_reload()  # what SIGHUP does (the file watcher may add one)
                    assert daemon._reloading is not None
                    await daemon._reloading
                    assert len(errors) > before, kind
                    assert str(wl) in errors[-1], (kind, errors[-1])
                    if kind != "10 MiB file":
                        after = errors[-1].split(f"{wl}:")[1]
                        assert after[0].isdigit(), (kind, errors[-1])
                assert daemon.monitor is monitor  # the running config stayed
                feed_server.route(
                    "/news.xml",
                    body=rss([Entry("Gempa susulan guncang Karangasem", "https://e/2")]),
                )
                now[0] += timedelta(seconds=12)  # past the feed's interval (10 s, +10% jitter)
                await asyncio.to_thread(json_sink.wait_for, 2)
                daemon.stop.set()

            await asyncio.gather(daemon.run(), scenario())

    asyncio.run(run())
    assert [m.title for m in json_sink.messages] == [
        "[r1] Gempa guncang Karangasem",
        "[r1] Gempa susulan guncang Karangasem",
    ]


def test_an_edited_watchlist_is_reloaded_without_a_signal(
    tmp_path: Path, feed_server: FeedServer, json_sink: JsonSink
) -> None:
    cfg = setup(tmp_path, feed_server, json_sink, query="banjir")
    proc = start_daemon(cfg)
    try:
        reader = EventReader(proc)
        reader.wait_for("daemon_started")
        reader.wait_for("feed_fetched")
        assert json_sink.messages == []
        write_rules(tmp_path, "  - {name: r2, query: gempa, notify: chat}\n")
        assert reader.wait_for("config_reloaded")["rules"] == 1
        json_sink.wait_for(1)  # the new rule saw the recent item at once
        write_rules(tmp_path, "  - {name: r3, query: 'gempa AND', notify: chat}\n")  # broken
        failed = reader.wait_for("config_reload_failed")
        assert "w.yaml:2:" in str(failed["error"])  # FILE:LINE:COL
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()


def test_a_sighup_storm_leaves_one_consistent_config(
    tmp_path: Path, feed_server: FeedServer, json_sink: JsonSink
) -> None:
    cfg = setup(tmp_path, feed_server, json_sink, query="banjir")
    proc = start_daemon(cfg)
    try:
        reader = EventReader(proc)
        reader.wait_for("daemon_started")
        for n in range(50):
            rules = "".join(f"  - {{name: r{k}, query: banjir, notify: chat}}\n" for k in range(n))
            write_rules(tmp_path, rules + "  - {name: last, query: gempa, notify: chat}\n")
            proc.send_signal(signal.SIGHUP)
        # The storm coalesces: far fewer reloads than signals, the last on the last file.
        json_sink.wait_for(1)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    reloads = [e for e in reader.events if e["event"] == "config_reloaded"]
    assert 1 <= len(reloads) < 50
    assert reloads[-1]["rules"] == 50  # r0..r48 and last: the final edit, whole
    assert [m.title for m in json_sink.messages] == ["[last] Gempa guncang Karangasem"]


def test_reload_applies_fetch_settings_and_names_what_needs_a_restart(
    tmp_path: Path, feed_server: FeedServer, json_sink: JsonSink, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = setup(tmp_path, feed_server, json_sink)
    proc = start_daemon(cfg)
    try:
        reader = EventReader(proc)
        json_sink.wait_for(1)
        text = cfg.read_text()
        cfg.write_text(text.replace("concurrency: 5", "concurrency: 7, per_host: 2"))
        proc.send_signal(signal.SIGHUP)
        assert reader.wait_for("config_reloaded")["fetch_reapplied"] is True
        cfg.write_text(text.replace("state/monitor.db", "state/other.db"))
        proc.send_signal(signal.SIGHUP)
        partial = reader.wait_for("config_reload_partial")
        assert partial["needs_restart"] == ["state"]
        # status: the daemon, when its config was loaded, and the last reload's result.
        assert main(["-c", str(cfg.with_name("monitor.yaml")), "status", "--json"]) in (0, 1)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    cfg.write_text(text)
    capsys.readouterr()
    main(["-c", str(cfg), "status", "--json"])
    daemon = json.loads(capsys.readouterr().out)["daemon"]
    assert daemon["pid"] == proc.pid and daemon["running"] is False
    assert daemon["started_at"] and daemon["config_loaded_at"]
    assert daemon["last_reload"].startswith("partial: restart needed for state")


def test_a_stalled_scheduler_stops_the_watchdog(
    tmp_path: Path,
    feed_server: FeedServer,
    json_sink: JsonSink,
    notify: NotifySocket,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The loop runs but the scheduler's ticks stop: pings stop too, so systemd restarts it."""
    from datetime import timedelta

    monkeypatch.setenv("NOTIFY_SOCKET", notify.path)
    monkeypatch.setenv("WATCHDOG_USEC", "200000")
    config = load_config(setup(tmp_path, feed_server, json_sink))
    stalled = threading.Event()

    class Stalling(Daemon):
        ticks = 0

        async def _tick(self) -> None:
            self.ticks += 1
            if self.ticks <= 3:
                await super()._tick()
            else:
                stalled.set()  # from now on no tick gets through: the scheduler is stuck

    async def scenario(daemon: Daemon) -> None:
        await asyncio.to_thread(stalled.wait, 20)
        mark = time.monotonic()
        await asyncio.sleep(1.0)  # the loop is alive: heartbeats run, but find no progress
        daemon.stop.set()
        late = [t for t, d in notify.got if d == "WATCHDOG=1" and t > mark + 0.3 * 3]
        assert late == []

    async def run() -> None:
        with Store(config.state_path) as store:
            daemon = Stalling(Monitor(config, store), tick=timedelta(seconds=0.1))
            await asyncio.gather(daemon.run(), scenario(daemon))

    asyncio.run(run())
    assert any(d == "WATCHDOG=1" for _, d in notify.got)  # it pinged while healthy


def test_polls_cancelled_before_they_began_leave_their_feeds_free(
    tmp_path: Path, feed_server: FeedServer, json_sink: JsonSink, open_state: Callable[..., Any]
) -> None:
    """A reload whose config finished loading in the same loop pass as a tick's store call
    cancels the polls that tick has just created before any of them ran, and a task cancelled
    before its first step runs none of its body. Its feed must still be polled at a later tick
    (it stayed "in flight" forever: the daemon polled nothing after a reload in its first
    milliseconds) and, on a shared state, its claim given back now, not when the lease
    (100 s here) runs out."""
    from datetime import timedelta

    config = load_config(setup(tmp_path, feed_server, json_sink))
    cancelled: list[asyncio.Task[object]] = []

    class Racing(Daemon):
        async def _tick_once(self) -> None:
            await super()._tick_once()
            if not cancelled and self._in_flight:
                # What that reload does, here before the new polls' first step.
                cancelled.extend(self._in_flight.values())
                for task in cancelled:
                    task.cancel()

    async def run() -> None:
        store = open_state()
        daemon = Racing(Monitor(config, store), tick=timedelta(seconds=0.1))

        async def scenario() -> None:
            got = await asyncio.to_thread(json_sink.wait_until, lambda got: len(got) >= 1, 20)
            daemon.stop.set()
            assert got, "the feed whose first poll was cancelled before it began was not polled"

        await asyncio.gather(daemon.run(), scenario())

    asyncio.run(run())
    assert len(cancelled) == 1 and cancelled[0].cancelled()
    assert [m.title for m in json_sink.messages] == ["[r1] Gempa guncang Karangasem"]
    assert len(feed_server.requests) == 1  # the cancelled poll never fetched


def test_a_tick_during_a_reload_polls_the_new_config_not_the_old(
    tmp_path: Path, feed_server: FeedServer, json_sink: JsonSink, open_state: Callable[..., Any]
) -> None:
    """A tick that starts while a reload is applying waits for it: it must not read the old
    config's feeds, wait on the store, and start their polls after the reload stopped the old
    config's polls. Here the feed moved to a new URL, and it is due the moment the tick starts:
    the old URL is never fetched again, the new one is."""
    from datetime import timedelta

    cfg = setup(tmp_path, feed_server, json_sink)
    cfg.write_text(cfg.read_text().replace("url: ", "interval: 10s, url: "))
    feed_server.route(
        "/moved.xml", body=rss([Entry("Gempa susulan guncang Bangli", "https://e/2")])
    )
    config = load_config(cfg)
    now = [datetime.now(UTC)]
    ticks: list[asyncio.Task[None]] = []

    async def run() -> None:
        loop = asyncio.get_running_loop()
        monitor = Monitor(config, open_state(), clock=lambda: now[0])
        daemon = Daemon(
            monitor, reload_config=lambda: load_config(cfg), tick=timedelta(seconds=0.05)
        )
        quiesce = monitor.poller.quiesce

        async def tick_now() -> None:
            ticks.append(asyncio.create_task(daemon._tick()))
            await asyncio.sleep(0)  # its first step: the tick lock, or a store call queued here

        def quiesce_with_a_tick() -> None:
            # The reload's last step before the new monitor, in the store's thread: the feed
            # falls due (12 s: its 10 s interval and 10% jitter) and a tick starts.
            now[0] += timedelta(seconds=12)
            asyncio.run_coroutine_threadsafe(tick_now(), loop).result(timeout=10)
            quiesce()

        monitor.poller.quiesce = quiesce_with_a_tick  # type: ignore[method-assign]

        async def scenario() -> None:
            await asyncio.to_thread(json_sink.wait_for, 1)
            cfg.write_text(cfg.read_text().replace("/news.xml", "/moved.xml"))
            daemon._request_reload()
            assert daemon._reloading is not None
            await daemon._reloading
            moved = await asyncio.to_thread(json_sink.wait_until, lambda got: len(got) >= 2, 10)
            daemon.stop.set()
            assert moved, "the feed's new URL was not polled"

        await asyncio.gather(daemon.run(), scenario())

    asyncio.run(run())
    assert len(ticks) == 1 and ticks[0].done()
    assert [r.path for r in feed_server.requests] == ["/news.xml", "/moved.xml"]
    assert [m.title for m in json_sink.messages] == [
        "[r1] Gempa guncang Karangasem",
        "[r1] Gempa susulan guncang Bangli",
    ]


def test_alerts_of_a_poll_cancelled_by_a_reload_mid_record_go_out_at_once(
    tmp_path: Path, feed_server: FeedServer, json_sink: JsonSink
) -> None:
    """A reload cancels a poll whose record is already under way in the store's thread: the
    record completes (its alert is queued) but the poll never reaches its wake-up of delivery.
    The reload wakes it instead, so the alert goes out now, not at the minute's idle recheck."""
    cfg = setup(tmp_path, feed_server, json_sink)
    config = load_config(cfg)

    async def run() -> None:
        loop = asyncio.get_running_loop()
        with Store(config.state_path) as store:
            daemon = Daemon(Monitor(config, store), reload_config=lambda: load_config(cfg))
            real = store.record_poll
            calls = 0

            async def reload_now() -> None:
                # From inside the record: cancel the poll by a reload, and wait until it is.
                poll = daemon._in_flight["news"]
                daemon._request_reload()
                await asyncio.wait([poll], timeout=10)
                assert poll.cancelled()

            def record_then_reload(rec: object) -> None:
                nonlocal calls
                real(rec)  # type: ignore[arg-type]
                calls += 1
                if calls == 1:
                    asyncio.run_coroutine_threadsafe(reload_now(), loop).result(timeout=10)

            store.record_poll = record_then_reload  # type: ignore[method-assign]

            async def scenario() -> None:
                await asyncio.to_thread(json_sink.wait_for, 1)
                daemon.stop.set()

            await asyncio.gather(daemon.run(), scenario())

    asyncio.run(run())
    assert [m.title for m in json_sink.messages] == ["[r1] Gempa guncang Karangasem"]


def test_a_reload_during_a_burst_of_polls_applies_between_polls(
    tmp_path: Path, feed_server: FeedServer, json_sink: JsonSink
) -> None:
    """Polls are in flight (slow servers) when a new rule arrives: the reload cancels them
    (they record nothing) and every feed is then polled, recorded and matched under the new
    rules only: one alert per item and rule, no feed left on the old rules."""
    from monitor.poll import rules_fingerprint

    n = 12
    fetching = threading.Event()  # the first poll's request has reached the server

    reloaded = threading.Event()  # from now on the feeds answer at once

    def slow(body: bytes) -> Callable[[SeenRequest], Route]:
        def answer(_: SeenRequest) -> Route:
            fetching.set()
            if reloaded.is_set():  # a drip would only slow the test down now
                return Route(body=body)
            return Route(body=body, drip_interval=0.005)  # seconds each

        return answer

    for k in range(n):
        body = rss([Entry(f"Gempa dan banjir di desa {k}", f"https://e/{k}")])
        feed_server.route(f"/f{k}.xml", handler=slow(body))
    (tmp_path / "watchlists").mkdir()
    write_rules(tmp_path, "  - {name: quake, query: gempa, notify: chat}\n")
    feeds = "".join(
        f'  - {{name: f{k}, url: "{feed_server.url(f"/f{k}.xml")}"}}\n' for k in range(n)
    )
    cfg = tmp_path / "monitor.yaml"
    cfg.write_text(
        f"""\
state: state/monitor.db
fetch: {{allow_private: ["127.0.0.1:{feed_server.port}"], timeout: 30s}}
channels: {{chat: {{urls: "{json_sink.url()}", burst: 100}}}}
watchlists: ["watchlists/*.yaml"]
feeds:
"""
        + feeds
    )
    proc = start_daemon(cfg)
    try:
        reader = EventReader(proc)
        reader.wait_for("daemon_started")
        assert fetching.wait(30)
        write_rules(
            tmp_path,
            "  - {name: quake, query: gempa, notify: chat}\n"
            "  - {name: flood, query: banjir, notify: chat}\n",
        )
        proc.send_signal(signal.SIGHUP)  # while the first polls are still dripping in
        reader.wait_for("config_reloaded")
        reloaded.set()
        if not json_sink.wait_until(lambda got: len(got) >= n, 60):  # one per item, both rules
            pytest.fail(f"{len(json_sink.messages)} of {n} messages; the daemon: {reader.events}")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    titles = sorted(m.title for m in json_sink.messages)
    assert len(titles) == len(set(titles)) == n
    assert all(t.startswith(("[quake, flood] ", "[flood, quake] ")) for t in titles), titles
    new = rules_fingerprint(load_config(cfg))
    with Store(tmp_path / "state" / "monitor.db", readonly=True) as store:
        assert {s.rules_fingerprint for s in store.feed_states()} == {new}
        sent = store.sent_alerts()
    assert len(sent) == len(set(sent)) == 2 * n  # once per item and rule
