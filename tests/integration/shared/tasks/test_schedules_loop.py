"""One scheduler on the real MariaDB: slots claimed once, missed-slot policy, no backfill,
unknown task types, failed enqueues and claims left behind by a dead scheduler."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.stores.mariadb import connect
from shared.tasks.schedules import RunLate, Schedule, ScheduleError, SchedulerLoop, Skip, SlotStatus

pytestmark = pytest.mark.integration

T0 = datetime(2025, 3, 1, 0, 10, tzinfo=UTC)  # 09:10 KST
HOURLY = Schedule("hourly_episodes", "0 * * * *", "WEBTOON_EPISODE_UPDATE",
                  missed=RunLate(timedelta(minutes=30)))


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, datetime, bool]] = []

    def __call__(self, schedule: Schedule, slot: datetime, late: bool) -> int:
        self.calls.append((schedule.name, slot, late))
        return len(self.calls)


def slot_rows(url: str) -> dict[tuple[str, datetime], tuple[str, str | None]]:
    conn = connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT schedule_name, slot_at, status, execution_id "
                        "FROM task_schedule_slot")
            return {(n, s.replace(tzinfo=UTC)): (st, e) for n, s, st, e in cur.fetchall()}
    finally:
        conn.close()


def hour(h: int, minute: int = 0) -> datetime:
    return datetime(2025, 3, 1, h, minute, tzinfo=UTC)


def test_on_time_slots_are_enqueued_once_and_recorded(mariadb_url):
    enqueue = Recorder()
    with SchedulerLoop(mariadb_url, [HOURLY], enqueue, node="a") as loop:
        assert loop.tick(T0) == []  # first sight: 00:00 is before it, no backfill
        outcomes = loop.tick(hour(1, 0))
        assert [(o.slot_at, o.status, o.execution_id) for o in outcomes] == [
            (hour(1), SlotStatus.ENQUEUED, "1")]
        assert loop.tick(hour(1, 1)) == []  # same slot again: nothing
        loop.tick(hour(2, 1))
    assert enqueue.calls == [("hourly_episodes", hour(1), False),
                             ("hourly_episodes", hour(2), False)]
    assert slot_rows(mariadb_url) == {
        ("hourly_episodes", hour(1)): ("ENQUEUED", "1"),
        ("hourly_episodes", hour(2)): ("ENQUEUED", "2"),
    }


def test_a_second_scheduler_never_enqueues_a_claimed_slot(mariadb_url):
    enqueue_a, enqueue_b = Recorder(), Recorder()
    with (SchedulerLoop(mariadb_url, [HOURLY], enqueue_a, node="a") as a,
          SchedulerLoop(mariadb_url, [HOURLY], enqueue_b, node="b") as b):
        a.tick(T0)
        b.tick(T0)
        a.tick(hour(1))
        assert b.tick(hour(1)) == []
        # b behind a: the slot a won is not offered again; b takes the next one.
        assert [o.slot_at for o in b.tick(hour(2))] == [hour(2)]
        assert a.tick(hour(2, 1)) == []
    assert [c[1] for c in enqueue_a.calls] == [hour(1)]
    assert [c[1] for c in enqueue_b.calls] == [hour(2)]


def test_down_across_slots_runs_the_latest_late_and_misses_the_rest(mariadb_url):
    enqueue = Recorder()
    with SchedulerLoop(mariadb_url, [HOURLY], enqueue, node="a") as loop:
        loop.tick(T0)
        loop.tick(hour(1))
        # Down from 01:00 to 05:20: 02, 03, 04 missed; 05 is 20 min late, within 30 min.
        outcomes = loop.tick(hour(5, 20))
    assert [(o.slot_at, o.status, o.late) for o in outcomes] == [
        (hour(2), SlotStatus.MISSED, False),
        (hour(3), SlotStatus.MISSED, False),
        (hour(4), SlotStatus.MISSED, False),
        (hour(5), SlotStatus.RAN_LATE, True),
    ]
    assert enqueue.calls == [("hourly_episodes", hour(1), False),
                             ("hourly_episodes", hour(5), True)]
    rows = slot_rows(mariadb_url)
    assert [rows[("hourly_episodes", hour(h))][0] for h in range(1, 6)] == [
        "ENQUEUED", "MISSED", "MISSED", "MISSED", "RAN_LATE"]


def test_down_beyond_grace_misses_every_slot(mariadb_url):
    enqueue = Recorder()
    with SchedulerLoop(mariadb_url, [HOURLY], enqueue, node="a") as loop:
        loop.tick(T0)
        outcomes = loop.tick(hour(3, 45))
    assert [(o.slot_at, o.status) for o in outcomes] == [
        (hour(h), SlotStatus.MISSED) for h in (1, 2, 3)]
    assert enqueue.calls == []


def test_skip_policy_records_missed_and_runs_nothing(mariadb_url):
    skip = Schedule("hourly_episodes", "0 * * * *", "WEBTOON_EPISODE_UPDATE", missed=Skip())
    enqueue = Recorder()
    with SchedulerLoop(mariadb_url, [skip], enqueue, node="a") as loop:
        loop.tick(T0)
        outcomes = loop.tick(hour(1, 5))
    assert [(o.slot_at, o.status) for o in outcomes] == [(hour(1), SlotStatus.MISSED)]
    assert enqueue.calls == []


def test_restart_resumes_after_the_last_slot_recorded(mariadb_url):
    enqueue = Recorder()
    with SchedulerLoop(mariadb_url, [HOURLY], enqueue, node="first") as loop:
        loop.tick(T0)
        loop.tick(hour(1))
    # A new process (new node name, nothing in memory) learns its progress from the table.
    with SchedulerLoop(mariadb_url, [HOURLY], enqueue, node="second") as loop:
        outcomes = loop.tick(hour(3, 10))
    assert [(o.slot_at, o.status) for o in outcomes] == [
        (hour(2), SlotStatus.MISSED), (hour(3), SlotStatus.RAN_LATE)]
    assert [c[1] for c in enqueue.calls] == [hour(1), hour(3)]


def test_daily_schedules_fire_at_their_kst_times(mariadb_url):
    daily = Schedule("daily_collection", "0 2 * * *", "WEBTOON_ALL_CRAWL")
    recs = Schedule("daily_recommendations", "30 2 * * *", "RECOMMENDATION_UPDATE")
    enqueue = Recorder()
    with SchedulerLoop(mariadb_url, [daily, recs], enqueue, node="a") as loop:
        start = datetime(2025, 3, 1, 16, 0, tzinfo=UTC)  # 01:00 KST on the 2nd
        loop.tick(start)
        now = start
        while now < start + timedelta(days=2):
            now += timedelta(minutes=1)
            loop.tick(now)
    assert enqueue.calls == [
        ("daily_collection", datetime(2025, 3, 1, 17, 0, tzinfo=UTC), False),
        ("daily_recommendations", datetime(2025, 3, 1, 17, 30, tzinfo=UTC), False),
        ("daily_collection", datetime(2025, 3, 2, 17, 0, tzinfo=UTC), False),
        ("daily_recommendations", datetime(2025, 3, 2, 17, 30, tzinfo=UTC), False),
    ]


def test_unknown_task_type_is_recorded_and_not_enqueued(mariadb_url, caplog):
    mystery = Schedule("monthly_report", "0 * * * *", "MONTHLY_REPORT")
    enqueue = Recorder()
    with SchedulerLoop(mariadb_url, [HOURLY, mystery], enqueue,
                       is_known=lambda t: t != "MONTHLY_REPORT", node="a") as loop:
        assert [s.name for s in loop.unknown_schedules()] == ["monthly_report"]
        loop.tick(T0)
        outcomes = loop.tick(hour(1))
    assert "MONTHLY_REPORT, which is not registered" in caplog.text
    assert {(o.schedule_name, o.status) for o in outcomes} == {
        ("hourly_episodes", SlotStatus.ENQUEUED), ("monthly_report", SlotStatus.UNKNOWN_TASK)}
    assert [c[0] for c in enqueue.calls] == ["hourly_episodes"]
    assert slot_rows(mariadb_url)[("monthly_report", hour(1))] == ("UNKNOWN_TASK", None)


def test_failed_enqueue_is_recorded_with_its_error(mariadb_url):
    def broken(schedule: Schedule, slot: datetime, late: bool) -> None:
        raise ConnectionError("redis away")

    with SchedulerLoop(mariadb_url, [HOURLY], broken, node="a") as loop:
        loop.tick(T0)
        (outcome,) = loop.tick(hour(1))
        assert loop.tick(hour(1, 1)) == []  # not retried: a slot is handed off at most once
    assert (outcome.status, outcome.error) == (SlotStatus.ENQUEUE_FAILED,
                                               "ConnectionError: redis away")
    conn = connect(mariadb_url)
    with conn.cursor() as cur:
        cur.execute("SELECT status, error FROM task_schedule_slot")
        assert cur.fetchall() == (("ENQUEUE_FAILED", "ConnectionError: redis away"),)
    conn.close()


def test_a_claim_left_by_a_dead_scheduler_is_enqueued_by_another(mariadb_url):
    conn = connect(mariadb_url, autocommit=True)
    with conn.cursor() as cur:
        # The dead scheduler won 01:00 eleven minutes ago and died before enqueueing.
        cur.execute(
            "INSERT INTO task_schedule (name, first_seen_at, cron, task_type) "
            "VALUES ('hourly_episodes', %s, '0 * * * *', 'WEBTOON_EPISODE_UPDATE')",
            (T0.replace(tzinfo=None),))
        cur.execute(
            "INSERT INTO task_schedule_slot (schedule_name, slot_at, task_type, status, "
            "claimed_by, claimed_at) VALUES ('hourly_episodes', %s, 'WEBTOON_EPISODE_UPDATE', "
            "'CLAIMED', 'dead', UTC_TIMESTAMP(6) - INTERVAL 11 MINUTE)",
            (hour(1).replace(tzinfo=None),))
        cur.execute(
            "INSERT INTO task_schedule_slot (schedule_name, slot_at, task_type, status, "
            "claimed_by, claimed_at) VALUES ('hourly_episodes', %s, 'WEBTOON_EPISODE_UPDATE', "
            "'CLAIMED', 'busy', UTC_TIMESTAMP(6))",
            (hour(2).replace(tzinfo=None),))
    conn.close()
    enqueue = Recorder()
    with SchedulerLoop(mariadb_url, [HOURLY], enqueue, node="a",
                       reclaim_after=timedelta(minutes=10)) as loop:
        outcomes = loop.tick(hour(2, 1))
        assert loop.tick(hour(2, 2)) == []
    assert [(o.slot_at, o.status) for o in outcomes] == [(hour(1), SlotStatus.ENQUEUED)]
    assert enqueue.calls == [("hourly_episodes", hour(1), False)]
    rows = slot_rows(mariadb_url)
    assert rows[("hourly_episodes", hour(1))] == ("ENQUEUED", "1")
    assert rows[("hourly_episodes", hour(2))] == ("CLAIMED", None)  # a live claim is left alone


def test_a_long_outage_is_recorded_in_bounded_ticks(mariadb_url):
    every_minute = Schedule("minutely", "* * * * *", "CACHE_REFRESH",
                            missed=RunLate(timedelta(minutes=5)))
    enqueue = Recorder()
    with SchedulerLoop(mariadb_url, [every_minute], enqueue, node="a",
                       late_after=timedelta(seconds=10), max_slots_per_tick=100) as loop:
        loop.tick(T0)
        later = T0 + timedelta(minutes=250, seconds=30)
        sizes = [len(loop.tick(later)) for _ in range(4)]
    assert sizes == [100, 100, 50, 0]
    assert enqueue.calls == [("minutely", T0 + timedelta(minutes=250), True)]
    statuses = [s for s, _ in slot_rows(mariadb_url).values()]
    assert (statuses.count("MISSED"), statuses.count("RAN_LATE")) == (249, 1)


def test_bad_loop_arguments_are_refused(mariadb_url):
    with pytest.raises(ScheduleError, match="unique"):
        SchedulerLoop(mariadb_url, [HOURLY, HOURLY], Recorder())
    loop = SchedulerLoop(mariadb_url, [HOURLY], Recorder(), late_after=timedelta(seconds=30))
    with pytest.raises(ScheduleError, match="too long"):
        loop.run_forever(tick_seconds=20)
