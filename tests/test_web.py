"""The web view through the real listener (``metrics.start_server`` on a loopback port) over a
state the real ``once`` command made from loopback feeds: every endpoint, bad input, the token,
the escaping corpus, and the Atom feed checked by feedparser and by the RFC 4287 schema."""

from __future__ import annotations

import asyncio
import html.parser
import json
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import aiohttp
import feedparser
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from monitor import metrics
from monitor.cli import main
from monitor.config import Config, load_config
from monitor.errors import ConfigError
from monitor.rules import parse_query
from monitor.store import SqliteStore as Store
from monitor.web.app import CSP
from monitor.web.backtest import backtest, segments
from monitor.web.views import clean_text, safe_href
from tests.feeds import Entry, rss
from tests.feedserver import FeedServer
from tests.proptest import examples
from tests.sinks import JsonSink
from tests.webstate import HOSTILE_TITLES, entries_mirror, populate

ATOM = "{http://www.w3.org/2005/Atom}"
TOKEN = "0123456789abcdef-web-token"


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    text: str


def fetch(
    config: Config, *requests: tuple[str, str], headers: dict[str, str] | None = None
) -> list[Reply]:
    """Start the real listener for ``config``, send ``(method, path)`` requests, stop it."""

    async def run() -> list[Reply]:
        runner = await metrics.start_server(
            "127.0.0.1", 0, store=lambda: Store(":memory:"), healthy=lambda: None,
            config=lambda: config,
        )  # fmt: skip
        port = runner.addresses[0][1]
        out = []
        try:
            async with aiohttp.ClientSession() as session:
                for method, path in requests:
                    url = f"http://127.0.0.1:{port}{path}"
                    async with session.request(method, url, headers=headers) as r:
                        out.append(Reply(r.status, dict(r.headers), await r.text()))
        finally:
            await runner.cleanup()
        return out

    return asyncio.run(run())


def get(config: Config, path: str, **kw: Any) -> Reply:
    return fetch(config, ("GET", path), **kw)[0]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Config, FeedServer]]:
    server = FeedServer().start()
    sink = JsonSink()
    sink.start()
    try:
        cfg = populate(tmp_path_factory.mktemp("web"), server, sink)
        yield load_config(cfg), server
    finally:
        server.close()
        sink.stop()


@pytest.fixture
def config(site: tuple[Config, FeedServer]) -> Config:
    return site[0]


# -- the HTML checker: what markup a page may contain ------------------------------------------

ALLOWED_TAGS = {
    *("html", "head", "meta", "title", "style", "link", "body", "header", "main", "strong"),
    *("a", "span", "h1", "h2", "p", "div", "table", "thead", "tbody", "tr", "th", "td"),
    *("svg", "rect", "code", "form", "label", "textarea", "button", "input", "ol", "ul", "li"),
    *("mark", "pre"),
}


