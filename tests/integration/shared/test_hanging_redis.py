"""A Redis that accepts connections and never answers: every process kind stops with one
clear line, naming Redis and the timeout that ran out, instead of hanging.

The fault proxy (``tests/faults/proxy.py``) stands in front of the real Redis, stalled
from the start: connections are accepted and held, nothing is forwarded. The other
stores are the real ones. Clients get ``socket_timeout`` from the URL (the factory lets
the URL's options win) to keep the test short; one case keeps the factory's default.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from crawler.launcher import REPO_ROOT, CrawlRequest, start_nodes, wait_all
from recommender.service import RecommendationService
from recommender.serving import RecommendationCache
from shared.config import load_config
from shared.stores.redis import TIMEOUTS, RedisUnavailable, redis_client
from tests.conftest import TEST_REDIS_DB
from tests.faults.proxy import FaultProxy

# Seconds the test's clients wait for an answer, and what every case must end within
# (far above the timeouts, far below "hangs": RQ's own read timeout is 40 s or more).
SOCKET_TIMEOUT = 3
BOUND = 60.0


@pytest.fixture
def stalled(redis_url: str) -> Iterator[FaultProxy]:
    with FaultProxy("127.0.0.1", 6379) as proxy:
        proxy.stall()
        yield proxy


def stalled_url(proxy: FaultProxy, redis_url: str, timeout: float | None = SOCKET_TIMEOUT
                ) -> str:
    url = proxy.url(redis_url)
    return url if timeout is None else f"{url}?socket_timeout={timeout:g}"


def silence_line(proxy: FaultProxy, timeout: float) -> str:
    """What ``shared.stores.redis.unavailable`` says about the stalled proxy."""
    return (f"Redis at 127.0.0.1:{proxy.port}/{TEST_REDIS_DB} accepted the connection but "
            f"did not answer within {timeout:g} s (socket_timeout)")


def run_command(args: list[str], env: dict[str, str]) -> tuple[int, list[str], str, float]:
    """Run ``python -m ...``: exit code, stderr's non-blank lines, all output, seconds."""
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", *args], cwd=REPO_ROOT,
                          env={**os.environ, **env}, capture_output=True, text=True,
                          timeout=BOUND + 30)
    elapsed = time.monotonic() - started
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    return done.returncode, lines, done.stdout + done.stderr, elapsed


def nothing_written(redis_url: str) -> list[bytes]:
    """Keys in the test's real Redis database (the stalled path forwarded nothing)."""
    client = redis_client(redis_url)
    try:
        return client.keys("*")
    finally:
        client.close()


# --- a spider node -----------------------------------------------------------------


def test_spider_node_stops_with_one_line(stalled, redis_url, mariadb_url, mongo_url,
                                         s3_bucket, tmp_path):
    env = {
        "TOONPICK_PROFILE": "test",
        "TOONPICK_MARIADB_URL": mariadb_url,
        "TOONPICK_MONGO_URL": mongo_url,
        "TOONPICK_IMAGES_STORE": f"s3://{s3_bucket}/",
        "REDIS_URL": stalled_url(stalled, redis_url),
        # Never reached: the node stops before its first request.
        "TOONPICK_NAVER_BASE_URL": "http://127.0.0.1:9/",
        "TOONPICK_LOG_LEVEL": "INFO",
    }
    request = CrawlRequest("naver")
    started = time.monotonic()
    nodes = start_nodes(request, nodes=1, env=env, log_dir=tmp_path / "logs")
    codes = wait_all(nodes, timeout=BOUND)  # TimeoutError (and the node killed) if it hangs
    elapsed = time.monotonic() - started
    log = nodes[0].log_text()

    assert codes == [3], log[-3000:]  # crawler/commands/crawl.py: closed, run not done
    assert elapsed < BOUND
    errors = [line for line in log.splitlines() if " ERROR: " in line]
    assert len(errors) == 1, errors
    assert silence_line(stalled, SOCKET_TIMEOUT) in errors[0]
    assert "cannot join its run" in errors[0]
    assert "Closing spider (redis_unavailable)" in log
    assert "Traceback" not in log
    stalled.shutdown()
    assert nothing_written(redis_url) == []


