from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from shared.tasks.schedules import (
    DEFAULT_SCHEDULES,
    RunLate,
    Schedule,
    ScheduleError,
    Skip,
    SlotStatus,
    decide,
    parse_duration,
    schedules_from_setting,
)

SEOUL = ZoneInfo("Asia/Seoul")
BY_NAME = {s.name: s for s in DEFAULT_SCHEDULES}


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_default_table_is_the_seed_table_plus_hourly_episodes():
    assert {s.name: (s.cron, s.task_type) for s in DEFAULT_SCHEDULES} == {
        "daily_collection": ("0 2 * * *", "WEBTOON_ALL_CRAWL"),
        "daily_recommendations": ("30 2 * * *", "RECOMMENDATION_UPDATE"),
        "weekly_analysis": ("0 3 * * MON", "MEMBER_ACTIVITY_ANALYSIS"),
        "monthly_report": ("0 4 1 * *", "STATISTICS_AGGREGATION"),
        "hourly_episodes": ("0 * * * *", "WEBTOON_EPISODE_UPDATE"),
    }
    assert all(s.timezone == "Asia/Seoul" for s in DEFAULT_SCHEDULES)


def test_daily_0200_kst_is_1700_utc_the_day_before():
    slots = list(BY_NAME["daily_collection"].slots_after(utc(2025, 3, 1), utc(2025, 3, 3)))
    assert slots == [utc(2025, 3, 1, 17), utc(2025, 3, 2, 17)]
    assert slots[0].astimezone(SEOUL) == datetime(2025, 3, 2, 2, 0, tzinfo=SEOUL)


def test_daily_recommendations_at_0230_kst():
    slot = BY_NAME["daily_recommendations"].next_slot(utc(2025, 3, 1, 17, 0))
    assert slot == utc(2025, 3, 1, 17, 30)


def test_weekly_analysis_is_monday_0300_kst():
    weekly = BY_NAME["weekly_analysis"]
    slots = list(weekly.slots_after(utc(2025, 3, 1), utc(2025, 3, 31)))
    local = [s.astimezone(SEOUL) for s in slots]
    assert [d.day for d in local] == [3, 10, 17, 24, 31]
    assert all(d.weekday() == 0 and (d.hour, d.minute) == (3, 0) for d in local)
    # Monday 03:00 KST is Sunday 18:00 UTC.
    assert slots[0] == utc(2025, 3, 2, 18)


def test_monthly_report_on_the_1st_at_0400_kst():
    slots = list(BY_NAME["monthly_report"].slots_after(utc(2025, 1, 1), utc(2025, 5, 1)))
    assert slots == [utc(2025, 1, 31, 19), utc(2025, 2, 28, 19), utc(2025, 3, 31, 19),
                     utc(2025, 4, 30, 19)]
    assert {s.astimezone(SEOUL).day for s in slots} == {1}


def test_hourly_slots_bounds_are_exclusive_then_inclusive():
    hourly = BY_NAME["hourly_episodes"]
    slots = list(hourly.slots_after(utc(2025, 3, 1, 0), utc(2025, 3, 1, 3)))
    assert slots == [utc(2025, 3, 1, 1), utc(2025, 3, 1, 2), utc(2025, 3, 1, 3)]
    assert list(hourly.slots_after(utc(2025, 3, 1, 0, 0, 30), utc(2025, 3, 1, 1))) == [
        utc(2025, 3, 1, 1)
    ]
    assert len(list(hourly.slots_after(utc(2025, 3, 1), utc(2025, 3, 31)))) == 30 * 24


def test_latest_slot_includes_an_exact_slot_time():
    hourly = BY_NAME["hourly_episodes"]
    assert hourly.latest_slot(utc(2025, 3, 1, 5)) == utc(2025, 3, 1, 5)
    assert hourly.latest_slot(utc(2025, 3, 1, 5, 59, 59)) == utc(2025, 3, 1, 5)
    daily = BY_NAME["daily_collection"]
    assert daily.latest_slot(utc(2025, 3, 1, 16, 59)) == utc(2025, 2, 28, 17)


def test_naive_datetimes_are_refused():
    with pytest.raises(ScheduleError, match="no time zone"):
        BY_NAME["hourly_episodes"].latest_slot(datetime(2025, 3, 1, 5))


def test_other_time_zone_moves_the_slot():
    daily = Schedule("daily", "0 2 * * *", "WEBTOON_ALL_CRAWL", timezone="UTC")
    assert daily.next_slot(utc(2025, 3, 1)) == utc(2025, 3, 1, 2)


@pytest.mark.parametrize(
    ("cron", "message"),
    [
        ("0 0 2 * * *", "Spring's 6-field"),
        ("0 2 * *", "expected 5 fields"),
        ("", "expected 5 fields"),
        ("61 * * * *", "not a valid cron"),
        ("0 2 * * FUNDAY", "not a valid cron"),
    ],
)
def test_bad_cron_is_refused_with_the_reason(cron, message):
    with pytest.raises(ScheduleError, match=message):
        Schedule("x", cron, "WEBTOON_ALL_CRAWL")


