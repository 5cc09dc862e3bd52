"""Story dedup through the real poll path: loopback feeds, a real state file, an HTTP sink.

The clock is injected (the window, ``update_every`` and restarts are about time); everything else
is real: ``Monitor.run_once`` fetches from the loopback server, records in SQLite and delivers
through apprise ``json://`` to the sink.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from monitor import logs
from monitor.config import Config, load_config
from monitor.dedup import item_key
from monitor.parse import FeedItem
from monitor.service import Monitor
from monitor.store import SqliteStore as Store
from tests import stories_seed as seed
from tests.feeds import Entry, rss
from tests.feedserver import FeedServer
from tests.sinks import JsonSink

START = datetime(2026, 12, 3, 6, 30, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def write_config(
    tmp: Path, server: FeedServer, sink: JsonSink, feeds: list[str], dedup: str = ""
) -> Config:
    feed_lines = "".join(f'  - {{name: {n}, url: "{server.url(f"/{n}.xml")}"}}\n' for n in feeds)
    cfg = tmp / "monitor.yaml"
    cfg.write_text(
        textwrap.dedent(
            f"""\
            state: state/monitor.db
            fetch: {{allow_private: ["127.0.0.1:{server.port}"]}}
            channels:
              chat: ["{sink.url()}"]
            {dedup}
            rules:
              - name: gempa
                query: '{seed.RULE_QUERY}'
                notify: [chat]
            feeds:
            """
        )
        + feed_lines
    )
    return load_config(cfg)


def run(config: Config, clock: Clock) -> None:
    """One `once` cycle on the state file, as a process restart would open it."""
    store = Store(config.state_path)
    try:
        report = asyncio.run(Monitor(config, store, clock=clock).run_once())
        assert report.ok, report
    finally:
        store.close()


def titles(sink: JsonSink) -> list[str]:
    return [m.title for m in sink.messages]


def members(config: Config) -> list[tuple[str, str, str]]:
    db = sqlite3.connect(config.state_path)
    try:
        rows = db.execute(
            "SELECT story, key, reason FROM story_members ORDER BY joined_at, rowid"
        ).fetchall()
    finally:
        db.close()
    return [(str(s), str(k), str(r)) for s, k, r in rows]


def serve(server: FeedServer, name: str, now: datetime) -> None:
    server.route(f"/{name}.xml", body=seed.FEEDS[name](now))


def test_the_seed_story_alerts_once_and_the_other_quake_alerts_too(
    tmp_path: Path, feed_server: FeedServer, json_sink: JsonSink
) -> None:
    clock = Clock(START)
    seed.serve_all(feed_server, START)
    config = write_config(tmp_path, feed_server, json_sink, list(seed.FEEDS))
    run(config, clock)
    got = titles(json_sink)
    assert len(got) == 2, got  # the M5,1 story once (four copies), the M4,2 quake once
    assert sum("M5,1" in t for t in got) == 1 and sum("M4,2" in t for t in got) == 1
    stories = {s for s, _, _ in members(config)}
    assert len(stories) == 2
    assert len(members(config)) == 6  # every copy is recorded as a member of its story


def test_stories_survive_a_restart_and_expire_with_the_window(
    tmp_path: Path, feed_server: FeedServer, json_sink: JsonSink
) -> None:
    clock = Clock(START)
    serve(feed_server, "cnn-indonesia", START)
    feed_server.route("/beritabali.xml", body=rss([], title="beritabali.com", now=START))
    config = write_config(tmp_path, feed_server, json_sink, ["cnn-indonesia", "beritabali"])
    run(config, clock)
    assert len(json_sink.messages) == 1
    # A new process, an hour later: beritabali's copy joins the story recorded before.
    clock.now = START + timedelta(hours=1)
    serve(feed_server, "beritabali", clock.now)
    run(config, clock)
    assert [t for t in titles(json_sink) if "M5,1" in t] == [
        "[gempa] Gempa M5,1 Guncang Karangasem Bali, Warga Berhamburan"
    ]
    joined = [r for _, _, r in members(config) if r != "first"]
    assert joined == ["headlines agree"]
    # Past the window (48 h from the story's last member), the same headline is a new story.
    clock.now = START + timedelta(hours=50)
    late = Entry(seed.M51_CNN, "https://www.cnnindonesia.com/nasional/late", age=timedelta(0))
    feed_server.route("/cnn-indonesia.xml", body=rss([late], now=clock.now))
    run(config, clock)
    assert sum("M5,1" in t for t in titles(json_sink)) == 2


def test_update_mode_sends_one_follow_up_per_interval_not_one_per_member(
    tmp_path: Path, feed_server: FeedServer, json_sink: JsonSink
) -> None:
    clock = Clock(START)
    # Each feed publishes the story when its step comes; its feed title is the outlet.
    steps = [
        ("cnn", "CNN Indonesia", seed.M51_CNN, timedelta(minutes=10)),  # the story: an alert
        ("bb", "beritabali.com", seed.M51_BERITABALI, timedelta(minutes=20)),  # a follow-up
        (
            "cnn2",
            "CNN Indonesia",
            seed.M51_CNN + " Keluar Rumah",
            timedelta(minutes=30),
        ),  # same outlet
        ("kompas", "Kompas.com", seed.M51_BERITABALI, timedelta(hours=1)),  # within 6 h: later
        ("detik", "detikNews", seed.M51_CNN, timedelta(hours=7)),  # after 6 h: one for both
    ]
    for name, outlet, _, _ in steps:
        feed_server.route(f"/{name}.xml", body=rss([], title=outlet, now=START))
    dedup = "dedup: {on_repeat: update, update_every: 6h}"
    config = write_config(tmp_path, feed_server, json_sink, [s[0] for s in steps], dedup=dedup)
    run(config, clock)  # first polls: nothing yet
    for name, outlet, title, at in steps:
        clock.now = START + at
        entry = Entry(title, f"https://{name}.example/gempa", age=timedelta(minutes=1))
        feed_server.route(f"/{name}.xml", body=rss([entry], title=outlet, now=clock.now))
        run(config, clock)
    m51 = [m for m in json_sink.messages if "M5,1" in m.title]
    assert [m.title[:24] for m in m51] == [
        "[gempa] Gempa M5,1 Gunca",
        "[gempa] also reported: G",
        "[gempa] also reported: G",
    ][: len(m51)]
    assert len(m51) == 3, [m.title for m in m51]
    assert m51[1].message.splitlines()[-1] == "also reported by: beritabali.com"
    assert m51[2].message.splitlines()[-1] == "also reported by: Kompas.com, detikNews"


def test_copies_in_one_poll_fold_into_the_first_alert(
    tmp_path: Path, feed_server: FeedServer, json_sink: JsonSink
) -> None:
    clock = Clock(START)
    feed_server.route(
        "/gn.xml",
        body=rss(
            [
                Entry(
                    f"{seed.M51_CNN} - CNN Indonesia",
                    "https://news.google.com/rss/a/1",
                    source="CNN Indonesia",
                ),
                Entry(
                    f"{seed.M51_BERITABALI} - beritabali.com",
                    "https://news.google.com/rss/a/2",
                    source="beritabali.com",
                ),
            ],
            now=START,
        ),
    )
    config = write_config(tmp_path, feed_server, json_sink, ["gn"])
    run(config, clock)
    [message] = json_sink.messages
    assert "also reported by: beritabali.com" in message.message


def test_on_repeat_alert_turns_story_dedup_off_for_a_rule(
    tmp_path: Path, feed_server: FeedServer, json_sink: JsonSink
) -> None:
    seed.serve_all(feed_server, START)
    config = write_config(
        tmp_path, feed_server, json_sink, list(seed.FEEDS), dedup="dedup: {on_repeat: alert}"
    )
    run(config, Clock(START))
    store = Store(config.state_path, readonly=True)
    try:
        assert len(store.sent_alerts()) == 6  # every copy alerts, as before story dedup
    finally:
        store.close()


def test_a_rule_of_its_own_can_override_the_window(
    tmp_path: Path, feed_server: FeedServer, json_sink: JsonSink
) -> None:
    seed.serve_all(feed_server, START)
    config = write_config(tmp_path, feed_server, json_sink, list(seed.FEEDS))
    text = config.path.read_text().replace(
        "notify: [chat]", "notify: [chat]\n    dedup: {window: 2h, on_repeat: suppress}"
    )
    config.path.write_text(text)
    config = load_config(config.path)
    assert config.rules[0].dedup.window == timedelta(hours=2)
    assert config.rules[0].dedup.update_every == timedelta(hours=6)  # from the defaults


def test_a_generic_headline_is_not_compared_and_the_log_says_why(
    tmp_path: Path,
    feed_server: FeedServer,
    json_sink: JsonSink,
    capsys: pytest.CaptureFixture[str],
) -> None:
    feed_server.route(
        "/live.xml",
        body=rss(
            [
                Entry("Live updates", "https://e.example/live/1", description="gempa karangasem"),
                Entry("Live updates", "https://e.example/live/2", description="gempa karangasem"),
            ],
            now=START,
        ),
    )
    config = write_config(tmp_path, feed_server, json_sink, ["live"])
    config.path.write_text(config.path.read_text().replace("state:", "log_level: debug\nstate:"))
    config = load_config(config.path)
    logs.configure(level="debug", json=True)
    try:
        run(config, Clock(START))
    finally:
        logs.configure(level="info", json=True)
    assert len(json_sink.messages) == 2  # two "Live updates" pages are not one story
    events = [json.loads(x) for x in capsys.readouterr().err.splitlines() if x.startswith("{")]
    why = [e for e in events if e["event"] == "story_not_compared"]
    assert why and why[0]["reason"] == "only generic words"


def test_google_news_item_served_again_with_new_guid_and_link_is_the_same_item() -> None:
    first = FeedItem(
        id="CBMiAAA",
        link="https://news.google.com/rss/articles/CBMiAAA?oc=5",
        title=seed.M51_CNN,
        summary="",
        published=START,
        source="CNN Indonesia",
        source_url="https://www.cnnindonesia.com",
        feed="gn",
        lang="id",
    )
    again = FeedItem(
        **{
            **first.__dict__,
            "id": "CBMiZZZ",
            "link": "https://news.google.com/rss/articles/CBMiZZZ?oc=5",
        }
    )
    assert item_key(first) == item_key(again)


def test_the_daemon_sends_the_seed_story_once_to_the_sink(
    tmp_path: Path, feed_server: FeedServer, json_sink: JsonSink
) -> None:
    """Four outlets' copies of one story through `news-monitor run`: one alert, not four."""
    import signal

    from tests.test_cli import EventReader, start_daemon

    seed.serve_all(feed_server)
    config = write_config(tmp_path, feed_server, json_sink, list(seed.FEEDS))
    proc = start_daemon(config.path)
    try:
        reader = EventReader(proc)
        for n in range(1, len(seed.FEEDS) + 1):
            reader.wait_for("feed_fetched", count=n)
        json_sink.wait_for(2)
        proc.send_signal(signal.SIGTERM)  # drains what is queued, then exits
        proc.wait(timeout=30)  # the reader owns stderr: no communicate()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0
    got = sorted(m.title for m in json_sink.messages)
    assert got == [f"[gempa] {seed.M42}", f"[gempa] {seed.M51_CNN}"] or got == [
        f"[gempa] {seed.M42}",
        f"[gempa] {seed.M51_BERITABALI}",
    ]
    joined = [e for e in reader.events if e["event"] == "item_joined_story"]
    assert len(joined) == 4  # three more copies of the M5,1 story, one of the M4,2 quake
    store = Store(config.state_path, readonly=True)
    try:
        assert store.pending_count() == 0
        assert len(store.sent_alerts()) == 2
    finally:
        store.close()


