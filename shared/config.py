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

import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import SplitResult, urlsplit

from shared.redaction import MASK, mask_url

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
    # A secret (key, token, a URL that is itself a credential) is never shown: see redact().
    secret: bool = False
    # Profile-specific defaults override ``default``; ``None`` means "must be set".
    profiles: Mapping[str, str | None] = field(default_factory=dict)
    # What a valid value is, checked by load_config (``check_value``): numbers within
    # ``minimum`` (inclusive) / ``above`` (exclusive) / ``maximum``, a string among
    # ``choices``, and ``rule(value)`` returning why a value is wrong (None: it is fine).
    minimum: float | None = None
    above: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    rule: Callable[[Any], str | None] | None = None

    def default_for(self, profile: str) -> str | None:
        return self.profiles.get(profile, self.default)


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


# -- rules (Setting.rule): each says why a value is wrong, or returns None ------------------
# URL rules parse what the store module would refuse at first use, so a typo is one line
# at start-up rather than a traceback from the first connection. They read the URL with
# urlsplit themselves where the store's own parser would import its client library
# (pymongo, redis: 80-180 ms) into every process that only loads its configuration.


def _optional(rule: Callable[[str], str | None]) -> Callable[[str], str | None]:
    """``rule``, with the empty value allowed (the setting's "off")."""
    def check(value: str) -> str | None:
        return None if value == "" else rule(value)
    return check


def _port_error(parts: SplitResult) -> str | None:
    try:
        _ = parts.port  # urlsplit parses the port only when asked
    except ValueError:
        return "has an invalid port"
    return None


def _http_url(value: str) -> str | None:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "must be an http:// or https:// URL with a host"
    return _port_error(parts)


def _mariadb_url(value: str) -> str | None:
    from shared.stores.mariadb import parse_url

    port_error = _port_error(urlsplit(value))
    if port_error is not None:
        return port_error
    try:
        parse_url(value)
    except ValueError as exc:
        # The store's message starts with the (password-masked) URL, shown already.
        return str(exc).rpartition("': ")[2] or str(exc)
    return None


def _mongo_url(value: str) -> str | None:
    parts = urlsplit(value)
    if parts.scheme not in ("mongodb", "mongodb+srv") or not parts.netloc.rpartition("@")[2]:
        return "must be a mongodb:// URL with a host"
    if not parts.path.lstrip("/"):
        return "must name a database (mongodb://host:port/DATABASE)"
    return None


def _redis_url(value: str) -> str | None:
    parts = urlsplit(value)
    if parts.scheme not in ("redis", "rediss", "unix"):
        return "must be a redis://, rediss:// or unix:// URL (or empty)"
    if parts.scheme != "unix" and not parts.path.strip("/").isdigit() and parts.path.strip("/"):
        return "database must be a number (redis://host:port/0)"
    return _port_error(parts)


def _s3_url(value: str) -> str | None:
    if not value.startswith("s3://") or not value[len("s3://"):].partition("/")[0]:
        return "must be an s3://bucket/prefix/ URL"
    return None


def _images_store(value: str) -> str | None:
    if value.startswith("s3://"):
        return _s3_url(value)
    return None if value.strip() else "must be an s3://bucket/prefix/ URL or a local path"


def _non_empty(value: str) -> str | None:
    return None if value.strip() else "must not be empty"


def _time_zone(value: str) -> str | None:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        return "is not a known time zone (e.g. Asia/Seoul, UTC)"
    return None


def _date(value: str) -> str | None:
    from datetime import date

    try:
        date.fromisoformat(value)
    except ValueError:
        return "must be a date in the form YYYY-MM-DD"
    return None


def _json_object(value: str) -> str | None:
    import json

    try:
        parsed = json.loads(value)
    except ValueError as exc:
        return f"is not JSON ({exc})"
    return None if isinstance(parsed, dict) else "must be a JSON object ({...})"


_MODULE_NAME = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")


def _module_list(value: str) -> str | None:
    bad = [name.strip() for name in value.split(",")
           if name.strip() and not _MODULE_NAME.match(name.strip())]
    return f"not module names: {', '.join(bad)}" if bad else None


def _schedules(value: str) -> str | None:
    # Imported only for a non-empty override: the default needs no parsing.
    from shared.tasks.schedules import ScheduleError, schedules_from_setting

    try:
        schedules_from_setting(value)
    except ScheduleError as exc:
        return str(exc)
    return None


