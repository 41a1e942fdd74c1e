"""Every setting's value is checked when the configuration is loaded: one ConfigError
naming the variable and the rule it breaks, never a later traceback or hang."""

import pytest

from shared.config import SETTINGS, ConfigError, load_config

BAD_VALUES = [
    ("TOONPICK_CRAWL_CONCURRENCY", "0", "TOONPICK_CRAWL_CONCURRENCY=0: must be at least 1"),
    ("TOONPICK_CRAWL_CONCURRENCY", "many", "TOONPICK_CRAWL_CONCURRENCY=many: must be an integer"),
    ("TOONPICK_CRAWL_HOST_RATE", "-1", "must be at least 0"),
    ("TOONPICK_CRAWL_HOST_RATE", "nan", "must be a finite number"),
    ("TOONPICK_CRAWL_LEASE_SECONDS", "0", "must be greater than 0"),
    ("TOONPICK_CRAWL_BATCH_SIZE", "0", "must be at least 1"),
    ("TOONPICK_CRAWL_FLUSH_SECONDS", "inf", "must be a finite number"),
    ("TOONPICK_TASK_HEARTBEAT_TIMEOUT", "-1", "must be greater than 0"),
    ("TOONPICK_TASK_HEARTBEAT_TIMEOUT", "5",
     "must be greater than TOONPICK_TASK_HEARTBEAT_INTERVAL (5)"),
    ("TOONPICK_SCHEDULER_TICK_SECONDS", "90",
     "TOONPICK_SCHEDULER_LATE_AFTER_SECONDS=120: must be at least twice"),
    ("TOONPICK_SQS_WAIT_SECONDS", "21", "must be at most 20"),
    ("TOONPICK_SQS_ENABLED", "maybe", "must be a boolean"),
    ("TOONPICK_LOG_LEVEL", "LOUD", "must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL"),
    ("TOONPICK_PROFILE", "staging", "TOONPICK_PROFILE"),
    ("TOONPICK_TIMEZONE", "Mars/Olympus", "is not a known time zone"),
    ("TOONPICK_MARIADB_URL", "postgres://db/x", "expected a mysql:// URL"),
    ("TOONPICK_MARIADB_URL", "mysql://127.0.0.1:33o6/x", "has an invalid port"),
    ("TOONPICK_MARIADB_URL", "mysql://127.0.0.1/x?ssl=maybe", "ssl must be one of"),
    ("TOONPICK_MONGO_URL", "mongodb://127.0.0.1:27017/", "must name a database"),
    ("TOONPICK_MONGO_URL", "http://127.0.0.1/x", "must be a mongodb:// URL"),
    ("REDIS_URL", "127.0.0.1:6379", "must be a redis://"),
    ("REDIS_URL", "redis://127.0.0.1:6379/zero", "database must be a number"),
    ("TOONPICK_IMAGES_STORE", "s3://", "must be an s3://bucket/prefix/ URL"),
    ("TOONPICK_RECOMMENDER_MODELS_STORE", "/tmp/models", "must be an s3://bucket/prefix/ URL"),
    ("TOONPICK_NAVER_BASE_URL", "comic.naver.com", "must be an http:// or https:// URL"),
    ("TOONPICK_ALERT_WEBHOOK_URL", "hooks.slack.com/x", "must be an http:// or https:// URL"),
    ("TOONPICK_CRAWL_TODAY", "2026-13-45", "must be a date in the form YYYY-MM-DD"),
    ("TOONPICK_TASK_MODULES", "crawler.tasks,not a module", "not module names: not a module"),
    ("TOONPICK_SCHEDULES", "daily_collection=0 0 2 * * *", "expected 5 fields"),
    ("TOONPICK_RECOMMENDER_WEIGHTS", "[1, 2]", "must be a JSON object"),
    ("TOONPICK_RECOMMENDER_PARAMS", "{factors: 3}", "is not JSON"),
    ("AWS_SQS_WEBTOON_CREATE_REQUEST", " ", "must not be empty"),
]


@pytest.mark.parametrize(("env", "value", "message"), BAD_VALUES,
                         ids=[f"{env}={value}" for env, value, _ in BAD_VALUES])
def test_a_bad_value_is_one_error_naming_the_variable_and_the_rule(env, value, message):
    with pytest.raises(ConfigError) as caught:
        load_config(environ={env: value})
    text = str(caught.value)
    assert message in text
    assert "\n" not in text
    assert text.startswith(env) or message.startswith("TOONPICK_SCHEDULER_LATE")


def test_every_default_of_every_profile_is_valid():
    required = {s.env: "s3://prod-bucket/x/" if "STORE" in s.env else
                ("mysql://u:p@db/x" if "MARIADB" in s.env else "mongodb://m/x")
                for s in SETTINGS if s.default_for("prod") is None}
    for profile in ("dev", "test"):
        assert load_config(environ={}, profile=profile).profile == profile
    assert load_config(environ=required, profile="prod").profile == "prod"


def test_values_at_the_edge_of_their_range_are_kept():
    config = load_config(environ={
        "TOONPICK_CRAWL_HOST_RATE": "0", "TOONPICK_CRAWL_MAX_RECLAIMS": "0",
        "TOONPICK_SQS_WAIT_SECONDS": "20", "TOONPICK_TASK_STOP_CHECK_INTERVAL": "0",
        "TOONPICK_SCHEDULER_RECLAIM_SECONDS": "0", "TOONPICK_TIMEZONE": "UTC",
        "REDIS_URL": "redis://127.0.0.1:6379/12", "TOONPICK_CRAWL_TODAY": "2026-11-02",
        "TOONPICK_MONGO_URL": "mongodb://a:1,b:2/x?replicaSet=r",
        "TOONPICK_IMAGES_STORE": "data/images", "TOONPICK_RECOMMENDER_WEIGHTS": '{"like": 5}',
        "TOONPICK_SCHEDULES": "hourly_episodes=off",
    })
    assert config.crawl_host_rate == 0.0 and config.crawl_max_reclaims == 0
    assert config.sqs_wait_seconds == 20 and config.task_stop_check_interval == 0.0
    assert config.redis_url.endswith("/12") and config.schedules == "hourly_episodes=off"


def test_an_error_never_prints_a_password():
    with pytest.raises(ConfigError) as caught:
        load_config(environ={"TOONPICK_MARIADB_URL": "mysql://toonpick:hunter2@db:3306/x?ssl=no"})
    assert "hunter2" not in str(caught.value)
    assert "TOONPICK_MARIADB_URL=mysql://toonpick:***@db:3306/x?ssl=no" in str(caught.value)
