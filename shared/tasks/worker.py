"""A task worker: an RQ worker (with RQ's scheduler for delayed retries) that reconciles.

``run_worker`` imports the task modules (so their types are registered before the first
job is forked), reconciles once at start-up (executions left STARTED by dead workers),
then works; its maintenance hook reconciles again every ``reconcile_interval`` seconds.
The worker wakes from its blocking dequeue at that interval, so an idle worker still
notices dead peers.

Delayed jobs (retries after their backoff) are moved to their queue by RQ's scheduler,
which runs in one worker per queue: the one holding the queue's scheduler lock (a Redis
key RQ refreshes every second to 61 s). A worker killed with its scheduler leaves that
lock behind, and RQ only tries to take a lock again in its registry maintenance, every
10 minutes: a retry due at +60 s started 8 min 43 s late. So a task worker, whenever it
has no scheduler running (at start-up, on every reconcile tick, and while it watches a
long job), takes over the locks of schedulers that are dead (same host, their pid gone)
or silent (not refreshed for ``STALE_SCHEDULER_SECONDS`` past their due refresh, any
host) and starts its own scheduler. A silent scheduler that wakes up again finds its
lock taken and stops scheduling that queue (RQ's own heartbeat handles that).

Redis is asked once before RQ is handed the client (``require_redis``): RQ then raises
the client's read timeout above its blocking dequeue, so a Redis that accepts and never
answers would otherwise take that long per command to be noticed.

``python -m shared.tasks.worker --queue default --task-module pkg.tasks`` runs one.
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import redis
from rq import Worker
from rq.exceptions import SchedulerNotFound, StopRequested
from rq.scheduler import RQScheduler

from shared.stores.redis import RedisUnavailable, redis_client, require_redis
from shared.tasks.runner import RunnerSettings, configure_process, reconcile
from shared.tasks.types import import_task_modules, parse_module_list, registered_queues

log = logging.getLogger(__name__)

# RQ's scheduler sets its lock's TTL to its interval + 60 s on every refresh (rq/scheduler.py,
# ``acquire_locks`` and ``heartbeat``), so a live one never lets it fall below 60 s.
_RQ_LOCK_TTL_MARGIN = 60.0
# How long past its due refresh a scheduler on another host counts as dead.
STALE_SCHEDULER_SECONDS = 10.0
# KEYS: lock; ARGV: owner. The lock is deleted only if the dead owner still holds it.
_RELEASE_IF_OWNER = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def _dead_owner(connection: redis.Redis, owner: str, lock_ttl: float,
                stale_seconds: float) -> str | None:
    """Why the scheduler ``owner`` holding a lock with ``lock_ttl`` seconds left is dead,
    or None when it may be alive."""
    try:
        scheduler = RQScheduler.fetch(owner, connection)
    except SchedulerNotFound:
        scheduler = None  # RQ writes it just after taking the lock: judge by the TTL
    if (scheduler is not None and scheduler.pid and scheduler.hostname == socket.gethostname()
            and not _pid_alive(scheduler.pid)):
        return f"its process {scheduler.pid} on this host is gone"
    if 0 <= lock_ttl < _RQ_LOCK_TTL_MARGIN - stale_seconds:
        return f"its lock was not refreshed for {_RQ_LOCK_TTL_MARGIN - lock_ttl:.0f} s"
    return None


def release_dead_scheduler_locks(connection: redis.Redis, queue_names: Sequence[str],
                                 stale_seconds: float = STALE_SCHEDULER_SECONDS) -> list[str]:
    """Delete the scheduler locks of ``queue_names`` held by dead schedulers (see the
    module doc); returns the queues whose lock was freed."""
    release = connection.register_script(_RELEASE_IF_OWNER)
    freed = []
    for name in queue_names:
        key = RQScheduler.get_locking_key(name)
        owner, ttl_ms = connection.get(key), connection.pttl(key)
        if owner is None:
            continue
        owner = owner.decode() if isinstance(owner, bytes) else str(owner)
        reason = _dead_owner(connection, owner, ttl_ms / 1000.0, stale_seconds)
        if reason and release(keys=[key], args=[owner]):
            log.warning("queue %s: took over the scheduler lock of %s (%s)", name, owner, reason)
            freed.append(name)
    return freed


class TaskWorker(Worker):
    """rq.Worker that also runs ``reconcile`` every ``settings.reconcile_interval`` seconds
    (RQ's own registry maintenance keeps its own, slower, interval)."""

    def __init__(self, *args: Any, mariadb_url: str, settings: RunnerSettings, **kwargs: Any):
        # Set first: rq's constructor already reads dequeue_timeout.
        self.mariadb_url = mariadb_url
        self.settings = settings
        self._reconciled_at: float | None = None
        super().__init__(*args, **kwargs)

    @property
    def dequeue_timeout(self) -> int:
        # Wake from the blocking dequeue often enough to reconcile on time when idle.
        return max(1, min(int(self.settings.reconcile_interval), self.worker_ttl - 15))

    @property
    def reconcile_due(self) -> bool:
        return (self._reconciled_at is None
                or time.monotonic() - self._reconciled_at >= self.settings.reconcile_interval)

    @property
    def should_run_maintenance_tasks(self) -> bool:
        return super().should_run_maintenance_tasks or self.reconcile_due

    def run_maintenance_tasks(self) -> None:
        if super().should_run_maintenance_tasks:
            super().run_maintenance_tasks()
        if self.reconcile_due:
            self.reconcile()
            self.ensure_scheduler()

    def maintain_heartbeats(self, *args: Any, **kwargs: Any) -> None:
        # Called every job-monitoring interval while a work horse runs: a worker busy
        # with a long crawl still takes over a dead peer's scheduler.
        super().maintain_heartbeats(*args, **kwargs)
        self.ensure_scheduler()

    def _start_scheduler(self, *args: Any, **kwargs: Any) -> None:
        self._release_dead_locks()
        super()._start_scheduler(*args, **kwargs)

    @property
    def scheduler_running(self) -> bool:
        process = self.scheduler._process if self.scheduler is not None else None
        return process is not None and process.is_alive()

    def ensure_scheduler(self) -> None:
        """Start this worker's scheduler if it has none and the locks can be had, taking
        over those of dead schedulers (see the module doc)."""
        if self.scheduler is None or self.scheduler_running:
            return
        try:
            self._release_dead_locks()
            self.scheduler.acquire_locks(auto_start=True)
        except redis.exceptions.RedisError as exc:
            log.warning("could not check the scheduler locks: %s", exc)
        if self.scheduler_running:
            log.info("scheduler started for %s", ", ".join(sorted(self.scheduler.acquired_locks)))

    def _release_dead_locks(self) -> None:
        release_dead_scheduler_locks(self.connection, self.queue_names())

    def reconcile(self) -> None:
        self._reconciled_at = time.monotonic()
        try:
            report = reconcile(self.mariadb_url, self.connection, self.settings.heartbeat_timeout,
                               queued_grace=self.settings.queued_grace)
        except StopRequested:
            raise  # rq's SIGTERM handler raises it from wherever the worker is
        except Exception:  # a store outage must not kill the worker; the next tick retries
            log.exception("reconcile failed")
            return
        if report:
            log.info("reconciled: %s", report)


def run_worker(
    queues: Sequence[str] | None = None,
    *,
    mariadb_url: str | None = None,
    redis_url: str | None = None,
    settings: RunnerSettings | None = None,
    burst: bool = False,
    name: str | None = None,
    with_scheduler: bool = True,
    logging_level: str = "INFO",
) -> bool:
    """Run a task worker until it is told to stop (or, with ``burst``, until its queues are
    empty). ``queues`` None: every queue of the task types the task modules register.
    URLs and settings not given come from ``shared.config.load_config()``."""
    if mariadb_url is None or redis_url is None or settings is None:
        from shared.config import load_config

        config = load_config()
        mariadb_url = mariadb_url or config.mariadb_url
        redis_url = redis_url or config.redis_url
        settings = settings or RunnerSettings.from_config(config)
    if not redis_url:
        raise ValueError("a task worker needs Redis: set REDIS_URL")
    imported = import_task_modules(settings.task_modules)
    queues = list(queues) if queues else registered_queues()
    configure_process(mariadb_url, settings)
    # Checked before RQ raises the client's socket_timeout above its blocking dequeue
    # (reconcile interval + 10 s): a silent Redis is then one clear error in seconds.
    connection = require_redis(redis_client(redis_url))
    worker = TaskWorker(list(queues), connection=connection, name=name,
                        mariadb_url=mariadb_url, settings=settings)
    log.info("task worker %s: queues %s, task modules %s", worker.name, ", ".join(queues),
             ", ".join(imported) or "none")
    worker.reconcile()
    return worker.work(burst=burst, with_scheduler=with_scheduler, logging_level=logging_level)


def run_burst_worker(env: Mapping[str, str], log_path: Path, timeout: float) -> int:
    """``toonpick worker --burst`` as a subprocess (its output to ``log_path``) that works
    every queue until they are empty; returns its exit code."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        return subprocess.run([sys.executable, "-m", "shared.cli", "worker", "--burst"],
                              env=dict(env), stdout=log, stderr=subprocess.STDOUT,
                              timeout=timeout, check=False).returncode


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.tasks.worker",
                                     description="Run a TOONPICK task worker.")
    parser.add_argument("--queue", action="append", dest="queues",
                        help="queue to work on (repeatable; default: every queue of the "
                             "registered task types)")
    parser.add_argument("--task-module", action="append", dest="task_modules", default=[],
                        help="module registering task types (repeatable, or comma-separated)")
    parser.add_argument("--heartbeat-interval", type=float)
    parser.add_argument("--heartbeat-timeout", type=float)
    parser.add_argument("--reconcile-interval", type=float)
    parser.add_argument("--burst", action="store_true")
    parser.add_argument("--name")
    args = parser.parse_args(argv)

    from shared.config import load_config

    config = load_config()
    logging.basicConfig(level=config.log_level,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = RunnerSettings.from_config(config)
    overrides: dict[str, Any] = {}
    for name in ("heartbeat_interval", "heartbeat_timeout", "reconcile_interval"):
        if getattr(args, name) is not None:
            overrides[name] = getattr(args, name)
    modules = parse_module_list(",".join(args.task_modules))
    if modules:
        overrides["task_modules"] = tuple(dict.fromkeys(settings.task_modules + modules))
    settings = replace(settings, **overrides)
    try:
        run_worker(args.queues or None, mariadb_url=config.mariadb_url,
                   redis_url=config.redis_url, settings=settings, burst=args.burst,
                   name=args.name, logging_level=config.log_level)
    except RedisUnavailable as exc:
        print(f"{parser.prog}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