_LOCAL_MARIADB = "mysql://toonpick:toonpick@127.0.0.1:3306/"
_LOCAL_MONGO = "mongodb://127.0.0.1:27017/"

SETTINGS: tuple[Setting, ...] = (
    Setting("profile", "TOONPICK_PROFILE", "dev", "Profile: dev, test or prod.",
            profiles={"test": "test", "prod": "prod"}, choices=PROFILES),
    Setting("log_level", "TOONPICK_LOG_LEVEL", "INFO", "Log level of every process.",
            choices=LOG_LEVELS),
    Setting("timezone", "TOONPICK_TIMEZONE", "Asia/Seoul",
            "Time zone of the platforms' calendar (publish days, schedules).", rule=_time_zone),
    # Stores: one URL each.
    Setting("mariadb_url", "TOONPICK_MARIADB_URL", _LOCAL_MARIADB + "toonpick?ssl=disabled",
            "MariaDB catalogue, members' activity, recommendations, tasks.",
            profiles={"test": _LOCAL_MARIADB + "toonpick_test?ssl=disabled", "prod": None},
            rule=_mariadb_url),
    Setting("mongo_url", "TOONPICK_MONGO_URL", _LOCAL_MONGO + "toonpick?retryWrites=false",
            "MongoDB raw documents. SecantusDB in dev/test needs retryWrites=false.",
            profiles={"test": _LOCAL_MONGO + "toonpick_test?retryWrites=false", "prod": None},
            rule=_mongo_url),
    Setting("redis_url", "REDIS_URL", "",
            "Redis for the crawl cluster and jobs. Empty: crawls run single-process.",
            rule=_optional(_redis_url)),
    Setting("images_store", "TOONPICK_IMAGES_STORE", "data/images",
            "Where thumbnails go: s3://bucket/prefix/ or a local path.",
            profiles={"dev": "s3://toonpick-images/", "test": "s3://toonpick-test-images/",
                      "prod": None}, rule=_images_store),
    Setting("aws_endpoint_url", "AWS_ENDPOINT_URL", "",
            "S3/SQS endpoint; empty means AWS itself. moto_server in dev/test.",
            profiles={"dev": "http://127.0.0.1:5000", "test": "http://127.0.0.1:5000"},
            rule=_optional(_http_url)),
    Setting("aws_access_key_id", "AWS_ACCESS_KEY_ID", "",
            "AWS access key (any value for moto).",
            profiles={"dev": "testing", "test": "testing"}),
    Setting("aws_secret_access_key", "AWS_SECRET_ACCESS_KEY", "",
            "AWS secret key (any value for moto).",
            profiles={"dev": "testing", "test": "testing"}, secret=True),
    Setting("aws_region", "AWS_REGION", "ap-northeast-2", "AWS region.", rule=_non_empty),
    # Platforms: the real hosts by default; the simulator's URL offline.
    Setting("naver_base_url", "TOONPICK_NAVER_BASE_URL", "https://comic.naver.com",
            "Naver Webtoon base URL.", rule=_http_url),
    Setting("kakao_base_url", "TOONPICK_KAKAO_BASE_URL", "https://gateway-kw.kakao.com",
            "Kakao Webtoon API base URL.", rule=_http_url),
    Setting("kakaopage_base_url", "TOONPICK_KAKAOPAGE_BASE_URL", "https://page.kakao.com",
            "KakaoPage base URL (GraphQL at /graphql).", rule=_http_url),
    # Crawl behaviour.
    Setting("crawl_concurrency", "TOONPICK_CRAWL_CONCURRENCY", "16",
            "Concurrent requests per spider node.", kind=int, minimum=1),
    Setting("crawl_host_rate", "TOONPICK_CRAWL_HOST_RATE", "6",
            "Requests per second per host, shared by the whole cluster (0: unlimited).",
            kind=float, minimum=0),
    Setting("crawl_lease_seconds", "TOONPICK_CRAWL_LEASE_SECONDS", "60",
            "How long a popped request stays leased to a silent node before another "
            "node reclaims it.", kind=float, above=0),
    Setting("crawl_max_reclaims", "TOONPICK_CRAWL_MAX_RECLAIMS", "3",
            "Times an expired lease is put back before its request is dead-lettered.",
            kind=int, minimum=0),
    Setting("crawl_retry_after_max", "TOONPICK_CRAWL_RETRY_AFTER_MAX", "600",
            "Longest Retry-After (seconds) honoured; longer answers are capped.",
            kind=float, minimum=0),
    Setting("crawl_batch_size", "TOONPICK_CRAWL_BATCH_SIZE", "500",
            "Items per bulk write in the store pipelines.", kind=int, minimum=1),
    Setting("crawl_flush_seconds", "TOONPICK_CRAWL_FLUSH_SECONDS", "0.5",
            "Longest time an item waits in a pipeline buffer before it is written.",
            kind=float, above=0),
    Setting("crawl_outage_seconds", "TOONPICK_CRAWL_OUTAGE_SECONDS", "120",
            "How long a node keeps renewing its leases while a store keeps failing; past "
            "it the leases expire so healthy nodes can take the work (the node's writes "
            "are still retried, never dropped).", kind=float, above=0),
    Setting("crawl_idle_seconds", "TOONPICK_CRAWL_IDLE_SECONDS", "5",
            "Cluster mode: how long an idle node waits for work before the run is "
            "checked for done.", kind=float, above=0),
    # Task execution (shared/tasks/).
    Setting("task_modules", "TOONPICK_TASK_MODULES", "crawler.tasks,recommender.tasks",
            "Comma-separated modules whose import registers task bodies (workers and "
            "schedulers import them).", rule=_module_list),
    Setting("task_heartbeat_interval", "TOONPICK_TASK_HEARTBEAT_INTERVAL", "5",
            "Seconds between heartbeats of a running task execution.", kind=float, above=0),
    Setting("task_heartbeat_timeout", "TOONPICK_TASK_HEARTBEAT_TIMEOUT", "60",
            "Silence after which a running execution is ABANDONED (and a queued one's job "
            "counts as lost).", kind=float, above=0),
    Setting("task_stop_check_interval", "TOONPICK_TASK_STOP_CHECK_INTERVAL", "1",
            "How long a task trusts the last stop flag it read.", kind=float, minimum=0),
    Setting("task_reconcile_interval", "TOONPICK_TASK_RECONCILE_INTERVAL", "30",
            "Seconds between each worker's reconciliation of dead executions.",
            kind=float, above=0),
    # Schedules (shared/tasks/schedules.py).
    Setting("schedules", "TOONPICK_SCHEDULES", "",
            "Overrides of the default schedules, ';'-separated: name=off, name=CRON, "
            "options after '|' (late=6h, skip, task=TYPE). Empty: the defaults.",
            rule=_optional(_schedules)),
    Setting("scheduler_tick_seconds", "TOONPICK_SCHEDULER_TICK_SECONDS", "10",
            "Seconds between scheduler ticks.", kind=float, above=0),
    Setting("scheduler_late_after_seconds", "TOONPICK_SCHEDULER_LATE_AFTER_SECONDS", "120",
            "A slot handled within this many seconds is on time (at least 2x the tick).",
            kind=float, above=0),
    Setting("scheduler_reclaim_seconds", "TOONPICK_SCHEDULER_RECLAIM_SECONDS", "600",
            "When another scheduler takes over a slot claimed by a scheduler that died "
            "before enqueueing it (0: never).", kind=float, minimum=0),
    Setting("crawl_today", "TOONPICK_CRAWL_TODAY", "",
            "Override today's date (YYYY-MM-DD) for the episode-update rule; empty: now "
            "in TOONPICK_TIMEZONE.", rule=_optional(_date)),
    # SQS request/complete messages (shared/tasks/messages.py); off as in the original.
    Setting("sqs_enabled", "TOONPICK_SQS_ENABLED", "false",
            "Consume the two request queues and send completion messages.", kind=bool),
    Setting("sqs_create_request_queue", "AWS_SQS_WEBTOON_CREATE_REQUEST",
            "toonpick-webtoon-create-request",
            "Queue (name or URL) of CRAWL_WEBTOON_ALL / CRAWL_WEBTOON_NEW requests.",
            rule=_non_empty),
    Setting("sqs_update_request_queue", "AWS_SQS_WEBTOON_UPDATE_REQUEST",
            "toonpick-webtoon-update-request",
            "Queue (name or URL) of CRAWL_WEBTOON_EPISODE requests.", rule=_non_empty),
    Setting("sqs_create_complete_queue", "AWS_SQS_WEBTOON_CREATE_COMPLETE",
            "toonpick-webtoon-create-complete",
            "Queue (name or URL) getting the completion of create requests.", rule=_non_empty),
    Setting("sqs_update_complete_queue", "AWS_SQS_WEBTOON_UPDATE_COMPLETE",
            "toonpick-webtoon-update-complete",
            "Queue (name or URL) getting the completion of update requests.", rule=_non_empty),
    Setting("sqs_dead_letter_queue", "TOONPICK_SQS_DEAD_LETTER_QUEUE",
            "toonpick-webtoon-request-dlq",
            "Queue (name or URL) for invalid or undeliverable requests, with the reason.",
            rule=_non_empty),
    Setting("sqs_visibility_timeout", "TOONPICK_SQS_VISIBILITY_TIMEOUT", "60",
            "Seconds a received request stays hidden; one not acknowledged (a transient "
            "failure) is delivered again after that.", kind=int, minimum=0, maximum=43200),
    Setting("sqs_max_receives", "TOONPICK_SQS_MAX_RECEIVES", "5",
            "Deliveries of one request before it goes to the dead-letter queue.",
            kind=int, minimum=1),
    Setting("sqs_wait_seconds", "TOONPICK_SQS_WAIT_SECONDS", "20",
            "Long-poll wait of one receive (0-20 seconds).", kind=int, minimum=0, maximum=20),
    # Job alerts (shared/tasks/alerts.py).
    Setting("alert_webhook_url", "TOONPICK_ALERT_WEBHOOK_URL", "",
            "Slack-compatible webhook getting job alerts; empty: no alerts.",
            rule=_optional(_http_url), secret=True),
    Setting("alert_on_success", "TOONPICK_ALERT_ON_SUCCESS", "false",
            "Also alert when a job completes (failures always alert).", kind=bool),
    # Recommender (recommender/).
    Setting("recommender_models_store", "TOONPICK_RECOMMENDER_MODELS_STORE", None,
            "Where trained model versions go: s3://bucket/prefix/.",
            profiles={"dev": "s3://toonpick-models/recommender/",
                      "test": "s3://toonpick-test-models/recommender/"}, rule=_s3_url),
    Setting("recommender_top_n", "TOONPICK_RECOMMENDER_TOP_N", "20",
            "Recommendations kept per member (MariaDB and the Redis cache).", kind=int, minimum=1),
    Setting("recommender_cache_ttl", "TOONPICK_RECOMMENDER_CACHE_TTL", "86400",
            "Seconds a member's cached recommendations live in Redis.", kind=int, minimum=1),
    Setting("recommender_weights", "TOONPICK_RECOMMENDER_WEIGHTS", "",
            "JSON object overriding the confidence weight of each activity signal "
            "(recommender/activity.py); empty: the documented defaults.",
            rule=_optional(_json_object)),
    Setting("recommender_params", "TOONPICK_RECOMMENDER_PARAMS", "",
            "JSON object overriding the training parameters (factors, iterations, "
            "regularization, ...; recommender/training.py); empty: the defaults.",
            rule=_optional(_json_object)),
)

