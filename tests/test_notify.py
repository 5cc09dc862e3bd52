"""Delivery through apprise to real loopback servers (HTTP JSON sink, aiosmtpd), no mocks."""

from __future__ import annotations

import logging
import string
import unicodedata
import zoneinfo
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.errors import ConfigError
from monitor.notify import (
    BODY_MAX,
    TITLE_MAX,
    AlertMessage,
    Channel,
    outcome_lines,
    redact,
    register_console_scheme,
    render,
    sample_alert,
    validate_url,
)

if TYPE_CHECKING:
    # The fixtures themselves are loaded by tests/conftest.py.
    from tests.feedserver import closed_port
from tests.feedserver import closed_port
from tests.proptest import examples
from tests.sinks import JsonSink, SmtpServer

WITA = zoneinfo.ZoneInfo("Asia/Makassar")

ALERT = AlertMessage(
    rule="kim-putin",
    title="Ingin Temui Putin, Kim Jong Un Siapkan Kereta Lapis Baja",
    link="https://www.kompas.com/global/read/2026/11/25/kim-putin",
    source="Kompas.com",
    feed="kompas-global",
    published=datetime(2026, 11, 25, 6, 3, tzinfo=UTC),
    matched=("Kim Jong Un", "Putin"),
)


# ---------------------------------------------------------------------------------------------
# render


def test_render_shows_rule_title_source_time_link_and_terms() -> None:
    title, body = render(ALERT, WITA)
    assert title == "[kim-putin] Ingin Temui Putin, Kim Jong Un Siapkan Kereta Lapis Baja"
    assert body.splitlines() == [
        "Kompas.com (feed: kompas-global)",
        "2026-11-25 14:03 WITA",
        "https://www.kompas.com/global/read/2026/11/25/kim-putin",
        "matched: Kim Jong Un, Putin",
    ]


def test_render_uses_the_configured_time_zone() -> None:
    _, body = render(ALERT, zoneinfo.ZoneInfo("Asia/Jakarta"))
    assert "2026-11-25 13:03 WIB" in body.splitlines()


def test_render_without_optional_fields_falls_back_to_the_feed_name() -> None:
    alert = AlertMessage("r", "t", None, None, "antara", None, ())
    assert render(alert, WITA) == ("[r] t", "antara")


@pytest.mark.parametrize(
    "link", ["javascript:alert(1)", "data:text/html,x", "file:///etc/passwd", "//evil", "x" * 50]
)
def test_render_drops_links_that_are_not_http(link: str) -> None:
    alert = AlertMessage("r", "t", link, "s", "f", None, ())
    _, body = render(alert, WITA)
    assert link not in body
    assert body == "s (feed: f)"


def test_render_strips_terminal_escapes_and_bidi_overrides() -> None:
    alert = AlertMessage(
        "r\n",
        "Harga \u202egnp.exe\u202c naik\x1b[2J\x00\r\nlagi\u2028hari\u200fini",
        None,
        "Tem\u2066po",
        "f",
        None,
        ("Harga\u200b",),
    )
    title, body = render(alert, WITA)
    # Controls become spaces (they often stand for line breaks), format characters vanish.
    assert title == "[r] Harga gnp.exe naik [2J lagi hariini"
    assert body == "Tempo (feed: f)\nmatched: Harga"


_NASTY = st.sampled_from(
    list("\x00\x07\x1b\x7f\x85\u200b\u200d\u200e\u200f\u202a\u202b\u202c\u202d\u202e")
    + list("\u2066\u2067\u2068\u2069\u2028\u2029\ufeff\r\n\t\v\f ")
    + ["\ud800"]
)
_TEXT = st.text(alphabet=st.one_of(st.characters(), _NASTY), max_size=3000)


