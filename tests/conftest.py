"""Shared fixtures: the loopback feed server and the apprise sinks (json://, mailto://)."""

from __future__ import annotations

import pytest
from hypothesis import settings

from tests.proptest import QUICK, QUICK_FLOOR

pytest_plugins = ["tests.feedserver", "tests.sinks", "tests.pgserver"]


# Tests that take seconds of one worker each start first, so pytest-xdist does not leave one of
# them running alone at the end of the run (the order of tests is otherwise unchanged).
FIRST = ("test_rules_properties.py", "test_browser.py", "test_crash.py", "test_scale_out.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: item.path.name not in FIRST)


if QUICK:  # make quick: tests without a count of their own get the floor of examples()
    settings.register_profile("quick", max_examples=QUICK_FLOOR)
    settings.load_profile("quick")
