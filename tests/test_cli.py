"""End to end: the real command against a loopback feed server, an HTTP sink (apprise json://)
and an SMTP server (apprise mailto://). No mocks: only the internet is missing."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import textwrap
from datetime import timedelta
from pathlib import Path

import pytest

from monitor.cli import main
from monitor.store import StateLock
from tests.feeds import Entry, rss
from tests.feedserver import FeedServer, closed_port
from tests.sinks import JsonSink, SmtpServer

KP = "https://news.example/kim-putin"


def entries() -> list[Entry]:
    return [
        Entry("Ingin Temui Putin, Kim Jong Un Berangkat ke Rusia", KP),
        Entry("Kim Jong Un inspects missile launch", "https://news.example/missile"),
        Entry(
            "Putin dan Kim Jong Un bertemu di Vladivostok",
            "https://news.example/old",
            age=timedelta(days=5),
        ),
        Entry("Cuaca Bali hari ini", "https://news.example/bali", age=timedelta(hours=2)),
    ]


def write_config(
    tmp: Path,
    server: FeedServer,
    channels: dict[str, list[str]],
    *,
    extra_feeds: str = "",
    query: str = '"Kim Jong Un" AND Putin',
) -> Path:
    chan = "\n".join(
        f"  {name}: [{', '.join(json.dumps(u) for u in urls)}]" for name, urls in channels.items()
    )
    (tmp / "watchlists").mkdir(exist_ok=True)
    (tmp / "watchlists" / "w.yaml").write_text(
        textwrap.dedent(
            f"""\
            rules:
              - name: kim-putin
                query: '{query}'
                notify: [{", ".join(channels)}]
            """
        )
    )
    cfg = tmp / "monitor.yaml"
    cfg.write_text(
        textwrap.dedent(
            f"""\
            state: state/monitor.db
            timezone: Asia/Makassar
            fetch: {{timeout: 10s, allow_private: ["127.0.0.1:{server.port}"]}}
            channels:
            """
        )
        + chan
        + textwrap.dedent(
            f"""
            feeds:
              - {{name: news, url: "{server.url("/news.xml")}"}}
            """
        )
        + extra_feeds
        + "watchlists: [watchlists/*.yaml]\n"
    )
    return cfg


@pytest.fixture
def served(feed_server: FeedServer) -> FeedServer:
    feed_server.route("/news.xml", body=rss(entries()), etag='"v1"')
    return feed_server


def test_once_delivers_exactly_the_expected_alerts_once(
    tmp_path: Path,
    served: FeedServer,
    json_sink: JsonSink,
    smtp_server: SmtpServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    cfg = write_config(tmp_path, served, {"chat": [json_sink.url()], "mail": [smtp_server.url()]})

    assert main(["-c", str(cfg), "once"]) == 0
    (chat,) = json_sink.messages
    assert "kim-putin" in chat.title and "Kim Jong Un Berangkat" in chat.title
    assert KP in chat.message and "Kim Jong Un" in chat.message and "Putin" in chat.message
    assert "WITA" in chat.message  # published time shown in the configured zone
    (mail,) = smtp_server.messages
    assert "Kim Jong Un Berangkat" in mail.subject and KP in mail.text()

    # Second run (a restart, too: a new process state each call): nothing new.
    assert main(["-c", str(cfg), "once"]) == 0
    assert len(json_sink.messages) == 1 and len(smtp_server.messages) == 1
    assert served.requests[-1].headers.get("if-none-match") == '"v1"'

    # A new matching item: just that one is delivered.
    served.route(
        "/news.xml",
        body=rss([Entry("Putin sambut Kim Jong Un", "https://news.example/new"), *entries()]),
        etag='"v2"',
    )
    assert main(["-c", str(cfg), "once"]) == 0
    assert len(json_sink.messages) == 2 and len(smtp_server.messages) == 2
    assert "Putin sambut Kim Jong Un" in json_sink.messages[1].title
    assert main(["-c", str(cfg), "once"]) == 0
    assert len(json_sink.messages) == 2

    # A renamed feed does not re-alert: identity is the item's, not the feed's.
    cfg.write_text(cfg.read_text().replace("name: news", "name: renamed"))
    assert main(["-c", str(cfg), "once"]) == 0
    assert len(json_sink.messages) == 2
    logs = capsys.readouterr().err
    assert '"event": "feed_fetched"' in logs


def test_dry_run_sends_and_records_nothing(
    tmp_path: Path, served: FeedServer, json_sink: JsonSink, capsys: pytest.CaptureFixture[str]
) -> None:
    served.route("/mirror.xml", body=rss(entries()))  # the same items through a second feed
    extra = f'  - {{name: mirror, url: "{served.url("/mirror.xml")}"}}\n'
    cfg = write_config(tmp_path, served, {"chat": [json_sink.url()]}, extra_feeds=extra)
    state = tmp_path / "state" / "monitor.db"
    assert main(["-c", str(cfg), "once", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert out.count("[kim-putin] Ingin Temui Putin, Kim Jong Un Berangkat ke Rusia") == 1
    assert KP in out
    assert json_sink.messages == []
    assert not state.exists()  # a fresh setup stays fresh
    # Nothing recorded: a real run still delivers it.
    assert main(["-c", str(cfg), "once"]) == 0
    assert len(json_sink.messages) == 1

    # With state, and a rule edited since: the dry run shows the new rule's alert and writes
    # nothing at all (not even the rules fingerprint or the feeds' validators).
    def dump() -> list[str]:
        db = sqlite3.connect(state)
        try:
            return list(db.iterdump())
        finally:
            db.close()

    wl = tmp_path / "watchlists" / "w.yaml"
    wl.write_text(wl.read_text() + "  - {name: bali, query: Bali, notify: [chat]}\n")
    before = dump()
    capsys.readouterr()
    assert main(["-c", str(cfg), "once", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "[bali] Cuaca Bali hari ini" in out and "[kim-putin]" not in out
    assert dump() == before
    assert len(json_sink.messages) == 1


def test_failed_delivery_stays_queued_and_is_retried(
    tmp_path: Path, served: FeedServer, json_sink: JsonSink
) -> None:
    cfg = write_config(tmp_path, served, {"chat": [json_sink.url()]})
    json_sink.status = 500
    assert main(["-c", str(cfg), "once"]) == 1
    assert len(json_sink.messages) == 1  # tried, refused
    json_sink.status = 200
    assert main(["-c", str(cfg), "once"]) == 0
    assert len(json_sink.messages) == 2
    assert "Kim Jong Un Berangkat" in json_sink.messages[1].title
    assert main(["-c", str(cfg), "once"]) == 0
    assert len(json_sink.messages) == 2


def test_broken_feeds_do_not_stop_the_others(
    tmp_path: Path, served: FeedServer, json_sink: JsonSink, capsys: pytest.CaptureFixture[str]
) -> None:
    served.route("/down.xml", status=503, body=b"busy", headers={"Retry-After": "120"})
    served.route(
        "/garbage.xml", body=b"\x00\x01 this is not a feed <html>", content_type="text/html"
    )
    extra = (
        f'  - {{name: down, url: "{served.url("/down.xml")}"}}\n'
        f'  - {{name: garbage, url: "{served.url("/garbage.xml")}"}}\n'
    )
    cfg = write_config(tmp_path, served, {"chat": [json_sink.url()]}, extra_feeds=extra)
    assert main(["-c", str(cfg), "once"]) == 1
    assert len(json_sink.messages) == 1
    events = [
        json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")
    ]
    failed = {e["feed"]: e for e in events if e["event"] == "feed_failed"}
    assert set(failed) == {"down", "garbage"}
    assert "503" in failed["down"]["reason"]
    # The server asked to wait: the next `once` skips it, `--force` polls it.
    before = len([r for r in served.requests if r.path == "/down.xml"])
    main(["-c", str(cfg), "once"])
    assert len([r for r in served.requests if r.path == "/down.xml"]) == before
    main(["-c", str(cfg), "once", "--force"])
    assert len([r for r in served.requests if r.path == "/down.xml"]) == before + 1


def test_config_errors_exit_78_with_position(
    tmp_path: Path, served: FeedServer, json_sink: JsonSink, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = write_config(tmp_path, served, {"chat": [json_sink.url()]}, query="Kim AND")
    assert main(["-c", str(cfg), "check"]) == 78
    assert main(["-c", str(cfg), "once"]) == 78
    err = capsys.readouterr().err
    wl = tmp_path / "watchlists" / "w.yaml"
    assert f"{wl}:3:12: query:1:" in err
    cfg.write_text("feeds: [\n")
    assert main(["-c", str(cfg), "check"]) == 78
    assert f"{cfg}:2:1: invalid YAML" in capsys.readouterr().err


def test_check_ok(
    tmp_path: Path, served: FeedServer, json_sink: JsonSink, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = write_config(tmp_path, served, {"chat": [json_sink.url()]})
    assert main(["-c", str(cfg), "check"]) == 0
    assert "OK: 1 feeds, 1 rules" in capsys.readouterr().out


def test_second_process_on_the_same_state_is_refused(
    tmp_path: Path, served: FeedServer, json_sink: JsonSink, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = write_config(tmp_path, served, {"chat": [json_sink.url()]})
    lock = StateLock(tmp_path / "state" / "monitor.db")
    lock.acquire()
    try:
        assert main(["-c", str(cfg), "once"]) == 75
    finally:
        lock.release()
    assert "another news-monitor is using this state" in capsys.readouterr().err
    assert json_sink.messages == []


def test_notify_test_reports_each_url(
    tmp_path: Path, served: FeedServer, json_sink: JsonSink, capsys: pytest.CaptureFixture[str]
) -> None:
    port = closed_port()
    cfg = write_config(tmp_path, served, {"chat": [json_sink.url(), f"json://127.0.0.1:{port}/x"]})
    assert main(["-c", str(cfg), "notify-test", "chat"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("chat: ok ") and out[1].startswith("chat: FAILED")
    assert len(json_sink.messages) == 1 and "test alert" in json_sink.messages[0].title
    assert main(["-c", str(cfg), "notify-test", "nope"]) == 2


def test_no_secret_reaches_the_logs(
    tmp_path: Path,
    served: FeedServer,
    json_sink: JsonSink,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    secret = "tok-5ecret-9x7"
    monkeypatch.setenv("SINK_TOKEN", secret)
    served.route("/keyed.xml", status=301, location=served.url("/moved.xml?api_key=plain-k3y"))
    served.route("/moved.xml", status=404)
    extra = f'  - {{name: keyed, url: "{served.url("/keyed.xml?token=plain-t0k")}"}}\n'
    cfg = write_config(
        tmp_path,
        served,
        {"chat": [json_sink.url(userinfo="bot:${SINK_TOKEN}")]},
        extra_feeds=extra,
    )
    json_sink.status = 500  # failures log the URL: it must come out redacted
    assert main(["-c", str(cfg), "--log-level", "debug", "once"]) == 1
    assert main(["-c", str(cfg), "--log-level", "debug", "notify-test", "chat"]) == 1
    captured = capsys.readouterr()
    for leaked in (secret, "plain-k3y", "plain-t0k"):
        assert leaked not in captured.err and leaked not in captured.out
    assert "alert_failed" in captured.err
    assert "feed_failed" in captured.err


# -- grep -------------------------------------------------------------------------------------


def test_grep_prints_matches_as_json(
    served: FeedServer, capsys: pytest.CaptureFixture[str]
) -> None:
    url = served.url("/news.xml")
    assert main(["grep", "--allow-private", "--json", '"Kim Jong Un" AND Putin', url]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    # grep ignores max_age and seen-state: the 5-day-old item matches too.
    assert [r["link"] for r in lines] == [KP, "https://news.example/old"]
    first = lines[0]
    assert first["published"] is not None
    terms = {(m["term"], m["text"], m["field"]) for m in first["matched"]}
    assert ('"Kim Jong Un"', "Kim Jong Un", "title") in terms
    assert ("Putin", "Putin", "title") in terms
    for m in first["matched"]:
        assert first["title"][m["start"] : m["end"]] == m["text"]


def test_grep_exit_codes(
    served: FeedServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = served.url("/news.xml")
    assert main(["grep", "--allow-private", "Jakarta", url]) == 1
    assert main(["grep", "--allow-private", "Kim AND", url]) == 2
    assert "query:1:" in capsys.readouterr().err
    missing = str(tmp_path / "missing.xml")
    assert main(["grep", "--allow-private", "Putin", url, missing]) == 2
    captured = capsys.readouterr()
    assert "Putin" in captured.out  # what matched is still printed
    assert "missing.xml" in captured.err


def test_grep_refuses_loopback_without_allow_private(
    served: FeedServer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["grep", "Putin", served.url("/news.xml")]) == 2
    assert served.requests == []


def test_grep_local_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "feed.xml"
    f.write_bytes(rss(entries()))
    assert main(["grep", "Bali", str(f)]) == 0
    assert "Cuaca Bali hari ini" in capsys.readouterr().out


# -- the daemon ---------------------------------------------------------------------------------


def start_daemon(cfg: Path, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """`news-monitor run` as a real process, its stdout and stderr piped."""
    return subprocess.Popen(
        [sys.executable, "-m", "monitor", "-c", str(cfg), "run"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_run_delivers_then_stops_cleanly_on_sigterm(
    tmp_path: Path, served: FeedServer, json_sink: JsonSink
) -> None:
    # A silent server hangs its own feed's poll for up to a minute; the other feed still alerts
    # at once, and shutdown does not wait for the hung poll.
    served.route("/silent.xml", silent=True)
    extra = f'  - {{name: silent, url: "{served.url("/silent.xml")}"}}\n'
    cfg = write_config(tmp_path, served, {"chat": [json_sink.url()]}, extra_feeds=extra)
    cfg.write_text(cfg.read_text().replace("timeout: 10s", "timeout: 60s"))
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify_path = str(tmp_path / "notify.sock")
    notify.bind(notify_path)
    notify.settimeout(30)
    env = {**os.environ, "NOTIFY_SOCKET": notify_path, "WATCHDOG_USEC": "120000000"}
    proc = start_daemon(cfg, env)
    try:
        assert notify.recv(4096).decode().startswith("READY=1")
        assert notify.recv(4096).decode() == "WATCHDOG=1"  # pinged while the loop progresses
        json_sink.wait_for(1, timeout=20)  # well before the silent feed's 60 s deadline
        # A second daemon on the same state refuses to start.
        second = subprocess.run(
            [sys.executable, "-m", "monitor", "-c", str(cfg), "once"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert second.returncode == 75
        assert "another news-monitor is using this state" in second.stderr
        proc.send_signal(signal.SIGTERM)
        while (datagram := notify.recv(4096).decode()) == "WATCHDOG=1" or datagram.startswith(
            "STATUS="
        ):
            pass
        assert datagram.startswith("STOPPING=1")
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        notify.close()
    assert proc.returncode == 0, err
    events = {e["event"]: e for e in map(json.loads, err.splitlines())}
    assert events["daemon_stopping"]["in_flight"] == 1  # the silent feed's poll, cut short
    assert "daemon_stopped" in events
    assert len(json_sink.messages) == 1


def test_run_without_reachable_feeds_says_so_and_keeps_running(
    tmp_path: Path, served: FeedServer, json_sink: JsonSink
) -> None:
    port = closed_port()
    cfg = write_config(tmp_path, served, {"chat": [json_sink.url()]})
    text = cfg.read_text().replace(served.url("/news.xml"), f"http://127.0.0.1:{port}/feed.xml")
    cfg.write_text(text.replace(f"127.0.0.1:{served.port}", f"127.0.0.1:{port}"))
    proc = start_daemon(cfg)
    try:
        reader = EventReader(proc)
        reader.wait_for("feeds_unreachable")
        assert reader.wait_for("feed_failed")["feed"] == "news"
        assert proc.poll() is None  # still running
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)  # not communicate(): the reader's thread owns stderr
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0


def test_unchanged_body_is_not_parsed_again_until_the_rules_change(
    tmp_path: Path, feed_server: FeedServer, json_sink: JsonSink, capsys: pytest.CaptureFixture[str]
) -> None:
    feed_server.route("/news.xml", body=rss(entries()))  # no ETag, no Last-Modified
    cfg = write_config(tmp_path, feed_server, {"chat": [json_sink.url()]})
    assert main(["-c", str(cfg), "once"]) == 0
    assert main(["-c", str(cfg), "once"]) == 0
    events = [json.loads(x) for x in capsys.readouterr().err.splitlines() if x.startswith("{")]
    statuses = [e["status"] for e in events if e["event"] == "feed_fetched"]
    assert statuses == ["ok", "unchanged"]
    assert len(json_sink.messages) == 1
    # A new rule must see the recent items again: the body is parsed, the old alert not repeated.
    wl = tmp_path / "watchlists" / "w.yaml"
    wl.write_text(wl.read_text() + "  - {name: bali, query: Bali, notify: [chat]}\n")
    assert main(["-c", str(cfg), "once"]) == 0
    assert [m.title.split("]")[0] for m in json_sink.messages] == ["[kim-putin", "[bali"]


class EventReader:
    """Collects a daemon's JSON log lines in a thread; tests wait for an event by name."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        import threading

        self.events: list[dict[str, object]] = []
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._read, args=(proc,), daemon=True)
        self._thread.start()

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            with self._cond:
                self.events.append(json.loads(line))
                self._cond.notify_all()

    def wait_for(self, event: str, count: int = 1, timeout: float = 30) -> dict[str, object]:
        with self._cond:
            ok = self._cond.wait_for(
                lambda: len([e for e in self.events if e["event"] == event]) >= count, timeout
            )
            assert ok, f"no {event!r} in {[e['event'] for e in self.events]}"
            return [e for e in self.events if e["event"] == event][count - 1]


