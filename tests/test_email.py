"""Email end to end: Channel.send to a real aiosmtpd server on loopback."""

from __future__ import annotations

import zoneinfo
from dataclasses import replace
from email.header import decode_header, make_header
from email.message import Message

import pytest

from monitor.notify import AlertMessage, Channel, Digest
from tests.sinks import SmtpServer
from tests.test_messages import ALERT, CORPUS, assert_safe_html, assert_safe_text

WITA = zoneinfo.ZoneInfo("Asia/Makassar")


def _part(message: Message, subtype: str) -> str:
    for part in message.walk():
        if part.get_content_type() == f"text/{subtype}":
            data = part.get_payload(decode=True)
            assert isinstance(data, bytes)
            # SMTP line endings are CRLF; compare with what the templates produced.
            return data.decode(part.get_content_charset() or "utf-8").replace("\r\n", "\n")
    raise AssertionError(f"no text/{subtype} part")


def _unfold(header: str) -> str:
    """The header as a reader sees it: RFC 2047 words decoded, RFC 5322 folding undone."""
    return str(make_header(decode_header(header.replace("\r\n", "").replace("\n", ""))))


def test_an_alert_is_multipart_with_the_subject_and_the_story_message_id(
    smtp_server: SmtpServer,
) -> None:
    result = Channel("mail", [smtp_server.url(to="ops@example.com")]).send(ALERT, WITA)
    assert result.ok, result
    (mail,) = smtp_server.wait_for(1)
    msg = mail.message
    assert mail.login == smtp_server.user
    assert msg.get_content_type() == "multipart/alternative"
    assert _unfold(mail.subject) == (
        "[news-monitor] kim-putin, korea: Ingin Temui Putin, Kim Jong Un Siapkan Kereta Lapis Baja"
    )
    text, html = _part(msg, "plain"), _part(msg, "html")
    assert "Ingin Temui «Putin», «Kim Jong Un» Siapkan Kereta Lapis Baja" in text
    assert "2026-11-25 14:03 WITA" in text
    assert "https://www.kompas.com/global/read/2026/11/25/kim-putin" in text
    assert "<mark>Putin</mark>" in html
    assert 'href="https://www.kompas.com/global/read/2026/11/25/kim-putin"' in html
    assert msg["Message-ID"].startswith("<story-")
    assert msg["In-Reply-To"] is None
    assert msg["To"] == "ops@example.com"
    assert msg["Auto-Submitted"] == "auto-generated"


def test_a_follow_up_replies_to_the_first_message_of_its_story(smtp_server: SmtpServer) -> None:
    channel = Channel("mail", [smtp_server.url()])
    assert channel.send(ALERT, WITA).ok
    followup = replace(
        ALERT, title="Kim arrives by armoured train", also=("Reuters",), followup=True
    )
    assert channel.send(followup, WITA).ok
    other = replace(ALERT, story="story-2")
    assert channel.send(other, WITA).ok
    first, second, third = (m.message for m in smtp_server.wait_for(3))
    assert second["In-Reply-To"] == first["Message-ID"]
    assert second["References"] == first["Message-ID"]
    assert second["Message-ID"] != first["Message-ID"]
    assert third["Message-ID"] != first["Message-ID"]  # another story, another thread
    assert "also reported" in second["Subject"]
    assert "Also reported by: Reuters" in _part(second, "plain")


@pytest.mark.parametrize("alert", CORPUS)
def test_hostile_feed_text_arrives_inert_in_both_parts(
    smtp_server: SmtpServer, alert: AlertMessage
) -> None:
    assert Channel("mail", [smtp_server.url()]).send(alert, WITA).ok
    (mail,) = smtp_server.wait_for(1)
    assert_safe_html(_part(mail.message, "html"))
    assert_safe_text(_part(mail.message, "plain"))
    assert "\n" not in _unfold(mail.subject)  # a folded header, never a broken one


def test_a_digest_is_one_mail_with_an_html_list(smtp_server: SmtpServer) -> None:
    second = replace(ALERT, title="Korea second headline", story=None)
    digest = Digest("mail", "08:00–09:00", (ALERT, second))
    assert Channel("mail", [smtp_server.url()]).send(digest, WITA).ok
    (mail,) = smtp_server.wait_for(1)
    assert _unfold(mail.subject) == "[news-monitor] digest 08:00–09:00: 2 alerts"
    html = _part(mail.message, "html")
    assert "<h3>kim-putin, korea (2)</h3>" in html
    assert html.count("<li>") == 2


def test_a_refused_login_fails_the_email_target(smtp_server: SmtpServer) -> None:
    url = smtp_server.url().replace(smtp_server.password, "wrong-password-123")
    result = Channel("mail", [url]).send(ALERT, WITA)
    assert not result.ok
    assert "wrong-password-123" not in result.targets[0].detail
    assert smtp_server.messages == []


def test_the_config_templates_shape_what_the_daemon_sends(
    tmp_path: pytest.TempPathFactory, smtp_server: SmtpServer, feed_server: object
) -> None:
    """`templates:` in the config reaches delivery: the daemon's mail uses the override."""
    import asyncio
    from pathlib import Path

    from monitor.config import load_config
    from monitor.notify import set_template_dir
    from monitor.service import Monitor
    from monitor.store import SqliteStore as Store
    from tests.feeds import Entry, rss

    tmp = Path(str(tmp_path))
    (tmp / "tpl").mkdir()
    (tmp / "tpl" / "alert.txt").write_text("FROM THE OVERRIDE: {{ alert.headline }}\n")
    server = feed_server
    server.route("/n.xml", body=rss([Entry("Gempa guncang Karangasem", "https://e/1")]))  # type: ignore[attr-defined]
    cfg = tmp / "m.yaml"
    cfg.write_text(
        f"""\
state: s.db
templates: tpl
fetch: {{allow_private: ["127.0.0.1:{server.port}"]}}
channels: {{mail: "{smtp_server.url()}"}}
feeds: [{{name: n, url: "{server.url("/n.xml")}"}}]
rules: [{{name: gempa, query: gempa, notify: mail}}]
"""  # type: ignore[attr-defined]
    )
    try:
        with Store(tmp / "s.db") as store:
            asyncio.run(Monitor(load_config(cfg), store).run_once())
        (mail,) = smtp_server.wait_for(1)
        assert "FROM THE OVERRIDE: Gempa guncang Karangasem" in _part(mail.message, "plain")
    finally:
        set_template_dir(None)
