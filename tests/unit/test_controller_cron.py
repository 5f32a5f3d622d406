"""When scheduled work is due: croniter in a time zone, one run per look, missed runs counted."""

from __future__ import annotations

from datetime import UTC, datetime

from ferry.controller.cron import cron_error, plan, zone_error


def t(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_nothing_due_before_the_first_time() -> None:
    p = plan("0 3 * * *", None, t("2024-05-01T01:00:00"), t("2024-05-01T02:59:59"))
    assert p.due is None and p.missed == 0 and p.next == t("2024-05-01T03:00:00")


def test_due_time_and_next() -> None:
    p = plan("*/15 * * * *", None, t("2024-05-01T01:00:00"), t("2024-05-01T01:16:00"))
    assert p.due == t("2024-05-01T01:15:00") and p.missed == 0 and p.next == t("2024-05-01T01:30:00")


def test_time_zone_moves_the_run() -> None:
    # 03:00 in Berlin (summer, UTC+2) is 01:00 UTC
    p = plan("0 3 * * *", "Europe/Berlin", t("2024-07-01T00:00:00"), t("2024-07-01T01:00:30"))
    assert p.due == t("2024-07-01T01:00:00")


def test_long_absence_starts_one_run_and_counts_the_rest() -> None:
    p = plan("* * * * *", None, t("2024-05-01T00:00:00"), t("2024-05-01T00:10:30"))
    assert p.due == t("2024-05-01T00:10:00") and p.missed == 9


def test_starting_deadline_skips_a_late_run() -> None:
    p = plan("0 * * * *", None, t("2024-05-01T00:30:00"), t("2024-05-01T01:05:00"), starting_deadline_seconds=120)
    assert p.due is None and p.missed == 1 and p.next == t("2024-05-01T02:00:00")


def test_seconds_field_allows_sub_minute_schedules() -> None:
    p = plan("* * * * * */10", None, t("2024-05-01T00:00:00"), t("2024-05-01T00:00:25"))
    assert p.due == t("2024-05-01T00:00:20") and p.missed == 1 and p.next == t("2024-05-01T00:00:30")


def test_a_very_long_absence_is_capped() -> None:
    p = plan("* * * * * *", None, t("2020-01-01T00:00:00"), t("2024-05-01T00:00:00"))
    assert p.due == t("2024-04-30T23:59:59") and p.next == t("2024-05-01T00:00:01") and p.missed > 1000


def test_cron_and_zone_errors() -> None:
    assert cron_error("*/5 * * * *") is None
    assert "5 (or 6" in cron_error("* * *")
    assert "not a valid cron" in cron_error("61 * * * *")
    assert zone_error("Europe/Berlin") is None
    assert zone_error("Mars/Olympus") == "'Mars/Olympus' is not an IANA time zone"