@settings(max_examples=examples(200), deadline=None)
@given(
    rule=_TEXT,
    title=_TEXT,
    link=st.one_of(st.none(), _TEXT, _TEXT.map(lambda s: "https://example.com/" + s)),
    source=st.one_of(st.none(), _TEXT),
    feed=_TEXT,
    matched=st.lists(_TEXT, max_size=30).map(tuple),
    published=st.one_of(st.none(), st.datetimes(timezones=st.just(UTC))),
)
def test_render_never_passes_control_characters_and_caps_lengths(
    rule: str,
    title: str,
    link: str | None,
    source: str | None,
    feed: str,
    matched: tuple[str, ...],
    published: datetime | None,
) -> None:
    alert = AlertMessage(rule, title, link, source, feed, published, matched)
    out_title, out_body = render(alert, WITA)
    assert len(out_title) <= TITLE_MAX
    assert len(out_body) <= BODY_MAX
    assert out_title.startswith("[")
    for ch in out_title:
        assert unicodedata.category(ch) not in ("Cc", "Cf", "Cs", "Zl", "Zp"), repr(ch)
    for ch in out_body:
        if ch != "\n":
            assert unicodedata.category(ch) not in ("Cc", "Cf", "Cs", "Zl", "Zp"), repr(ch)
    for line in out_body.split("\n") if out_body else []:
        assert line == line.strip()
        assert "  " not in line
        assert line  # no blank lines


# ---------------------------------------------------------------------------------------------
# validate_url / redact


@pytest.mark.parametrize("url", ["notaurl", "foo://bar", "", "   ", "json://", "tgram://x"])
def test_validate_url_rejects_garbage_with_a_message(url: str) -> None:
    message = validate_url(url)
    assert message


def test_validate_url_names_the_unknown_scheme() -> None:
    assert validate_url("foo://bar") == "unknown notification scheme 'foo://'"


def test_validate_url_rejects_several_urls_in_one_entry() -> None:
    assert "found 2" in (validate_url("json://a.example json://b.example") or "")


def test_validate_url_message_never_echoes_the_url() -> None:
    message = validate_url("tgram://supersecrettokenvalue") or ""
    assert message
    assert "supersecret" not in message


@pytest.mark.parametrize(
    "url",
    [
        "console://",
        "console://?stream=stderr",
        "json://127.0.0.1:8080/hook",
        "tgram://123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/-1001234",
        "mailtos://user:pw-123456@example.com",
        "ntfy://ntfy.sh/news-monitor-topic",
        "slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ/#general",
        "discord://4174216298/JHMHI8qBe7bk2ZwO5U711o3dV_js",
        "matrixs://bot:pw-123456@matrix.org/#alerts:matrix.org",
    ],
)
def test_validate_url_accepts_real_service_urls(url: str) -> None:
    assert validate_url(url) is None


@pytest.mark.parametrize(
    ("url", "secrets"),
    [
        (
            "tgram://123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/-1001234",
            ["AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw", "123456789"],
        ),
        ("mailtos://user:hunter2pass@example.com", ["hunter2pass"]),
        ("mailto://user:hunter2pass@127.0.0.1:2525?mode=insecure&from=a@b.id", ["hunter2pass"]),
        ("json://user:hunter2pass@host.example:8080/x", ["hunter2pass"]),
        ("ntfy://user:hunter2pass@ntfy.sh/topic", ["hunter2pass"]),
        ("matrixs://bot:hunter2pass@matrix.org/#room", ["hunter2pass"]),
        (
            "slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ/#general",
            ["TIiajkdnlazkcOXrIdevi7FQ"],
        ),
        ("discord://4174216298/JHMHI8qBe7bk2ZwO5U711o3dV_js", ["JHMHI8qBe7bk2ZwO5U711o3dV_js"]),
        ("foo://user:hunter2pass@host", ["hunter2pass"]),  # unparseable: fallback
        ("json://user:hunter2pass@", ["hunter2pass"]),  # rejected by apprise: fallback
    ],
)
def test_redact_hides_tokens_and_passwords(url: str, secrets: list[str]) -> None:
    redacted = redact(url)
    assert redacted.split("://")[0] == url.split("://")[0]
    for secret in secrets:
        assert secret not in redacted


