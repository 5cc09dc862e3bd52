"""When alerts may go out: digest boundaries, quiet hours, urgent, across midnight and DST."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from monitor.config import IMMEDIATE, ChannelPolicy, Schedule
from monitor.delivery.schedule import in_window, next_boundary, quiet_end, slot

BALI = ZoneInfo("Asia/Makassar")  # UTC+8, no DST
BERLIN = ZoneInfo("Europe/Berlin")  # DST: 2026-03-29 02:00 -> 03:00, 2026-10-25 03:00 -> 02:00
HOURLY = Schedule("every", every=timedelta(hours=1))
SIX_HOURLY = Schedule("every", every=timedelta(hours=6))
MORNING = Schedule("daily", at=time(8, 0))


def local(tz: ZoneInfo, *args: int) -> datetime:
    return datetime(*args, tzinfo=tz)  # type: ignore[misc]


def test_hourly_digests_go_out_on_the_hour() -> None:
    at = local(BALI, 2026, 12, 3, 9, 17)
    assert next_boundary(HOURLY, at, BALI) == local(BALI, 2026, 12, 3, 10, 0)
    on = local(BALI, 2026, 12, 3, 10, 0)
    assert next_boundary(HOURLY, on, BALI) == local(BALI, 2026, 12, 3, 11, 0)  # strictly after
    late = local(BALI, 2026, 12, 3, 23, 30)
    assert next_boundary(HOURLY, late, BALI) == local(BALI, 2026, 12, 4, 0, 0)  # next day
    assert next_boundary(SIX_HOURLY, late, BALI) == local(BALI, 2026, 12, 4, 0, 0)
    assert next_boundary(SIX_HOURLY, on, BALI) == local(BALI, 2026, 12, 3, 12, 0)


def test_daily_digest_keeps_its_local_time_across_dst() -> None:
    # Winter (CET, UTC+1): 08:00 local is 07:00 UTC.
    winter = local(BERLIN, 2026, 3, 28, 9, 0)
    first = next_boundary(MORNING, winter, BERLIN)
    assert first.astimezone(UTC) == datetime(2026, 3, 29, 6, 0, tzinfo=UTC)  # summer time now
    assert first.astimezone(BERLIN).hour == 8
    # And back in autumn.
    autumn = next_boundary(MORNING, local(BERLIN, 2026, 10, 24, 9, 0), BERLIN)
    assert autumn.astimezone(UTC) == datetime(2026, 10, 25, 7, 0, tzinfo=UTC)


def test_a_digest_time_in_the_spring_gap_moves_past_it() -> None:
    gap = Schedule("daily", at=time(2, 30))  # 02:30 does not exist on 2026-03-29 in Berlin
    at = next_boundary(gap, local(BERLIN, 2026, 3, 28, 12, 0), BERLIN)
    assert at.astimezone(BERLIN).replace(tzinfo=None) == datetime(2026, 3, 29, 3, 30)


def test_quiet_hours_across_midnight() -> None:
    window = (time(22, 0), time(6, 0))
    assert in_window(window, local(BALI, 2026, 12, 3, 23, 0), BALI)
    assert in_window(window, local(BALI, 2026, 12, 4, 5, 59), BALI)
    assert not in_window(window, local(BALI, 2026, 12, 4, 6, 0), BALI)
    assert not in_window(window, local(BALI, 2026, 12, 4, 12, 0), BALI)
    assert quiet_end(window, local(BALI, 2026, 12, 3, 23, 0), BALI) == local(
        BALI, 2026, 12, 4, 6, 0
    )
    assert quiet_end(window, local(BALI, 2026, 12, 4, 1, 0), BALI) == local(BALI, 2026, 12, 4, 6, 0)
    assert quiet_end(window, local(BALI, 2026, 12, 4, 12, 0), BALI) is None
    day = (time(9, 0), time(17, 0))  # a window within one day
    assert in_window(day, local(BALI, 2026, 12, 4, 12, 0), BALI)
    assert not in_window(day, local(BALI, 2026, 12, 4, 18, 0), BALI)


def test_slot_immediate_digest_quiet_and_urgent() -> None:
    quiet = ChannelPolicy(timezone=BALI, quiet=(time(22, 0), time(6, 0)))
    noon = local(BALI, 2026, 12, 3, 12, 0)
    night = local(BALI, 2026, 12, 3, 23, 0)
    assert slot(noon, quiet, None, urgent=False).due == noon  # immediate, alone
    assert slot(noon, quiet, None, urgent=False).digest is None
    held = slot(night, quiet, None, urgent=False)  # deferred, never dropped
    assert held.due == local(BALI, 2026, 12, 4, 6, 0)
    assert held.digest == "quiet hours 22:00–06:00"
    urgent = slot(night, quiet, HOURLY, urgent=True)
    assert (urgent.due, urgent.digest) == (night, None)
    # A rule's own schedule wins over its channel's.
    hourly = slot(noon, quiet, HOURLY, urgent=False)
    assert hourly.due == local(BALI, 2026, 12, 3, 13, 0) and hourly.digest == "12:00–13:00"
    # A digest that falls due in quiet hours waits for them to end.
    late = slot(local(BALI, 2026, 12, 3, 21, 30), quiet, HOURLY, urgent=False)
    assert late.due == local(BALI, 2026, 12, 4, 6, 0)
    channel_daily = ChannelPolicy(timezone=BERLIN, schedule=MORNING)
    assert slot(noon, channel_daily, None, urgent=False).digest.startswith("daily 20")  # type: ignore[union-attr]
    assert slot(noon, channel_daily, IMMEDIATE, urgent=False).digest is None
