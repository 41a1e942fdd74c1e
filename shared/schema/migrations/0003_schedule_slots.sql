-- Timed schedules (shared/tasks/schedules.py).
--
-- task_schedule: when each schedule was first seen by a scheduler. Slots before it
-- are never backfilled; the first scheduler to start sets it (INSERT IGNORE).
--
-- task_schedule_slot: one row per schedule slot, ever. The INSERT that wins
-- uk_task_schedule_slot is the claim: it is set once and never expires, so two
-- schedulers can never both enqueue a slot. The largest slot_at per schedule is
-- the schedulers' progress: a restarted scheduler resumes after it.
-- status: CLAIMED (won, enqueue not confirmed yet), ENQUEUED (on time),
-- RAN_LATE (missed, run late within the schedule's grace), MISSED (not run),
-- UNKNOWN_TASK (the schedule names a task type nobody registered; not run),
-- ENQUEUE_FAILED (the enqueue raised; error says why).

CREATE TABLE task_schedule (
    name VARCHAR(64) NOT NULL PRIMARY KEY,
    -- UTC, the scheduler clock's "now" when the schedule was first seen.
    first_seen_at DATETIME(6) NOT NULL,
    cron VARCHAR(128) NOT NULL,
    task_type VARCHAR(64) NOT NULL,
    updated_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE task_schedule_slot (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    schedule_name VARCHAR(64) NOT NULL,
    -- UTC; the cron is evaluated in the schedule's time zone (Asia/Seoul).
    slot_at DATETIME NOT NULL,
    task_type VARCHAR(64) NOT NULL,
    status VARCHAR(16) NOT NULL,
    late TINYINT(1) NOT NULL DEFAULT 0,
    execution_id VARCHAR(64) NULL,
    error TEXT NULL,
    claimed_by VARCHAR(128) NOT NULL,
    -- Wall-clock time (UTC) of the claim, also under a simulated scheduler clock.
    claimed_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    finished_at DATETIME(6) NULL,
    UNIQUE KEY uk_task_schedule_slot (schedule_name, slot_at),
    KEY idx_task_schedule_slot_status (status, claimed_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
