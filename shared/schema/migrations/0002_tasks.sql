-- Task repository: one instance per (task type, identifying parameters), any number of
-- executions per instance, one checkpoint per execution. Every time is set by the
-- server (UTC_TIMESTAMP) so heartbeats from different nodes compare without clock skew.

CREATE TABLE task_instance (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    task_type VARCHAR(64) NOT NULL,
    identifying_params JSON NOT NULL,
    -- sha256 of the canonical JSON of identifying_params.
    params_hash CHAR(64) CHARACTER SET ascii NOT NULL,
    created_at DATETIME(6) NOT NULL DEFAULT UTC_TIMESTAMP(6),
    UNIQUE KEY uk_task_instance_type_params (task_type, params_hash)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE task_execution (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    instance_id BIGINT NOT NULL,
    task_type VARCHAR(64) NOT NULL,
    status VARCHAR(16) NOT NULL,
    `trigger` VARCHAR(16) NOT NULL,
    attempt INT NOT NULL DEFAULT 1,
    progress TINYINT UNSIGNED NOT NULL DEFAULT 0,
    progress_message VARCHAR(512) NULL,
    counters JSON NULL,
    result JSON NULL,
    error TEXT NULL,
    node VARCHAR(255) NULL,
    rq_job_id VARCHAR(128) CHARACTER SET ascii NULL,
    -- Where and how the job runs, and its retry policy: kept on the row so any process
    -- (one that never imported the task's module) can re-enqueue or retry it.
    queue VARCHAR(64) NOT NULL,
    job_timeout INT NULL,
    max_retries INT NOT NULL DEFAULT 0,
    retry_backoff JSON NOT NULL,
    params JSON NOT NULL,
    created_at DATETIME(6) NOT NULL DEFAULT UTC_TIMESTAMP(6),
    started_at DATETIME(6) NULL,
    heartbeat_at DATETIME(6) NULL,
    ended_at DATETIME(6) NULL,
    resumed_from_execution_id BIGINT NULL,
    CONSTRAINT fk_task_execution_instance FOREIGN KEY (instance_id) REFERENCES task_instance (id),
    KEY idx_task_execution_instance (instance_id, id),
    KEY idx_task_execution_status_heartbeat (status, heartbeat_at),
    KEY idx_task_execution_type_created (task_type, created_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE task_execution_context (
    execution_id BIGINT NOT NULL PRIMARY KEY,
    checkpoint JSON NOT NULL,
    updated_at DATETIME(6) NOT NULL DEFAULT UTC_TIMESTAMP(6),
    CONSTRAINT fk_task_execution_context_execution
        FOREIGN KEY (execution_id) REFERENCES task_execution (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
