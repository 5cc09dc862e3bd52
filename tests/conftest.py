"""Shared fixtures: the loopback feed server and the apprise sinks (json://, mailto://)."""

from __future__ import annotations

import os

import pytest
from hypothesis import settings

pytest_plugins = ["tests.feedserver", "tests.sinks", "tests.pgserver"]


# Tests that take seconds of one worker each start first, so pytest-xdist does not leave one of
# them running alone at the end of the run (the order of tests is otherwise unchanged).
FIRST = ("test_rules_properties.py", "test_browser.py", "test_crash.py", "test_scale_out.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: item.path.name not in FIRST)


if os.environ.get("NEWS_MONITOR_QUICK") == "1":  # make quick: see tests/proptest.py
    settings.register_profile("quick", max_examples=25)
    settings.load_profile("quick")
