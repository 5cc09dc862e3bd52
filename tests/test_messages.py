"""Chat and email rendering: Markdown, plain text, digests, limits, hostile feed text, templates;
and Channel.send against real loopback sinks (the Markdown fallback too)."""

from __future__ import annotations

import re
import unicodedata
import zoneinfo
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest

from monitor.errors import ConfigError
from monitor.notify import (
    AlertMessage,
    Channel,
    Digest,
    render,
    render_chat,
    render_email,
    set_template_dir,
)
from monitor.notify.chat import Limits
from tests.sinks import JsonSink

WITA = zoneinfo.ZoneInfo("Asia/Makassar")
T0 = datetime(2026, 11, 25, 6, 3, tzinfo=UTC)
TELEGRAM = Limits(title=0, body=4096)  # apprise's Telegram plugin: title sent inside the body
DISCORD = Limits(title=250, body=2000)

ALERT = AlertMessage(
    rule="kim-putin",
    title="Ingin Temui Putin, Kim Jong Un Siapkan Kereta Lapis Baja",
    link="https://www.kompas.com/global/read/2026/11/25/kim-putin",
    source="Kompas.com",
    feed="kompas-global",
    published=T0,
    matched=("Kim Jong Un", "Putin"),
    also=("Antara", "detikNews"),
    rules=("kim-putin", "korea"),
    story="story-1",
)


@pytest.fixture(autouse=True)
def _packaged_templates() -> Iterator[None]:
    yield
    set_template_dir(None)


# ---------------------------------------------------------------------------------------------
# chat


def test_markdown_names_every_rule_and_bolds_the_matched_terms() -> None:
    title, body = render_chat(ALERT, WITA, markdown=True, limits=DISCORD)
    assert title == (
        r"\[kim\-putin, korea\] Ingin Temui **Putin**, **Kim Jong Un** Siapkan Kereta Lapis Baja"
    )
    assert body.splitlines() == [
        r"Kompas\.com \(feed: kompas\-global\)",
        r"2026\-11\-25 14:03 WITA",
        r"[kompas\.com](https://www.kompas.com/global/read/2026/11/25/kim-putin)",
        "matched: **Kim Jong Un**, **Putin**",
        "also reported by: Antara, detikNews",
    ]


def test_plain_chat_titles_read_as_the_headline_and_list_the_terms() -> None:
    # A plain title is often a subject line or read by a machine (json://): no marks in it;
    # the body lists the matched terms (and digests mark them in «guillemets»).
    title, body = render_chat(ALERT, WITA, markdown=False, limits=DISCORD)
    assert title == "[kim-putin, korea] Ingin Temui Putin, Kim Jong Un Siapkan Kereta Lapis Baja"
    assert "matched: Kim Jong Un, Putin" in body.splitlines()
    assert "https://www.kompas.com/global/read/2026/11/25/kim-putin" in body.splitlines()
    plain_title, _ = render(ALERT, WITA)
    assert (
        plain_title == "[kim-putin, korea] Ingin Temui Putin, Kim Jong Un Siapkan Kereta Lapis Baja"
    )


def test_rule_comes_first_even_when_rules_lists_it_later() -> None:
    alert = AlertMessage("b", "t", None, None, "f", None, (), rules=("a", "b", "a"))
    assert render(alert, WITA)[0] == "[b, a] t"


def test_a_link_with_markdown_delimiters_stays_one_link() -> None:
    alert = AlertMessage("r", "t", "https://x.org/a_(b)?q=[1]", None, "f", None, ())
    _, body = render_chat(alert, WITA, markdown=True, limits=DISCORD)
    assert "[x\\.org](https://x.org/a_%28b%29?q=%5B1%5D)" in body.splitlines()


def _digest(n_per_rule: dict[str, int]) -> Digest:
    alerts = []
    for k, (rule, n) in enumerate(n_per_rule.items()):
        for i in range(n):
            alerts.append(
                AlertMessage(
                    rule,
                    f"{rule} headline {i}",
                    f"https://news.example/{rule}/{i}",
                    f"Outlet {i}",
                    "feed",
                    T0 + timedelta(minutes=10 * i + k),
                    (rule,),
                    also=("Antara",) if i == 0 else (),
                )
            )
    return Digest("phone", "08:00–09:00", tuple(alerts))


