"""Shared fixtures: the loopback feed server and the apprise sinks (json://, mailto://)."""

from __future__ import annotations

pytest_plugins = ["tests.feedserver", "tests.sinks", "tests.pgserver"]