_SECRET = st.text(alphabet=string.ascii_letters + string.digits, min_size=8, max_size=40)


@settings(max_examples=examples(100), deadline=None)
@given(password=_SECRET, scheme=st.sampled_from(["json", "jsons", "mailto", "mailtos", "ntfy"]))
def test_redact_never_contains_the_password(password: str, scheme: str) -> None:
    url = f"{scheme}://alice:{password}@host.example.com/topic"
    # A "password" such as "starttls" can be a word the redacted form always holds
    # (mode=starttls): what must not appear is anything that came from the password.
    fixed = redact(f"{scheme}://alice:Qx9Qx9Qx9Qx9@host.example.com/topic")
    assert password not in redact(url) or password in fixed


@settings(max_examples=examples(100), deadline=None)
@given(password=st.text(alphabet=string.printable.strip(), min_size=8, max_size=40))
def test_redact_never_contains_a_quoted_password(password: str) -> None:
    quoted = quote(password, safe="")
    redacted = redact(f"json://alice:{quoted}@host.example.com:8080/x")
    assert password not in redacted
    assert quoted not in redacted


@settings(max_examples=examples(100), deadline=None)
@given(
    bot_id=st.integers(min_value=10_000_000, max_value=9_999_999_999),
    secret=st.text(alphabet=string.ascii_letters + string.digits + "_-", min_size=35, max_size=35),
)
def test_redact_never_contains_a_telegram_token(bot_id: int, secret: str) -> None:
    redacted = redact(f"tgram://{bot_id}:{secret}/-1001234")
    assert secret not in redacted
    assert str(bot_id) not in redacted


def test_register_console_scheme_is_idempotent() -> None:
    register_console_scheme()
    register_console_scheme()
    assert validate_url("console://") is None
    assert logging.getLogger("apprise").level == logging.WARNING


def test_channel_rejects_a_bad_url_without_echoing_it() -> None:
    with pytest.raises(ConfigError) as excinfo:
        Channel("phone", ["console://", "tgram://leakytokenvalue"])
    assert "phone" in str(excinfo.value)
    assert "#2" in str(excinfo.value)
    assert "leakytoken" not in str(excinfo.value)


def test_channel_needs_at_least_one_url() -> None:
    with pytest.raises(ConfigError):
        Channel("empty", [])


# ---------------------------------------------------------------------------------------------
# delivery to real loopback servers


def test_json_target_receives_the_rendered_alert(json_sink: JsonSink) -> None:
    channel = Channel("phone", [json_sink.url()])
    title, body = render(ALERT, WITA)

    result = channel.deliver(title, body)

    assert result.ok
    assert not result.nomatch
    assert [t.ok for t in result.targets] == [True]
    assert result.targets[0].url == channel.redacted_urls()[0]
    (request,) = json_sink.wait_for(1)
    assert request.path == "/notify"
    assert request.title == "[kim-putin] Ingin Temui Putin, Kim Jong Un Siapkan Kereta Lapis Baja"
    assert request.message.splitlines() == [
        "Kompas.com (feed: kompas-global)",
        "2026-11-25 14:03 WITA",
        "https://www.kompas.com/global/read/2026/11/25/kim-putin",
        "matched: Kim Jong Un, Putin",
    ]


def test_mailto_with_login_reaches_the_smtp_server(smtp_server: SmtpServer) -> None:
    channel = Channel("mail", [smtp_server.url(to="ops@example.com")])
    title, body = render(ALERT, WITA)

    result = channel.deliver(title, body)

    assert result.ok, result
    (mail,) = smtp_server.wait_for(1)
    assert mail.login == smtp_server.user
    assert mail.mail_from == "alerts@example.com"
    assert mail.rcpt_tos == ("ops@example.com",)
    assert mail.subject == title
    assert "2026-11-25 14:03 WITA" in mail.text()
    assert "matched: Kim Jong Un, Putin" in mail.text()
    assert smtp_server.password not in result.targets[0].url


