"""The scheduler process: a ``SchedulerLoop`` whose slots become task executions.

Each slot a scheduler wins is enqueued as an execution of the schedule's task type
with ``trigger=schedule`` and the parameters ``{"schedule": name, "slot": ISO time}``
plus the schedule's own: the slot is part of the instance's identity, so every slot
is its own task instance, and enqueueing a slot twice (a scheduler that died between
its claim and recording the enqueue, taken over by another) finds the same instance
and returns its execution instead of running it again.

``run_scheduler`` ticks on the real clock until SIGTERM/SIGINT; ``tick_once`` ticks
once at a given time (operators, the demo, tests). Task types are known to the
scheduler when a task module registered them (``TOONPICK_TASK_MODULES``); slots of
other types are recorded UNKNOWN_TASK, not run.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from shared.config import Config, load_config
from shared.stores.redis import redis_client, require_redis
from shared.tasks.repository import AlreadyCompleted, AlreadyRunning
from shared.tasks.runner import enqueue_task, reconcile_at_startup
from shared.tasks.schedules import Schedule, SchedulerLoop, SlotOutcome, schedules_from_setting
from shared.tasks.types import (
    Trigger,
    import_task_modules,
    parse_module_list,
    registered_types,
)

log = logging.getLogger(__name__)


def slot_params(schedule: Schedule, slot: datetime) -> dict[str, Any]:
    return {**dict(schedule.params), "schedule": schedule.name, "slot": slot.isoformat()}


def schedule_enqueuer(mariadb_url: str, redis_url: str
                      ) -> Callable[[Schedule, datetime, bool], int]:
    """``enqueue`` for a SchedulerLoop: one execution per (schedule, slot)."""

    def enqueue(schedule: Schedule, slot: datetime, late: bool) -> int:
        params = slot_params(schedule, slot)
        try:
            return enqueue_task(mariadb_url, redis_url, schedule.task_type, params,
                                Trigger.SCHEDULE)
        except (AlreadyRunning, AlreadyCompleted) as exc:
            log.warning("schedule %s slot %s: %s", schedule.name, slot.isoformat(), exc)
            return exc.execution_id

    return enqueue


def is_registered(task_type: str) -> bool:
    return task_type in registered_types()


def build_loop(config: Config | None = None) -> SchedulerLoop:
    """A SchedulerLoop over ``TOONPICK_SCHEDULES`` with the task modules imported."""
    config = config or load_config()
    if not config.redis_url:
        raise ValueError("the scheduler enqueues jobs on Redis: set REDIS_URL")
    import_task_modules(parse_module_list(config.task_modules))
    reclaim = config.scheduler_reclaim_seconds
    return SchedulerLoop(
        config.mariadb_url,
        schedules_from_setting(config.schedules, timezone=config.timezone),
        schedule_enqueuer(config.mariadb_url, config.redis_url),
        is_known=is_registered,
        late_after=timedelta(seconds=config.scheduler_late_after_seconds),
        reclaim_after=timedelta(seconds=reclaim) if reclaim > 0 else None,
    )


def tick_once(now: datetime, since: datetime | None = None,
              config: Config | None = None) -> list[SlotOutcome]:
    """One tick at ``now``; with ``since``, first one at ``since`` (as if a scheduler had
    been running then: it registers schedules first seen then, so ``now``'s slots run)."""
    with build_loop(config) as loop:
        outcomes = loop.tick(since) if since is not None else []
        return outcomes + loop.tick(now)


def run_scheduler(config: Config | None = None) -> None:
    """Tick every ``TOONPICK_SCHEDULER_TICK_SECONDS`` until SIGTERM or SIGINT."""
    config = config or load_config()
    stop = threading.Event()

    def request_stop(signum: int, frame: Any) -> None:
        log.info("scheduler: signal %s, stopping after this tick", signum)
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    # A Redis that refuses or stays silent ends the process at start (one line, in the
    # client's timeout), not at the first slot, which may be an hour away.
    require_redis(redis_client(config.redis_url)).close()
    with build_loop(config) as loop:
        reconcile_at_startup(config)
        for schedule in loop.schedules:
            log.info("schedule %s: %s (%s) %s", schedule.name, schedule.cron,
                     schedule.timezone, schedule.task_type)
        loop.run_forever(tick_seconds=config.scheduler_tick_seconds, stop=stop)
