"""Event times as the engine orders them: integer microseconds since the epoch (exact, unlike a
float timestamp), and the bounds that make a time believable."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def to_us(moment: datetime) -> int:
    return (moment - EPOCH) // _MICROSECOND


def from_us(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=us)


def from_ms(ms: int) -> datetime | None:
    """A record timestamp as a time, None when it is none a clock could have given (negative:
    the record has no timestamp; past year 9999: unrepresentable)."""
    if ms < 0:
        return None
    try:
        return EPOCH + timedelta(milliseconds=ms)
    except OverflowError:
        return None


def out_of_bounds(moment: datetime, now: datetime, skew: timedelta) -> str | None:
    """Why an event time is not believable (before the epoch, or further ahead of this worker's
    clock than the clock-skew allowance), or None. Such a time would freeze its entity: every later
    update would look stale."""
    if moment < EPOCH:
        return f"time {moment.isoformat()} is before 1970"
    if moment > now + skew:
        return (
            f"time {moment.isoformat()} is more than {skew.total_seconds():g} s ahead of the "
            f"worker's clock ({now.isoformat()}): beyond the allowed clock skew"
        )
    return None
