"""A task worker SIGKILLed mid-crawl, on real processes and stores against the simulator.

``toonpick worker`` runs a WEBTOON_ALL_CRAWL of the three platforms; once items are
stored, the worker's RQ processes (the worker, its scheduler and the work horse running
the task) are SIGKILLed at once and a new worker starts 2 s later. The spider nodes the
horse had started are left alone: they must die with it (parent-death signal, a graceful
close) rather than keep crawling as orphans. The execution is ABANDONED, its retry is
due 60 s later (the crawl tasks' first backoff) and must start within seconds of that
although the dead worker's scheduler lock is still held, and the retry completes the
same runs with every store holding exactly the simulator's catalogue.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest

import crawler.tasks  # noqa: F401 - registers the crawl task types in this process
from crawler.launcher import REPO_ROOT
from crawler.tasks import CRAWL_RETRY
from shared.tasks import ExecutionStatus, TaskRepository
from shared.tasks.runner import enqueue_task
from shared.tasks.types import Trigger
from tests.integration.crawler.conftest import point_at
from tests.integration.crawler.test_crawl_end_to_end import assert_stores_match
from tests.integration.shared.tasks.test_worker_recovery import _descendants

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(420)]

HEARTBEAT_TIMEOUT = 6


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _processes_with(text: str) -> list[int]:
    return [int(p.name) for p in Path("/proc").iterdir()
            if p.name.isdigit() and text in _cmdline(int(p.name)) and _alive(int(p.name))]


def start_worker(env: dict[str, str], log_path: Path) -> subprocess.Popen:
    with log_path.open("ab") as log:
        return subprocess.Popen([sys.executable, "-m", "shared.cli", "worker"], cwd=REPO_ROOT,
                                env=env, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)


def test_a_worker_killed_mid_crawl_leaves_no_orphan_and_its_retry_completes_on_time(
        harness, simulator, tmp_path):
    server, catalogue = simulator(seed=41, titles=45, episodes=3)
    point_at(harness, server.url)
    expected = catalogue.expected()
    # One host for the three platforms, 12 requests/s shared: the crawl lasts long
    # enough to be killed in the middle; short leases so a reclaim is quick.
    env = {**os.environ, **harness.env, "TOONPICK_CRAWL_HOST_RATE": "12",
           "TOONPICK_CRAWL_LEASE_SECONDS": "3", "TOONPICK_TASK_MODULES": "crawler.tasks",
           "TOONPICK_TASK_HEARTBEAT_INTERVAL": "1",
           "TOONPICK_TASK_HEARTBEAT_TIMEOUT": str(HEARTBEAT_TIMEOUT),
           "TOONPICK_TASK_RECONCILE_INTERVAL": "1", "TOONPICK_TASK_STOP_CHECK_INTERVAL": "0.2"}
    repository = TaskRepository(harness.mariadb_url)
    first_id = enqueue_task(harness.mariadb_url, harness.redis_url, "WEBTOON_ALL_CRAWL",
                            {"today": "2026-11-20"}, "api")
    logs = [tmp_path / "worker-1.log", tmp_path / "worker-2.log"]
    workers = [start_worker(env, logs[0])]

    def tail() -> str:
        return "\n".join(p.read_text(errors="replace")[-4000:] for p in logs if p.exists())

    try:
        deadline = time.monotonic() + 90
        while sum(harness.maria_episodes(p).total() for p in ("NAVER", "KAKAO")) < 15:
            assert workers[0].poll() is None, tail()
            assert time.monotonic() < deadline, "the crawl did not get going\n" + tail()
            time.sleep(0.3)
        run_ids = repository.load_checkpoint(first_id)["runs"]
        tree = _descendants(workers[0].pid)
        nodes = [pid for pid in tree if " scrapy crawl " in _cmdline(pid)]
        rq_processes = [workers[0].pid] + [pid for pid in tree if pid not in nodes]
        assert nodes, f"no spider node under the worker: {[_cmdline(p) for p in tree]}"
        assert len(rq_processes) >= 3  # worker, its scheduler, the work horse
        for pid in rq_processes:
            os.kill(pid, signal.SIGKILL)
        killed_at = time.monotonic()
        workers[0].wait(timeout=10)

        # No orphans: every node started by the dead horse closes by itself, gracefully.
        while any(_alive(pid) for pid in nodes):
            assert time.monotonic() - killed_at < 45, (
                f"orphan spider nodes {[p for p in nodes if _alive(p)]}\n" + tail())
            time.sleep(0.2)
        orphans_gone_after = time.monotonic() - killed_at
        time.sleep(max(0.0, 2.0 - orphans_gone_after))
        workers.append(start_worker(env, logs[1]))

        deadline = time.monotonic() + 240
        while True:
            executions = list(reversed(repository.list_executions(
                instance_id=repository.get(first_id).instance_id)))
            if any(e.status is ExecutionStatus.COMPLETED for e in executions):
                break
            assert all(e.status is not ExecutionStatus.FAILED for e in executions), tail()
            assert workers[1].poll() is None, tail()
            assert time.monotonic() < deadline, f"no completed retry: {executions}\n{tail()}"
            time.sleep(0.5)
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.terminate()
        for worker in workers:
            try:
                worker.wait(timeout=60)
            except subprocess.TimeoutExpired:
                worker.kill()
        repository.close()

    first, retry = executions
    assert first.status is ExecutionStatus.ABANDONED and "heartbeat silent" in first.error
    assert retry.status is ExecutionStatus.COMPLETED, retry.error
    assert retry.trigger is Trigger.RETRY and retry.resumed_from_execution_id == first.id
    backoff = CRAWL_RETRY.delay_before(2)
    assert backoff >= 30  # the production policy, not a test shortcut
    late = (retry.started_at - (retry.created_at + timedelta(seconds=backoff))).total_seconds()
    print(f"nodes {nodes} closed {orphans_gone_after:.1f} s after the kill; retry started "
          f"{late:+.1f} s from its due time")
    assert -1.0 <= late <= 10.0, (late, tail())
    # The retry finished the very runs the first attempt had started.
    assert {p: s["run_id"] for p, s in retry.result["platforms"].items()} == {
        "NAVER": run_ids["naver"], "KAKAO": run_ids["kakao"],
        "KAKAOPAGE": run_ids["kakaopage"]}
    assert_stores_match(harness, expected)
    for spider, run_id in run_ids.items():
        assert harness.run_record(spider, run_id)["status"] == "done"
        assert not _processes_with(f"run_id={run_id}"), f"{spider} node left running"
