"""Third-party captures in ``../shared/fixtures`` (next to the repository), or where
``NEWS_MONITOR_FIXTURES`` points.

A test that needs them calls :func:`require_fixtures`: a missing file skips the test on a
developer's machine, but fails it when ``CI=true``, so a CI run without the data cannot pass
by skipping everything that reads it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

FIXTURES = Path(
    os.environ.get("NEWS_MONITOR_FIXTURES")
    or Path(__file__).resolve().parents[2] / "shared" / "fixtures"
)
FEEDS = FIXTURES / "feeds"


def missing(reason: str) -> None:
    """Skip the running test, or fail it under ``CI=true``."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true: missing test data fails instead of skipping)")
    pytest.skip(reason)


def require_fixtures(path: Path = FIXTURES) -> Path:
    """``path`` (a fixture file or folder), once it is known to exist."""
    if not path.exists():
        missing(f"no fixture data at {path}")
    return path


def fixture_files(folder: Path = FEEDS) -> list[Any]:
    """Every file under ``folder`` as test parameters (id: the relative path).

    A missing folder gives one parameter, the folder itself, so the test still runs and its
    ``require_fixtures(path)`` skips or fails it rather than pytest skipping an empty set.
    """
    if not folder.is_dir():
        return [pytest.param(folder, id="missing")]
    return [
        pytest.param(p, id=str(p.relative_to(folder)))
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    ]