_BY_NAME = {s.name: s for s in SETTINGS}


_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"", "0", "false", "no", "off"})


_KIND_NAMES = {int: "an integer", float: "a number"}


def _shown(setting: Setting, raw: str) -> str:
    """The value as an error message may print it: through ``redact``, like every value
    shown (a secret never, a URL without its password), quoted when it holds spaces."""
    raw = str(redact(setting, raw))
    return raw if raw and not any(c.isspace() for c in raw) else repr(raw)


def _invalid(setting: Setting, raw: str, reason: str) -> ConfigError:
    return ConfigError(f"{setting.env}={_shown(setting, raw)}: {reason}")


def _convert(setting: Setting, raw: str) -> Any:
    if setting.kind is str:
        return raw
    if setting.kind is bool:
        # bool("false") is True: spell the accepted words out.
        word = raw.strip().lower()
        if word in _TRUE or word in _FALSE:
            return word in _TRUE
        raise _invalid(setting, raw, "must be a boolean (true/false, 1/0, yes/no)")
    try:
        value = setting.kind(raw)
    except ValueError:
        kind = _KIND_NAMES.get(setting.kind, f"a {setting.kind.__name__}")
        raise _invalid(setting, raw, f"must be {kind}") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise _invalid(setting, raw, "must be a finite number")
    return value