def test_mailto_with_a_wrong_password_fails(smtp_server: SmtpServer) -> None:
    url = smtp_server.url().replace(smtp_server.password, "wrong-password-123")
    result = Channel("mail", [url]).deliver("t", "b")
    assert not result.ok
    assert not result.targets[0].ok
    assert smtp_server.auth_failures >= 1
    assert smtp_server.messages == []
    assert "wrong-password-123" not in result.targets[0].detail


def test_a_server_error_fails_only_that_target(
    json_sink: JsonSink, capsys: pytest.CaptureFixture[str]
) -> None:
    json_sink.status = 500
    channel = Channel("phone", [json_sink.url(), "console://"])

    result = channel.deliver("the title", "the body")

    assert not result.ok
    assert not result.nomatch
    failed, console = result.targets
    assert not failed.ok
    assert failed.url == channel.redacted_urls()[0]
    assert "500" in failed.detail
    assert console.ok
    assert json_sink.wait_for(1)[0].title == "the title"  # it was attempted
    assert "the title\n    the body\n" in capsys.readouterr().out


def test_a_closed_port_fails_only_that_target(json_sink: JsonSink) -> None:
    dead = f"json://127.0.0.1:{closed_port()}/x"
    channel = Channel("phone", [dead, json_sink.url()])

    result = channel.deliver("t", "b")

    assert not result.ok
    assert [t.ok for t in result.targets] == [False, True]
    assert result.targets[0].detail.startswith("failure")
    assert json_sink.wait_for(1)[0].message == "b"


def test_no_secret_reaches_results_or_logs(
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    password = "Pw-f8e2c1d0a9b7"
    caplog.set_level(logging.DEBUG)
    channel = Channel("phone", [f"json://alice:{password}@127.0.0.1:{closed_port()}/x"])

    result = channel.deliver("t", "b")

    assert not result.ok
    assert password not in repr(result)
    assert password not in repr(channel.redacted_urls())
    assert password not in caplog.text
    captured = capsys.readouterr()
    assert password not in captured.out + captured.err


def test_console_writes_title_and_indented_body_to_stdout(
    capsys: pytest.CaptureFixture[str],
) -> None:
    title, body = render(ALERT, WITA)

    result = Channel("terminal", ["console://"]).deliver(title, body)

    assert result.ok
    assert result.targets[0].detail == "sent"
    out = capsys.readouterr().out
    assert out.splitlines() == [
        "[kim-putin] Ingin Temui Putin, Kim Jong Un Siapkan Kereta Lapis Baja",
        "    Kompas.com (feed: kompas-global)",
        "    2026-11-25 14:03 WITA",
        "    https://www.kompas.com/global/read/2026/11/25/kim-putin",
        "    matched: Kim Jong Un, Putin",
    ]


def test_console_can_write_to_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    result = Channel("terminal", ["console://?stream=stderr"]).deliver("t", "b")

    assert result.ok
    captured = capsys.readouterr()
    assert captured.err == "t\n    b\n"
    assert captured.out == ""


def test_notify_test_lines_name_each_url_and_why_it_failed(json_sink: JsonSink) -> None:
    json_sink.status = 500
    channel = Channel("phone", [json_sink.url("/hook", "alice:Pw-9c1f2e3d4b"), "console://"])
    title, body = render(sample_alert(datetime(2026, 11, 25, 6, 3, tzinfo=UTC)), WITA)

    lines = outcome_lines("phone", channel.deliver(title, body))

    assert lines[0].startswith(f"phone: FAILED json://alice:****@127.0.0.1:{json_sink.port}/hook:")
    assert "500" in lines[0]
    assert lines[1] == "phone: ok     console://"
    assert "Pw-9c1f2e3d4b" not in "\n".join(lines)
    assert (
        json_sink.wait_for(1)[0].title
        == "[notify-test] news-monitor test alert: this channel works"
    )
