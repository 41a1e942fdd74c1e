-- Members and their activity (the platform's API server writes these; the worker reads
-- them, and its seeded generator writes them for the demo, tests and benchmarks), and
-- what the recommender writes: top-N per member, similar webtoons, recommend groups,
-- model versions, the serving switch and A/B experiments. Table and column names
-- follow the original system's entities.

CREATE TABLE member (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    uid CHAR(36) CHARACTER SET ascii NOT NULL,
    user_name VARCHAR(64) NOT NULL,
    email VARCHAR(255) NOT NULL,
    nick_name VARCHAR(64) NOT NULL,
    birthday DATE NULL,
    gender VARCHAR(8) NOT NULL DEFAULT 'NONE',
    role VARCHAR(16) NOT NULL DEFAULT 'ROLE_USER',
    adult_verified BOOLEAN NOT NULL DEFAULT FALSE,
    status VARCHAR(16) NOT NULL DEFAULT 'ACTIVE',
    last_login_at DATETIME(6) NULL,
    created_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    updated_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
    UNIQUE KEY uk_member_uid (uid),
    UNIQUE KEY uk_member_user_name (user_name),
    KEY idx_member_status (status)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE member_statistics (
    member_id BIGINT NOT NULL PRIMARY KEY,
    level INT NOT NULL DEFAULT 1,
    activity_score BIGINT NOT NULL DEFAULT 0,
    total_viewed_webtoon_count INT NOT NULL DEFAULT 0,
    total_liked_webtoon_count INT NOT NULL DEFAULT 0,
    total_login_day_count INT NOT NULL DEFAULT 0,
    total_webtoon_review_count INT NOT NULL DEFAULT 0,
    average_rating DOUBLE NOT NULL DEFAULT 0,
    updated_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
    CONSTRAINT fk_member_statistics_member FOREIGN KEY (member_id) REFERENCES member (id)
        ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE member_webtoon_interaction (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    member_id BIGINT NOT NULL,
    webtoon_id BIGINT NOT NULL,
    liked BOOLEAN NOT NULL DEFAULT FALSE,
    liked_at DATETIME(6) NULL,
    bookmarked BOOLEAN NOT NULL DEFAULT FALSE,
    -- NONE | WATCHING | FINISHED | DROPPED | PLANNED
    status VARCHAR(16) NOT NULL DEFAULT 'WATCHING',
    last_read_episode INT NULL,
    last_read_at DATETIME(6) NULL,
    notification_enabled BOOLEAN NOT NULL DEFAULT FALSE,
    created_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    updated_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
    UNIQUE KEY uk_member_webtoon_interaction (member_id, webtoon_id),
    KEY idx_member_webtoon_interaction_webtoon (webtoon_id),
    KEY idx_member_webtoon_interaction_updated (updated_at),
    CONSTRAINT fk_member_webtoon_interaction_member FOREIGN KEY (member_id)
        REFERENCES member (id) ON DELETE CASCADE,
    CONSTRAINT fk_member_webtoon_interaction_webtoon FOREIGN KEY (webtoon_id)
        REFERENCES webtoon (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE webtoon_episode_view_history (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    member_id BIGINT NOT NULL,
    episode_id BIGINT NOT NULL,
    episode_viewed_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    KEY idx_view_history_member (member_id, episode_viewed_at),
    KEY idx_view_history_episode (episode_id),
    KEY idx_view_history_viewed (episode_viewed_at),
    CONSTRAINT fk_view_history_member FOREIGN KEY (member_id) REFERENCES member (id)
        ON DELETE CASCADE,
    CONSTRAINT fk_view_history_episode FOREIGN KEY (episode_id) REFERENCES webtoon_episode (id)
        ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- rating: one scale, 1.0 to 5.0 in steps of 0.5 (what the original's API validated; its
-- entity allowed 0-10, which no member could submit).
CREATE TABLE webtoon_review (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    member_id BIGINT NOT NULL,
    webtoon_id BIGINT NOT NULL,
    rating DECIMAL(2,1) NOT NULL,
    comment VARCHAR(1000) NULL,
    like_count INT NOT NULL DEFAULT 0,
    spoilable BOOLEAN NOT NULL DEFAULT FALSE,
    reported BOOLEAN NOT NULL DEFAULT FALSE,
    report_count INT NOT NULL DEFAULT 0,
    created_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    updated_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
    UNIQUE KEY uk_webtoon_review_member_webtoon (member_id, webtoon_id),
    KEY idx_webtoon_review_webtoon (webtoon_id),
    KEY idx_webtoon_review_updated (updated_at),
    CONSTRAINT ck_webtoon_review_rating CHECK (rating BETWEEN 1.0 AND 5.0),
    CONSTRAINT fk_webtoon_review_member FOREIGN KEY (member_id) REFERENCES member (id)
        ON DELETE CASCADE,
    CONSTRAINT fk_webtoon_review_webtoon FOREIGN KEY (webtoon_id) REFERENCES webtoon (id)
        ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Trained models: one row per version; the factors and parameters are in S3 at s3_key.
CREATE TABLE recommendation_model (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    version VARCHAR(64) CHARACTER SET ascii NOT NULL,
    algorithm VARCHAR(32) NOT NULL,
    params JSON NOT NULL,
    metrics JSON NULL,
    s3_key VARCHAR(512) NOT NULL,
    n_members INT NOT NULL,
    n_webtoons INT NOT NULL,
    n_interactions BIGINT NOT NULL,
    fit_seconds DOUBLE NOT NULL,
    trained_at DATETIME(6) NOT NULL DEFAULT UTC_TIMESTAMP(6),
    UNIQUE KEY uk_recommendation_model_version (version)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- The serving switch as an append-only log: the serving version is the latest row;
-- a rollback appends the version that served before it.
CREATE TABLE recommendation_serving_log (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    model_version VARCHAR(64) CHARACTER SET ascii NOT NULL,
    action VARCHAR(16) NOT NULL,
    reason VARCHAR(255) NULL,
    switched_at DATETIME(6) NOT NULL DEFAULT UTC_TIMESTAMP(6),
    KEY idx_recommendation_serving_log_version (model_version),
    CONSTRAINT fk_recommendation_serving_log_model FOREIGN KEY (model_version)
        REFERENCES recommendation_model (version)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Top-N per member (the Redis cache is filled from the same computation).
CREATE TABLE member_webtoon_recommendation (
    member_id BIGINT NOT NULL,
    `rank` INT NOT NULL,
    webtoon_id BIGINT NOT NULL,
    score DOUBLE NOT NULL,
    -- als | hybrid | content | popularity: what produced this member's list.
    source VARCHAR(16) NOT NULL,
    model_version VARCHAR(64) CHARACTER SET ascii NULL,
    generated_at DATETIME(6) NOT NULL DEFAULT UTC_TIMESTAMP(6),
    PRIMARY KEY (member_id, `rank`),
    KEY idx_member_webtoon_recommendation_webtoon (webtoon_id),
    CONSTRAINT fk_member_webtoon_recommendation_member FOREIGN KEY (member_id)
        REFERENCES member (id) ON DELETE CASCADE,
    CONSTRAINT fk_member_webtoon_recommendation_webtoon FOREIGN KEY (webtoon_id)
        REFERENCES webtoon (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE webtoon_similar_webtoon (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    source_webtoon_id BIGINT NOT NULL,
    similar_webtoon_id BIGINT NOT NULL,
    score DOUBLE NOT NULL,
    `rank` INT NOT NULL,
    model_version VARCHAR(64) CHARACTER SET ascii NULL,
    updated_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
    UNIQUE KEY uk_webtoon_similar_webtoon_rank (source_webtoon_id, `rank`),
    KEY idx_webtoon_similar_webtoon_similar (similar_webtoon_id),
    CONSTRAINT fk_webtoon_similar_source FOREIGN KEY (source_webtoon_id) REFERENCES webtoon (id)
        ON DELETE CASCADE,
    CONSTRAINT fk_webtoon_similar_similar FOREIGN KEY (similar_webtoon_id) REFERENCES webtoon (id)
        ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE webtoon_recommend_group (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    code VARCHAR(64) NOT NULL,
    title VARCHAR(255) NOT NULL,
    description VARCHAR(1000) NULL,
    is_active BOOLEAN NOT NULL DEFAULT TRUE,
    created_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    updated_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
    UNIQUE KEY uk_webtoon_recommend_group_code (code)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE webtoon_recommend_item (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    webtoon_recommend_group_id BIGINT NOT NULL,
    webtoon_id BIGINT NOT NULL,
    `rank` INT NOT NULL,
    tagline VARCHAR(255) NULL,
    UNIQUE KEY uk_webtoon_recommend_item_rank (webtoon_recommend_group_id, `rank`),
    KEY idx_webtoon_recommend_item_webtoon (webtoon_id),
    CONSTRAINT fk_webtoon_recommend_item_group FOREIGN KEY (webtoon_recommend_group_id)
        REFERENCES webtoon_recommend_group (id) ON DELETE CASCADE,
    CONSTRAINT fk_webtoon_recommend_item_webtoon FOREIGN KEY (webtoon_id) REFERENCES webtoon (id)
        ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- A/B experiments: variants map to an algorithm and its parameters; a member's variant
-- is a stable hash of (salt, member id) over the variants' weights, so it is never
-- stored, only the exposures are.
CREATE TABLE recommendation_experiment (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    code VARCHAR(64) NOT NULL,
    description VARCHAR(1000) NULL,
    salt VARCHAR(64) NOT NULL,
    -- DRAFT | RUNNING | STOPPED
    status VARCHAR(16) NOT NULL DEFAULT 'RUNNING',
    created_at DATETIME(6) NOT NULL DEFAULT UTC_TIMESTAMP(6),
    started_at DATETIME(6) NULL,
    stopped_at DATETIME(6) NULL,
    UNIQUE KEY uk_recommendation_experiment_code (code)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE recommendation_experiment_variant (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    experiment_id BIGINT NOT NULL,
    name VARCHAR(64) NOT NULL,
    weight INT NOT NULL DEFAULT 1,
    algorithm VARCHAR(32) NOT NULL,
    params JSON NOT NULL,
    UNIQUE KEY uk_recommendation_experiment_variant (experiment_id, name),
    CONSTRAINT fk_recommendation_experiment_variant_experiment FOREIGN KEY (experiment_id)
        REFERENCES recommendation_experiment (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE recommendation_exposure (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    experiment_id BIGINT NOT NULL,
    variant_id BIGINT NOT NULL,
    member_id BIGINT NOT NULL,
    webtoon_id BIGINT NOT NULL,
    `rank` INT NOT NULL,
    exposed_at DATETIME(6) NOT NULL DEFAULT UTC_TIMESTAMP(6),
    KEY idx_recommendation_exposure_experiment_member (experiment_id, member_id),
    KEY idx_recommendation_exposure_variant (variant_id),
    CONSTRAINT fk_recommendation_exposure_experiment FOREIGN KEY (experiment_id)
        REFERENCES recommendation_experiment (id) ON DELETE CASCADE,
    CONSTRAINT fk_recommendation_exposure_variant FOREIGN KEY (variant_id)
        REFERENCES recommendation_experiment_variant (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
