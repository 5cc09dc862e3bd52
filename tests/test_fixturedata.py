"""Missing fixture data skips on a developer's machine and fails under CI=true."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# One test of each kind: parametrized over the fixture folder, and reading one named file.
TESTS = [
    "tests/test_fixture_feeds.py::test_every_fixture_parses_or_raises_parse_error",
    "tests/test_fixture_feeds.py::test_google_news_cluster_counts",
    "tests/test_parse_fastpath.py::test_a_good_share_of_fixtures_take_the_fast_path",
]


def run_pytest(tmp_path: Path, ci: str | None) -> tuple[int, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "PYTEST_ADDOPTS")}
    env["NEWS_MONITOR_FIXTURES"] = str(tmp_path / "no-such-folder")
    if ci is not None:
        env["CI"] = ci
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist", *TESTS],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return proc.returncode, proc.stdout


def test_missing_fixtures_skip_outside_ci(tmp_path: Path) -> None:
    code, out = run_pytest(tmp_path, None)
    assert code == 0, out
    assert re.search(r"\b3 skipped\b", out), out
    assert "no-such-folder" in out  # the reason names the missing path


def test_missing_fixtures_fail_under_ci_true(tmp_path: Path) -> None:
    code, out = run_pytest(tmp_path, "true")
    assert code == 1, out
    assert re.search(r"\b3 failed\b", out), out
    assert "CI=true: missing test data fails instead of skipping" in out
