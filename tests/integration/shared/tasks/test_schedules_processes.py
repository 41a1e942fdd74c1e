"""Two scheduler processes on one simulated clock: every slot enqueued exactly once,
a shared outage handled by the missed-slot policy, unknown task types recorded."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from shared.stores.mariadb import connect
from shared.tasks.schedules import DEFAULT_SCHEDULES, schedules_from_setting
from tests.integration.shared.tasks.schedule_node import prepare

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[4]
NODE_MODULE = "tests.integration.shared.tasks.schedule_node"


def run_schedulers(mariadb_url: str, start: datetime, end: datetime, max_step: timedelta,
                   late_after: timedelta, setting: str = "", seed: int = 1) -> list[dict]:
    prepare(mariadb_url, start)
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", NODE_MODULE, mariadb_url, f"node{i}",
             str(seed * 10 + i), start.isoformat(), end.isoformat(),
             str(int(max_step.total_seconds())), str(int(late_after.total_seconds())), setting],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for i in (1, 2)
    ]
    summaries = []
    try:
        for proc in procs:
            out, err = proc.communicate(timeout=60)
            assert proc.returncode == 0, err
            summaries.append(json.loads(out))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
            proc.communicate()
    return summaries


def enqueued(mariadb_url: str) -> list[tuple[str, datetime, str, bool]]:
    conn = connect(mariadb_url)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT schedule_name, slot_at, node, late FROM sim_enqueued")
            return [(n, s.replace(tzinfo=UTC), node, bool(late))
                    for n, s, node, late in cur.fetchall()]
    finally:
        conn.close()


def slot_rows(mariadb_url: str) -> dict[tuple[str, datetime], tuple[str, str, str | None]]:
    conn = connect(mariadb_url)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT schedule_name, slot_at, status, claimed_by, execution_id "
                        "FROM task_schedule_slot")
            return {(n, s.replace(tzinfo=UTC)): (st, by, ex)
                    for n, s, st, by, ex in cur.fetchall()}
    finally:
        conn.close()


def test_two_schedulers_over_a_month_enqueue_every_slot_exactly_once(mariadb_url):
    start = datetime(2025, 3, 1, 0, 7, tzinfo=UTC)
    end = datetime(2025, 3, 31, 0, 7, tzinfo=UTC)
    # Steps of up to 20 simulated minutes: a slot is first ticked at most two steps
    # late, inside late_after, so every slot is on time and none may be missed.
    summaries = run_schedulers(mariadb_url, start, end,
                               max_step=timedelta(minutes=20), late_after=timedelta(minutes=45))

    expected = {(s.name, slot) for s in DEFAULT_SCHEDULES for slot in s.slots_after(start, end)}
    assert len([1 for name, _ in expected if name == "hourly_episodes"]) == 720
    calls = enqueued(mariadb_url)
    counts = Counter((name, slot) for name, slot, _, _ in calls)
    duplicates = {key: n for key, n in counts.items() if n > 1}
    assert duplicates == {}
    assert set(counts) == expected
    assert not any(late for *_, late in calls)

    rows = slot_rows(mariadb_url)
    assert set(rows) == expected
    assert {status for status, _, _ in rows.values()} == {"ENQUEUED"}
    # The node that enqueued a slot is the one whose claim is recorded for it.
    assert {(name, slot): node for name, slot, node, _ in calls} == {
        key: by for key, (_, by, _) in rows.items()}
    # Both processes really competed: each won a share of the slots.
    won = {s["node"]: s["won"].get("ENQUEUED", 0) for s in summaries}
    assert won["node1"] > 50 and won["node2"] > 50, summaries
    assert won["node1"] + won["node2"] == len(expected)


def test_both_schedulers_down_across_slots_apply_the_missed_policy(mariadb_url):
    # An hourly schedule of a task type no process registers rides along.
    setting = "hourly_report=30 * * * *|task=MONTHLY_REPORT"
    start = datetime(2025, 3, 10, 0, 10, tzinfo=UTC)  # 09:10 KST, Monday
    down_at = datetime(2025, 3, 10, 13, 10, tzinfo=UTC)
    back_at = datetime(2025, 3, 10, 17, 20, tzinfo=UTC)  # 02:20 KST on the 11th
    end = datetime(2025, 3, 10, 20, 20, tzinfo=UTC)
    step, late_after = timedelta(minutes=4), timedelta(minutes=10)
    run_schedulers(mariadb_url, start, down_at, step, late_after, setting, seed=1)
    run_schedulers(mariadb_url, back_at, end, step, late_after, setting, seed=2)

    def at(h: int, m: int = 0) -> datetime:
        return datetime(2025, 3, 10, h, m, tzinfo=UTC)

    rows = {key: status for key, (status, _, _) in slot_rows(mariadb_url).items()}
    hourly = {slot.hour: status for (name, slot), status in rows.items()
              if name == "hourly_episodes"}
    assert hourly == {
        **{h: "ENQUEUED" for h in range(1, 14)},
        14: "MISSED", 15: "MISSED", 16: "MISSED",  # older missed slots
        17: "RAN_LATE",  # the latest, 20 min late, within its 30 min grace
        18: "ENQUEUED", 19: "ENQUEUED", 20: "ENQUEUED",
    }
    # 02:00 KST collection: 20 min late (grace 6h) runs late; 02:30 is after the restart.
    assert rows[("daily_collection", at(17))] == "RAN_LATE"
    assert rows[("daily_recommendations", at(17, 30))] == "ENQUEUED"
    report = {slot: status for (name, slot), status in rows.items() if name == "hourly_report"}
    schedules = {s.name: s for s in schedules_from_setting(setting)}
    # Every slot of it, the outage's included, is recorded as such and none is run.
    assert set(report) == set(schedules["hourly_report"].slots_after(start, end))
    assert set(report.values()) == {"UNKNOWN_TASK"}

    calls = enqueued(mariadb_url)
    counts = Counter((name, slot) for name, slot, _, _ in calls)
    assert max(counts.values()) == 1
    assert set(counts) == {key for key, status in rows.items()
                           if status in ("ENQUEUED", "RAN_LATE")}
    assert {(name, slot) for name, slot, _, late in calls if late} == {
        ("hourly_episodes", at(17)), ("daily_collection", at(17))}
    assert not any(name == "hourly_report" for name, *_ in calls)
