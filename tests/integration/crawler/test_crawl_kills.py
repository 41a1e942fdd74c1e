"""Spider nodes SIGKILLed mid-crawl: every store still ends equal to the simulator.

Real ``scrapy crawl`` processes over a catalogue of 1,000 Naver titles, killed with
SIGKILL (no clean shutdown, buffered items lost with the process) at different points
of the crawl. What the dead nodes held comes back when their leases expire; episodes
whose title was lost with a node wait for it (with their lease) instead of being
dropped; children are in Redis before their parent's lease is acked.
"""

from __future__ import annotations

import os
import signal
import time

import pytest

from tests.integration.crawler.conftest import (
    assert_platform_matches,
    expected_episodes,
    expected_titles,
    point_at,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PLATFORM = "NAVER"


def episode_rows(harness) -> int:
    return harness.sql("SELECT COUNT(*) FROM webtoon_episode")[0][0]


def wait_for_rows(harness, rows: int, procs, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while episode_rows(harness) < rows:
        assert time.monotonic() < deadline, f"crawl stuck below {rows} episode rows"
        alive = [p for p in procs if p.process.poll() is None]
        assert alive, "every node exited before the kill point"
        time.sleep(0.1)


def assert_platform_exact(harness, expected, run, titles: int = 1000) -> None:
    assert len(expected_titles(expected, PLATFORM)) >= titles
    assert_platform_matches(harness, expected, PLATFORM)
    assert run["status"] == "done"
    assert run["queue"]["dead"] == 0
    lost = {k: v for k, v in run["stats"].items()
            if ("/dropped/" in k or k.endswith("/failed")) and v}
    assert lost == {}


def test_three_nodes_two_sigkills_leave_every_store_exact(harness, simulator):
    # 2,500 titles in all: 1,000 on Naver.
    server, catalogue = simulator(seed=21, titles=2500, episodes=5)
    point_at(harness, server.url)
    # Short leases so the dead nodes' work comes back within the test's time.
    harness.env.update({"TOONPICK_CRAWL_LEASE_SECONDS": "4"})
    expected = catalogue.expected()
    total = len(expected_episodes(expected, PLATFORM))
    request, procs = harness.start("naver", nodes=3)
    try:
        wait_for_rows(harness, int(total * 0.35), procs)
        os.kill(procs[0].pid, signal.SIGKILL)
        procs[0].process.wait()
        wait_for_rows(harness, int(total * 0.7), procs[1:])
        os.kill(procs[1].pid, signal.SIGKILL)
        procs[1].process.wait()
        harness.wait(procs[2:], timeout=600)
    finally:
        for proc in procs:
            proc.kill()
    run = harness.run_record("naver", request.run_id)
    assert_platform_exact(harness, expected, run)
    assert run["stats"].get("lease/reclaimed", 0) >= 2


def test_one_node_killed_again_and_again_with_short_leases(harness, simulator):
    """A node SIGKILLed 8 times over 500 titles, each replacement joining the run: every
    store exact, or every missing request listed as a dead letter (then a replay
    completes the run)."""
    from crawler.cluster import dead_letters
    from shared.stores.redis import redis_client

    server, catalogue = simulator(seed=5, titles=1250, episodes=4)
    point_at(harness, server.url)
    harness.env.update({"TOONPICK_CRAWL_LEASE_SECONDS": "2"})
    expected = catalogue.expected()
    total = len(expected_episodes(expected, PLATFORM))
    request, procs = harness.start("naver", nodes=1)
    kills = 0
    try:
        for step in range(1, 9):
            wait_for_rows(harness, int(total * step / 10), procs[-1:])
            os.kill(procs[-1].pid, signal.SIGKILL)
            procs[-1].process.wait()
            kills += 1
            procs += harness.start("naver", nodes=1, run_id=request.run_id)[1]
        harness.wait(procs[-1:], timeout=600)
    finally:
        for proc in procs:
            proc.kill()
    assert kills == 8
    run = harness.run_record("naver", request.run_id)
    if run["queue"]["dead"]:
        client = redis_client(harness.redis_url)
        try:
            listed = dead_letters.list_dead_letters(client, "naver", request.run_id)
            assert len(listed) == run["queue"]["dead"]
            assert all(letter["url"] for letter in listed)
            assert dead_letters.replay(client, "naver", request.run_id) == len(listed)
        finally:
            client.close()
        harness.wait(harness.start("naver", nodes=1, run_id=request.run_id)[1], timeout=300)
        run = harness.run_record("naver", request.run_id)
    assert_platform_exact(harness, expected, run, titles=500)


def test_all_nodes_killed_then_one_new_node_finishes_the_run(harness, simulator):
    server, catalogue = simulator(seed=8, titles=1250, episodes=4)
    point_at(harness, server.url)
    harness.env.update({"TOONPICK_CRAWL_LEASE_SECONDS": "4"})
    expected = catalogue.expected()
    total = len(expected_episodes(expected, PLATFORM))
    request, procs = harness.start("naver", nodes=2)
    try:
        wait_for_rows(harness, int(total * 0.5), procs)
        for proc in procs:
            os.kill(proc.pid, signal.SIGKILL)
            proc.process.wait()
        procs += harness.start("naver", nodes=1, run_id=request.run_id)[1]
        harness.wait(procs[-1:], timeout=600)
    finally:
        for proc in procs:
            proc.kill()
    assert_platform_exact(harness, expected, harness.run_record("naver", request.run_id),
                          titles=500)
