"""The web view in a real browser: headless Chromium (Debian's ``chromium`` package, driven by
Playwright) against the real daemon's listener. Opens ``/``, follows a rule, runs a preview
with JavaScript off, and saves screenshots under ``tests/artifacts/`` (ignored by git).

Under ``CI=true`` a browser that cannot start fails the test; elsewhere it skips it.
"""

from __future__ import annotations

import os
import shutil
import signal
from pathlib import Path
from typing import Any

from tests.feedserver import FeedServer, closed_port
from tests.fixturedata import missing
from tests.sinks import JsonSink
from tests.test_cli import EventReader, start_daemon
from tests.webstate import populate

ARTIFACTS = Path(__file__).parent / "artifacts"
CHROMIUM = os.environ.get("NEWS_MONITOR_CHROMIUM", "/usr/bin/chromium")


def launch(playwright: Any) -> Any:
    """Debian's Chromium (Playwright's own download cannot be fetched here), or skip/fail."""
    if not shutil.which(CHROMIUM):
        missing(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    args = ["--no-sandbox"] if os.geteuid() == 0 else []  # the sandbox refuses to run as root
    try:
        return playwright.chromium.launch(executable_path=CHROMIUM, args=args, timeout=60_000)
    except Exception as e:
        missing(f"Chromium at {CHROMIUM} did not start: {e}")


def test_status_rule_and_preview_in_chromium(
    tmp_path: Path, feed_server: FeedServer, json_sink: JsonSink
) -> None:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing("playwright is not installed (pip install -e '.[dev]')")
    port = closed_port()
    cfg = populate(
        tmp_path, feed_server, json_sink, extra=f'metrics: {{listen: "127.0.0.1:{port}"}}\n'
    )
    proc = start_daemon(cfg)
    ARTIFACTS.mkdir(exist_ok=True)
    try:
        EventReader(proc).wait_for("metrics_listening")
        base = f"http://127.0.0.1:{port}/"
        with sync_playwright() as p:
            browser = launch(p)
            try:
                # JavaScript off: every page and the preview form must work without it.
                page = browser.new_context(java_script_enabled=False).new_page()
                page.goto(base)
                assert page.locator("h1").inner_text() == "Status"
                assert page.locator("#feeds + .scroll tbody tr").count() == 3
                page.screenshot(path=str(ARTIFACTS / "web-status.png"), full_page=True)
                page.get_by_role("link", name="gempa", exact=True).click()
                page.wait_for_url(f"{base}rules/gempa")
                assert page.locator("h1").inner_text() == "Rule gempa"
                assert page.locator("li.story").count() == 6
                assert page.locator("li.story mark").first.inner_text() == "Gempa"
                page.locator("#q").fill("gempa OR putin")
                page.get_by_role("button", name="Preview").click()
                page.wait_for_url(f"{base}preview?q=gempa+OR+putin")
                summary = page.locator("#summary").inner_text()
                assert summary.startswith("9 of 10 items matched, in 7 stories"), summary
                assert page.locator("li.story ul.members li").count() == 2
                page.screenshot(path=str(ARTIFACTS / "web-preview.png"), full_page=True)
                # A query that does not parse: the error and its column, on the page.
                page.locator("#q").fill("gempa AND (")
                page.get_by_role("button", name="Preview").click()
                page.wait_for_url("**/preview?q=gempa+AND+%28*")
                assert page.locator("#error").inner_text().startswith("query:1:")
                # Readable on a phone: nothing wider than the screen but the scrolling tables.
                phone = browser.new_context(viewport={"width": 390, "height": 844}).new_page()
                for path in ("", "rules/gempa", "preview?q=gempa"):
                    phone.goto(base + path)
                    width = phone.evaluate("document.documentElement.scrollWidth")
                    assert width <= 390, (path, width)
                phone.goto(base + "rules/gempa")
                phone.screenshot(path=str(ARTIFACTS / "web-rule-phone.png"), full_page=True)
            finally:
                browser.close()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert (ARTIFACTS / "web-preview.png").stat().st_size > 0
