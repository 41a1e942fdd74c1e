"""Dead letters in real Redis: listed with their url and reason, replayed into the run,
and the ``toonpick dead-letters`` command over both."""

from __future__ import annotations

import json
import time

import pytest
import redis
import scrapy
from scrapy_redis import picklecompat

from crawler.cluster import dead_letters, runs
from crawler.cluster.leases import LeasedQueue
from crawler.cluster.runs import RunKeys
from shared import cli

pytestmark = pytest.mark.integration


class _Spider(scrapy.Spider):
    name = "naver"

    def parse_title_info(self, response):  # pragma: no cover - only named
        return None


@pytest.fixture
def server(redis_url):
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def _kill_leases(queue: LeasedQueue, count: int) -> int:
    """Pop ``count`` units and let their leases expire past max_reclaims (0): dead."""
    for _ in range(count):
        assert queue.pop() is not None
    time.sleep(queue.lease_seconds * 3)
    back, dead = queue.reclaim_expired()
    assert back == 0
    return dead


def _run_with_dead_letters(server) -> tuple[str, RunKeys, LeasedQueue]:
    run_id = runs.start_run(server, "naver", [{"url": "http://sim/list", "callback":
                                               "parse_title_list"}], run_id="r-dead")
    keys = RunKeys("naver", run_id)
    queue = LeasedQueue(server, keys.queue, lease_seconds=0.05, max_reclaims=0)
    spider = _Spider()
    request = scrapy.Request("http://sim/title/7", callback=spider.parse_title_info,
                             method="POST", priority=3)
    queue.push(picklecompat.dumps(request.to_dict(spider=spider)), request.priority)
    assert _kill_leases(queue, 2) == 2
    return run_id, keys, queue


def test_dead_letters_are_listed_with_url_callback_and_reason(server):
    run_id, keys, _ = _run_with_dead_letters(server)
    by_url = {d["url"]: d for d in dead_letters.list_dead_letters(server, "naver", run_id)}
    assert set(by_url) == {"http://sim/list", "http://sim/title/7"}
    title, start = by_url["http://sim/title/7"], by_url["http://sim/list"]
    assert (title["kind"], title["callback"], title["method"]) == (
        "request", "parse_title_info", "POST")
    assert (start["kind"], start["callback"], start["method"]) == (
        "start entry", "parse_title_list", "GET")
    for letter in (title, start):
        assert letter["reclaims"] == 1 and letter["handed"] == 1
        assert letter["reason"] == "max_reclaims"
    # A reason recorded by a node wins; one never recorded reads as max_reclaims.
    server.hset(keys.dead_reasons, title["lease_id"], "waiting_on_dead_letters")
    server.hdel(keys.dead_reasons, start["lease_id"])
    reasons = {d["url"]: d["reason"]
               for d in dead_letters.list_dead_letters(server, "naver", run_id)}
    assert reasons == {"http://sim/title/7": "waiting_on_dead_letters",
                       "http://sim/list": "max_reclaims"}
    # A payload nobody can decode is still listed, with why.
    server.hset(keys.dead, "broken", b"\x80not pickle")
    server.hset(keys.dead_infos, "broken", "r|0|4|5")
    (broken,) = [d for d in dead_letters.list_dead_letters(server, "naver", run_id)
                 if d["lease_id"] == "broken"]
    assert broken["url"] is None and broken["error"].startswith("undecodable payload")
    assert broken["reclaims"] == 4 and broken["handed"] == 5
    with pytest.raises(LookupError):
        dead_letters.list_dead_letters(server, "naver", "no-such-run")


def test_replay_reopens_a_done_run_and_hands_the_work_out_again(server):
    run_id, keys, queue = _run_with_dead_letters(server)
    assert runs.finish_if_done(server, "naver", run_id) == runs.DONE
    assert runs.current_run(server, "naver") is None

    assert dead_letters.replay(server, "naver", run_id) == 2

    run = runs.get_run(server, "naver", run_id)
    assert run["status"] == runs.RUNNING and run["finished_at"] is None
    assert run["queue"]["dead"] == 0 and run["queue"]["reclaimed"] == 2
    assert not server.exists(keys.dead_reasons) and not server.exists(keys.dead_infos)
    assert runs.current_run(server, "naver") == run_id
    assert dead_letters.list_dead_letters(server, "naver", run_id) == []
    assert runs.finish_if_done(server, "naver", run_id) == runs.RUNNING
    # Handed out again with a fresh reclaim count: they may now fail max_reclaims anew.
    leases = [queue.pop(), queue.pop()]
    assert queue.pop() is None
    assert sorted(lease.origin for lease in leases) == ["r", "s"]
    assert all(lease.reclaims == 0 and lease.handed == 2 for lease in leases)
    request = picklecompat.loads(next(lease.payload for lease in leases if lease.origin == "r"))
    assert request["url"] == "http://sim/title/7" and request["priority"] == 3
    queue.ack(*(lease.lease_id for lease in leases))
    assert runs.finish_if_done(server, "naver", run_id) == runs.DONE
    # Nothing left to replay: the done run stays done.
    assert dead_letters.replay(server, "naver", run_id) == 0
    assert runs.get_run(server, "naver", run_id)["status"] == runs.DONE


