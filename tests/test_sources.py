"""Source health and hostile servers, through the real `once` and `status` commands.

Whatever a server does, the other feeds are polled and alert, the command finishes, and the
feed's health says what happened.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from monitor.cli import main
from tests.feeds import Entry, rss
from tests.feedserver import FeedServer, gzip_bomb
from tests.sinks import JsonSink

GOOD = rss([Entry("Putin sambut Kim Jong Un di Moskow", "https://news.example/good")])


def config(
    tmp: Path, server: FeedServer, feeds: dict[str, str], sink: JsonSink, extra: str = ""
) -> Path:
    lines = "\n".join(f'  - {{name: {n}, url: "{server.url(p)}"}}' for n, p in feeds.items())
    cfg = tmp / "monitor.yaml"
    cfg.write_text(
        f"""\
state: state.db
defaults: {{failure_threshold: 2}}
fetch: {{timeout: 2s, max_bytes: 1MiB, allow_private: ["127.0.0.1:{server.port}"]}}
channels:
  chat: "{sink.url("/chat")}"
  ops: "{sink.url("/ops")}"
ops: ops
feeds:
{lines}
rules:
  - {{name: kp, query: '"Kim Jong Un" AND Putin', notify: [chat]}}
{extra}"""
    )
    return cfg


def status(
    cfg: Path, capsys: pytest.CaptureFixture[str]
) -> tuple[int, dict[str, dict[str, object]]]:
    capsys.readouterr()
    code = main(["-c", str(cfg), "status", "--json"])
    data = json.loads(capsys.readouterr().out)
    return code, {f["name"]: f for f in data["feeds"]}


def test_failing_feed_notifies_ops_once_then_recovery(
    tmp_path: Path, feed_server: FeedServer, json_sink: JsonSink, capsys: pytest.CaptureFixture[str]
) -> None:
    feed_server.route("/good.xml", body=GOOD)
    feed_server.route("/bad.xml", status=500, body=b"oops")
    cfg = config(tmp_path, feed_server, {"good": "/good.xml", "bad": "/bad.xml"}, json_sink)

    assert main(["-c", str(cfg), "once"]) == 1
    code, feeds = status(cfg, capsys)
    assert code == 0  # one failure is below the threshold of 2
    assert feeds["bad"]["status"] == "erroring" and feeds["bad"]["consecutive_failures"] == 1
    assert feeds["bad"]["last_status"] == 500 and "500" in str(feeds["bad"]["last_error"])
    assert feeds["good"]["status"] == "ok" and feeds["good"]["last_status"] == 200
    assert [m.path for m in json_sink.messages] == ["/chat"]

    assert main(["-c", str(cfg), "once", "--force"]) == 1
    ops = [m for m in json_sink.messages if m.path == "/ops"]
    assert len(ops) == 1 and "feed 'bad' is failing" in ops[0].title
    code, feeds = status(cfg, capsys)
    assert code == 1 and feeds["bad"]["status"] == "failing"

    # Still failing: no second notice.
    assert main(["-c", str(cfg), "once", "--force"]) == 1
    assert len([m for m in json_sink.messages if m.path == "/ops"]) == 1

    feed_server.route("/bad.xml", body=rss([Entry("Berita lain", "https://news.example/x")]))
    assert main(["-c", str(cfg), "once", "--force"]) == 0
    ops = [m for m in json_sink.messages if m.path == "/ops"]
    assert len(ops) == 2 and "feed 'bad' has recovered" in ops[1].title
    code, feeds = status(cfg, capsys)
    assert code == 0 and feeds["bad"]["status"] == "ok"
    # A feed added since the last run is listed as new.
    cfg.write_text(
        cfg.read_text().replace(
            "rules:", f'  - {{name: added, url: "{feed_server.url("/x.xml")}"}}\nrules:'
        )
    )
    _, feeds = status(cfg, capsys)
    assert feeds["added"]["status"] == "new"
    # The table form names the columns and the feeds.
    assert main(["-c", str(cfg), "status"]) == 0
    table = capsys.readouterr().out
    assert "FEED" in table and "bad" in table and "alerts waiting for delivery: 0" in table


def test_moved_and_gone_feeds(
    tmp_path: Path, feed_server: FeedServer, json_sink: JsonSink, capsys: pytest.CaptureFixture[str]
) -> None:
    feed_server.route("/old.xml", status=301, location=feed_server.url("/new.xml"))
    feed_server.route("/new.xml", body=GOOD)
    feed_server.route("/gone.xml", status=410, body=b"gone")
    cfg = config(tmp_path, feed_server, {"moved": "/old.xml", "gone": "/gone.xml"}, json_sink)
    assert main(["-c", str(cfg), "once"]) == 1
    logs = capsys.readouterr().err
    assert '"event": "feed_moved"' in logs
    assert [m.path for m in json_sink.messages].count("/chat") == 1
    ops = [m.title for m in json_sink.messages if m.path == "/ops"]
    assert len(ops) == 1 and "feed 'gone' is gone" in ops[0]  # told at once, not after N tries

    _, feeds = status(cfg, capsys)
    assert feeds["moved"]["url"] == feed_server.url("/new.xml")
    assert feeds["gone"]["status"] == "gone"
    before = [r.path for r in feed_server.requests]
    assert main(["-c", str(cfg), "once", "--force"]) == 1
    after = [r.path for r in feed_server.requests][len(before) :]
    assert "/old.xml" not in after and "/new.xml" in after  # the stored URL is used
    assert main(["-c", str(cfg), "once"]) == 1
    assert "/gone.xml" not in [r.path for r in feed_server.requests][len(before) + len(after) :]
    # Pointing the feed somewhere new in the config clears "gone".
    feed_server.route("/back.xml", body=GOOD)
    cfg.write_text(cfg.read_text().replace("/gone.xml", "/back.xml"))
    assert main(["-c", str(cfg), "once"]) == 0


def test_feed_discovery_from_a_web_page(
    tmp_path: Path, feed_server: FeedServer, json_sink: JsonSink, capsys: pytest.CaptureFixture[str]
) -> None:
    page = (
        b"<!DOCTYPE html><html><head><title>Berita</title>"
        b'<link rel="alternate" type="application/rss+xml" title="RSS" href="/rss/terkini.xml">'
        b"</head><body><h1>Berita</h1></body></html>"
    )
    feed_server.route("/", body=page, content_type="text/html; charset=utf-8")
    feed_server.route("/rss/terkini.xml", body=GOOD)
    cfg = config(tmp_path, feed_server, {"site": "/"}, json_sink)
    assert main(["-c", str(cfg), "once"]) == 0
    assert '"event": "feed_discovered"' in capsys.readouterr().err
    assert len(json_sink.messages) == 1
    _, feeds = status(cfg, capsys)
    assert feeds["site"]["url"] == feed_server.url("/rss/terkini.xml")


ENTITY_BOMB = b"""<?xml version="1.0"?>
<!DOCTYPE rss [
 <!ENTITY a "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa">
 <!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">
 <!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">
 <!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">
 <!ENTITY e "&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;">
]>
<rss version="2.0"><channel><title>bomb</title>
<item><title>&e;</title><link>https://bomb.example/1</link></item>
</channel></rss>"""

HUGE_AUTHOR = (
    b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title><item>'
    b"<title>Kim Jong Un and Putin</title><link>https://author.example/1</link>"
    b"<author>" + b"x" * 50_000 + b"</author></item></channel></rss>"
)

Hostile = Callable[[FeedServer], dict[str, object]]
HOSTILE: dict[str, tuple[Hostile, str]] = {
    "drip": (lambda s: {"body": GOOD, "drip_interval": 1.0}, "timed out"),
    "silent": (lambda s: {"silent": True}, "timed out"),
    "bomb": (lambda s: {"raw_gzip": gzip_bomb(64 * 1024 * 1024)}, "larger than"),
    "huge": (lambda s: {"body": b"<rss>" + b" " * (2 * 1024 * 1024)}, "larger than"),
    "loop": (lambda s: {"status": 302, "location": s.url("/h/loop")}, "redirect"),
    "e500": (lambda s: {"status": 500, "body": b"x"}, "500"),
    "e503": (lambda s: {"status": 503, "headers": {"Retry-After": "60"}}, "503"),
    "e429": (lambda s: {"status": 429}, "429"),
    "e404": (lambda s: {"status": 404}, "404"),
    "e410": (lambda s: {"status": 410}, "410"),
    "html": (
        lambda s: {"body": b"<html><body>hi</body></html>", "content_type": "text/html"},
        "HTML",
    ),
    "truncated": (lambda s: {"body": GOOD[: len(GOOD) // 2]}, ""),
    "entities": (lambda s: {"body": ENTITY_BOMB}, ""),
    "author": (lambda s: {"body": HUGE_AUTHOR}, ""),
    "maxage": (
        lambda s: {"body": GOOD, "headers": {"Cache-Control": "max-age=99999999999999"}},
        "",
    ),
}


def test_hostile_servers_never_stop_the_good_feed(
    tmp_path: Path,
    feed_server: FeedServer,
    feed_server_factory: Callable[[], FeedServer],
    json_sink: JsonSink,
    capsys: pytest.CaptureFixture[str],
) -> None:
    other = feed_server_factory()  # a loopback port that is not allowed
    other.route("/feed.xml", body=GOOD)
    feed_server.route("/h/offsite", status=302, location=other.url("/feed.xml"))
    feed_server.route("/good.xml", body=GOOD)
    feeds = {"good": "/good.xml", "offsite": "/h/offsite"}
    for name, (make, _) in HOSTILE.items():
        feed_server.route(f"/h/{name}", **make(feed_server))
        feeds[name] = f"/h/{name}"
    cfg = config(tmp_path, feed_server, feeds, json_sink)

    assert main(["-c", str(cfg), "once"]) == 1
    chat = [m for m in json_sink.messages if m.path == "/chat"]
    assert len(chat) == 1 and "Putin sambut Kim Jong Un" in chat[0].title
    assert other.requests == []  # the disallowed port was never contacted
    _, health = status(cfg, capsys)
    assert health["good"]["status"] == "ok"
    assert "loopback" in str(health["offsite"]["last_error"])
    for name, (_, reason) in HOSTILE.items():
        h = health[name]
        if reason:  # failures must say why
            assert h["consecutive_failures"] == 1, (name, h)
            assert reason.lower() in str(h["last_error"]).lower(), (name, h)
        else:  # malformed but survivable: either parsed or failed with a reason, never a crash
            assert h["consecutive_failures"] == 0 or h["last_error"], (name, h)
            assert "internal error" not in str(h["last_error"]), (name, h)
    assert health["e503"]["not_before"] is not None
    assert health["e410"]["status"] == "gone"


def test_silent_feed_goes_stale_then_recovers(
    tmp_path: Path, feed_server: FeedServer, json_sink: JsonSink
) -> None:
    import asyncio
    from datetime import UTC, datetime, timedelta

    from monitor.config import load_config
    from monitor.service import Monitor
    from monitor.store import SqliteStore as Store

    feed_server.route("/f.xml", body=GOOD, etag='"1"')
    cfg = load_config(config(tmp_path, feed_server, {"quiet": "/f.xml"}, json_sink))
    now = [datetime.now(UTC)]
    store = Store(cfg.state_path)
    monitor = Monitor(cfg, store, clock=lambda: now[0])

    def ops() -> list[str]:
        return [m.title for m in json_sink.messages if m.path == "/ops"]

    asyncio.run(monitor.run_once())
    now[0] += timedelta(days=1)
    asyncio.run(monitor.run_once(force=True))  # 304, but within stale_after (2d)
    assert ops() == []
    now[0] += timedelta(days=2)
    asyncio.run(monitor.run_once(force=True))
    assert len(ops()) == 1 and "feed 'quiet' is stale: no new item since" in ops()[0]
    now[0] += timedelta(hours=1)
    asyncio.run(monitor.run_once(force=True))
    assert len(ops()) == 1  # still stale: told once
    feed_server.route(
        "/f.xml", body=rss([Entry("Berita baru", "https://news.example/n")], now=now[0]), etag='"2"'
    )
    now[0] += timedelta(hours=1)
    asyncio.run(monitor.run_once(force=True))
    assert len(ops()) == 2 and "feed 'quiet' has recovered" in ops()[1]
    store.close()


def test_status_never_prints_feed_credentials(
    tmp_path: Path, feed_server: FeedServer, json_sink: JsonSink, capsys: pytest.CaptureFixture[str]
) -> None:
    feed_server.route("/good.xml", body=GOOD)
    cfg = config(tmp_path, feed_server, {"keyed": "/good.xml?token=t0p-secret"}, json_sink)
    assert main(["-c", str(cfg), "once"]) == 0
    _, feeds = status(cfg, capsys)
    assert feeds["keyed"]["url"] == feed_server.url("/good.xml?token=***")
    assert main(["-c", str(cfg), "status"]) == 0
    assert "t0p-secret" not in capsys.readouterr().out


def test_rss_ttl_raises_the_interval_also_after_a_304(
    tmp_path: Path, feed_server: FeedServer, json_sink: JsonSink
) -> None:
    import asyncio
    from datetime import UTC, datetime, timedelta

    from monitor.config import load_config
    from monitor.service import Monitor
    from monitor.store import SqliteStore as Store

    body = GOOD.replace(
        b"<description>test</description>", b"<description>t</description><ttl>120</ttl>"
    )
    assert b"<ttl>120</ttl>" in body
    feed_server.route("/ttl.xml", body=body, etag='"t1"')
    cfg = load_config(config(tmp_path, feed_server, {"slow": "/ttl.xml"}, json_sink))
    now = datetime.now(UTC)
    store = Store(cfg.state_path)
    monitor = Monitor(cfg, store, clock=lambda: now)
    asyncio.run(monitor.run_once())
    state = store.feed_state("slow")
    assert state is not None and state.next_poll_at is not None
    assert state.next_poll_at >= now + timedelta(minutes=108)  # 2 h, less 10% jitter
    asyncio.run(monitor.run_once(force=True))  # answered 304
    state = store.feed_state("slow")
    assert state is not None and state.last_status == 304 and state.next_poll_at is not None
    assert state.next_poll_at >= now + timedelta(minutes=108)
    store.close()


def test_a_feed_cut_off_halfway_is_degraded_not_ok(
    tmp_path: Path, feed_server: FeedServer, json_sink: JsonSink, capsys: pytest.CaptureFixture[str]
) -> None:
    """Items recovered from malformed XML are read, and status says the feed is degraded."""
    from monitor.cli import main

    data = Path(__file__).parent / "data" / "feeds" / "truncated.xml"
    feed_server.route("/news.xml", body=data.read_bytes())
    cfg = tmp_path / "monitor.yaml"
    cfg.write_text(
        f"""\