def test_bad_schedule_fields_are_refused():
    with pytest.raises(ScheduleError, match="schedule name"):
        Schedule("Bad Name", "0 * * * *", "WEBTOON_ALL_CRAWL")
    with pytest.raises(ScheduleError, match="task type"):
        Schedule("x", "0 * * * *", "crawl all")
    with pytest.raises(ScheduleError, match="time zone"):
        Schedule("x", "0 * * * *", "WEBTOON_ALL_CRAWL", timezone="Mars/Olympus")
    with pytest.raises(ScheduleError, match="negative"):
        Schedule("x", "0 * * * *", "WEBTOON_ALL_CRAWL", missed=RunLate(timedelta(-1)))


# -- missed-slot policy ---------------------------------------------------

HOURLY_LATE = Schedule("h", "0 * * * *", "WEBTOON_EPISODE_UPDATE",
                       missed=RunLate(timedelta(minutes=30)))
HOURLY_SKIP = Schedule("h", "0 * * * *", "WEBTOON_EPISODE_UPDATE", missed=Skip())
SLOT = utc(2025, 3, 1, 5)
ON_TIME = timedelta(minutes=2)


@pytest.mark.parametrize("schedule", [HOURLY_LATE, HOURLY_SKIP])
def test_slot_seen_within_late_after_is_on_time(schedule):
    assert decide(schedule, SLOT, SLOT, True, ON_TIME) is SlotStatus.ENQUEUED
    assert decide(schedule, SLOT, SLOT + ON_TIME, False, ON_TIME) is SlotStatus.ENQUEUED


def test_latest_missed_slot_runs_late_within_grace_only():
    late = SLOT + timedelta(minutes=20)
    assert decide(HOURLY_LATE, SLOT, late, True, ON_TIME) is SlotStatus.RAN_LATE
    assert decide(HOURLY_LATE, SLOT, SLOT + timedelta(minutes=30), True, ON_TIME) is (
        SlotStatus.RAN_LATE
    )
    assert decide(HOURLY_LATE, SLOT, SLOT + timedelta(minutes=31), True, ON_TIME) is (
        SlotStatus.MISSED
    )


def test_older_missed_slots_are_missed_even_within_grace():
    assert decide(HOURLY_LATE, SLOT, SLOT + timedelta(minutes=20), False, ON_TIME) is (
        SlotStatus.MISSED
    )


def test_skip_policy_never_runs_late():
    assert decide(HOURLY_SKIP, SLOT, SLOT + timedelta(minutes=5), True, ON_TIME) is (
        SlotStatus.MISSED
    )


# -- the setting that overrides the table ---------------------------------


def test_empty_setting_keeps_the_defaults():
    assert schedules_from_setting("") == DEFAULT_SCHEDULES
    assert schedules_from_setting(" ; ") == DEFAULT_SCHEDULES


def test_setting_changes_crons_policies_and_turns_off():
    result = {s.name: s for s in schedules_from_setting(
        "daily_collection=0 3 * * *|late=4h; hourly_episodes=off;"
        "weekly_analysis=|skip;nightly_cleanup=0 5 * * *|task=DATA_CLEANUP|late=90m"
    )}
    assert "hourly_episodes" not in result
    assert result["daily_collection"].cron == "0 3 * * *"
    assert result["daily_collection"].missed == RunLate(timedelta(hours=4))
    assert result["daily_collection"].task_type == "WEBTOON_ALL_CRAWL"
    assert result["weekly_analysis"].cron == "0 3 * * MON"
    assert result["weekly_analysis"].missed == Skip()
    assert result["weekly_analysis"].params == {"period": "week"}
    cleanup = result["nightly_cleanup"]
    assert (cleanup.cron, cleanup.task_type, cleanup.missed) == (
        "0 5 * * *", "DATA_CLEANUP", RunLate(timedelta(minutes=90)))


def test_setting_timezone_applies_to_every_schedule():
    result = schedules_from_setting("", timezone="UTC")
    assert {s.timezone for s in result} == {"UTC"}
    with pytest.raises(ScheduleError, match="time zone"):
        schedules_from_setting("", timezone="Nowhere/Land")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("daily_collection", "expected name=CRON or name=off"),
        ("=0 2 * * *", "expected name=CRON or name=off"),
        ("nope=off", "no schedule named 'nope' to turn off"),
        ("nope=0 1 * * *", "a new schedule needs a cron and task=TASK_TYPE"),
        ("daily_collection=0 0 2 * * *", "entry 1 .*Spring's 6-field"),
        ("hourly_episodes=off;daily_collection=every day", "entry 2 .*expected 5 fields"),
        ("daily_collection=0 3 * * *|late=soon", "duration 'soon'"),
        ("daily_collection=0 3 * * *|later", "unknown option 'later'"),
        ("daily_collection=0 3 * * *|task=lower case", "task type"),
        ("daily_collection=off;daily_collection=0 1 * * *", "set twice"),
    ],
)
def test_bad_setting_gives_a_clear_error(text, message):
    with pytest.raises(ScheduleError, match=message):
        schedules_from_setting(text)


def test_parse_duration():
    assert parse_duration("90s") == timedelta(seconds=90)
    assert parse_duration("2d") == timedelta(days=2)
    with pytest.raises(ScheduleError):
        parse_duration("-1h")