class Markup(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def check_markup(page: str) -> Markup:
    """Only the templates' own elements and attributes; links only http(s) or relative."""
    parsed = Markup()
    parsed.feed(page)
    for tag, attrs in parsed.tags:
        assert tag in ALLOWED_TAGS, tag
        for name, value in attrs.items():
            assert not name.startswith("on"), (tag, name)
            assert name not in ("style", "src", "srcdoc", "formaction"), (tag, name)
            if name in ("href", "action"):
                assert value is not None
                assert value.startswith(("http://", "https://", "./", "../", "rules/")) or (
                    "://" not in value and ":" not in value.split("/")[0]
                ), value
    return parsed


# -- the status page ---------------------------------------------------------------------------


def test_status_page_shows_feeds_rules_outbox_and_reload(config: Config) -> None:
    with Store(config.state_path) as store:
        now = datetime.now(UTC)
        store.daemon_started(4242, "web-host", now)
        store.daemon_reloaded(4242, now, "failed: <b>bad</b> rule at x.yaml:3:1", applied=False)
    reply = get(config, "/")
    assert reply.status == 200
    assert reply.headers["Content-Type"] == "text/html; charset=utf-8"
    page = check_markup(reply.text)
    text = " ".join(" ".join(page.text).split())
    for feed in ("news", "mirror", "broken"):
        assert feed in text
    assert "erroring" in text and "HTTP 500: Internal Server Error" in text
    assert "failed: <b>bad</b> rule at x.yaml:3:1" in text  # shown as text, not markup
    # Items per day: an inline SVG chart, today's bar holding the news feed's items.
    assert "8 items in 14 days" in reply.text
    assert 'href="rules/gempa"' in reply.text and 'href="rules/gempa.atom"' in reply.text
    rows = _rule_rows(reply.text)
    assert rows == {
        "gempa": ("7", "7", False),
        "kim-putin": ("2", "2", False),
        "idle": ("0", "0", True),
    }
    assert "0 alert(s) waiting for delivery; 0 dead letter(s)" in text
    assert "pid 4242 on web-host" in text


def _rule_rows(page: str) -> dict[str, tuple[str, str, bool]]:
    """The rules table: name -> (hits 24 h, hits 7 d, disabled)."""
    import lxml.html

    doc = lxml.html.fromstring(page)
    out = {}
    for tr in doc.xpath('//h2[@id="rules"]/following-sibling::div[1]//tbody/tr'):
        cells = tr.findall("td")
        name = cells[0].findtext("a")
        out[name] = (
            cells[1].text_content(),
            cells[2].text_content(),
            "disabled" in cells[0].text_content(),
        )
    return out


def test_every_page_has_the_security_headers_and_works_without_javascript(config: Config) -> None:
    for path in ("/", "/rules/gempa", "/preview?q=gempa", "/rules/nope"):
        reply = get(config, path)
        assert reply.headers["Content-Security-Policy"] == CSP
        assert "script-src" not in CSP and "default-src 'none'" in CSP
        assert reply.headers["X-Content-Type-Options"] == "nosniff"
        assert reply.headers["Referrer-Policy"] == "no-referrer"
        assert "<script" not in reply.text
        assert 'name="viewport"' in reply.text


# -- a rule's page and its Atom feed -----------------------------------------------------------


def test_rule_page_groups_hits_by_story_and_marks_the_matched_terms(config: Config) -> None:
    reply = get(config, "/rules/gempa")
    assert reply.status == 200
    check_markup(reply.text)
    assert "7 in 6 stories" in reply.text
    # The Bali quake from two outlets is one story: the first report, then the one that joined.
    story = next(s for s in reply.text.split('<li class="story">') if "guncang Bali" in s)
    assert "Outlet A" in story and "Outlet B" in story and 'class="members"' in story
    assert "<mark>Gempa</mark> M5,1 guncang Bali, warga panik" in story
    assert "headlines agree" in story  # why it joined
    # The rule's query, ready to preview.
    assert '<textarea id="q" name="q"' in reply.text and ">@quake</textarea>" in reply.text
    assert 'action="../preview"' in reply.text


def test_unknown_rule_is_404(config: Config) -> None:
    for path in ("/rules/nope", "/rules/nope.atom", "/rules/%3Cscript%3E"):
        reply = get(config, path)
        assert reply.status == 404, path
        check_markup(reply.text)
    assert "no rule &#39;&lt;script&gt;&#39;" in get(config, "/rules/%3Cscript%3E").text


@cache
def atom_schema() -> etree.RelaxNG:
    """RFC 4287's RELAX NG schema (Appendix B), converted from the compact syntax."""
    import rnc2rng

    rng = rnc2rng.dumps(rnc2rng.load(str(Path(__file__).parent / "data" / "atom.rnc")))
    # rnc2rng declares the empty namespace as a prefix, which XML does not allow.
    return etree.RelaxNG(etree.fromstring(rng.replace('xmlns:local=""', "").encode()))


def check_atom(body: str) -> etree._Element:
    """Valid by the schema, by feedparser, and by the rules the schema cannot say (§4.1)."""
    root = etree.fromstring(body.encode())  # strict: any well-formedness error raises
    schema = atom_schema()
    assert schema.validate(root), schema.error_log
    parsed = feedparser.parse(body.encode())
    assert not parsed.bozo, parsed.get("bozo_exception")
    assert parsed.version == "atom10"
    assert root.find(f"{ATOM}author/{ATOM}name") is not None  # so entries need none
    ids = [e.findtext(f"{ATOM}id") for e in root.iter(f"{ATOM}entry")]
    assert len(ids) == len(set(ids)) and all(i and i.startswith("urn:uuid:") for i in ids)
    for entry in root.iter(f"{ATOM}entry"):
        alternate = [
            link
            for link in entry.findall(f"{ATOM}link")
            if link.get("rel", "alternate") == "alternate"
        ]
        assert alternate or entry.find(f"{ATOM}content") is not None  # §4.1.1.1
        assert entry.find(f"{ATOM}content").get("type") == "text"  # type: ignore[union-attr]
    assert [e.title for e in parsed.entries] == [
        e.findtext(f"{ATOM}title") for e in root.iter(f"{ATOM}entry")
    ]
    return root


def test_atom_feed_is_valid_with_one_entry_per_story(config: Config) -> None:
    reply = get(config, "/rules/gempa.atom")
    assert reply.status == 200
    assert reply.headers["Content-Type"] == "application/atom+xml; charset=utf-8"
    root = check_atom(reply.text)
    entries = root.findall(f"{ATOM}entry")
    assert len(entries) == 6
    titles = [e.findtext(f"{ATOM}title") for e in entries]
    for hostile in HOSTILE_TITLES:
        assert clean_text(hostile) in titles  # exactly the feed's text, as text
    bali = next(e for e in entries if e.findtext(f"{ATOM}title") == "Gempa M5,1 guncang Bali")
    outlets = [c.get("term") for c in bali.findall(f"{ATOM}category")]
    assert outlets == ["Outlet A", "Outlet B"]
    assert bali.findtext(f"{ATOM}summary") == "2 outlet(s): Outlet A, Outlet B."
    summary = bali.findtext(f"{ATOM}content") or ""
    assert summary.startswith("2 outlet(s): Outlet A, Outlet B. Matched: Gempa.\n- Gempa M5,1")
    assert bali.find(f"{ATOM}link").get("href") == "https://a.example/gempa-bali"  # type: ignore[union-attr]
    self_link = root.find(f"{ATOM}link[@rel='self']")
    assert self_link is not None and self_link.get("href", "").endswith("/rules/gempa.atom")
    # An entry without an http(s) link (the feed's javascript: link was dropped) has none.
    maluku = next(e for e in entries if e.findtext(f"{ATOM}title") == "Gempa di Maluku")
    assert maluku.find(f"{ATOM}link") is None


def test_atom_entry_is_updated_when_an_outlet_joins(
    tmp_path: Path, feed_server: FeedServer, json_sink: JsonSink
) -> None:
    cfg = load_config(populate(tmp_path, feed_server, json_sink))

    def bali() -> etree._Element:
        root = check_atom(get(cfg, "/rules/gempa.atom").text)
        return next(
            e for e in root.iter(f"{ATOM}entry") if "Bali" in (e.findtext(f"{ATOM}title") or "")
        )

    before = bali()
    joined = Entry("Gempa M5,1 guncang Bali, BMKG", "https://c.example/gb", source="Outlet C")
    feed_server.route("/mirror.xml", body=rss([joined, *entries_mirror()], title="Mirror"))
    main(["-c", str(cfg.path), "once"])
    after = bali()
    assert after.findtext(f"{ATOM}id") == before.findtext(f"{ATOM}id")  # the same entry
    assert [c.get("term") for c in after.findall(f"{ATOM}category")] == [
        "Outlet A",
        "Outlet B",
        "Outlet C",
    ]
    assert after.findtext(f"{ATOM}updated", "") >= before.findtext(f"{ATOM}updated", "")
    assert after.findtext(f"{ATOM}published") == before.findtext(f"{ATOM}published")


def test_atom_of_a_rule_without_hits_is_valid_and_empty(config: Config) -> None:
    root = check_atom(get(config, "/rules/idle.atom").text)
    assert root.findall(f"{ATOM}entry") == []


def test_text_that_xml_cannot_carry_is_dropped() -> None:
    assert clean_text("a\x00b\x0bc\x1fd\ufffee\x7f") == "abcde"
    assert clean_text("tab\tnew\nline\r") == "tab\tnew\nline\r"
    assert safe_href("javascript:alert(1)") is None
    assert safe_href(" JaVaScRiPt:alert(1)") is None
    assert safe_href("data:text/html,x") is None
    assert safe_href("https://x.example/a?b") == "https://x.example/a?b"


# -- the preview -------------------------------------------------------------------------------


def test_preview_shows_matches_and_how_they_cluster(config: Config) -> None:
    reply = get(config, "/preview?q=gempa+OR+putin")
    assert reply.status == 200
    check_markup(reply.text)
    assert "9 of 10 items matched, in 7 stories" in reply.text
    story = next(s for s in reply.text.split('<li class="story">') if "Vladivostok" in s)
    assert "<mark>Putin</mark> to meet Kim Jong Un" in story
    assert "joins: 1.00 headlines agree" in story
    # Aliases from the config work as in a rule; `since` narrows the window.
    assert "7 of 10 items matched" in get(config, "/preview?q=%40quake").text
    narrow = get(config, "/preview?q=gempa&since=1h")
    assert (
        narrow.status == 200
        and 'id="summary"' in narrow.text
        and "Items are kept" not in narrow.text
    )
    wide = get(config, "/preview?q=gempa&since=30d")
    assert wide.status == 200 and "Items are kept for 7d (web.keep_items)" in wide.text
    # No query: the form alone.
    empty = get(config, "/preview")
    assert empty.status == 200 and 'id="summary"' not in empty.text


def test_preview_of_a_query_that_does_not_parse_is_400_with_the_column(config: Config) -> None:
    reply = get(config, "/preview?q=gempa+AND+%28")
    assert reply.status == 400
    check_markup(reply.text)
    assert "query:1:" in reply.text and "Traceback" not in reply.text
    err = parse_query_error("gempa AND (")
    assert f"query:1:{err}:" in reply.text
    assert f"^ column {err}" in reply.text
    bad_since = get(config, "/preview?q=gempa&since=soon")
    assert bad_since.status == 400 and "since: invalid duration" in bad_since.text


def parse_query_error(q: str) -> int:
    from monitor.rules import QueryError

    try:
        parse_query(q)
    except QueryError as e:
        return e.column
    raise AssertionError("it parsed")


def test_huge_queries_are_414(config: Config) -> None:
    ok = "gempa " + "x" * (4096 - 6)
    assert len(ok.encode()) == 4096
    assert get(config, f"/preview?q={ok}").status == 200
    for q in ("x" * 4097, "é" * 2049, "gempa " * 3000):
        assert get(config, f"/preview?q={q}").status == 414, len(q)
    assert get(config, f"/preview?q=gempa&pad={'y' * 20000}").status == 414


def test_nothing_changes_state(config: Config) -> None:
    def snapshot() -> tuple[Any, ...]:
        with Store(config.state_path, readonly=True) as s:
            now = datetime.now(UTC)
            week = now - timedelta(days=7)
            return (
                s.recent_span(week),
                s.outbox_summary(),
                s.rule_hits(week),
                [f.last_attempt_at for f in s.feed_states()],
                len(s.story_members(week)),
            )

    before = snapshot()
    paths = ("/", "/rules/gempa", "/rules/gempa.atom", "/preview", "/metrics", "/healthz")
    replies = fetch(
        config,
        *(("GET", p) for p in (*paths, "/preview?q=gempa")),
        *((m, p) for m in ("POST", "PUT", "DELETE", "PATCH") for p in paths),
    )
    assert [r.status for r in replies[:7]] == [200] * 7
    assert {r.status for r in replies[7:]} == {405}
    assert snapshot() == before


def test_backtest_prefilter_finds_exactly_what_a_scan_finds(config: Config) -> None:
    since = datetime.now(UTC) - timedelta(days=7)
    queries = [
        "gempa",
        "guncang*",
        '"Kim Jong Un" AND Putin',
        "gempa -bali",
        "title:putin OR summary:tebal",
        "Vladivostk~",  # fuzzy: keyed by pieces of the word
        "lang:en OR feed:mirror",
        "(gempa OR cuaca) AND NOT lombok",
        "gempa OR cuaca OR putin OR tebal OR mirror OR maluku",  # past MAX_LIKE_PATTERNS
    ]
    with Store(config.state_path, readonly=True) as store:
        for q in queries:
            query = parse_query(q, config.aliases)
            fast = backtest(store, query, since=since, window=timedelta(hours=48))
            slow = backtest(store, query, since=since, window=timedelta(hours=48), prefilter=False)
            assert [m.item.key for s in fast.stories for m in s.all] == [
                m.item.key for s in slow.stories for m in s.all
            ], q
            assert fast.read <= slow.read == slow.searched
            assert fast.indexed, q
    assert segments("abcdef", [(1, 3), (2, 4), (5, 9)]) == [
        ("a", False),
        ("bcd", True),
        ("e", False),
        ("f", True),
    ]


def test_recent_items_are_pruned_by_age_and_by_count(config: Config, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "copy.db"
    shutil.copy(config.state_path, copy)
    with Store(copy) as store:
        now = datetime.now(UTC)
        n, _ = store.recent_span(now - timedelta(days=1))
        assert n == 10
        assert store.prune_recent(now, timedelta(days=7), 1000) == 0
        assert store.prune_recent(now, timedelta(days=7), 4) >= 6
        assert 0 < store.recent_span(now - timedelta(days=1))[0] <= 4
        assert store.prune_recent(now + timedelta(days=8), timedelta(days=7), 1000) > 0
        assert store.recent_span(now - timedelta(days=30))[0] == 0


def test_needles_and_like_patterns() -> None:
    from monitor.web.backtest import like_patterns, needles

    assert needles(parse_query("a_b")) in ([" a "], [" b "])  # `_` is no letter
    assert needles(parse_query("ruwet* OR gempa")) == [" gempa ", " ruwet"]
    assert needles(parse_query("shoigu~")) == ["igu", "sho"]  # 1 edit: one of 2 pieces stays
    assert needles(parse_query("vladimirr~2")) == ["dim", "irr", "vla"]
    assert like_patterns([" a_b ", "100%", "x\\y"]) == ["% a\\_b %", "%100\\%%", "%x\\\\y%"]


# -- the token ---------------------------------------------------------------------------------


def token_config(tmp: Path, listen: str = "127.0.0.1:9464", token: str = TOKEN) -> Path:
    (tmp / "token").write_text(token + "\n")
    cfg = tmp / "m.yaml"
    cfg.write_text(
        textwrap.dedent(
            f"""\
            state: state.db
            metrics: {{listen: "{listen}"}}
            web: {{token_file: token}}
            channels: {{c: "json://127.0.0.1:9/x"}}
            rules:
              - {{name: r, query: q, notify: c}}
            """
        )
    )
    return cfg


def test_with_a_token_every_endpoint_asks_for_it(tmp_path: Path) -> None:
    config = load_config(token_config(tmp_path), env={})
    assert config.web.token == TOKEN and TOKEN in config.secrets  # scrubbed from logs
    Store(config.state_path).close()
    paths = ["/", "/rules/r", "/rules/r.atom", "/preview?q=q", "/metrics", "/healthz"]
    for headers in (None, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
        for reply in fetch(config, *(("GET", p) for p in paths), headers=headers):
            assert reply.status == 401
            assert reply.headers["WWW-Authenticate"] == 'Bearer realm="news-monitor"'
            assert TOKEN not in reply.text
    good = {"Authorization": f"Bearer {TOKEN}"}
    assert [r.status for r in fetch(config, *(("GET", p) for p in paths), headers=good)] == [
        200
    ] * len(paths)


def test_beyond_loopback_needs_a_token(tmp_path: Path) -> None:
    cfg = token_config(tmp_path, listen="0.0.0.0:9464")
    assert load_config(cfg, env={}).metrics.host == "0.0.0.0"  # type: ignore[union-attr]
    cfg.write_text(cfg.read_text().replace("web: {token_file: token}\n", ""))
    with pytest.raises(ConfigError) as info:
        load_config(cfg, env={})
    (err,) = info.value.errors  # type: ignore[attr-defined]
    assert "m.yaml:2:19" in str(err) and "unless web.token_file is set" in str(err)


def test_token_file_errors_point_at_the_key(tmp_path: Path) -> None:
    cfg = token_config(tmp_path, token="short")
    with pytest.raises(ConfigError) as info:
        load_config(cfg, env={})
    assert "m.yaml:3:19: web.token_file: the token must be at least 16" in str(
        info.value.errors[0]  # type: ignore[attr-defined]
    )
    (tmp_path / "token").unlink()
    with pytest.raises(ConfigError) as info:
        load_config(cfg, env={})
    assert "m.yaml:3:19: web.token_file: cannot read" in str(info.value.errors[0])  # type: ignore[attr-defined]
    cfg.write_text(cfg.read_text().replace("{token_file: token}", "{keep_items: 10m}"))
    with pytest.raises(ConfigError) as info:
        load_config(cfg, env={})
    assert "keep_items: must be between 1h and 90d" in str(info.value.errors[0])  # type: ignore[attr-defined]


# -- the command -------------------------------------------------------------------------------


def test_backtest_command(config: Config, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = str(config.path)
    assert main(["-c", cfg, "backtest", "gempa", "--since", "3d"]) == 0
    out, err = capsys.readouterr()
    assert "Gempa M5,1 guncang Bali\n" in out and "  + 0.86  Gempa M5,1 guncang Bali, warga" in out
    assert "7 of 10 items since" in err and "matched, in 6 stories" in err
    assert main(["-c", cfg, "backtest", "@quake", "--json"]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    bali = next(r for r in records if r["title"] == "Gempa M5,1 guncang Bali")
    assert bali["outlets"] == ["Outlet A", "Outlet B"] and bali["matched"] == ["Gempa"]
    assert bali["members"][0]["similarity"] == 0.86
    assert main(["-c", cfg, "backtest", "tsunami"]) == 1
    assert main(["-c", cfg, "backtest", "gempa AND ("]) == 2
    err = capsys.readouterr().err
    column = parse_query_error("gempa AND (")
    assert f"query:1:{column}:" in err and "\n  gempa AND (\n" + " " * (column + 1) + "^" in err
    assert main(["-c", cfg, "backtest", "gempa", "--since", "soon"]) == 2
    assert main(["-c", cfg, "backtest", "gempa", "--since", "30d"]) == 0
    assert "items are kept for 7d (web.keep_items)" in capsys.readouterr().err


# -- the prefilter never changes the answer ------------------------------------------------------

VOCAB = [
    "gempa",
    "Gémpa",
    "bali",
    "putin",
    "Putín",
    "kim",
    "jong",
    "un",
    "푸틴과",
    "习近平",
    "rusia",
]
VOCAB += ["rusian", "vladimir", "vladimr", "banjir", "o'neil", "e-mail", "100%", "a_b"]


@settings(max_examples=examples(60), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    titles=st.lists(st.lists(st.sampled_from(VOCAB), min_size=1, max_size=6), max_size=25),
    terms=st.lists(
        st.sampled_from(
            [*VOCAB[:8], "rus*", "vladimir~", "bali~", '"kim jong un"', "푸틴", "近平"]
        ),
        min_size=1,
        max_size=7,
    ),
    joiner=st.sampled_from([" OR ", " AND ", " "]),
    exclude=st.sampled_from(["", " -bali", " AND NOT banjir"]),
)
def test_prefilter_matches_what_a_scan_matches(
    titles: list[list[str]], terms: list[str], joiner: str, exclude: str
) -> None:
    from monitor.poll import recent_item
    from monitor.store import PollRecord

    now = datetime(2026, 12, 3, tzinfo=UTC)
    q = "(" + joiner.join(terms) + ")" + exclude
    try:
        query = parse_query(q)
    except Exception:
        return
    recent = [
        recent_item(
            f"k{i}",
            _item(" ".join(words), " ".join(reversed(words))),
            now - timedelta(minutes=i),
        )
        for i, words in enumerate(titles)
    ]
    with Store(":memory:") as store:
        store.record_poll(
            PollRecord("f", now, 200, None, None, None, now, None, [], [], [], [], recent=recent)
        )
        since = now - timedelta(days=1)
        fast = backtest(store, query, since=since, window=timedelta(hours=48))
        slow = backtest(store, query, since=since, window=timedelta(hours=48), prefilter=False)
    keys = sorted(m.item.key for s in fast.stories for m in s.all)
    assert keys == sorted(m.item.key for s in slow.stories for m in s.all), q


def _item(title: str, summary: str) -> Any:
    from monitor.parse import FeedItem

    return FeedItem("id", None, title, summary, None, None, None, "f", "id")
