"""Bad input, tried as an operator would: every case runs ``python -m shared.cli ...`` in
a subprocess and must end with ONE line on stderr naming the problem, a non-zero exit (2
for a bad setting, argument or task parameter; 1 for a store that cannot be reached or
refuses us) and no traceback anywhere. Task parameters a type refuses are refused when
the task is queued, with nothing recorded in MariaDB.

Stores that must fail fail fast: the unreachable ones are on port 1 (refused at once) and
every URL carries a short connect timeout.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pymysql
import pytest

from shared.stores.mariadb import connect

REPO_ROOT = Path(__file__).resolve().parents[3]
WRONG_PASSWORD = "not-the-password-42"
# A log record (the processes' own format) is progress, not the error: a standby node
# says it started before it finds Redis down. Only the other lines count.
LOG_RECORD = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO) ")


def _redis_down() -> str:
    return "redis://127.0.0.1:1/0?socket_connect_timeout=2"


def _mariadb(url: str, *, password: str | None = None, port: int | None = None) -> str:
    parts = urlsplit(url)
    user = parts.username or "toonpick"
    netloc = (f"{user}:{password if password is not None else parts.password}"
              f"@{parts.hostname}:{port or parts.port or 3306}")
    query = parts.query + ("&" if parts.query else "") + "connect_timeout=2"
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


# (id, argv, env overrides, expected exit code, text the one line must hold). "{db}" in an
# env value is the test's migrated MariaDB URL, "{redis}" its Redis database.
CASES: list[tuple[str, list[str], dict[str, str], int, str]] = [
    # -- bad settings: exit 2 ---------------------------------------------------------------
    ("concurrency-0-worker", ["worker", "--burst"], {"TOONPICK_CRAWL_CONCURRENCY": "0"}, 2,
     "toonpick worker: TOONPICK_CRAWL_CONCURRENCY=0: must be at least 1"),
    # Used to hang: a spider with no concurrency never asks for a request.
    ("concurrency-0-crawl", ["crawl", "naver"], {"TOONPICK_CRAWL_CONCURRENCY": "0"}, 2,
     "toonpick crawl: TOONPICK_CRAWL_CONCURRENCY=0: must be at least 1"),
    ("heartbeat-timeout-negative", ["worker", "--burst"],
     {"TOONPICK_TASK_HEARTBEAT_TIMEOUT": "-1"}, 2,
     "TOONPICK_TASK_HEARTBEAT_TIMEOUT=-1: must be greater than 0"),
    ("heartbeat-timeout-under-interval", ["worker", "--burst"],
     {"TOONPICK_TASK_HEARTBEAT_TIMEOUT": "2", "TOONPICK_TASK_HEARTBEAT_INTERVAL": "5"}, 2,
     "TOONPICK_TASK_HEARTBEAT_TIMEOUT=2: must be greater than TOONPICK_TASK_HEARTBEAT_INTERVAL"),
    ("lease-not-a-number-spider-node", ["spider-node", "naver"],
     {"TOONPICK_CRAWL_LEASE_SECONDS": "soon"}, 2,
     "toonpick spider-node: TOONPICK_CRAWL_LEASE_SECONDS=soon: must be a number"),
    ("host-rate-negative-crawl", ["crawl", "kakao"], {"TOONPICK_CRAWL_HOST_RATE": "-2"}, 2,
     "TOONPICK_CRAWL_HOST_RATE=-2: must be at least 0"),
    ("schedules-6-field-cron", ["scheduler", "--once"],
     {"TOONPICK_SCHEDULES": "daily_collection=0 0 2 * * *"}, 2,
     "TOONPICK_SCHEDULES='daily_collection=0 0 2 * * *': schedule setting entry 1"),
    ("log-level", ["task", "list"], {"TOONPICK_LOG_LEVEL": "LOUD"}, 2,
     "TOONPICK_LOG_LEVEL=LOUD: must be one of DEBUG, INFO"),
    ("profile", ["config"], {"TOONPICK_PROFILE": "staging"}, 2,
     "toonpick config: TOONPICK_PROFILE='staging': expected one of dev, test, prod"),
    ("timezone", ["worker"], {"TOONPICK_TIMEZONE": "Mars/Olympus"}, 2,
     "TOONPICK_TIMEZONE=Mars/Olympus: is not a known time zone"),
    ("redis-url-without-scheme", ["crawl", "naver"], {"REDIS_URL": "127.0.0.1:6379"}, 2,
     "REDIS_URL=127.0.0.1:6379: must be a redis://"),
    ("mariadb-url-without-database", ["task", "list"],
     {"TOONPICK_MARIADB_URL": f"mysql://toonpick:{WRONG_PASSWORD}@127.0.0.1:3306/"}, 2,
     "TOONPICK_MARIADB_URL=mysql://toonpick:***@127.0.0.1:3306/: the URL names no database"),
    ("sqs-wait-over-20", ["worker"], {"TOONPICK_SQS_WAIT_SECONDS": "30"}, 2,
     "TOONPICK_SQS_WAIT_SECONDS=30: must be at most 20"),
    ("crawl-today", ["worker"], {"TOONPICK_CRAWL_TODAY": "2026-13-45"}, 2,
     "TOONPICK_CRAWL_TODAY=2026-13-45: must be a date in the form YYYY-MM-DD"),
    ("sqs-enabled", ["scheduler", "--once"], {"TOONPICK_SQS_ENABLED": "maybe"}, 2,
     "TOONPICK_SQS_ENABLED=maybe: must be a boolean"),
    ("task-module-missing-worker", ["worker", "--burst"],
     {"TOONPICK_TASK_MODULES": "crawler.nope"}, 2,
     "toonpick worker: task module 'crawler.nope' cannot be imported"),
    ("task-module-missing-task-run", ["task", "run", "WEBTOON_ALL_CRAWL"],
     {"TOONPICK_TASK_MODULES": "nope.tasks"}, 2,
     "toonpick task: task module 'nope.tasks' cannot be imported"),
    # -- stores that refuse us or cannot be reached: exit 1 -----------------------------------
    # Used to exit 0 after hundreds of lines of tracebacks.
    ("mariadb-wrong-password-worker", ["worker", "--burst"],
     {"TOONPICK_MARIADB_URL": "{db:wrong-password}"}, 1,
     "toonpick worker: MariaDB refused the login: Access denied for user 'toonpick'"),
    ("mariadb-wrong-password-scheduler", ["scheduler", "--once"],
     {"TOONPICK_MARIADB_URL": "{db:wrong-password}"}, 1,
     "toonpick scheduler: MariaDB refused the login: Access denied"),
    ("mariadb-unreachable-task-list", ["task", "list"],
     {"TOONPICK_MARIADB_URL": "{db:port-1}"}, 1,
     "toonpick task: cannot connect to MariaDB: Can't connect to MySQL server"),
    ("redis-unreachable-worker", ["worker", "--burst"], {"REDIS_URL": _redis_down()}, 1,
     "toonpick worker: cannot connect to Redis at 127.0.0.1:1: Connection refused"),
    ("redis-unreachable-crawl", ["crawl", "naver"], {"REDIS_URL": _redis_down()}, 1,
     "toonpick crawl: cannot connect to Redis at 127.0.0.1:1: Connection refused"),
    ("redis-unreachable-spider-node", ["spider-node", "naver"], {"REDIS_URL": _redis_down()},
     1, "toonpick spider-node: cannot connect to Redis at 127.0.0.1:1"),
    ("redis-unreachable-dead-letters", ["dead-letters", "list", "r1", "--spider", "naver"],
     {"REDIS_URL": _redis_down()}, 1,
     "toonpick dead-letters list: Redis failed: Error 111 connecting to 127.0.0.1:1"),
    # -- bad arguments: exit 2 ------------------------------------------------------------------
    ("crawl-nodes-0", ["crawl", "naver", "--nodes", "0"], {}, 2,
     "toonpick crawl: argument --nodes: 0 must be at least 1"),
    ("crawl-timeout-negative", ["crawl", "naver", "--timeout", "-1"], {}, 2,
     "toonpick crawl: argument --timeout: -1 must be a number of seconds > 0"),
    ("crawl-nodes-not-a-number", ["crawl", "naver", "--nodes", "two"], {}, 2,
     "argument --nodes: 'two' is not a number"),
    ("crawl-unknown-spider", ["crawl", "line"], {}, 2,
     "toonpick crawl: unknown spider 'line': expected one of naver, kakao, kakaopage"),
    ("replay-timeout-0", ["dead-letters", "replay", "r1", "--spider", "naver", "--crawl",
                          "--timeout", "0"], {}, 2, "argument --timeout: 0 must be"),
    ("task-list-limit-0", ["task", "list", "--limit", "0"], {}, 2,
     "argument --limit: 0 must be at least 1"),
    ("task-show-not-an-id", ["task", "show", "latest"], {}, 2, "invalid int value: 'latest'"),
    ("scheduler-now-not-a-time", ["scheduler", "--once", "--now", "yesterday"], {}, 2,
     "toonpick scheduler: 'yesterday' is not an ISO date-time"),
    ("unknown-command", ["crawll"], {}, 2, "invalid choice: 'crawll'"),
    ("task-params-not-json", ["task", "run", "WEBTOON_ALL_CRAWL", "--params", "{platforms"],
     {}, 2, "toonpick task run: --params is not JSON"),
    # -- task parameters refused when queued: exit 2, nothing recorded -------------------------
    ("task-platform-line", ["task", "run", "WEBTOON_ALL_CRAWL", "--params",
                            '{"platforms": ["LINE"]}'], {}, 2,
     "toonpick task run: WEBTOON_ALL_CRAWL: unknown platform 'LINE': expected some of "
     "NAVER, KAKAO, KAKAOPAGE"),
    ("task-platforms-empty", ["task", "run", "WEBTOON_NEW_CRAWL", "--params",
                              '{"platforms": []}'], {}, 2,
     "WEBTOON_NEW_CRAWL: platforms must be a non-empty list"),
    ("task-today-2026-13-45", ["task", "run", "WEBTOON_EPISODE_UPDATE", "--params",
                               '{"today": "2026-13-45"}'], {}, 2,
     "WEBTOON_EPISODE_UPDATE: today '2026-13-45' is not a date in the form YYYY-MM-DD"),
    ("task-slot-without-offset", ["task", "run", "WEBTOON_EPISODE_UPDATE", "--params",
                                  '{"slot": "2026-11-25T16:00:00"}'], {}, 2,
     "has no UTC offset"),
    ("task-unknown-param", ["task", "run", "WEBTOON_ALL_CRAWL", "--params",
                            '{"platform": "NAVER"}'], {}, 2,
     "unexpected keyword argument 'platform'"),
    ("task-member-ids", ["task", "run", "MEMBER_PREFERENCE_UPDATE", "--params",
                         '{"member_ids": [3, -1]}'], {}, 2,
     "MEMBER_PREFERENCE_UPDATE: member_ids must be a list of positive integers"),
    ("task-members-or-since", ["task", "run", "MEMBER_PREFERENCE_UPDATE"], {}, 2,
     "needs member_ids or since"),
    ("task-training-params", ["task", "run", "RECOMMENDATION_MODEL_TRAINING", "--params",
                              '{"params": {"factors": "many"}}'], {}, 2,
     "RECOMMENDATION_MODEL_TRAINING: factors must be a non-negative integer"),
    ("task-unknown-type", ["task", "run", "WEBTOON_EVERYTHING"], {}, 2,
     "task type 'WEBTOON_EVERYTHING' is not registered"),
]


@pytest.fixture(scope="module")
def database() -> str:
    """One migrated MariaDB database for the module (the cases only read it, or must not
    write it), dropped afterwards."""
    import uuid

    from shared.config import load_config
    from shared.schema.migrate import migrate
    from shared.stores.mariadb import drop_database, with_database

    url = with_database(load_config(profile="test", environ={}).mariadb_url,
                        f"toonpick_bad_{uuid.uuid4().hex[:8]}")
    migrate(url)
    yield url
    drop_database(url)


def _env(overrides: dict[str, str], database: str, redis_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TOONPICK_", "AWS_")) and k != "REDIS_URL"}
    env.update({"TOONPICK_PROFILE": "test", "TOONPICK_MARIADB_URL": _mariadb(database),
                "REDIS_URL": redis_url})
    specials = {"{db:wrong-password}": _mariadb(database, password=WRONG_PASSWORD),
                "{db:port-1}": _mariadb(database, port=1)}
    env.update({k: specials.get(v, v) for k, v in overrides.items()})
    return env


def _recorded(database: str) -> int:
    conn = connect(database)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT (SELECT COUNT(*) FROM task_instance)"
                        " + (SELECT COUNT(*) FROM task_execution)")
            return int(cur.fetchone()[0])
    finally:
        conn.close()


# The SQS consumer is a process of its own (python -m shared.tasks.messages), same rules.
CONSUMER_CASES = [
    ("consumer-wait-over-20", {"TOONPICK_SQS_WAIT_SECONDS": "99"}, 2,
     "toonpick messages: TOONPICK_SQS_WAIT_SECONDS=99: must be at most 20"),
    ("consumer-wrong-password", {"TOONPICK_SQS_ENABLED": "true",
                                 "TOONPICK_MARIADB_URL": "{db:wrong-password}"}, 1,
     "toonpick messages: MariaDB refused the login: Access denied"),
]


@pytest.mark.parametrize(("argv", "overrides", "code", "message"),
                         [case[1:] for case in CASES]
                         + [(["-m", "shared.tasks.messages"], *case[1:])
                            for case in CONSUMER_CASES],
                         ids=[case[0] for case in CASES + CONSUMER_CASES])
def test_bad_input_is_one_line_and_a_non_zero_exit(argv, overrides, code, message, database,
                                                   redis_url):
    command = argv if argv[0] == "-m" else ["-m", "shared.cli", *argv]
    done = subprocess.run([sys.executable, *command], cwd=REPO_ROOT,
                          env=_env(overrides, database, redis_url), capture_output=True,
                          text=True, timeout=90)
    output = done.stdout + done.stderr
    assert "Traceback" not in output, output
    lines = [line for line in done.stderr.splitlines()
             if line.strip() and not LOG_RECORD.match(line)]
    assert len(lines) == 1, done.stderr
    assert message in lines[0], lines[0]
    assert done.returncode == code, (done.returncode, done.stderr)
    assert WRONG_PASSWORD not in output
    if argv[:2] == ["task", "run"]:
        assert _recorded(database) == 0, "a refused task left rows behind"


def test_the_valid_request_beside_the_refused_ones_is_queued(database, redis_url):
    """The check is not a wall: a good request with the same command is recorded."""
    done = subprocess.run(
        [sys.executable, "-m", "shared.cli", "task", "run", "WEBTOON_EPISODE_UPDATE",
         "--params", '{"platforms": ["NAVER"], "today": "2026-11-02"}'], cwd=REPO_ROOT,
        env=_env({}, database, redis_url), capture_output=True, text=True, timeout=90)
    assert done.returncode == 0, done.stderr
    assert "execution_id" in done.stdout
    conn = connect(database, autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT COUNT(*) FROM task_execution WHERE task_type = %s",
                        ("WEBTOON_EPISODE_UPDATE",))
            assert cur.fetchone()[0] == 1
            # Leave the module's database as the refused cases expect it: empty.
            cur.execute("DELETE FROM task_execution_context")
            cur.execute("DELETE FROM task_execution")
            cur.execute("DELETE FROM task_instance")
    except pymysql.err.IntegrityError as exc:
        pytest.fail(f"could not empty the task tables: {exc}")
    finally:
        conn.close()