def test_standby_node_stops_with_one_line(stalled, redis_url):
    env = {"TOONPICK_PROFILE": "test", "REDIS_URL": stalled_url(stalled, redis_url)}
    code, lines, output, elapsed = run_command(["shared.cli", "spider-node", "naver"], env)

    assert code == 1, output
    assert elapsed < BOUND
    assert lines == [f"toonpick spider-node: {silence_line(stalled, SOCKET_TIMEOUT)}"]
    assert "Traceback" not in output


# --- a task worker -----------------------------------------------------------------


@pytest.mark.parametrize("timeout", [SOCKET_TIMEOUT, None], ids=["url-timeout", "default"])
def test_worker_module_stops_with_one_line(stalled, redis_url, mariadb_url, timeout):
    env = {"TOONPICK_PROFILE": "test", "TOONPICK_MARIADB_URL": mariadb_url,
           "REDIS_URL": stalled_url(stalled, redis_url, timeout)}
    code, lines, output, elapsed = run_command(["shared.tasks.worker", "--burst"], env)

    waited = TIMEOUTS["socket_timeout"] if timeout is None else timeout
    assert code == 1, output
    assert elapsed < BOUND
    assert lines == [f"python -m shared.tasks.worker: {silence_line(stalled, waited)}"]
    assert "Traceback" not in output
    # Waited out the client's timeout, not RQ's (reconcile interval + 10 s).
    assert elapsed >= waited


@pytest.mark.parametrize("command", [["worker", "--burst"], ["scheduler"]],
                         ids=["worker-burst", "scheduler"])
def test_toonpick_task_process_stops_with_one_line(stalled, redis_url, mariadb_url, command):
    env = {"TOONPICK_PROFILE": "test", "TOONPICK_MARIADB_URL": mariadb_url,
           "REDIS_URL": stalled_url(stalled, redis_url)}
    code, lines, output, elapsed = run_command(["shared.cli", *command], env)

    assert code != 0, output
    assert elapsed < BOUND
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"toonpick {command[0]}: ")
    # shared/cli.py main() words it; whichever words, it names Redis and the timeout.
    assert "Redis" in lines[0]
    assert "imeout" in lines[0] or "did not answer" in lines[0]
    assert "Traceback" not in output


# --- serving -----------------------------------------------------------------------


@pytest.fixture
def serving_env(stalled, redis_url, mariadb_url, s3_bucket) -> dict[str, str]:
    return {
        "TOONPICK_PROFILE": "test",
        "TOONPICK_MARIADB_URL": mariadb_url,
        "REDIS_URL": stalled_url(stalled, redis_url),
        "TOONPICK_RECOMMENDER_MODELS_STORE": f"s3://{s3_bucket}/models/",
    }


def test_serve_fails_with_the_cache_named(stalled, serving_env):
    config = load_config(environ=serving_env)
    service = RecommendationService(config)
    started = time.monotonic()
    try:
        with pytest.raises(RedisUnavailable) as raised:
            service.serve(1, 5)
    finally:
        service.close()
    elapsed = time.monotonic() - started

    assert elapsed < BOUND
    assert str(raised.value) == ("the recommendation cache's "
                                 + silence_line(stalled, SOCKET_TIMEOUT))


def test_cache_writes_fail_the_same_way(stalled, serving_env):
    cache = RecommendationCache(serving_env["REDIS_URL"], ttl_seconds=60)
    try:
        with pytest.raises(RedisUnavailable, match="did not answer within 3 s"):
            cache.put_many([(1, {"items": [], "source": "none", "version": None})])
    finally:
        cache.close()


def test_recommender_show_stops_with_one_line(stalled, serving_env):
    code, lines, output, elapsed = run_command(
        ["shared.cli", "recommender", "show", "1"], serving_env)

    assert code == 1, output
    assert elapsed < BOUND
    assert lines == ["toonpick recommender show: the recommendation cache's "
                     + silence_line(stalled, SOCKET_TIMEOUT)]
    assert "Traceback" not in output


def test_unstalled_path_serves_normally(redis_url):
    """The proxy itself forwards when not stalled: the failures above are the stall's."""
    with FaultProxy("127.0.0.1", 6379) as proxy:
        client = redis_client(f"{proxy.url(redis_url)}?socket_timeout={SOCKET_TIMEOUT}")
        try:
            assert client.ping() is True
        finally:
            client.close()
