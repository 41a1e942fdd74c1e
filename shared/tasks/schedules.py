"""Timed schedules: cron slots in Asia/Seoul time, each enqueued exactly once.

Why our own small loop (croniter + one MariaDB table) and not rq-scheduler or
``rq cron``: rq-scheduler keeps two schedulers apart with a Redis lock that has
a TTL, and that lock lets two instances enqueue the same run twice
(rq-scheduler #312); its interval jobs drift after downtime; and neither it nor
``rq cron`` records what became of a slot while no scheduler ran. Here a slot
is a row. The INSERT that wins ``UNIQUE(schedule_name, slot_at)`` in
``task_schedule_slot`` is the claim: set once, never expiring, so any number of
scheduler processes can tick and only the winner hands the slot to
``enqueue``. The same rows tell a restarted scheduler where it stopped (the
largest ``slot_at`` per schedule) and tell operators what ran, ran late or was
missed. The loop only computes slots and claims them; what a task does is the
runner's business, reached through the injected ``enqueue``.

A slot's states (``SlotStatus``):

- no row: not handled yet. Slots before a schedule was first seen
  (``task_schedule.first_seen_at``) are never handled: no backfill of history.
- ``CLAIMED``: a scheduler won the slot and is calling ``enqueue``; it moves to
  ``ENQUEUED`` (on time), ``RAN_LATE`` (missed, run late under ``RunLate``) or
  ``ENQUEUE_FAILED`` (``enqueue`` raised; ``error`` says why; not retried).
  A row left ``CLAIMED`` for longer than ``reclaim_after`` means its scheduler
  died between claim and enqueue: one other scheduler takes it over (a
  conditional UPDATE) and enqueues it, so ``enqueue`` should be idempotent per
  (schedule name, slot) to cover that window.
- ``MISSED``: the scheduler was down across the slot and the policy does not
  run it (``Skip``, beyond the grace, or not the latest missed slot).
- ``UNKNOWN_TASK``: the schedule names a task type ``is_known`` rejects; the
  slot is recorded, not enqueued, and logged as an error.

A slot is on time when a tick sees it within ``late_after`` of its time;
otherwise it was missed and the schedule's ``MissedPolicy`` decides (``decide``).
"""

from __future__ import annotations

import logging
import os
import re
import socket
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from itertools import islice
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pymysql
from croniter import croniter

from shared.stores.mariadb import connect

log = logging.getLogger(__name__)

DEFAULT_TIMEZONE = "Asia/Seoul"
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_TASK_TYPE = re.compile(r"^[A-Z][A-Z0-9_]{0,63}$")
_DURATION = re.compile(r"^(\d+)([smhd])$")
_DURATION_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
_DUPLICATE_KEY = 1062


class ScheduleError(ValueError):
    """A schedule, or the setting that overrides schedules, is malformed."""


@dataclass(frozen=True)
class RunLate:
    """A missed slot still runs once if a scheduler sees it within ``grace`` of its time;
    only the latest missed slot runs, older ones are MISSED."""

    grace: timedelta


@dataclass(frozen=True)
class Skip:
    """A missed slot is recorded MISSED and not run."""


MissedPolicy = RunLate | Skip


class SlotStatus(StrEnum):
    CLAIMED = "CLAIMED"
    ENQUEUED = "ENQUEUED"
    RAN_LATE = "RAN_LATE"
    MISSED = "MISSED"
    UNKNOWN_TASK = "UNKNOWN_TASK"
    ENQUEUE_FAILED = "ENQUEUE_FAILED"


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ScheduleError(f"unknown time zone {name!r}") from exc


def validate_cron(expression: str) -> str:
    """The expression, stripped, if it is a 5-field cron croniter understands."""
    expression = " ".join(expression.split())
    fields = expression.split(" ") if expression else []
    if len(fields) != 5:
        # croniter reads a 6th field as *seconds*, so Spring's "0 0 2 * * *" would
        # silently mean "00:00 on the 2nd": refuse it rather than misread it.
        raise ScheduleError(
            f"cron {expression!r}: expected 5 fields (minute hour day month weekday), "
            f"got {len(fields)}"
            + (" (Spring's 6-field form with seconds is not accepted)" if len(fields) == 6 else "")
        )
    if not croniter.is_valid(expression):
        raise ScheduleError(f"cron {expression!r} is not a valid cron expression")
    return expression


