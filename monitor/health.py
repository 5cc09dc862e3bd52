"""Source health: is each feed working, and does an operator need to hear about it?

A pure function of the feed's stored state and the clock, shared by ``news-monitor status``, the
exit status of ``status``, and the operator notices the daemon sends to the ``ops:`` channel.
Notices are sent when the health *changes* (a feed starts failing, goes silent, or recovers),
never once per failed poll.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from monitor.config import Feed
from monitor.store import FeedState

OK, NEW, FAILING, STALE, GONE, ERRORING = "ok", "new", "failing", "stale", "gone", "erroring"
DEGRADED = "degraded"  # polled fine, but the feed parsed only in part
PROBLEMS = frozenset({FAILING, STALE, GONE, DEGRADED})


@dataclass(frozen=True)
class Health:
    status: str  # ok | new | erroring (below threshold) | failing | stale | gone | degraded
    reason: str

    @property
    def problem(self) -> bool:
        return self.status in PROBLEMS


def assess(feed: Feed, state: FeedState, now: datetime, failure_threshold: int) -> Health:
    if state.gone:
        return Health(GONE, f"gone (HTTP 410): {state.last_error or 'removed by the server'}")
    if state.failures >= failure_threshold:
        return Health(
            FAILING, f"{state.failures} failures in a row: {state.last_error or 'unknown error'}"
        )
    if state.failures:
        return Health(ERRORING, f"{state.failures} failure(s): {state.last_error or '?'}")
    if state.first_polled_at is None:
        return Health(NEW, "not polled yet")
    if state.last_error:  # a successful poll that kept an error: the body parsed in part
        return Health(DEGRADED, state.last_error)
    since = state.last_new_item_at or state.first_polled_at
    if now - since > feed.stale_after:
        return Health(STALE, f"no new item since {since:%Y-%m-%d %H:%M} UTC ({_ago(now - since)})")
    return Health(OK, "")


def _ago(d: timedelta) -> str:
    if d >= timedelta(days=2):
        return f"{d.days} days"
    return f"{int(d.total_seconds() // 3600)} hours"


def notice(
    feed: Feed, health: Health, previous: str | None, now: datetime
) -> dict[str, Any] | None:
    """The payload of an operator notice when health changed, or None when nothing is to say."""
    if health.problem and health.status != previous:
        title = f"feed {feed.name!r} is {health.status}: {health.reason}"
    elif not health.problem and previous is not None and health.status == OK:
        title = f"feed {feed.name!r} has recovered"
    else:
        return None
    return {
        "rule": "ops",
        "title": title,
        "link": None,
        "source": "news-monitor",
        "feed": feed.name,
        "published": now.isoformat(),
        "matched": [],
    }


def health_record(
    feed: Feed, state: FeedState, health: Health, per_day: dict[str, int]
) -> dict[str, Any]:
    """One feed's health as a JSON-ready record (``status --json``)."""

    def iso(dt: datetime | None) -> str | None:
        return dt.isoformat() if dt else None

    return {
        "name": feed.name,
        "status": health.status,
        "reason": health.reason or None,
        "url": state.url,
        "enabled": feed.enabled,
        "last_attempt": iso(state.last_attempt_at),
        "last_success": iso(state.last_success_at),
        "last_status": state.last_status,
        "consecutive_failures": state.failures,
        "last_error": state.last_error,
        "backoff_seconds": state.backoff.total_seconds() if state.backoff else None,
        "next_poll": iso(state.next_poll_at),
        "not_before": iso(state.not_before),
        "last_new_item": iso(state.last_new_item_at),
        "items_per_day": per_day,
    }