def test_digest_groups_by_rule_newest_rule_first_newest_alert_first() -> None:
    digest = _digest({"bali": 2, "korea": 3})  # korea's newest is the newest of all
    title, body = render_chat(digest, WITA, markdown=False, limits=DISCORD)
    assert title == "[digest 08:00–09:00] 5 alerts"
    lines = body.splitlines()
    assert lines[0] == "korea (3)"
    assert lines[1].startswith(
        "• «korea» headline 2 · Outlet 2 14:24 · https://news.example/korea/2"
    )
    assert [line.split(" · ")[0] for line in lines[1:4]] == [
        "• «korea» headline 2",
        "• «korea» headline 1",
        "• «korea» headline 0",
    ]
    assert lines[3].endswith("also: Antara")
    assert lines[4] == "bali (2)"
    assert render_chat(digest, WITA, markdown=True, limits=DISCORD)[1].splitlines()[0] == (
        "**korea** (3)"
    )


@pytest.mark.parametrize("markdown", [True, False])
def test_a_long_digest_is_cut_at_whole_lines_within_telegrams_limit(markdown: bool) -> None:
    digest = _digest({f"rule-{k}": 40 for k in range(5)})
    title, body = render_chat(digest, WITA, markdown=markdown, limits=TELEGRAM)
    _, whole = render_chat(digest, WITA, markdown=markdown, limits=Limits(0, 0))
    assert len(title) + 2 + len(body) <= 4096
    lines = body.splitlines()
    assert lines[:-1] == whole.splitlines()[: len(lines) - 1]  # whole lines, in order
    shown = sum(1 for line in lines if line.startswith("• "))
    assert lines[-1] == f"… ({200 - shown} more)"


def test_a_short_limit_cuts_the_title_before_escaping_never_inside_a_mark() -> None:
    alert = AlertMessage("r", "a.b.c " * 40 + "Putin", None, None, "f", None, ("Putin", "a.b"))
    title, _ = render_chat(alert, WITA, markdown=True, limits=Limits(title=60, body=2000))
    assert len(title) <= 60
    assert title.count("**") % 2 == 0
    assert not re.search(r"(?<!\\)\\$", title.removesuffix("…"))  # no dangling backslash


# ---------------------------------------------------------------------------------------------
# hostile feed text

_BIDI = "\u202e\u2066\u200f"
CORPUS = [
    AlertMessage(
        "r<script>",
        "<script>alert(1)</script> Putin",
        "javascript:alert(1)",
        '<img src=x onerror="alert(1)">',
        "f",
        T0,
        ("Putin",),
    ),
    AlertMessage(
        "r",
        "[click](javascript:alert(1)) ![img](https://evil.example/p.png) Putin",
        "https://ok.example/a",
        "S",
        "f",
        T0,
        ("Putin",),
    ),
    AlertMessage(
        "r",
        "@everyone @here <!channel> <!here> <@U123ABC> ping",
        "https://ok.example/b",
        "@room",
        "f",
        T0,
        ("ping",),
    ),
    AlertMessage("r", f"abc{_BIDI}gnp.exe\nSecond line\r\nthird", None, "S", "f", None, ()),
    AlertMessage(
        "r", "Putin " + "x" * 10_000, "https://ok.example/" + "a" * 5000, "S", "f", T0, ()
    ),
    AlertMessage(
        "r",
        '<form action="https://evil.example"><input></form><a href="data:x">d</a> *bold* `code`',
        "data:text/html,<script>alert(1)</script>",
        "S",
        "f",
        T0,
        (),
        also=("<b onmouseover=alert(1)>x</b>", "@everyone"),
    ),
]
_MENTIONS = re.compile(r"@(everyone|here|room|channel)|<!(channel|here)>|<@U123ABC>")


