"""Redis loses a crawl run mid-crawl (restart without persistence): the run ends
interrupted, not done, and a restart crawls it to completion with every store exact.

The test runs its own redis-server (no persistence, like the operator's manual test)
so it can kill and restart it without touching the machine's shared Redis.
"""

from __future__ import annotations

import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from crawler.cluster import runs
from crawler.cluster.runs import RunKeys
from crawler.cluster.scheduler import RunDupeFilter
from crawler.launcher import wait_all
from tests.integration.crawler.conftest import expected_episodes, expected_titles, point_at

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class OwnRedis:
    """A redis-server of the test's own, without persistence: a restart loses everything."""

    port: int
    workdir: Path
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis.from_url(self.url, socket_timeout=1)
        deadline = time.monotonic() + 20
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                assert self.process.poll() is None, "redis-server exited at start"
                assert time.monotonic() < deadline, "redis-server did not answer in 20 s"
                time.sleep(0.05)
        client.close()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def restart(self) -> None:
        """A crash and a restart without persistence: every key is gone."""
        self.stop()
        self.start()


@pytest.fixture
def own_redis(tmp_path):
    server = OwnRedis(_free_port(), tmp_path)
    server.start()
    yield server
    server.stop()


def naver_spider(base_url: str):
    """A naver 'all' spider for ``base_url``, built but not run (as a crawl task does to
    compute start entries)."""
    from scrapy.crawler import Crawler
    from scrapy.settings import Settings
    from scrapy.spiderloader import SpiderLoader

    settings = Settings()
    settings.setmodule("crawler.settings", priority="project")
    settings.set("TOONPICK_NAVER_BASE_URL", base_url, priority="cmdline")
    spider_class = SpiderLoader.from_settings(settings).load("naver")
    return spider_class.from_crawler(Crawler(spider_class, settings), mode="all",
                                     run_id="entries")


def _lose_mid_crawl_then_restart(harness, simulator, redis_url: str, lose,
                                 late_fingerprints: bool = False) -> None:
    """Crawl naver with 2 nodes, ``lose()`` Redis' data mid-crawl, check the run ends
    interrupted, restart it with 2 new nodes and check every store is exact.

    ``late_fingerprints``: before the restart, a node that had not noticed the loss yet
    records the start pages as seen in the run's (fresh) dupefilter, as a live node does
    when it turns them into requests; kept, they would filter the whole re-crawl out."""
    sim, catalogue = simulator(seed=5, titles=60, episodes=8)
    point_at(harness, sim.url)
    harness.redis_url = redis_url
    # A slow host rate so the crawl is mid-way when Redis loses it, and short leases so
    # nodes notice the loss within a second (heartbeat = lease / 3): after a FLUSHDB a
    # node keeps crawling what it pushes into fresh keys until its next heartbeat.
    harness.env.update({"REDIS_URL": redis_url, "TOONPICK_CRAWL_HOST_RATE": "10",
                        "TOONPICK_CRAWL_LEASE_SECONDS": "3"})
    expected = catalogue.expected()
    want_titles = expected_titles(expected, "NAVER")
    want_episodes = expected_episodes(expected, "NAVER")
    request, procs = harness.start("naver", nodes=2)
    deadline = time.monotonic() + 90
    while sum(harness.mongo_episodes("NAVER").values()) < 10:
        assert time.monotonic() < deadline, "crawl did not get going"
        for proc in procs:
            assert proc.process.poll() is None, proc.log_text()[-3000:]
        time.sleep(0.2)

    lose()
    codes = wait_all(procs, timeout=120)

    logs = "\n".join(p.log_text()[-3000:] for p in procs)
    run = harness.run_record("naver", request.run_id)
    assert run.get("status") == runs.INTERRUPTED, f"{run}\n{logs}"
    assert run["finished_at"] is None and run["interrupted_reason"]
    # Neither node may say it finished: they close 'interrupted', a non-zero exit.
    assert all(code != 0 for code in codes), f"{codes}\n{logs}"
    assert (sum(harness.mongo_episodes("NAVER").values()) < len(want_episodes)
            or harness.mongo_titles("NAVER") != want_titles), (
        "the crawl had finished before Redis lost it: nothing was tested")

    spider = naver_spider(sim.url)
    entries = spider.start_entries()
    client = redis.Redis.from_url(redis_url)
    try:
        dupefilter_key = RunKeys("naver", request.run_id).dupefilter
        if late_fingerprints:
            late = RunDupeFilter(client, dupefilter_key, stats=None)
            for entry in entries:
                assert not late.request_seen(spider.request_from_entry(entry))
        runs.restart_run(client, "naver", request.run_id, entries)
        assert not client.exists(dupefilter_key)
        _, procs = harness.start("naver", nodes=2, run_id=request.run_id)
        harness.wait(procs, timeout=240)
        run = harness.run_record("naver", request.run_id)
        assert run["status"] == runs.DONE and run["restarts"] == 1
        assert run["queue"]["dead"] == 0
    finally:
        client.close()

    # Every store holds the whole catalogue, exactly once (stores are idempotent).
    assert harness.mongo_titles("NAVER") == want_titles
    assert harness.maria_titles("NAVER") == want_titles
    assert harness.mongo_episodes("NAVER") == want_episodes
    assert harness.maria_episodes("NAVER") == want_episodes
    keys = harness.s3_keys()
    for external_id in want_titles:
        assert f"webtoons/NAVER/{external_id}/thumbnail.jpg" in keys
    webtoons = {r[0] for r in harness.sql(
        "SELECT wp.webtoon_id FROM webtoon_platform wp JOIN platform p ON p.id = wp.platform_id"
        " WHERE p.name = 'NAVER'")}
    assert len(webtoons) == len(want_titles)