state: state.db
fetch: {{allow_private: ["127.0.0.1:{feed_server.port}"]}}
channels: {{chat: "{json_sink.url()}"}}
ops: chat
feeds:
  - {{name: cut, url: "{feed_server.url("/news.xml")}"}}
rules:
  - {{name: r, query: complete, notify: chat}}
"""
    )
    assert main(["-c", str(cfg), "once"]) == 0
    capsys.readouterr()
    assert main(["-c", str(cfg), "status", "--json"]) == 0  # degraded is shown, not failing
    [record] = json.loads(capsys.readouterr().out)["feeds"]
    assert record["status"] == "degraded"
    assert "not well-formed" in record["reason"] and "items recovered" in record["reason"]
    assert record["last_error"] == record["reason"]
    # The unchanged body polled again stays degraded (the skip must not clear the reason).
    assert main(["-c", str(cfg), "once"]) == 0
    capsys.readouterr()
    main(["-c", str(cfg), "status", "--json"])
    assert json.loads(capsys.readouterr().out)["feeds"][0]["status"] == "degraded"
    assert any("degraded" in m.title for m in json_sink.messages)  # ops heard once
    assert sum("degraded" in m.title for m in json_sink.messages) == 1


def test_once_exits_1_when_its_only_feed_is_broken(
    tmp_path: Path, feed_server: FeedServer, json_sink: JsonSink
) -> None:
    from monitor.cli import main

    feed_server.route("/news.xml", status=500)
    cfg = tmp_path / "monitor.yaml"
    cfg.write_text(
        f"""\
state: state.db
fetch: {{allow_private: ["127.0.0.1:{feed_server.port}"]}}
channels: {{chat: "{json_sink.url()}"}}
feeds:
  - {{name: only, url: "{feed_server.url("/news.xml")}"}}
rules:
  - {{name: r, query: gempa, notify: chat}}
"""
    )
    assert main(["-c", str(cfg), "once"]) == 1  # polled and failed
    assert main(["-c", str(cfg), "once"]) == 1  # skipped while backing off: still broken
    assert main(["-c", str(cfg), "once", "--force"]) == 1
