"""When scheduled work is due, like a Kubernetes CronJob: croniter in an IANA time zone.

Pure functions of (cron, zone, last run, now), so tests pin the clock instead of waiting. A cron
expression has five fields, or six with seconds last (croniter's convention), which also lets a
short-lived environment see several runs in a minute.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

MAX_MISSED = 1000  # beyond this, the past is not worth counting one by one


def cron_error(expression: str) -> str | None:
    """Why `expression` is not a schedule, or None."""
    fields = expression.split()
    if len(fields) not in (5, 6):
        return f"'{expression}' has {len(fields)} fields; a schedule has 5 (or 6 with seconds last)"
    if not croniter.is_valid(expression):
        return f"'{expression}' is not a valid cron expression"
    return None


def zone_error(name: str) -> str | None:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return f"'{name}' is not an IANA time zone"
    return None


@dataclass(frozen=True)
class Plan:
    due: datetime | None  # the latest scheduled time that should start now
    missed: int  # scheduled times skipped: superseded by a later one, or past the starting deadline
    next: datetime  # the first scheduled time after now


def plan(
    expression: str,
    zone: str | None,
    last: datetime,
    now: datetime,
    starting_deadline_seconds: int | None = None,
) -> Plan:
    """Scheduled times in (last, now]: the latest is due unless past its deadline; others are missed.

    Only one run ever starts per look, however long the operator was away: no catch-up storm.
    """
    tz = ZoneInfo(zone or "UTC")
    it = croniter(expression, last.astimezone(tz))
    times: list[datetime] = []
    following = it.get_next(datetime)
    while following <= now and len(times) <= MAX_MISSED:
        times.append(following)
        following = it.get_next(datetime)
    if following <= now:  # far behind: jump to the present instead of counting further
        around_now = croniter(expression, now.astimezone(tz))
        times.append(around_now.get_prev(datetime))
        following = croniter(expression, now.astimezone(tz)).get_next(datetime)
    if not times:
        return Plan(None, 0, following.astimezone(UTC))
    latest = times[-1]
    missed = len(times) - 1
    if starting_deadline_seconds is not None and (now - latest).total_seconds() > starting_deadline_seconds:
        return Plan(None, missed + 1, following.astimezone(UTC))
    return Plan(latest.astimezone(UTC), missed, following.astimezone(UTC))


def interval_seconds(expression: str, zone: str | None, around: datetime) -> float | None:
    """Seconds between the two scheduled times after `around` (a schedule's period, for alerting)."""
    if cron_error(expression) or (zone and zone_error(zone)):
        return None
    it = croniter(expression, around.astimezone(ZoneInfo(zone or "UTC")))
    first, second = it.get_next(datetime), it.get_next(datetime)
    return (second - first).total_seconds()


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def format_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def now() -> datetime:
    return datetime.now(UTC)
