"""The metrics listener, read by prometheus-client's own parser; /healthz; and no configured
secret anywhere an operator looks: logs at every level, status, history, outbox, /metrics."""

from __future__ import annotations

import json
import signal
import textwrap
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from monitor.cli import main
from monitor.config import load_config
from monitor.errors import ConfigError
from tests.feeds import Entry, rss
from tests.feedserver import FeedServer, closed_port
from tests.sinks import JsonSink
from tests.test_cli import EventReader, start_daemon

SECRET = "s3cr3t-T0KEN-value"  # as an apprise URL password and as a ${VAR}
ENV_SECRET = "env-secret-9f8e7d"


def setup(tmp: Path, server: FeedServer, sink: JsonSink, port: int) -> Path:
    server.route(
        "/news.xml",
        body=rss(
            [
                Entry("Gempa guncang Karangasem", "https://e/1"),
                Entry("Gempa susulan guncang Karangasem", "https://e/2"),
                # A generic title: story dedup logs at debug why it was not compared.
                Entry("Live updates", "https://e/3", description="gempa di Bali"),
            ]
        ),
    )
    cfg = tmp / "monitor.yaml"
    cfg.write_text(
        textwrap.dedent(
            f"""\
            state: state.db
            log_level: debug
            metrics: {{listen: "127.0.0.1:{port}"}}
            fetch: {{allow_private: ["127.0.0.1:{server.port}"]}}
            channels:
              chat:
                urls: "{sink.url(userinfo=f"user:{SECRET}")}?token=${{CHAT_TOKEN}}"
                retry: {{first: 1s}}
            feeds:
              - {{name: news, url: "{server.url("/news.xml")}"}}
            rules:
              - {{name: gempa, query: gempa, notify: chat}}
            """
        )
    )
    return cfg


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_metrics_and_healthz_and_no_secret_anywhere(
    tmp_path: Path,
    feed_server: FeedServer,
    json_sink: JsonSink,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import os

    port = closed_port()
    cfg = setup(tmp_path, feed_server, json_sink, port)
    env = {**os.environ, "CHAT_TOKEN": ENV_SECRET}
    json_sink.status = 500  # the first tries fail: their log lines name the (redacted) URL
    proc = start_daemon(cfg, env)
    try:
        reader = EventReader(proc)
        reader.wait_for("metrics_listening")
        reader.wait_for("alert_failed")
        json_sink.status = 200
        reader.wait_for("alert_sent", count=3, timeout=20)  # the retry is due in 1 s
        status, scraped = get(f"http://127.0.0.1:{port}/metrics")
        assert status == 200
        families = {f.name: f for f in text_string_to_metric_families(scraped)}
        samples = {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for f in families.values()
            for s in f.samples
        }
        assert samples[("news_monitor_polls_total", (("outcome", "ok"),))] >= 1
        assert samples[("news_monitor_items_parsed_total", ())] >= 2
        assert samples[("news_monitor_hits_total", (("rule", "gempa"),))] == 3
        assert samples[("news_monitor_alerts_total", (("channel", "chat"), ("result", "sent")))]
        assert samples[("news_monitor_alerts_total", (("channel", "chat"), ("result", "failed")))]
        assert samples[("news_monitor_queue_depth", ())] == 0
        assert samples[("news_monitor_dead_letters", ())] == 0
        assert samples[("news_monitor_feed_last_success_timestamp_seconds", (("feed", "news"),))]
        assert "news_monitor_poll_duration_seconds" in families
        assert "news_monitor_reload_failures" in families
        assert "news_monitor_dedup_suppressed" in families
        status, health = get(f"http://127.0.0.1:{port}/healthz")
        assert status == 200 and json.loads(health)["status"] == "ok"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    logs = "\n".join(json.dumps(e) for e in reader.events)
    assert "127.0.0.1" in logs and "alert_failed" in logs  # the URL's lines are there…
    assert any(e.get("level") == "debug" for e in reader.events)  # every level was on
    # The CLI's views, with the same environment.
    monkeypatch.setenv("CHAT_TOKEN", ENV_SECRET)
    capsys.readouterr()
    for args in (["status"], ["status", "--json"], ["history", "--json"], ["outbox", "list"]):
        main(["-c", str(cfg), "--log-level", "debug", *args])
    seen = capsys.readouterr()
    for where, text in (("logs", logs), ("cli", seen.out + seen.err), ("metrics", scraped)):
        assert SECRET not in text, where
        assert ENV_SECRET not in text, where


def test_metrics_listen_only_on_loopback(tmp_path: Path) -> None:
    cfg = tmp_path / "m.yaml"
    base = 'channels: {c: "json://127.0.0.1:9/x"}\nrules:\n  - {name: r, query: q, notify: c}\n'
    cfg.write_text(base + 'metrics: {listen: "0.0.0.0:9464"}\n')
    with pytest.raises(ConfigError) as info:
        load_config(cfg, env={})
    assert "m.yaml:4:19" in str(info.value.errors[0])  # type: ignore[attr-defined]
    assert "must listen on loopback" in str(info.value.errors[0])  # type: ignore[attr-defined]
    cfg.write_text(base + "metrics: true\n")
    metrics = load_config(cfg, env={}).metrics
    assert metrics is not None and (metrics.host, metrics.port) == ("127.0.0.1", 9464)
