-- SQS requests received (shared/tasks/messages.py): one row per requestId, linking it to
-- the task instance it started, and whether its completion message was sent. The row
-- is the idempotency record on the way in and the outbox on the way out.

CREATE TABLE task_message (
    request_id VARCHAR(64) CHARACTER SET ascii NOT NULL PRIMARY KEY,
    event_type VARCHAR(32) NOT NULL,
    task_type VARCHAR(64) NOT NULL,
    -- 'create' or 'update': which complete queue gets the completion.
    direction VARCHAR(16) NOT NULL,
    request_time BIGINT NULL,
    instance_id BIGINT NULL,
    execution_id BIGINT NULL,
    received_at DATETIME(6) NOT NULL DEFAULT UTC_TIMESTAMP(6),
    -- A sender claims a completion before sending it; a claim older than the lease is
    -- taken over (the sender died between claiming and recording the send).
    completion_claim CHAR(32) CHARACTER SET ascii NULL,
    completion_claimed_at DATETIME(6) NULL,
    completion_sent_at DATETIME(6) NULL,
    completion_execution_id BIGINT NULL,
    completion_status VARCHAR(16) NULL,
    completion_message_id VARCHAR(128) NULL,
    KEY idx_task_message_outbox (completion_sent_at, instance_id),
    KEY idx_task_message_execution (execution_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