def test_grep_stories_groups_matches_with_their_similarity(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from monitor.cli import main

    paths = []
    for name, build in seed.FEEDS.items():
        p = tmp_path / f"{name}.xml"
        p.write_bytes(build())
        paths.append(str(p))
    assert main(["grep", "--stories", seed.RULE_QUERY, *paths]) == 0
    out = capsys.readouterr().out
    heads = [line for line in out.splitlines() if line and not line.startswith(" ")]
    assert len(heads) == 2  # two stories
    members = [line for line in out.splitlines() if line.startswith("  + ")]
    assert len(members) == 4
    assert all(0.7 <= float(line.split()[1]) <= 1.0 for line in members)
    assert main(["grep", "--stories", "--json", seed.RULE_QUERY, *paths]) == 0
    stories = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [len(s["members"]) for s in stories] == [1, 3]  # oldest story first
    m = stories[1]["members"][0]
    assert set(m) >= {"title", "link", "source", "feed", "similarity", "reason", "matched"}
    assert 0.7 <= m["similarity"] <= 1.0
    # A stricter threshold is the user's to try; the number guard holds at any threshold.
    assert (
        main(["grep", "--stories", "--json", "--similarity", "1.0", seed.RULE_QUERY, *paths]) == 0
    )
    strict = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(strict) >= 2
    assert not any(
        "M4,2" in m["title"] for s in strict if "M5,1" in s["title"] for m in s["members"]
    )
    with pytest.raises(SystemExit) as usage:
        main(["grep", "--stories", "--similarity", "2", seed.RULE_QUERY, *paths])
    assert usage.value.code == 2
    assert "must be between 0.5 and 1.0" in capsys.readouterr().err


def test_the_index_judges_only_members_within_the_window() -> None:
    from monitor.dedup.stories import Candidate, Member, StoryBook, evidence_of

    book = StoryBook()
    ev = evidence_of(seed.M51_CNN)
    book.add("gempa", Member("s1", "s1", 1000.0, ev, seed.M51_CNN))
    hit = Candidate("k2", evidence_of(seed.M51_BERITABALI), seed.M51_BERITABALI)
    assert book.place("gempa", hit, since=999.0).story == "s1"
    assert not book.place("gempa", hit, since=1001.0).joins  # its member is past the window
    assert not book.place("other-rule", hit, since=0.0).joins  # stories are per rule
    assert book.expire(1001.0) == 1 and len(book) == 0


def test_pruning_forgets_stories_with_the_seen_state(
    tmp_path: Path, feed_server: FeedServer, json_sink: JsonSink
) -> None:
    seed.serve_all(feed_server, START)
    config = write_config(tmp_path, feed_server, json_sink, list(seed.FEEDS))
    run(config, Clock(START))
    stories = {("gempa", story) for story, _, _ in members(config)}
    assert len(members(config)) == 6 and len(stories) == 2
    store = Store(config.state_path)
    try:
        store.prune(START + timedelta(days=29), timedelta(days=30))
        assert len(store.story_members(START - timedelta(days=1))) == 6  # still within retention
        assert len(store.stories_info(stories)) == 2
        store.prune(START + timedelta(days=31), timedelta(days=30))
        assert store.story_members(START - timedelta(days=1)) == []
        assert store.stories_info(stories) == {}
    finally:
        store.close()


def test_history_lists_alerts_sent_and_repeats_recorded(
    tmp_path: Path,
    feed_server: FeedServer,
    json_sink: JsonSink,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from monitor.cli import main

    seed.serve_all(feed_server, START)
    config = write_config(tmp_path, feed_server, json_sink, list(seed.FEEDS))
    run(config, Clock(START))  # hours before any real run of this test
    capsys.readouterr()
    cfg = str(config.path)
    assert main(["-c", cfg, "history", "--since", "3650d", "--json"]) == 0
    entries = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    kinds = sorted(e["kind"] for e in entries)
    assert kinds == ["sent", "sent", "suppressed", "suppressed", "suppressed", "suppressed"]
    suppressed = [e for e in entries if e["kind"] == "suppressed"]
    assert all(e["story_title"] and e["reason"] and e["similarity"] for e in suppressed)
    assert [e["channels"] for e in entries if e["kind"] == "sent"] == [["chat"], ["chat"]]
    # Searchable with the rule language, by rule, and by time.
    assert main(["-c", cfg, "history", "--since", "3650d", "--json", '"M4,2"']) == 0
    assert {json.loads(x)["title"] for x in capsys.readouterr().out.splitlines()} == {seed.M42}
    assert main(["-c", cfg, "history", "--rule", "nope"]) == 1
    assert main(["-c", cfg, "history", "--since", "1h", "--json"]) == 1
    assert main(["-c", cfg, "history", "--since", "3650d"]) == 0
    text = capsys.readouterr().out
    assert "suppressed" in text and "joined" in text
    assert main(["-c", cfg, "history", "gempa AND"]) == 2  # a bad query: its column