@dataclass(frozen=True)
class Schedule:
    """A task type fired at each slot of a cron expression read in ``timezone``."""

    name: str
    cron: str
    task_type: str
    params: Mapping[str, Any] = field(default_factory=dict)
    timezone: str = DEFAULT_TIMEZONE
    missed: MissedPolicy = RunLate(timedelta(hours=1))

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ScheduleError(
                f"schedule name {self.name!r}: lower-case letters, digits and _ (max 64)"
            )
        if not _TASK_TYPE.match(self.task_type):
            raise ScheduleError(
                f"schedule {self.name}: task type {self.task_type!r} must be like "
                "WEBTOON_ALL_CRAWL"
            )
        try:
            object.__setattr__(self, "cron", validate_cron(self.cron))
        except ScheduleError as exc:
            raise ScheduleError(f"schedule {self.name}: {exc}") from None
        _zone(self.timezone)
        if isinstance(self.missed, RunLate) and self.missed.grace < timedelta(0):
            raise ScheduleError(f"schedule {self.name}: grace must not be negative")
        if not isinstance(self.missed, RunLate | Skip):
            raise ScheduleError(f"schedule {self.name}: missed policy must be RunLate or Skip")

    @property
    def zone(self) -> ZoneInfo:
        return _zone(self.timezone)

    def slots_after(self, after: datetime, until: datetime | None = None) -> Iterator[datetime]:
        """Slots with ``after < slot <= until`` (unbounded without ``until``), as UTC datetimes."""
        after = _aware(after)
        until = _aware(until) if until is not None else None
        # Cron fields are whole minutes: start from the minute so a slot at
        # exactly ``after`` is not returned again.
        start = after.astimezone(self.zone).replace(second=0, microsecond=0)
        cron = croniter(self.cron, start)
        while True:
            slot = cron.get_next(datetime).astimezone(UTC)
            if until is not None and slot > until:
                return
            if slot > after:
                yield slot

    def latest_slot(self, at: datetime) -> datetime:
        """The last slot at or before ``at`` (UTC)."""
        local = _aware(at).astimezone(self.zone).replace(second=0, microsecond=0)
        # get_prev is strictly before its start: start one minute on.
        cron = croniter(self.cron, local + timedelta(minutes=1))
        return cron.get_prev(datetime).astimezone(UTC)

    def next_slot(self, after: datetime) -> datetime:
        """The first slot strictly after ``after`` (UTC)."""
        return next(self.slots_after(after))