def test_sighup_reloads_valid_config_and_keeps_the_old_one_on_error(
    tmp_path: Path, served: FeedServer, json_sink: JsonSink
) -> None:
    cfg = write_config(tmp_path, served, {"chat": [json_sink.url()]})
    wl = tmp_path / "watchlists" / "w.yaml"
    proc = start_daemon(cfg)
    try:
        reader = EventReader(proc)
        reader.wait_for("daemon_started")
        json_sink.wait_for(1)
        # A new rule: reloaded, and it alerts the recent item it matches without waiting for
        # the feed's next interval.
        wl.write_text(wl.read_text() + "  - {name: bali, query: Bali, notify: [chat]}\n")
        proc.send_signal(signal.SIGHUP)
        assert reader.wait_for("config_reloaded")["rules"] == 2
        messages = json_sink.wait_for(2)
        assert messages[1].title.startswith("[bali] Cuaca Bali")
        # A broken edit: refused, the running config stays.
        wl.write_text("rules:\n  - {name: x, query: 'Bali AND', notify: [chat]}\n")
        proc.send_signal(signal.SIGHUP)
        failed = reader.wait_for("config_reload_failed")
        assert f"{wl}:2:" in str(failed["error"]) and "query:1:" in str(failed["error"])
        assert proc.poll() is None
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0
    assert len(json_sink.messages) == 2


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.startswith("news-monitor ")
    version = subprocess.run(
        [sys.executable, "-m", "monitor", "--version"], capture_output=True, text=True, timeout=60
    )
    assert version.returncode == 0 and version.stdout.startswith("news-monitor ")


def test_grep_a_web_page_uses_its_advertised_feed(
    served: FeedServer, capsys: pytest.CaptureFixture[str]
) -> None:
    page = b'<html><head><link rel="alternate" type="application/rss+xml" href="/news.xml">'
    served.route("/", body=page + b"</head><body>Berita</body></html>", content_type="text/html")
    assert main(["grep", "--allow-private", "Bali", served.url("/")]) == 0
    assert "Cuaca Bali hari ini" in capsys.readouterr().out


def test_check_warns_when_and_and_or_mix_without_parentheses(
    tmp_path: Path, served: FeedServer, json_sink: JsonSink, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = write_config(tmp_path, served, {"chat": [json_sink.url()]}, query="Kim OR Putin AND Bali")
    assert main(["-c", str(cfg), "check"]) == 0
    err = capsys.readouterr().err
    wl = tmp_path / "watchlists" / "w.yaml"
    assert f"{wl}:3:12: warning: rule 'kim-putin': query mixes AND and OR" in err
