"""Logs: JSON lines off a terminal, and no secret ever rendered."""

from __future__ import annotations

import io
import json

from monitor import logs
from monitor.logs import Scrubber, redact_url


def test_redact_url_hides_passwords_and_credential_parameters() -> None:
    assert redact_url("https://user:pw@host/x?api_key=abc&q=bali") == (
        "https://user:***@host/x?api_key=***&q=bali"
    )
    assert redact_url("https://host/feed?token=t0k&access_token=z") == (
        "https://host/feed?token=***&access_token=***"
    )
    assert redact_url("https://host/rss") == "https://host/rss"
    assert redact_url("not a url") == "not a url"


def test_scrubber_replaces_configured_secrets_anywhere() -> None:
    scrub = Scrubber(["s3cr3t-token", "s3cr3t"])
    event = scrub(
        None,
        "info",
        {"event": "x", "detail": "failed: tgram://s3cr3t-token/1", "list": ["a s3cr3t b"]},
    )
    assert event["detail"] == "failed: tgram://***/1"
    assert event["list"] == ["a *** b"]


def test_json_lines_and_scrubbing_end_to_end() -> None:
    out = io.StringIO()
    logs.configure(level="info", json=True, secrets=["hunter22"], stream=out)
    log = logs.get_logger()
    log.info("feed_fetched", feed="f", url="https://u:hunter22@example.org/rss?key=k9")
    log.warning("alert_failed", detail="token hunter22 refused", http_status=None)
    lines = [json.loads(x) for x in out.getvalue().splitlines()]
    assert [x["event"] for x in lines] == ["feed_fetched", "alert_failed"]
    assert "hunter22" not in out.getvalue() and "k9" not in out.getvalue()
    assert lines[0]["url"] == "https://u:***@example.org/rss?key=***"
    assert "http_status" not in lines[1]  # keys without a value are left out
    logs.configure(level="info", json=True)