def check_value(setting: Setting, value: Any) -> str | None:
    """Why ``value`` (converted) is not valid for ``setting``, or None."""
    if setting.minimum is not None and value < setting.minimum:
        return f"must be at least {setting.minimum:g}"
    if setting.above is not None and value <= setting.above:
        return f"must be greater than {setting.above:g}"
    if setting.maximum is not None and value > setting.maximum:
        return f"must be at most {setting.maximum:g}"
    if setting.choices and value not in setting.choices:
        return f"must be one of {', '.join(setting.choices)}"
    return setting.rule(value) if setting.rule is not None else None


# Rules between settings: (setting, why it is wrong given the others, or None).
_CROSS_RULES: tuple[tuple[str, Callable[[Mapping[str, Any]], str | None]], ...] = (
    # A timeout at or under the interval abandons executions whose worker is healthy.
    ("task_heartbeat_timeout", lambda v: None
     if v["task_heartbeat_timeout"] > v["task_heartbeat_interval"] else
     f"must be greater than TOONPICK_TASK_HEARTBEAT_INTERVAL "
     f"({v['task_heartbeat_interval']:g})"),
    # The scheduler loop refuses a tick that could see a slot only after it is late.
    ("scheduler_late_after_seconds", lambda v: None
     if v["scheduler_late_after_seconds"] >= 2 * v["scheduler_tick_seconds"] else
     f"must be at least twice TOONPICK_SCHEDULER_TICK_SECONDS "
     f"({v['scheduler_tick_seconds']:g})"),
)


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
        value = _convert(setting, raw)
        reason = check_value(setting, value)
        if reason is not None:
            raise _invalid(setting, raw, reason)
        values[setting.name] = _guarded(setting, value)
    values["profile"] = profile
    if missing:
        raise ConfigError(f"profile {profile!r} requires: {', '.join(missing)}")
    for name, rule in _CROSS_RULES:
        reason = rule(values)
        if reason is not None:
            wrong = _BY_NAME[name]
            raise _invalid(wrong, env.get(wrong.env) or wrong.default_for(profile) or "", reason)
    return Config(values, profile)


