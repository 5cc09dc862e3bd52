"""When an alert may go out: digests, quiet hours and rate limits, as pure time arithmetic.

Every time here is an aware datetime; wall-clock rules (``daily: "08:00"``, quiet hours
``22:00-06:00``) are read in the channel's time zone, so they follow daylight saving time: a
digest at 08:00 in Europe/Berlin is at 07:00 UTC in winter and 06:00 UTC in summer, and a
quiet window that crosses midnight ends at the next local 06:00 whatever the date.

Nothing here reads the clock or the store: the delivery pass passes ``now`` and the alerts'
times in, so tests can walk a simulated day across a DST change.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from monitor.config import ChannelPolicy, Schedule

__all__ = ["Slot", "in_window", "next_boundary", "quiet_end", "slot"]


def _local(at: datetime, tz: ZoneInfo) -> datetime:
    return at.astimezone(tz)


def _at(day: datetime, clock: time, tz: ZoneInfo) -> datetime:
    """The instant a local wall-clock time happens on ``day``'s date (DST gaps move forward)."""
    naive = datetime.combine(day.date(), clock)
    local = naive.replace(tzinfo=tz)
    # A time in a spring-forward gap does not exist; zoneinfo maps it past the gap.
    return local.astimezone(UTC).astimezone(tz)


def next_boundary(schedule: Schedule, after: datetime, tz: ZoneInfo) -> datetime:
    """The first digest time strictly after ``after``.

    ``every: 1h`` digests go out on the hour (boundaries counted from local midnight, so
    ``every: 6h`` means 00:00, 06:00, 12:00, 18:00 local); ``daily`` at its local time.
    """
    local = _local(after, tz)
    if schedule.kind == "daily" and schedule.at is not None:
        candidate = _at(local, schedule.at, tz)
        if candidate <= local:
            candidate = _at(local + timedelta(days=1), schedule.at, tz)
        return candidate.astimezone(UTC)
    if schedule.kind == "every" and schedule.every is not None:
        midnight = _at(local, time(0, 0), tz).astimezone(UTC)
        next_midnight = _at(local + timedelta(days=1), time(0, 0), tz).astimezone(UTC)
        steps = int((after.astimezone(UTC) - midnight) / schedule.every) + 1
        return min(midnight + steps * schedule.every, next_midnight)
    return after


def in_window(window: tuple[time, time], at: datetime, tz: ZoneInfo) -> bool:
    """Is ``at`` inside the local window ``[start, end)`` (which may cross midnight)?"""
    start, end = window
    t = _local(at, tz).time()
    if start <= end:
        return start <= t < end
    return t >= start or t < end


def quiet_end(window: tuple[time, time], at: datetime, tz: ZoneInfo) -> datetime | None:
    """When the quiet window holding ``at`` ends, or None if ``at`` is not in one."""
    if not in_window(window, at, tz):
        return None
    local = _local(at, tz)
    end = _at(local, window[1], tz)
    if end <= local:
        end = _at(local + timedelta(days=1), window[1], tz)
    return end.astimezone(UTC)


@dataclass(frozen=True)
class Slot:
    """When one alert may go out, and whether it goes alone or in a digest (and why)."""

    due: datetime
    digest: str | None  # None: on its own; else the digest's period, for its heading


def _period(schedule: Schedule, due: datetime, tz: ZoneInfo) -> str:
    local = _local(due, tz)
    if schedule.kind == "every" and schedule.every is not None:
        start = _local(due - schedule.every, tz)
        return f"{start:%H:%M}–{local:%H:%M}"
    return f"daily {local:%Y-%m-%d %H:%M}"


def slot(
    created: datetime, policy: ChannelPolicy, schedule: Schedule | None, *, urgent: bool
) -> Slot:
    """When an alert created at ``created`` goes out on a channel with ``policy``.

    ``schedule`` is the rule's own ``deliver:`` (None: the channel's). An urgent rule goes out
    at once, alone, whatever the schedule and quiet hours. Quiet hours defer, never drop: what
    falls in the window (an immediate alert, or a digest due then) goes out as one digest when
    it ends.
    """
    if urgent:
        return Slot(created, None)
    tz = policy.timezone
    sched = schedule or policy.schedule
    due, digest = created, None
    if not sched.immediate:
        due = next_boundary(sched, created, tz)
        digest = _period(sched, due, tz)
    if policy.quiet is not None:
        end = quiet_end(policy.quiet, due, tz)
        if end is not None:
            start, stop = policy.quiet
            due, digest = end, f"quiet hours {start:%H:%M}–{stop:%H:%M}"
    return Slot(due, digest)
