"""Every setting of the worker: its environment variable, default per profile, and meaning.

One table (``SETTINGS``) is the single source: processes read it through
``load_config()``, Scrapy's settings are filled from it, and the README's
configuration table is generated from it (``toonpick config --markdown``).

Profiles: ``dev`` (default) points at the local services started by
``deploy/local/services.sh``; ``test`` uses separate databases on the same
services; ``prod`` has no defaults for stores, so a missing URL is an error
at start-up rather than a silent write to a developer database.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

PROFILES = ("dev", "test", "prod")


class ConfigError(ValueError):
    """A setting is missing or malformed."""


@dataclass(frozen=True)
class Setting:
    name: str
    env: str
    default: str | None
    help: str
    kind: type = str
    # Profile-specific defaults override ``default``; ``None`` means "must be set".
    profiles: Mapping[str, str | None] = field(default_factory=dict)

    def default_for(self, profile: str) -> str | None:
        return self.profiles.get(profile, self.default)


_LOCAL_MARIADB = "mysql://toonpick:toonpick@127.0.0.1:3306/"
_LOCAL_MONGO = "mongodb://127.0.0.1:27017/"

SETTINGS: tuple[Setting, ...] = (
    Setting("profile", "TOONPICK_PROFILE", "dev", "Profile: dev, test or prod.",
            profiles={"test": "test", "prod": "prod"}),
    Setting("log_level", "TOONPICK_LOG_LEVEL", "INFO", "Log level of every process."),
    Setting("timezone", "TOONPICK_TIMEZONE", "Asia/Seoul",
            "Time zone of the platforms' calendar (publish days, schedules)."),
    # Stores: one URL each.
    Setting("mariadb_url", "TOONPICK_MARIADB_URL", _LOCAL_MARIADB + "toonpick?ssl=disabled",
            "MariaDB catalogue, members' activity, recommendations, tasks.",
            profiles={"test": _LOCAL_MARIADB + "toonpick_test?ssl=disabled", "prod": None}),
    Setting("mongo_url", "TOONPICK_MONGO_URL", _LOCAL_MONGO + "toonpick?retryWrites=false",
            "MongoDB raw documents. SecantusDB in dev/test needs retryWrites=false.",
            profiles={"test": _LOCAL_MONGO + "toonpick_test?retryWrites=false", "prod": None}),
    Setting("redis_url", "REDIS_URL", "",
            "Redis for the crawl cluster and jobs. Empty: crawls run single-process."),
    Setting("images_store", "TOONPICK_IMAGES_STORE", "data/images",
            "Where thumbnails go: s3://bucket/prefix/ or a local path.",
            profiles={"dev": "s3://toonpick-images/", "test": "s3://toonpick-test-images/",
                      "prod": None}),
    Setting("aws_endpoint_url", "AWS_ENDPOINT_URL", "",
            "S3/SQS endpoint; empty means AWS itself. moto_server in dev/test.",
            profiles={"dev": "http://127.0.0.1:5000", "test": "http://127.0.0.1:5000"}),
    Setting("aws_access_key_id", "AWS_ACCESS_KEY_ID", "",
            "AWS access key (any value for moto).",
            profiles={"dev": "testing", "test": "testing"}),
    Setting("aws_secret_access_key", "AWS_SECRET_ACCESS_KEY", "",
            "AWS secret key (any value for moto).",
            profiles={"dev": "testing", "test": "testing"}),
    Setting("aws_region", "AWS_REGION", "ap-northeast-2", "AWS region."),
    # Platforms: the real hosts by default; the simulator's URL offline.
    Setting("naver_base_url", "TOONPICK_NAVER_BASE_URL", "https://comic.naver.com",
            "Naver Webtoon base URL."),
    Setting("kakao_base_url", "TOONPICK_KAKAO_BASE_URL", "https://gateway-kw.kakao.com",
            "Kakao Webtoon API base URL."),
    Setting("kakaopage_base_url", "TOONPICK_KAKAOPAGE_BASE_URL", "https://page.kakao.com",
            "KakaoPage base URL (GraphQL at /graphql)."),
    # Crawl behaviour.
    Setting("crawl_concurrency", "TOONPICK_CRAWL_CONCURRENCY", "16",
            "Concurrent requests per spider node.", kind=int),
    Setting("crawl_host_rate", "TOONPICK_CRAWL_HOST_RATE", "6",
            "Requests per second per host, shared by the whole cluster (0: unlimited).",
            kind=float),
    Setting("crawl_lease_seconds", "TOONPICK_CRAWL_LEASE_SECONDS", "60",
            "How long a popped request stays leased to a silent node before another "
            "node reclaims it.", kind=float),
    Setting("crawl_max_reclaims", "TOONPICK_CRAWL_MAX_RECLAIMS", "3",
            "Times an expired lease is put back before its request is dead-lettered.",
            kind=int),
    Setting("crawl_retry_after_max", "TOONPICK_CRAWL_RETRY_AFTER_MAX", "600",
            "Longest Retry-After (seconds) honoured; longer answers are capped.", kind=float),
    Setting("crawl_batch_size", "TOONPICK_CRAWL_BATCH_SIZE", "500",
            "Items per bulk write in the store pipelines.", kind=int),
    Setting("crawl_flush_seconds", "TOONPICK_CRAWL_FLUSH_SECONDS", "0.5",
            "Longest time an item waits in a pipeline buffer before it is written.",
            kind=float),
    Setting("crawl_outage_seconds", "TOONPICK_CRAWL_OUTAGE_SECONDS", "120",
            "How long a node keeps renewing its leases while a store keeps failing; past "
            "it the leases expire so healthy nodes can take the work (the node's writes "
            "are still retried, never dropped).", kind=float),
    Setting("crawl_idle_seconds", "TOONPICK_CRAWL_IDLE_SECONDS", "5",
            "Cluster mode: how long an idle node waits for work before the run is "
            "checked for done.", kind=float),
    # Task execution (shared/tasks/).
    Setting("task_modules", "TOONPICK_TASK_MODULES", "crawler.tasks,recommender.tasks",
            "Comma-separated modules whose import registers task bodies (workers and "
            "schedulers import them)."),
    Setting("task_heartbeat_interval", "TOONPICK_TASK_HEARTBEAT_INTERVAL", "5",
            "Seconds between heartbeats of a running task execution.", kind=float),
    Setting("task_heartbeat_timeout", "TOONPICK_TASK_HEARTBEAT_TIMEOUT", "60",
            "Silence after which a running execution is ABANDONED (and a queued one's job "
            "counts as lost).", kind=float),
    Setting("task_stop_check_interval", "TOONPICK_TASK_STOP_CHECK_INTERVAL", "1",
            "How long a task trusts the last stop flag it read.", kind=float),
    Setting("task_reconcile_interval", "TOONPICK_TASK_RECONCILE_INTERVAL", "30",
            "Seconds between each worker's reconciliation of dead executions.", kind=float),
    # Schedules (shared/tasks/schedules.py).
    Setting("schedules", "TOONPICK_SCHEDULES", "",
            "Overrides of the default schedules, ';'-separated: name=off, name=CRON, "
            "options after '|' (late=6h, skip, task=TYPE). Empty: the defaults."),
    Setting("scheduler_tick_seconds", "TOONPICK_SCHEDULER_TICK_SECONDS", "10",
            "Seconds between scheduler ticks.", kind=float),
    Setting("scheduler_late_after_seconds", "TOONPICK_SCHEDULER_LATE_AFTER_SECONDS", "120",
            "A slot handled within this many seconds is on time (at least 2x the tick).",
            kind=float),
    Setting("scheduler_reclaim_seconds", "TOONPICK_SCHEDULER_RECLAIM_SECONDS", "600",
            "When another scheduler takes over a slot claimed by a scheduler that died "
            "before enqueueing it (0: never).", kind=float),
    Setting("crawl_today", "TOONPICK_CRAWL_TODAY", "",
            "Override today's date (YYYY-MM-DD) for the episode-update rule; empty: now "
            "in TOONPICK_TIMEZONE."),
    # SQS request/complete messages (shared/tasks/messages.py); off as in the original.
    Setting("sqs_enabled", "TOONPICK_SQS_ENABLED", "false",
            "Consume the two request queues and send completion messages.", kind=bool),
    Setting("sqs_create_request_queue", "AWS_SQS_WEBTOON_CREATE_REQUEST",
            "toonpick-webtoon-create-request",
            "Queue (name or URL) of CRAWL_WEBTOON_ALL / CRAWL_WEBTOON_NEW requests."),
    Setting("sqs_update_request_queue", "AWS_SQS_WEBTOON_UPDATE_REQUEST",
            "toonpick-webtoon-update-request",
            "Queue (name or URL) of CRAWL_WEBTOON_EPISODE requests."),
    Setting("sqs_create_complete_queue", "AWS_SQS_WEBTOON_CREATE_COMPLETE",
            "toonpick-webtoon-create-complete",
            "Queue (name or URL) getting the completion of create requests."),
    Setting("sqs_update_complete_queue", "AWS_SQS_WEBTOON_UPDATE_COMPLETE",
            "toonpick-webtoon-update-complete",
            "Queue (name or URL) getting the completion of update requests."),
    Setting("sqs_dead_letter_queue", "TOONPICK_SQS_DEAD_LETTER_QUEUE",
            "toonpick-webtoon-request-dlq",
            "Queue (name or URL) for invalid or undeliverable requests, with the reason."),
    Setting("sqs_visibility_timeout", "TOONPICK_SQS_VISIBILITY_TIMEOUT", "60",
            "Seconds a received request stays hidden; one not acknowledged (a transient "
            "failure) is delivered again after that.", kind=int),
    Setting("sqs_max_receives", "TOONPICK_SQS_MAX_RECEIVES", "5",
            "Deliveries of one request before it goes to the dead-letter queue.", kind=int),
    Setting("sqs_wait_seconds", "TOONPICK_SQS_WAIT_SECONDS", "20",
            "Long-poll wait of one receive (0-20 seconds).", kind=int),
    # Job alerts (shared/tasks/alerts.py).
    Setting("alert_webhook_url", "TOONPICK_ALERT_WEBHOOK_URL", "",
            "Slack-compatible webhook getting job alerts; empty: no alerts."),
    Setting("alert_on_success", "TOONPICK_ALERT_ON_SUCCESS", "false",
            "Also alert when a job completes (failures always alert).", kind=bool),
    # Recommender (recommender/).
    Setting("recommender_models_store", "TOONPICK_RECOMMENDER_MODELS_STORE", None,
            "Where trained model versions go: s3://bucket/prefix/.",
            profiles={"dev": "s3://toonpick-models/recommender/",
                      "test": "s3://toonpick-test-models/recommender/"}),
    Setting("recommender_top_n", "TOONPICK_RECOMMENDER_TOP_N", "20",
            "Recommendations kept per member (MariaDB and the Redis cache).", kind=int),
    Setting("recommender_cache_ttl", "TOONPICK_RECOMMENDER_CACHE_TTL", "86400",
            "Seconds a member's cached recommendations live in Redis.", kind=int),
    Setting("recommender_weights", "TOONPICK_RECOMMENDER_WEIGHTS", "",
            "JSON object overriding the confidence weight of each activity signal "
            "(recommender/activity.py); empty: the documented defaults."),
    Setting("recommender_params", "TOONPICK_RECOMMENDER_PARAMS", "",
            "JSON object overriding the training parameters (factors, iterations, "
            "regularization, ...; recommender/training.py); empty: the defaults."),
)

_BY_NAME = {s.name: s for s in SETTINGS}


_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"", "0", "false", "no", "off"})


def _convert(setting: Setting, raw: str) -> Any:
    if setting.kind is str:
        return raw
    if setting.kind is bool:
        # bool("false") is True: spell the accepted words out.
        word = raw.strip().lower()
        if word in _TRUE or word in _FALSE:
            return word in _TRUE
        raise ConfigError(f"{setting.env}={raw!r} is not a boolean (true/false, 1/0, yes/no)")
    try:
        return setting.kind(raw)
    except ValueError as exc:
        raise ConfigError(f"{setting.env}={raw!r} is not a valid {setting.kind.__name__}") from exc


class Config(Mapping[str, Any]):
    """Read-only view of the resolved settings; attribute or item access."""

    def __init__(self, values: dict[str, Any], profile: str):
        self._values = values
        self.profile = profile

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __iter__(self):
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __getattr__(self, key: str) -> Any:
        try:
            return self._values[key]
        except KeyError:
            raise AttributeError(key) from None

    def __repr__(self) -> str:
        return f"Config(profile={self.profile!r})"


def load_config(environ: Mapping[str, str] | None = None, profile: str | None = None) -> Config:
    """Resolve every setting from ``environ`` (default ``os.environ``) for a profile."""
    env = os.environ if environ is None else environ
    profile = profile or env.get("TOONPICK_PROFILE") or "dev"
    if profile not in PROFILES:
        raise ConfigError(f"TOONPICK_PROFILE={profile!r}: expected one of {', '.join(PROFILES)}")
    values: dict[str, Any] = {}
    missing = []
    for setting in SETTINGS:
        raw = env.get(setting.env)
        if raw is None:
            raw = setting.default_for(profile)
        if raw is None:
            missing.append(setting.env)
            continue
        values[setting.name] = _convert(setting, raw)
    values["profile"] = profile
    if missing:
        raise ConfigError(f"profile {profile!r} requires: {', '.join(missing)}")
    return Config(values, profile)


def markdown_table() -> str:
    """The README's configuration table."""
    rows = ["| Variable | dev default | test | prod | Meaning |", "|---|---|---|---|---|"]

    def cell(value: str | None) -> str:
        if value is None:
            return "**required**"
        return f"`{value}`" if value else "(empty)"

    for s in SETTINGS:
        rows.append(
            f"| `{s.env}` | {cell(s.default_for('dev'))} | {cell(s.default_for('test'))} "
            f"| {cell(s.default_for('prod'))} | {s.help} |"
        )
    return "\n".join(rows)


def setting(name: str) -> Setting:
    return _BY_NAME[name]