def test_replay_keeps_another_live_run_current_and_refuses_lost_runs(server):
    run_id, _, _ = _run_with_dead_letters(server)
    runs.finish_if_done(server, "naver", run_id)
    other = runs.start_run(server, "naver", [{"url": "http://sim/other"}], run_id="r-next")
    assert dead_letters.replay(server, "naver", run_id) == 2
    assert runs.current_run(server, "naver") == other
    assert runs.get_run(server, "naver", run_id)["status"] == runs.RUNNING
    with pytest.raises(LookupError):
        dead_letters.replay(server, "naver", "no-such-run")
    runs.mark_interrupted(server, "naver", "r-lost", "keys vanished")
    with pytest.raises(runs.RunStateError, match="interrupted"):
        dead_letters.replay(server, "naver", "r-lost")


def test_the_command_lists_and_replays(server, redis_url, monkeypatch, capsys):
    run_id, _, _ = _run_with_dead_letters(server)
    runs.finish_if_done(server, "naver", run_id)
    monkeypatch.setenv("REDIS_URL", redis_url)

    assert cli.main(["crawl", "dead-letters", "list", run_id, "--spider", "naver"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert sorted(d["url"] for d in listed) == ["http://sim/list", "http://sim/title/7"]

    assert cli.main(["dead-letters", "replay", run_id, "--spider", "naver"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["replayed"] == 2 and out["status"] == runs.RUNNING
    assert f"--run-id {run_id}" in out["next"]
    assert runs.get_run(server, "naver", run_id)["queue"]["reclaimed"] == 2

    assert cli.main(["dead-letters", "list", "nope", "--spider", "naver"]) == 1
    err = capsys.readouterr().err
    assert err.strip() == "toonpick dead-letters list: no crawl run naver/nope"
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["dead-letters", "list", run_id, "--spider", "nosuch"])
    assert exit_info.value.code == 2
    monkeypatch.setenv("REDIS_URL", "")
    assert cli.main(["dead-letters", "list", run_id, "--spider", "naver"]) == 2
    assert "REDIS_URL" in capsys.readouterr().err


def test_replaying_a_killed_nodes_dead_letters_completes_the_stores(harness, simulator):
    """The operator's case: a node SIGKILLed with max_reclaims 0 leaves dead letters in a
    run that still ends done; `toonpick dead-letters replay --crawl` finishes the crawl."""
    import os
    import signal
    import subprocess
    import sys

    from crawler.launcher import REPO_ROOT
    from tests.integration.crawler.conftest import (
        expected_episodes,
        expected_titles,
        point_at,
    )

    sim, catalogue = simulator(seed=3, titles=40, episodes=8)
    point_at(harness, sim.url)
    harness.env.update({"TOONPICK_CRAWL_LEASE_SECONDS": "3", "TOONPICK_CRAWL_HOST_RATE": "10",
                        "TOONPICK_CRAWL_MAX_RECLAIMS": "0"})
    expected = catalogue.expected()
    request, procs = harness.start("naver", nodes=2)
    victim = procs[0]
    deadline = time.monotonic() + 90
    while sum(harness.mongo_episodes("NAVER").values()) < 10:
        assert time.monotonic() < deadline, "crawl did not get going"
        assert victim.process.poll() is None, victim.log_text()[-3000:]
        time.sleep(0.2)
    os.kill(victim.pid, signal.SIGKILL)
    victim.process.wait()
    harness.wait(procs[1:], timeout=180)
    run = harness.run_record("naver", request.run_id)
    assert run["status"] == runs.DONE
    dead = run["queue"]["dead"]
    assert dead >= 1, "the killed node held no lease: nothing was dead-lettered to replay"

    command = [sys.executable, "-m", "shared.cli", "dead-letters", "replay", request.run_id,
               "--spider", "naver", "--crawl", "--timeout", "180"]
    done = subprocess.run(command, cwd=REPO_ROOT, env={**os.environ, **harness.env},
                          capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    report = json.loads(done.stdout)
    assert report["replayed"] == dead and report["status"] == runs.DONE
    assert report["exit_codes"] == [0] and report["dead_letters"] == 0

    assert harness.mongo_titles("NAVER") == expected_titles(expected, "NAVER")
    assert harness.maria_titles("NAVER") == expected_titles(expected, "NAVER")
    assert harness.mongo_episodes("NAVER") == expected_episodes(expected, "NAVER")
    assert harness.maria_episodes("NAVER") == expected_episodes(expected, "NAVER")
    keys = harness.s3_keys()
    for external_id in expected["platforms"]["NAVER"]:
        assert f"webtoons/NAVER/{external_id}/thumbnail.jpg" in keys