def test_redis_restart_mid_crawl_interrupts_the_run_and_a_restart_completes_it(
        harness, simulator, own_redis):
    _lose_mid_crawl_then_restart(harness, simulator, own_redis.url, own_redis.restart)


def test_flushdb_under_live_nodes_interrupts_the_run_and_a_restart_completes_it(
        harness, simulator, redis_url):
    # The connection stays up: nodes keep pushing requests and fingerprints into fresh
    # keys until their next heartbeat sees the run gone; the restart must not trip on them.
    client = redis.Redis.from_url(redis_url)
    try:
        _lose_mid_crawl_then_restart(harness, simulator, redis_url, client.flushdb,
                                     late_fingerprints=True)
    finally:
        client.close()


def test_toonpick_crawl_run_id_restarts_an_interrupted_run(harness, simulator, own_redis):
    """`toonpick crawl naver --run-id ID` on a run Redis lost: its first node restarts it
    (runs.open_requested_run) and the crawl completes."""
    import os
    import sys

    from crawler.launcher import REPO_ROOT

    sim, catalogue = simulator(seed=5, titles=40, episodes=8)
    point_at(harness, sim.url)
    harness.redis_url = own_redis.url
    harness.env.update({"REDIS_URL": own_redis.url, "TOONPICK_CRAWL_HOST_RATE": "10"})
    expected = catalogue.expected()
    request, procs = harness.start("naver", nodes=2)
    deadline = time.monotonic() + 90
    while sum(harness.mongo_episodes("NAVER").values()) < 10:
        assert time.monotonic() < deadline, "crawl did not get going"
        time.sleep(0.2)
    own_redis.restart()
    wait_all(procs, timeout=120)
    assert harness.run_record("naver", request.run_id)["status"] == runs.INTERRUPTED

    done = subprocess.run(
        [sys.executable, "-m", "shared.cli", "crawl", "naver", "--run-id", request.run_id,
         "--nodes", "2", "--timeout", "240"],
        cwd=REPO_ROOT, env={**os.environ, **harness.env}, capture_output=True, text=True,
        timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    run = harness.run_record("naver", request.run_id)
    assert run["status"] == runs.DONE and run["restarts"] == 1
    assert harness.mongo_titles("NAVER") == expected_titles(expected, "NAVER")
    assert harness.maria_titles("NAVER") == expected_titles(expected, "NAVER")
    assert harness.mongo_episodes("NAVER") == expected_episodes(expected, "NAVER")
    assert harness.maria_episodes("NAVER") == expected_episodes(expected, "NAVER")