def _assert_no_invisibles(text: str) -> None:
    for ch in text:
        if ch != "\n":
            assert unicodedata.category(ch) not in ("Cc", "Cf", "Cs", "Zl", "Zp"), repr(ch)


@pytest.mark.parametrize("alert", CORPUS)
@pytest.mark.parametrize("markdown", [True, False])
def test_hostile_chat_text_is_inert(alert: AlertMessage, markdown: bool) -> None:
    title, body = render_chat(alert, WITA, markdown=markdown, limits=TELEGRAM)
    for text in (title, body):
        _assert_no_invisibles(text)
        assert not _MENTIONS.search(text)
    assert "\n" not in title
    assert len(title) + 2 + len(body) <= 4096
    # A link line is only ever a checked http(s) link.
    assert all(not line.startswith(("javascript", "data")) for line in body.splitlines())
    if markdown:
        # The only unescaped link syntax is ours: "[host](https://…)".
        for target in re.findall(r"(?<!\\)\]\(([^)]*)\)", title + "\n" + body):
            assert target.startswith("https://ok.example/")
        assert "<" not in re.sub(r"\\<", "", title + body)  # every angle bracket escaped
        assert not re.search(r"(?<!\\)[`!]", title + body.replace("](", ""))


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs += attrs


def assert_safe_html(html: str) -> None:
    parser = _Tags()
    parser.feed(html)
    allowed = {"html", "head", "meta", "body", "p", "br", "h2", "h3", "ul", "li", "a", "strong"}
    assert set(parser.tags) <= allowed | {"mark"}, parser.tags
    for name, value in parser.attrs:
        assert not name.startswith("on")
        if name == "href":
            assert value is not None
            assert value.startswith("https://ok.example/"), value
    assert "<script" not in html.lower()


def assert_safe_text(text: str) -> None:
    """Plain text links nothing itself: what a client could make a link of is a bare URL, and
    the only URLs standing alone on a line are checked http(s) links."""
    _assert_no_invisibles(text)
    for line in text.splitlines():
        assert not re.match(r"\s*-?\s*(javascript|data|file|vbscript):", line, re.I), line
        if re.fullmatch(r"\s*\S+:\S+", line):
            assert line.strip().startswith("https://ok.example/"), line


@pytest.mark.parametrize("alert", CORPUS)
def test_hostile_email_parts_are_inert(alert: AlertMessage) -> None:
    mail = render_email(alert, WITA, channel="mail")
    assert_safe_html(mail.html)
    assert_safe_text(mail.text)
    assert "\n" not in mail.subject
    assert len(mail.subject) <= 200
    _assert_no_invisibles(mail.subject)


def test_hostile_digest_email_is_inert() -> None:
    mail = render_email(Digest("mail", "quiet hours 22:00–06:00", tuple(CORPUS)), WITA)
    assert_safe_html(mail.html)
    assert_safe_text(mail.text)
    assert mail.subject == "[news-monitor] digest quiet hours 22:00–06:00: 6 alerts"


def test_html_escapes_feed_markup_rather_than_dropping_it() -> None:
    mail = render_email(CORPUS[0], WITA)
    assert "&lt;script&gt;alert(1)&lt;/script&gt; <mark>Putin</mark>" in mail.html


# ---------------------------------------------------------------------------------------------
# templates


def test_an_override_template_is_used_and_others_stay_packaged(tmp_path: Path) -> None:
    (tmp_path / "alert.txt").write_text("ALERT {{ alert.headline }} / {{ alert.rules[0] }}\n")
    set_template_dir(tmp_path)
    mail = render_email(ALERT, WITA)
    assert (
        mail.text == "ALERT Ingin Temui Putin, Kim Jong Un Siapkan Kereta Lapis Baja / kim-putin\n"
    )
    assert "<mark>Putin</mark>" in mail.html  # alert.html is still the packaged one


def test_an_override_cannot_smuggle_markup_into_the_html_part(tmp_path: Path) -> None:
    (tmp_path / "alert.html").write_text(
        '<p onclick="x()">{{ alert.headline | safe }}</p><img src="https://t.example/p.gif">'
    )
    set_template_dir(tmp_path)
    html = render_email(CORPUS[0], WITA).html
    assert "onclick" not in html
    assert "<img" not in html
    assert "<script" not in html