def _aware(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ScheduleError(f"{moment!r} has no time zone (use an aware datetime)")
    return moment


TASK_WEBTOON_ALL_CRAWL = "WEBTOON_ALL_CRAWL"
TASK_WEBTOON_EPISODE_UPDATE = "WEBTOON_EPISODE_UPDATE"
TASK_RECOMMENDATION_UPDATE = "RECOMMENDATION_UPDATE"
TASK_MEMBER_ACTIVITY_ANALYSIS = "MEMBER_ACTIVITY_ANALYSIS"
TASK_STATISTICS_AGGREGATION = "STATISTICS_AGGREGATION"

# The seed's table (its Spring crons had a leading seconds field) plus the
# original's hourly episode update. Graces: a daily job still worth running a
# few hours late; the hourly one only within its own hour.
DEFAULT_SCHEDULES: tuple[Schedule, ...] = (
    Schedule("daily_collection", "0 2 * * *", TASK_WEBTOON_ALL_CRAWL,
             missed=RunLate(timedelta(hours=6))),
    Schedule("daily_recommendations", "30 2 * * *", TASK_RECOMMENDATION_UPDATE,
             missed=RunLate(timedelta(hours=6))),
    Schedule("weekly_analysis", "0 3 * * MON", TASK_MEMBER_ACTIVITY_ANALYSIS,
             params={"period": "week"}, missed=RunLate(timedelta(days=1))),
    Schedule("monthly_report", "0 4 1 * *", TASK_STATISTICS_AGGREGATION,
             params={"period": "month"}, missed=RunLate(timedelta(days=2))),
    Schedule("hourly_episodes", "0 * * * *", TASK_WEBTOON_EPISODE_UPDATE,
             missed=RunLate(timedelta(minutes=30))),
)


def parse_duration(text: str) -> timedelta:
    """``90s``, ``30m``, ``6h``, ``2d`` as a timedelta."""
    match = _DURATION.match(text.strip())
    if not match:
        raise ScheduleError(f"duration {text!r}: expected a number and s, m, h or d (e.g. 6h)")
    amount, unit = match.groups()
    return timedelta(**{_DURATION_UNITS[unit]: int(amount)})


def schedules_from_setting(
    text: str,
    base: Iterable[Schedule] = DEFAULT_SCHEDULES,
    timezone: str | None = None,
) -> tuple[Schedule, ...]:
    """The base schedules changed by a setting string (``TOONPICK_SCHEDULES``).

    Entries are separated by ``;``, each ``name=SPEC`` where SPEC is ``off``
    (drop the schedule) or ``CRON`` followed by ``|``-separated options:
    ``late=DURATION`` (RunLate with that grace), ``skip`` (Skip missed slots),
    ``task=TASK_TYPE`` (required for a schedule that is not in ``base``).
    An empty CRON keeps the base cron. ``timezone`` (``TOONPICK_TIMEZONE``)
    replaces every schedule's time zone. Example::

        daily_collection=0 3 * * *|late=4h;hourly_episodes=off;weekly_analysis=|skip
    """
    schedules: dict[str, Schedule] = {s.name: s for s in base}
    seen: set[str] = set()
    for number, raw in enumerate(text.split(";"), start=1):
        entry = raw.strip()
        if not entry:
            continue
        where = f"schedule setting entry {number} ({entry!r})"
        name, sep, spec = entry.partition("=")
        name, spec = name.strip(), spec.strip()
        if not sep or not name:
            raise ScheduleError(f"{where}: expected name=CRON or name=off")
        if name in seen:
            raise ScheduleError(f"{where}: schedule {name!r} is set twice")
        seen.add(name)
        if spec.lower() == "off":
            if name not in schedules:
                raise ScheduleError(
                    f"{where}: no schedule named {name!r} to turn off "
                    f"(known: {', '.join(sorted(schedules))})"
                )
            del schedules[name]
            continue
        cron, *options = (part.strip() for part in spec.split("|"))
        changes: dict[str, Any] = {}
        if cron:
            changes["cron"] = cron
        for option in options:
            key, _, value = option.partition("=")
            key, value = key.strip().lower(), value.strip()
            if key == "skip" and not value:
                changes["missed"] = Skip()
            elif key == "late" and value:
                try:
                    changes["missed"] = RunLate(parse_duration(value))
                except ScheduleError as exc:
                    raise ScheduleError(f"{where}: {exc}") from None
            elif key == "task" and value:
                changes["task_type"] = value
            else:
                raise ScheduleError(
                    f"{where}: unknown option {option!r} (use late=DURATION, skip or task=TYPE)"
                )
        try:
            if name in schedules:
                schedules[name] = replace(schedules[name], **changes)
            else:
                if "task_type" not in changes or "cron" not in changes:
                    raise ScheduleError(
                        f"no schedule named {name!r}; a new schedule needs a cron and "
                        f"task=TASK_TYPE (known: {', '.join(sorted(schedules))})"
                    )
                schedules[name] = Schedule(name=name, **changes)
        except ScheduleError as exc:
            raise ScheduleError(f"{where}: {exc}") from None
    if timezone:
        _zone(timezone)
        schedules = {n: replace(s, timezone=timezone) for n, s in schedules.items()}
    return tuple(schedules.values())


def decide(
    schedule: Schedule, slot: datetime, now: datetime, latest: bool, late_after: timedelta
) -> SlotStatus:
    """ENQUEUED, RAN_LATE or MISSED for a slot seen at ``now``.

    ``latest`` says whether this is the last slot at or before ``now``: of the
    slots a scheduler missed, only that one may run late.
    """
    lateness = now - slot
    if lateness <= late_after:
        return SlotStatus.ENQUEUED
    if latest and isinstance(schedule.missed, RunLate) and lateness <= schedule.missed.grace:
        return SlotStatus.RAN_LATE
    return SlotStatus.MISSED


@dataclass(frozen=True)
class SlotOutcome:
    """What this scheduler recorded for a slot it won."""

    schedule_name: str
    slot_at: datetime
    status: SlotStatus
    execution_id: str | None = None
    late: bool = False
    error: str | None = None


Enqueue = Callable[[Schedule, datetime, bool], str | int | None]


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _db_time(moment: datetime) -> datetime:
    # DATETIME columns hold naive UTC (the connection's session zone is +00:00).
    return _aware(moment).astimezone(UTC).replace(tzinfo=None)


def _from_db(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value is not None else None


class SchedulerLoop:
    """Claims and enqueues the slots of ``schedules``; any number may run at once.

    ``tick(now)`` handles every slot since the last one handled (by any
    scheduler) up to ``now``; ``run_forever`` ticks on the real clock.
    ``enqueue(schedule, slot, late)`` returns an execution id (or None).
    ``is_known(task_type)`` says whether a task type is registered.
    """

    def __init__(
        self,
        mariadb_url: str,
        schedules: Iterable[Schedule],
        enqueue: Enqueue,
        *,
        is_known: Callable[[str], bool] = lambda task_type: True,
        clock: Callable[[], datetime] = _utc_now,
        node: str | None = None,
        late_after: timedelta = timedelta(minutes=2),
        reclaim_after: timedelta | None = timedelta(minutes=10),
        max_slots_per_tick: int = 1000,
    ) -> None:
        self.schedules = tuple(schedules)
        names = [s.name for s in self.schedules]
        if len(set(names)) != len(names):
            raise ScheduleError(f"schedule names must be unique: {names}")
        if max_slots_per_tick < 1:
            raise ScheduleError("max_slots_per_tick must be at least 1")
        self.mariadb_url = mariadb_url
        self.enqueue = enqueue
        self.is_known = is_known
        self.clock = clock
        self.node = node or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.late_after = late_after
        self.reclaim_after = reclaim_after
        self.max_slots_per_tick = max_slots_per_tick
        self._by_name = {s.name: s for s in self.schedules}
        self._registered: set[str] = set()
        self._conn: pymysql.connections.Connection | None = None
        for schedule in self.unknown_schedules():
            log.error(
                "schedule %s names task type %s, which is not registered: its slots will be "
                "recorded UNKNOWN_TASK and not run",
                schedule.name, schedule.task_type,
            )

    def unknown_schedules(self) -> list[Schedule]:
        """Schedules whose task type ``is_known`` rejects."""
        return [s for s in self.schedules if not self.is_known(s.task_type)]

    # -- connection -------------------------------------------------------

    def _cursor(self) -> pymysql.cursors.Cursor:
        if self._conn is not None:
            try:
                self._conn.ping()
            except pymysql.err.Error:
                # A server restart or idle timeout: start over with a new connection.
                self.close()
        if self._conn is None:
            self._conn = connect(self.mariadb_url, autocommit=True)
        return self._conn.cursor()

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except pymysql.err.Error:
                pass  # already gone
            self._conn = None

    def __enter__(self) -> SchedulerLoop:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- ticking ----------------------------------------------------------

    def tick(self, now: datetime | None = None) -> list[SlotOutcome]:
        """Handle every due slot up to ``now`` (default: the clock); what this node recorded."""
        now = _aware(now if now is not None else self.clock()).astimezone(UTC)
        outcomes: list[SlotOutcome] = []
        with self._cursor() as cur:
            if self.reclaim_after is not None:
                outcomes.extend(self._reclaim_stale(cur))
            for schedule in self.schedules:
                outcomes.extend(self._tick_schedule(cur, schedule, now))
        return outcomes

    def run_forever(self, tick_seconds: float = 10.0, stop: threading.Event | None = None) -> None:
        """Tick on the clock every ``tick_seconds`` until ``stop`` is set; a failed tick
        (e.g. MariaDB away) is logged and retried, never fatal."""
        if tick_seconds <= 0:
            raise ScheduleError(f"tick_seconds must be positive, got {tick_seconds}")
        if timedelta(seconds=tick_seconds) * 2 > self.late_after:
            raise ScheduleError(
                f"tick_seconds={tick_seconds} is too long for late_after={self.late_after}: "
                "on-time slots would be taken for missed ones"
            )
        stop = stop or threading.Event()
        log.info("scheduler %s: %d schedule(s), tick %ss", self.node,
                 len(self.schedules), tick_seconds)
        while not stop.is_set():
            try:
                self.tick()
            except Exception:
                log.exception("scheduler tick failed; next try in %ss", tick_seconds)
                self.close()
            stop.wait(tick_seconds)
        self.close()

    def _start_after(self, cur: pymysql.cursors.Cursor, schedule: Schedule,
                     now: datetime) -> datetime:
        """The last slot handled, or when the schedule was first seen."""
        if schedule.name not in self._registered:
            cur.execute(
                "INSERT INTO task_schedule (name, first_seen_at, cron, task_type) "
                "VALUES (%s, %s, %s, %s) "
                "ON DUPLICATE KEY UPDATE cron = VALUES(cron), task_type = VALUES(task_type)",
                (schedule.name, _db_time(now), schedule.cron, schedule.task_type),
            )
            self._registered.add(schedule.name)
        cur.execute(
            "SELECT s.first_seen_at, "
            "(SELECT MAX(slot_at) FROM task_schedule_slot WHERE schedule_name = s.name) "
            "FROM task_schedule s WHERE s.name = %s",
            (schedule.name,),
        )
        row = cur.fetchone()
        if row is None:
            # Someone deleted the row under us: register again on the next tick.
            self._registered.discard(schedule.name)
            return _from_db(_db_time(now))
        first_seen, last_slot = (_from_db(v) for v in row)
        return max(first_seen, last_slot) if last_slot is not None else first_seen

    def _tick_schedule(self, cur: pymysql.cursors.Cursor, schedule: Schedule,
                       now: datetime) -> list[SlotOutcome]:
        after = self._start_after(cur, schedule, now)
        latest = schedule.latest_slot(now)
        if latest <= after:
            return []
        known = self.is_known(schedule.task_type)
        outcomes: list[SlotOutcome] = []
        unrun: list[tuple[datetime, SlotStatus]] = []
        # Slots are claimed oldest first, so a row for a slot implies rows for every
        # earlier slot: another scheduler resuming after MAX(slot_at) skips nothing.
        for slot in islice(schedule.slots_after(after, now), self.max_slots_per_tick):
            if not known:
                unrun.append((slot, SlotStatus.UNKNOWN_TASK))
                continue
            status = decide(schedule, slot, now, slot == latest, self.late_after)
            if status is SlotStatus.MISSED:
                unrun.append((slot, status))
                continue
            outcomes.extend(self._record_unrun(cur, schedule, unrun))
            unrun = []
            outcome = self._claim_and_enqueue(cur, schedule, slot, status is SlotStatus.RAN_LATE)
            if outcome is not None:
                outcomes.append(outcome)
        outcomes.extend(self._record_unrun(cur, schedule, unrun))
        return outcomes

    def _record_unrun(self, cur: pymysql.cursors.Cursor, schedule: Schedule,
                      slots: list[tuple[datetime, SlotStatus]]) -> list[SlotOutcome]:
        if not slots:
            return []
        cur.executemany(
            "INSERT IGNORE INTO task_schedule_slot "
            "(schedule_name, slot_at, task_type, status, claimed_by, claimed_at, finished_at) "
            "VALUES (%s, %s, %s, %s, %s, UTC_TIMESTAMP(6), UTC_TIMESTAMP(6))",
            [(schedule.name, _db_time(slot), schedule.task_type, status.value, self.node)
             for slot, status in slots],
        )
        placeholders = ", ".join(["%s"] * len(slots))
        cur.execute(
            "SELECT slot_at FROM task_schedule_slot WHERE schedule_name = %s AND claimed_by = %s "
            f"AND slot_at IN ({placeholders})",
            (schedule.name, self.node, *(_db_time(slot) for slot, _ in slots)),
        )
        won = {_from_db(row[0]) for row in cur.fetchall()}
        outcomes = [SlotOutcome(schedule.name, slot, status)
                    for slot, status in slots if slot in won]
        # One line per batch: a long outage of a dense cron would flood the log.
        for status in (SlotStatus.UNKNOWN_TASK, SlotStatus.MISSED):
            recorded = [o.slot_at for o in outcomes if o.status is status]
            if not recorded:
                continue
            span = recorded[0].isoformat() + (
                f" .. {recorded[-1].isoformat()}" if len(recorded) > 1 else "")
            if status is SlotStatus.UNKNOWN_TASK:
                log.error("schedule %s: %d slot(s) %s not run: task type %s is not registered",
                          schedule.name, len(recorded), span, schedule.task_type)
            else:
                log.warning("schedule %s: %d slot(s) %s MISSED (no scheduler ran them in time)",
                            schedule.name, len(recorded), span)
        return outcomes

    def _claim_and_enqueue(self, cur: pymysql.cursors.Cursor, schedule: Schedule,
                           slot: datetime, late: bool) -> SlotOutcome | None:
        try:
            cur.execute(
                "INSERT INTO task_schedule_slot "
                "(schedule_name, slot_at, task_type, status, late, claimed_by, claimed_at) "
                "VALUES (%s, %s, %s, 'CLAIMED', %s, %s, UTC_TIMESTAMP(6))",
                (schedule.name, _db_time(slot), schedule.task_type, int(late), self.node),
            )
        except pymysql.err.IntegrityError as exc:
            if exc.args[0] == _DUPLICATE_KEY:
                return None  # another scheduler won this slot
            raise
        return self._enqueue_claimed(cur, schedule, slot, late)

    def _enqueue_claimed(self, cur: pymysql.cursors.Cursor, schedule: Schedule,
                         slot: datetime, late: bool) -> SlotOutcome:
        try:
            execution_id = self.enqueue(schedule, slot, late)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            log.exception("schedule %s slot %s: enqueue failed", schedule.name, slot.isoformat())
            self._finish(cur, schedule, slot, SlotStatus.ENQUEUE_FAILED, None, error)
            return SlotOutcome(schedule.name, slot, SlotStatus.ENQUEUE_FAILED, None, late, error)
        status = SlotStatus.RAN_LATE if late else SlotStatus.ENQUEUED
        execution = str(execution_id) if execution_id is not None else None
        self._finish(cur, schedule, slot, status, execution, None)
        (log.warning if late else log.info)(
            "schedule %s slot %s %s: %s execution %s", schedule.name, slot.isoformat(),
            status.value, schedule.task_type, execution,
        )
        return SlotOutcome(schedule.name, slot, status, execution, late)

    def _finish(self, cur: pymysql.cursors.Cursor, schedule: Schedule, slot: datetime,
                status: SlotStatus, execution_id: str | None, error: str | None) -> None:
        cur.execute(
            "UPDATE task_schedule_slot SET status = %s, execution_id = %s, error = %s, "
            "finished_at = UTC_TIMESTAMP(6) "
            "WHERE schedule_name = %s AND slot_at = %s AND claimed_by = %s AND status = 'CLAIMED'",
            (status.value, execution_id, error, schedule.name, _db_time(slot), self.node),
        )

    def _reclaim_stale(self, cur: pymysql.cursors.Cursor) -> list[SlotOutcome]:
        """Enqueue slots whose claimer died between its claim and its enqueue."""
        assert self.reclaim_after is not None
        cur.execute(
            "SELECT schedule_name, slot_at, late, claimed_by, claimed_at "
            "FROM task_schedule_slot WHERE status = 'CLAIMED' "
            "AND claimed_at < UTC_TIMESTAMP(6) - INTERVAL %s MICROSECOND",
            (int(self.reclaim_after / timedelta(microseconds=1)),),
        )
        outcomes: list[SlotOutcome] = []
        for name, slot_at, late, claimed_by, claimed_at in cur.fetchall():
            schedule = self._by_name.get(name)
            if schedule is None:
                continue  # a schedule this scheduler does not run (turned off here)
            taken = cur.execute(
                "UPDATE task_schedule_slot SET claimed_by = %s, claimed_at = UTC_TIMESTAMP(6) "
                "WHERE schedule_name = %s AND slot_at = %s AND status = 'CLAIMED' "
                "AND claimed_by = %s AND claimed_at = %s",
                (self.node, name, slot_at, claimed_by, claimed_at),
            )
            if taken != 1:
                continue  # another scheduler took it over first
            slot = _from_db(slot_at)
            log.warning("schedule %s slot %s: claimed by %s at %s but never enqueued; "
                        "enqueueing it now", name, slot.isoformat(), claimed_by, claimed_at)
            outcomes.append(self._enqueue_claimed(cur, schedule, slot, bool(late)))
        return outcomes