# What the README's table says of a secret setting (``redact``).
_SECRET_NOTE = " Secret: `toonpick config` and logs show it masked (`***`)."


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
            f"| {cell(s.default_for('prod'))} | {s.help}{_SECRET_NOTE if s.secret else ''} |"
        )
    return "\n".join(rows)


def setting(name: str) -> Setting:
    return _BY_NAME[name]


# -- Showing values: what a terminal, a log line or the admin API may carry -----------------
# Secrets are data, not names: a setting says it is one (``secret=True``), and every URL
# shown loses its password and credential-bearing query values, whatever the setting's name.

# ``mask_url`` and ``MASK`` live in shared.redaction, beneath the store modules that
# validate URLs here (which use it for their own error messages).

def redact(setting: Setting, value: Any) -> Any:
    """``value`` of ``setting`` as it may be shown (``toonpick config``, logs, the admin
    API). A secret is ``***``; a secret URL (a webhook whose path is its token) keeps only
    its scheme and host; an empty secret stays empty, since "not set" gives nothing away.
    Any other value is shown with its URLs masked (``mask_url``)."""
    if setting.secret:
        if value is None or value == "":
            return value
        if isinstance(value, str):
            parts = urlsplit(value)
            if parts.scheme and parts.hostname:
                return f"{parts.scheme}://{parts.hostname}/{MASK}"
        return MASK
    return mask_url(value) if isinstance(value, str) else value


class SecretText(str):
    """A secret setting's value (``load_config`` makes them): the string itself wherever
    it is used (a client's key, a URL to post to), ``'***'`` wherever it is only shown
    by ``repr``, as Scrapy's "Overridden settings" log line, a dict in a log line or a
    traceback's locals show values."""

    __slots__ = ()

    def __repr__(self) -> str:
        return repr(MASK) if self else "''"


class MaskedText(str):
    """A value that carries a credential inside it (a store URL's password): itself when
    used, ``mask_url``'d when repr'd."""

    __slots__ = ()

    def __repr__(self) -> str:
        return repr(mask_url(str(self)))


def _guarded(setting: Setting, value: Any) -> Any:
    """What ``load_config`` keeps: a string that holds a secret, wrapped so that only its
    use, never its repr, reveals it."""
    if not isinstance(value, str):
        return value
    if setting.secret:
        return SecretText(value)
    return MaskedText(value) if mask_url(value) != value else value


def redacted_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """Every resolved setting as it may be shown (``redact``); a name the table does not
    know is treated as a secret, since nothing says it is not one."""
    return {name: redact(_BY_NAME.get(name, _UNKNOWN_SETTING), value)
            for name, value in config.items()}


_UNKNOWN_SETTING = Setting("unknown", "", None, "", secret=True)
