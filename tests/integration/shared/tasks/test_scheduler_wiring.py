"""`toonpick scheduler --once` enqueues a slot's task once, however often it is called, and
a `toonpick worker --burst` runs it to COMPLETED as a scheduled execution."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from crawler.launcher import REPO_ROOT
from shared.tasks import ExecutionStatus, TaskRepository, Trigger

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

ONLY_HOURLY = ("daily_collection=off;daily_recommendations=off;weekly_analysis=off;"
               "monthly_report=off")


def toonpick(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", "shared.cli", *args], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=90)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


@pytest.fixture
def platforms():
    """The platforms as the simulator serves them, with no titles at all (no internet
    here: a crawl of the real hosts would end with its start pages dead-lettered)."""
    from crawler.simulator.catalogue import Catalogue
    from crawler.simulator.server import serve

    server = serve(Catalogue(titles=0))
    yield server.url
    server.shutdown()


def test_a_slot_is_enqueued_once_and_run_by_a_worker(mariadb_url, mongo_url, s3_bucket,
                                                     redis_url, platforms):
    env = {**os.environ, "TOONPICK_PROFILE": "test", "TOONPICK_MARIADB_URL": mariadb_url,
           "TOONPICK_MONGO_URL": mongo_url, "TOONPICK_IMAGES_STORE": f"s3://{s3_bucket}/",
           "REDIS_URL": redis_url, "TOONPICK_SCHEDULES": ONLY_HOURLY,
           "TOONPICK_TASK_MODULES": "crawler.tasks", "TOONPICK_CRAWL_IDLE_SECONDS": "1",
           "TOONPICK_TASK_HEARTBEAT_INTERVAL": "1", "TOONPICK_CRAWL_HOST_RATE": "0",
           **{f"TOONPICK_{name}_BASE_URL": platforms
              for name in ("NAVER", "KAKAO", "KAKAOPAGE")}}
    # No offset: read in TOONPICK_TIMEZONE (Asia/Seoul), the 10:00 KST hourly slot.
    tick = ["scheduler", "--once", "--since", "2025-03-01T09:30", "--now", "2025-03-01T10:00:20"]
    first = json.loads(toonpick(env, *tick).stdout)
    assert [(o["schedule"], o["slot"], o["status"]) for o in first] == [
        ("hourly_episodes", "2025-03-01T01:00:00+00:00", "ENQUEUED")]
    again = json.loads(toonpick(env, *tick).stdout)
    assert again == []

    execution_id = int(first[0]["execution_id"])
    repository = TaskRepository(mariadb_url)
    try:
        executions = repository.list_executions()
        assert [e.id for e in executions] == [execution_id]
        queued = executions[0]
        assert queued.task_type == "WEBTOON_EPISODE_UPDATE"
        assert queued.trigger is Trigger.SCHEDULE
        assert queued.params == {"schedule": "hourly_episodes",
                                 "slot": "2025-03-01T01:00:00+00:00"}

        toonpick(env, "worker", "--burst")
        done = repository.get(execution_id)
    finally:
        repository.close()
    # An empty catalogue has no title due: every platform's run is done with nothing to do
    # (its start pages answered, empty).
    assert done.status is ExecutionStatus.COMPLETED, done.error
    assert done.progress == 100
    assert sorted(done.result["platforms"]) == ["KAKAO", "KAKAOPAGE", "NAVER"]
    assert all(p["status"] == "done" and p["titles_stored"] == p["episodes_stored"] == 0
               for p in done.result["platforms"].values()), done.result
    shown = json.loads(toonpick(env, "task", "show", str(execution_id)).stdout)
    assert shown["status"] == "COMPLETED" and shown["trigger"] == "schedule"
    assert sorted(shown["checkpoint"]["done"]) == ["kakao", "kakaopage", "naver"]
