"""A state for web view tests, made by the real command (``once``) from loopback feeds.

Two feeds carry the same stories through different outlets (so story dedup joins them), and
one carries the escaping corpus: feed text with markup, script, attribute-breaking quotes and
links that are not http(s). Nothing is written to the state by hand.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

from monitor.cli import main
from tests.feeds import Entry, rss
from tests.feedserver import FeedServer
from tests.sinks import JsonSink

# Feed text an attacker controls. Each must come out as text, never as markup.
HOSTILE_TITLES = (
    '<script>alert("t1")</script> Gempa guncang Karangasem',
    'Gempa "><img src=x onerror=alert(2)> di Lombok',
    "Gempa ' onmouseover='alert(3)' x=' Sumbawa",
    "Gempa ]]> &amp; <![CDATA[ x ]]> Flores </title></entry>",
)
# Markup in a description is HTML, stripped by the parser; escaped once more it is text that
# looks like markup, which is what reaches the pages.
HOSTILE_SUMMARY = (
    '<b>tebal</b> <a href="javascript:alert(4)">klik</a> <svg onload=alert(5)> '
    "&lt;script&gt;alert(7)&lt;/script&gt; &lt;a href='javascript:alert(8)'&gt;x&lt;/a&gt;"
)


def entries_news() -> list[Entry]:
    return [
        Entry("Putin to meet Kim Jong Un in Vladivostok", "https://a.example/kim-putin"),
        Entry("Gempa M5,1 guncang Bali", "https://a.example/gempa-bali", source="Outlet A"),
        Entry("Cuaca cerah di Denpasar", "https://a.example/cuaca"),
        *(
            Entry(t, f"https://evil.example/{i}", description=HOSTILE_SUMMARY)
            for i, t in enumerate(HOSTILE_TITLES)
        ),
        Entry("Gempa di Maluku", "javascript:alert(6)", guid="js-link"),
    ]


def entries_mirror() -> list[Entry]:
    return [
        Entry("Gempa M5,1 guncang Bali, warga panik", "https://b.example/gb", source="Outlet B"),
        Entry("Kim Jong Un and Putin to meet in Vladivostok", "https://b.example/kp"),
    ]


def populate(tmp: Path, server: FeedServer, sink: JsonSink, *, extra: str = "") -> Path:
    """Write a config with the ``metrics:`` listener on port 0, poll once, return its path."""
    server.route("/news.xml", body=rss(entries_news(), title="News"))
    cfg = tmp / "monitor.yaml"
    cfg.write_text(
        textwrap.dedent(
            f"""\
            state: state.db
            timezone: Asia/Makassar
            fetch: {{allow_private: ["127.0.0.1:{server.port}"]}}
            channels:
              chat: "{sink.url()}"
            feeds:
              - {{name: news, url: "{server.url("/news.xml")}"}}
              - {{name: mirror, url: "{server.url("/mirror.xml")}"}}
              - {{name: broken, url: "{server.url("/missing.xml")}"}}
            aliases:
              quake: [gempa, earthquake]
            rules:
              - {{name: gempa, query: "@quake", notify: chat}}
              - {{name: kim-putin, query: '"Kim Jong Un" AND Putin', notify: chat}}
              - {{name: idle, query: tsunami, notify: chat, enabled: false}}
            """
        )
        + extra
    )
    server.route("/missing.xml", status=500, body=b"<b>down</b>")
    # Feeds are polled at once: the mirror's items come a poll later, so they are the ones
    # that join the news feed's stories, whichever feed answers first.
    server.route("/mirror.xml", body=rss([], title="Mirror"))
    main(["-c", str(cfg), "once"])  # exits 1: the broken feed fails, as it should
    server.route("/mirror.xml", body=rss(entries_mirror(), title="Mirror"))
    main(["-c", str(cfg), "once"])
    return cfg
