"""A standby node's restarts of its spider node (crawler/cluster/standby.py) on real Redis,
with spider nodes replaced by processes that just exit with a given code: clean closes
never use up a run's starts, failed ones do."""

from __future__ import annotations

import subprocess
import sys

import pytest

import crawler.cluster.standby as standby_module
from crawler.cluster import runs
from crawler.cluster.standby import MAX_STARTS_PER_RUN, StandbyNode
from crawler.launcher import CrawlNode
from shared.stores.redis import redis_client

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
