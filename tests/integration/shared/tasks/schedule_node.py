"""One scheduler process over a simulated clock shared through MariaDB (test driver).

``python -m tests.integration.shared.tasks.schedule_node MARIADB_URL NODE SEED
START END MAX_STEP_SECONDS LATE_AFTER_SECONDS [SCHEDULES_SETTING]``

Waits until every node of the run is ready (so the processes really overlap),
ticks ``START``, then repeatedly moves the shared clock on by a random step
(one atomic UPDATE, so two nodes interleave on one timeline) and ticks at the
value it got, until ``END``. Its ``enqueue`` appends a row to ``sim_enqueued``
(no unique key, so a duplicate would show). Task types outside the five
defaults are unknown to it. Prints a JSON summary on stdout.

The clock and the log live in the test's own database rather than Redis: the
shared Redis test db is flushed by other tests running at the same time.
"""

from __future__ import annotations

import json
import random
import sys
import time
from datetime import UTC, datetime, timedelta

from shared.stores.mariadb import connect
from shared.tasks.schedules import (
    DEFAULT_SCHEDULES,
    Schedule,
    SchedulerLoop,
    schedules_from_setting,
)

NODES = 2
KNOWN_TASK_TYPES = {s.task_type for s in DEFAULT_SCHEDULES}
SIM_TABLES = (
    "CREATE TABLE sim_clock (id INT PRIMARY KEY, now_s BIGINT NOT NULL, ready INT NOT NULL)",
    "CREATE TABLE sim_enqueued (id BIGINT AUTO_INCREMENT PRIMARY KEY, "
    "schedule_name VARCHAR(64) NOT NULL, slot_at DATETIME NOT NULL, "
    "node VARCHAR(64) NOT NULL, late TINYINT(1) NOT NULL)",
)


def prepare(mariadb_url: str, start: datetime) -> None:
    """Create the simulation tables (first call) and set the clock to ``start``."""
    conn = connect(mariadb_url, autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW TABLES LIKE 'sim_clock'")
            if cur.fetchone() is None:
                for ddl in SIM_TABLES:
                    cur.execute(ddl)
            cur.execute("REPLACE INTO sim_clock (id, now_s, ready) VALUES (1, %s, 0)",
                        (int(start.timestamp()),))
    finally:
        conn.close()


def main(argv: list[str]) -> int:
    mariadb_url, node, seed, start, end, max_step, late_after, *rest = argv
    rng = random.Random(int(seed))
    start_at = datetime.fromisoformat(start).astimezone(UTC)
    end_s = int(datetime.fromisoformat(end).timestamp())
    conn = connect(mariadb_url, autocommit=True)
    cur = conn.cursor()

    def enqueue(schedule: Schedule, slot: datetime, late: bool) -> int:
        cur.execute("INSERT INTO sim_enqueued (schedule_name, slot_at, node, late) "
                    "VALUES (%s, %s, %s, %s)",
                    (schedule.name, slot.replace(tzinfo=None), node, int(late)))
        return cur.lastrowid

    loop = SchedulerLoop(
        mariadb_url,
        schedules_from_setting(rest[0] if rest else ""),
        enqueue,
        is_known=KNOWN_TASK_TYPES.__contains__,
        node=node,
        late_after=timedelta(seconds=int(late_after)),
    )
    cur.execute("UPDATE sim_clock SET ready = ready + 1 WHERE id = 1")
    deadline = time.monotonic() + 20
    while True:
        cur.execute("SELECT ready FROM sim_clock WHERE id = 1")
        if cur.fetchone()[0] >= NODES:
            break
        if time.monotonic() > deadline:
            print("the other scheduler never became ready", file=sys.stderr)
            return 2
        time.sleep(0.005)
    won = loop.tick(start_at)
    ticks = 1
    now_s = int(start_at.timestamp())
    while now_s < end_s:
        cur.execute("UPDATE sim_clock SET now_s = LAST_INSERT_ID(now_s + %s) WHERE id = 1",
                    (rng.randint(1, int(max_step)),))
        cur.execute("SELECT LAST_INSERT_ID()")
        now_s = min(cur.fetchone()[0], end_s)
        won += loop.tick(datetime.fromtimestamp(now_s, UTC))
        ticks += 1
    loop.close()
    conn.close()
    statuses: dict[str, int] = {}
    for outcome in won:
        statuses[outcome.status.value] = statuses.get(outcome.status.value, 0) + 1
    print(json.dumps({"node": node, "ticks": ticks, "won": statuses}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