@pytest.mark.parametrize(
    ("source", "line"),
    [("ok\n{% if %}\n", 2), ("a\nb\n{{ alert.no_such_field }}\n", 3), ("{{ ''.__class__ }}", 1)],
)
def test_a_broken_override_is_a_config_error_at_its_line(
    tmp_path: Path, source: str, line: int
) -> None:
    (tmp_path / "alert.html").write_text(source)
    with pytest.raises(ConfigError) as e:
        set_template_dir(tmp_path)
    assert e.value.file == str(tmp_path / "alert.html")
    assert e.value.line == line
    assert "<mark>Putin</mark>" in render_email(ALERT, WITA).html  # the old templates stay


def test_a_missing_template_directory_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="template directory not found"):
        set_template_dir(tmp_path / "nope")


# ---------------------------------------------------------------------------------------------
# Channel.send


def test_send_gives_plain_json_text_and_markdown_only_when_asked(json_sink: JsonSink) -> None:
    Channel("phone", [json_sink.url()]).send(ALERT, WITA)
    Channel("phone", [json_sink.url() + "?format=markdown"]).send(ALERT, WITA)
    plain, md = json_sink.wait_for(2)
    assert plain.title.startswith("[kim-putin, korea] Ingin Temui Putin,")
    assert md.title.startswith(r"\[kim\-putin, korea\] Ingin Temui **Putin**")
    assert r"[kompas\.com](https://www.kompas.com/" in md.message


class MarkdownRejectingSink(JsonSink):
    """Answers 400 to a body holding Markdown, as Telegram does to markup it cannot parse."""

    reject_all = False

    @property  # type: ignore[override]
    def status(self) -> int:
        last = self.messages[-1].message if self.messages else ""
        return 400 if self.reject_all or "**" in last or "\\" in last else 200

    @status.setter
    def status(self, value: int) -> None:
        pass


@pytest.fixture
def picky_sink() -> Iterator[MarkdownRejectingSink]:
    sink = MarkdownRejectingSink()
    sink.start()
    try:
        yield sink
    finally:
        sink.stop()


def test_rejected_markdown_is_sent_once_more_as_plain_text(
    picky_sink: MarkdownRejectingSink,
) -> None:
    result = Channel("phone", [picky_sink.url() + "?format=markdown"]).send(ALERT, WITA)
    assert result.ok
    assert result.targets[0].detail == "sent as plain text"
    md, plain = picky_sink.wait_for(2)
    assert "**Putin**" in md.title
    assert plain.title.startswith("[kim-putin, korea] Ingin Temui Putin,")
    assert len(picky_sink.messages) == 2


def test_a_target_failing_both_ways_fails_after_two_tries(
    picky_sink: MarkdownRejectingSink,
) -> None:
    picky_sink.reject_all = True
    result = Channel("phone", [picky_sink.url() + "?format=markdown"]).send(ALERT, WITA)
    assert not result.ok
    assert result.targets[0].detail.startswith("markdown: ")
    assert "plain text: " in result.targets[0].detail
    assert len(picky_sink.messages) == 2


def test_plain_text_targets_are_not_retried(picky_sink: MarkdownRejectingSink) -> None:
    picky_sink.reject_all = True
    result = Channel("phone", [picky_sink.url()]).send(ALERT, WITA)
    assert not result.ok
    assert len(picky_sink.messages) == 1


def test_send_skips_urls_that_already_took_it(json_sink: JsonSink) -> None:
    channel = Channel("phone", [json_sink.url("/a"), json_sink.url("/b")])
    first = channel.send(ALERT, WITA)
    done = {t.key for t in first.targets if t.url.endswith("/a") or "/a?" in t.url}
    json_sink.wait_for(2)
    again = channel.send(ALERT, WITA, skip=done)
    assert again.ok
    (later,) = json_sink.wait_for(3)[2:]
    assert later.path == "/b"
