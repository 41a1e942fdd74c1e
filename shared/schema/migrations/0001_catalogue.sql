-- The catalogue: the original system's tables and column names (the platform's API
-- server reads them), plus what the worker needs to write them idempotently:
-- webtoon.identity_key (dedup across platforms), webtoon_platform.external_id,
-- publish days, tags, episode published_at, thumbnail_path.

CREATE TABLE platform (
    id INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    name VARCHAR(32) NOT NULL,
    UNIQUE KEY uk_platform_name (name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

INSERT INTO platform (name) VALUES
    ('NAVER'), ('KAKAO'), ('KAKAOPAGE'), ('RIDI'), ('LEZHIN'),
    ('TOOMICS'), ('BOMTOON'), ('MRBLUE'), ('BUFF');

CREATE TABLE webtoon (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    title VARCHAR(255) NOT NULL,
    normalized_title VARCHAR(255) NOT NULL,
    -- The platform id of the first platform seen; every platform's id is in webtoon_platform.
    external_id VARCHAR(64) NOT NULL,
    -- sha1(normalized title + sorted author names): the original's dedup rule.
    identity_key CHAR(40) CHARACTER SET ascii NOT NULL,
    day_of_week VARCHAR(10) NULL,
    status VARCHAR(16) NOT NULL,
    age_rating VARCHAR(16) NOT NULL,
    thumbnail_url VARCHAR(1024) NULL,
    thumbnail_path VARCHAR(1024) NULL,
    summary TEXT NULL,
    publish_start_date DATE NULL,
    last_update_date DATE NULL,
    created_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    updated_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
    UNIQUE KEY uk_webtoon_identity_key (identity_key),
    KEY idx_webtoon_status (status),
    KEY idx_webtoon_day_of_week (day_of_week),
    KEY idx_webtoon_normalized_title (normalized_title)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE author (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    uid VARCHAR(191) NOT NULL,
    name VARCHAR(255) NOT NULL,
    role VARCHAR(16) NOT NULL,
    created_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    updated_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
    UNIQUE KEY uk_author_uid (uid)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE author_sns (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    author_id BIGINT NOT NULL,
    sns_type VARCHAR(32) NOT NULL,
    sns_link VARCHAR(1024) NOT NULL,
    UNIQUE KEY uk_author_sns (author_id, sns_type),
    CONSTRAINT fk_author_sns_author FOREIGN KEY (author_id) REFERENCES author (id)
        ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE genre (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    name VARCHAR(64) NOT NULL,
    -- The enum's NAME ('MAIN'/'SUB'); the original stored the ordinal by mistake.
    type VARCHAR(8) NOT NULL DEFAULT 'MAIN',
    display TINYINT(1) NOT NULL DEFAULT 1,
    UNIQUE KEY uk_genre_name (name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE tag (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    name VARCHAR(64) NOT NULL,
    UNIQUE KEY uk_tag_name (name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE webtoon_author (
    webtoon_id BIGINT NOT NULL,
    author_id BIGINT NOT NULL,
    -- The author's role on this title (author.role keeps the first one seen).
    role VARCHAR(16) NOT NULL,
    PRIMARY KEY (webtoon_id, author_id),
    KEY idx_webtoon_author_author (author_id),
    CONSTRAINT fk_webtoon_author_webtoon FOREIGN KEY (webtoon_id) REFERENCES webtoon (id)
        ON DELETE CASCADE,
    CONSTRAINT fk_webtoon_author_author FOREIGN KEY (author_id) REFERENCES author (id)
        ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE webtoon_genre (
    webtoon_id BIGINT NOT NULL,
    genre_id BIGINT NOT NULL,
    PRIMARY KEY (webtoon_id, genre_id),
    KEY idx_webtoon_genre_genre (genre_id),
    CONSTRAINT fk_webtoon_genre_webtoon FOREIGN KEY (webtoon_id) REFERENCES webtoon (id)
        ON DELETE CASCADE,
    CONSTRAINT fk_webtoon_genre_genre FOREIGN KEY (genre_id) REFERENCES genre (id)
        ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE webtoon_tag (
    webtoon_id BIGINT NOT NULL,
    tag_id BIGINT NOT NULL,
    PRIMARY KEY (webtoon_id, tag_id),
    KEY idx_webtoon_tag_tag (tag_id),
    CONSTRAINT fk_webtoon_tag_webtoon FOREIGN KEY (webtoon_id) REFERENCES webtoon (id)
        ON DELETE CASCADE,
    CONSTRAINT fk_webtoon_tag_tag FOREIGN KEY (tag_id) REFERENCES tag (id)
        ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Every publish day of a title; webtoon.day_of_week keeps only the first.
CREATE TABLE webtoon_publish_day (
    webtoon_id BIGINT NOT NULL,
    day_of_week VARCHAR(10) NOT NULL,
    PRIMARY KEY (webtoon_id, day_of_week),
    KEY idx_webtoon_publish_day_day (day_of_week),
    CONSTRAINT fk_webtoon_publish_day_webtoon FOREIGN KEY (webtoon_id) REFERENCES webtoon (id)
        ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE webtoon_platform (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    webtoon_id BIGINT NOT NULL,
    platform_id INT NOT NULL,
    external_id VARCHAR(64) NOT NULL,
    link VARCHAR(1024) NOT NULL DEFAULT '',
    `rank` INT NULL,
    -- The platform's own popularity figures (favorites, views, star score) as canonical JSON.
    stats TEXT NULL,
    -- This platform's own schedule, for the episode-update rule: a webtoon on two
    -- platforms can run on different days, pause on one and end earlier on the other.
    status VARCHAR(16) NULL,
    publish_days SET('MONDAY', 'TUESDAY', 'WEDNESDAY', 'THURSDAY', 'FRIDAY', 'SATURDAY',
                     'SUNDAY') NOT NULL DEFAULT '',
    last_update_date DATE NULL,
    created_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    updated_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
    UNIQUE KEY uk_webtoon_platform_external (platform_id, external_id),
    KEY idx_webtoon_platform_webtoon (webtoon_id),
    CONSTRAINT fk_webtoon_platform_webtoon FOREIGN KEY (webtoon_id) REFERENCES webtoon (id)
        ON DELETE CASCADE,
    CONSTRAINT fk_webtoon_platform_platform FOREIGN KEY (platform_id) REFERENCES platform (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE webtoon_season (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    webtoon_id BIGINT NOT NULL,
    season_no INT NOT NULL DEFAULT 1,
    title VARCHAR(255) NULL,
    started_at DATE NULL,
    ended_at DATE NULL,
    UNIQUE KEY uk_webtoon_season (webtoon_id, season_no),
    CONSTRAINT fk_webtoon_season_webtoon FOREIGN KEY (webtoon_id) REFERENCES webtoon (id)
        ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE webtoon_episode (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    webtoon_id BIGINT NOT NULL,
    season_id BIGINT NOT NULL,
    episode_no INT NOT NULL,
    title VARCHAR(512) NOT NULL,
    pricing_type VARCHAR(16) NOT NULL,
    published_at DATE NULL,
    thumbnail_url VARCHAR(1024) NULL,
    created_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    updated_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
    UNIQUE KEY uk_webtoon_episode (webtoon_id, season_id, episode_no),
    KEY idx_webtoon_episode_season (season_id),
    KEY idx_webtoon_episode_published (webtoon_id, published_at),
    CONSTRAINT fk_webtoon_episode_webtoon FOREIGN KEY (webtoon_id) REFERENCES webtoon (id)
        ON DELETE CASCADE,
    CONSTRAINT fk_webtoon_episode_season FOREIGN KEY (season_id) REFERENCES webtoon_season (id)
        ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE webtoon_episode_link (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    episode_id BIGINT NOT NULL,
    platform_id INT NOT NULL,
    url VARCHAR(1024) NOT NULL DEFAULT '',
    viewer_type VARCHAR(8) NOT NULL DEFAULT 'WEB',
    external_id VARCHAR(64) NULL,
    UNIQUE KEY uk_webtoon_episode_link (episode_id, platform_id, viewer_type),
    KEY idx_webtoon_episode_link_platform (platform_id),
    CONSTRAINT fk_webtoon_episode_link_episode FOREIGN KEY (episode_id)
        REFERENCES webtoon_episode (id) ON DELETE CASCADE,
    CONSTRAINT fk_webtoon_episode_link_platform FOREIGN KEY (platform_id) REFERENCES platform (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE webtoon_statistics (
    webtoon_id BIGINT NOT NULL PRIMARY KEY,
    episode_count INT NOT NULL DEFAULT 0,
    total_views BIGINT NOT NULL DEFAULT 0,
    total_likes BIGINT NOT NULL DEFAULT 0,
    total_reviews BIGINT NOT NULL DEFAULT 0,
    average_rating DOUBLE NOT NULL DEFAULT 0,
    total_rating_sum DOUBLE NOT NULL DEFAULT 0,
    total_rating_count BIGINT NOT NULL DEFAULT 0,
    recent_views BIGINT NOT NULL DEFAULT 0,
    recent_likes BIGINT NOT NULL DEFAULT 0,
    recent_reviews BIGINT NOT NULL DEFAULT 0,
    created_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    updated_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
    CONSTRAINT fk_webtoon_statistics_webtoon FOREIGN KEY (webtoon_id) REFERENCES webtoon (id)
        ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
