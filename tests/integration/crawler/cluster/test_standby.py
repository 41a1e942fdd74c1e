"""Standby nodes (crawler/cluster/standby.py) on real Redis: restarts of their spider
node (replaced by processes that just exit with a given code: clean closes never use up
a run's starts, failed ones do), and a SIGTERM mid-crawl against the simulator."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

import pytest

import crawler.cluster.standby as standby_module
from crawler.cluster import runs
from crawler.cluster.standby import MAX_STARTS_PER_RUN, StandbyNode
from crawler.launcher import REPO_ROOT, CrawlNode
from crawler.parsing.naver import weekday_list_url
from shared.stores.redis import redis_client
from tests.integration.crawler.conftest import point_at

pytestmark = pytest.mark.integration


@pytest.fixture
def client(redis_url):
    connection = redis_client(redis_url)
    yield connection
    connection.close()


def _exiting_nodes(monkeypatch, codes: list[int]) -> list[str]:
    """start_nodes → a process exiting with the next code; returns the run ids asked for."""
    asked: list[str] = []

    def start_nodes(request, env=None, log_dir=None):
        asked.append(request.run_id)
        proc = subprocess.Popen([sys.executable, "-c", f"raise SystemExit({codes.pop(0)})"])
        proc.wait(timeout=30)
        return [CrawlNode(request.spider, proc)]

    monkeypatch.setattr(standby_module, "start_nodes", start_nodes)
    return asked


def test_clean_closes_do_not_use_up_starts_but_failures_do(client, monkeypatch):
    run_id = runs.start_run(client, "naver", [{"url": "http://127.0.0.1:9/"}])
    asked = _exiting_nodes(monkeypatch, [0] * 5 + [3] * MAX_STARTS_PER_RUN + [0])
    node = StandbyNode("naver", client)
    try:
        for _ in range(5 + MAX_STARTS_PER_RUN + 2):
            node.tick()
    finally:
        node.close()
    # Five clean exits (e.g. stopped, then restarted), then failures up to the limit.
    assert asked == [run_id] * (5 + MAX_STARTS_PER_RUN)
    assert not standby_module.standby_nodes(client, "naver")


def test_sigterm_to_a_standby_node_closes_its_spider_node_gracefully(
        harness, simulator, client, tmp_path):
    server, _ = simulator(seed=51, titles=60, episodes=3)
    point_at(harness, server.url)
    env = {**os.environ, **harness.env, "TOONPICK_CRAWL_HOST_RATE": "8",
           "TOONPICK_CRAWL_LEASE_SECONDS": "3"}
    log_path = tmp_path / "standby.log"
    with log_path.open("wb") as log:
        standby = subprocess.Popen(
            [sys.executable, "-m", "crawler.cluster.standby", "naver", "--poll", "0.2"],
            cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while not standby_module.standby_nodes(client, "naver"):
            assert standby.poll() is None and time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.1)
        # The task's way of starting a run: pushed, current; the standby node joins it.
        run_id = runs.start_run(client, "naver", [
            {"url": weekday_list_url(server.url), "callback": "parse_title_list"}])
        deadline = time.monotonic() + 60
        while sum(harness.maria_titles("NAVER").values()) < 3:
            assert standby.poll() is None and time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.2)
        standby.terminate()
        assert standby.wait(timeout=60) == 0, log_path.read_text()[-3000:]
    finally:
        if standby.poll() is None:
            standby.kill()
            standby.wait()
    joined = re.search(r"spider node (\d+) joins run", log_path.read_text())
    assert joined, log_path.read_text()[-3000:]
    record = harness.run_record("naver", run_id)
    assert record["status"] == runs.RUNNING
    assert [n["reason"] for n in record["nodes"]] == ["shutdown"]  # Scrapy's graceful close
    assert record["queue"]["leased"] == 0  # its leases went back to the run
    assert not standby_module.standby_nodes(client, "naver")  # announcement removed
