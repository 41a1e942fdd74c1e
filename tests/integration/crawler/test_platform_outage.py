"""The platform itself unreachable mid-crawl: nothing is acked as if it had answered.

The simulator sits behind a TCP fault proxy. While it is closed, requests fail with
connection errors until their retries run out; their leases are dead-lettered with the
reason (not acked), so the run ends done *with dead letters*, ``toonpick crawl``'s
report says it is incomplete, and a replay once the platform answers completes every
store exactly.
"""

from __future__ import annotations

import time

import pytest

from crawler.cluster import dead_letters
from crawler.run_report import run_problems
from shared.stores.redis import redis_client
from tests.faults.proxy import FaultProxy
from tests.integration.crawler.conftest import assert_platform_matches, point_at

pytestmark = pytest.mark.integration


def test_requests_the_platform_never_answered_are_dead_letters_and_a_replay_completes(
        harness, simulator):
    server, catalogue = simulator(seed=13, titles=60, episodes=3)
    expected = catalogue.expected()
    with FaultProxy("127.0.0.1", server.port) as platform:
        point_at(harness, f"http://127.0.0.1:{platform.port}")
        with platform.outage():
            # The platform refuses every connection: the start pages run out of their
            # retries (one, for speed) and the run has nothing else to do.
            request, procs = harness.start("naver", nodes=1, settings={"RETRY_TIMES": "1"})
            harness.wait(procs, timeout=120)
        run = harness.run_record("naver", request.run_id)
        assert run["status"] == "done"
        dead = run["queue"]["dead"]
        assert dead == run["start_entries"] > 0
        assert f"{dead} dead-lettered request(s)" in run_problems(run)
        assert not any("/dropped/" in key for key in run["stats"])
        assert sum(harness.maria_titles("NAVER").values()) == 0
        client = redis_client(harness.redis_url)
        try:
            letters = dead_letters.list_dead_letters(client, "naver", request.run_id)
            assert len(letters) == dead
            assert all(letter["reason"].startswith("download_failed:") for letter in letters)
            # The platform answers again: the replay crawls the run to its end.
            assert dead_letters.replay(client, "naver", request.run_id) == dead
        finally:
            client.close()
        harness.wait(harness.start("naver", nodes=1, run_id=request.run_id)[1], timeout=180)
    run = harness.run_record("naver", request.run_id)
    assert run["status"] == "done" and run["queue"]["dead"] == 0
    assert_platform_matches(harness, expected, "NAVER")


def test_a_platform_outage_mid_crawl_pauses_the_node_and_loses_nothing(harness, simulator):
    """Mid-crawl, thumbnail downloads meet the outage first: the node stops taking work
    (back-pressure) until the platform answers, so pages do not burn their retries."""
    server, catalogue = simulator(seed=14, titles=60, episodes=3)
    expected = catalogue.expected()
    with FaultProxy("127.0.0.1", server.port) as platform:
        point_at(harness, f"http://127.0.0.1:{platform.port}")
        harness.env.update({"TOONPICK_CRAWL_HOST_RATE": "15"})
        request, procs = harness.start("naver", nodes=1)
        deadline = time.monotonic() + 90
        while sum(harness.maria_titles("NAVER").values()) < 3:
            assert time.monotonic() < deadline and procs[0].process.poll() is None
            time.sleep(0.1)
        with platform.outage():
            time.sleep(4)
        harness.wait(procs, timeout=180)
    run = harness.run_record("naver", request.run_id)
    assert run["status"] == "done" and run["queue"]["dead"] == 0
    assert not any("/dropped/" in key for key in run["stats"])
    assert_platform_matches(harness, expected, "NAVER")
