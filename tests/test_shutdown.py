"""Shutdown is bounded: a delivery stuck on a hanging channel never holds the daemon past its
grace, a second SIGTERM stops it at once, and the stuck alert stays queued (nothing is lost)."""

from __future__ import annotations

import signal
import textwrap
from pathlib import Path

from monitor.store import SqliteStore as Store
from tests.feeds import Entry, rss
from tests.feedserver import FeedServer
from tests.test_cli import EventReader, start_daemon
from tests.test_delivery_people import _HeldSink


def config(tmp: Path, server: FeedServer, held: _HeldSink, grace: str) -> Path:
    server.route("/news.xml", body=rss([Entry("Gempa guncang Karangasem", "https://e/1")]))
    cfg = tmp / "monitor.yaml"
    # rto=60: apprise waits a minute for the hanging server, far past the grace.
    cfg.write_text(
        textwrap.dedent(
            f"""\
            state: state.db
            fetch: {{allow_private: ["127.0.0.1:{server.port}"]}}
            delivery: {{shutdown_grace: {grace}}}
            channels:
              chat: {{urls: "{held.url()}?rto=60", timeout: 90s}}
            feeds:
              - {{name: news, url: "{server.url("/news.xml")}"}}
            rules:
              - {{name: gempa, query: gempa, notify: chat}}
            """
        )
    )
    return cfg


def pending(cfg: Path) -> int:
    with Store(cfg.parent / "state.db", readonly=True) as store:
        return store.pending_count()


def test_sigterm_gives_a_stuck_delivery_its_grace_then_exits_keeping_the_alert(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    held = _HeldSink()
    try:
        cfg = config(tmp_path, feed_server, held, "1s")
        proc = start_daemon(cfg)
        try:
            reader = EventReader(proc)
            assert held.arrived.wait(30)  # the alert's send hangs
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=20) == 0  # a minute's hang did not hold it up
        finally:
            if proc.poll() is None:
                proc.kill()
        assert reader.wait_for("daemon_stopped")["pending_alerts"] == 1
        assert pending(cfg) == 1  # queued for the next start: at most a duplicate, no loss
    finally:
        held.close()


def test_a_second_sigterm_stops_at_once(tmp_path: Path, feed_server: FeedServer) -> None:
    held = _HeldSink()
    try:
        cfg = config(tmp_path, feed_server, held, "25s")
        proc = start_daemon(cfg)
        try:
            reader = EventReader(proc)
            assert held.arrived.wait(30)
            proc.send_signal(signal.SIGTERM)
            reader.wait_for("daemon_stopping")
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=15) == 0  # well before the 25 s grace
        finally:
            if proc.poll() is None:
                proc.kill()
        assert reader.wait_for("daemon_stop_forced")
        assert pending(cfg) == 1
    finally:
        held.close()
