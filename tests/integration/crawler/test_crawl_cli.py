"""``toonpick crawl`` as an operator runs it (a subprocess) on real Redis and stores,
against the simulator: it joins the spider's open run or, with --new, starts another,
says which, prints the run's summary, keeps node logs in logs/, and its exit code says
whether the run is complete."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from crawler.cluster import runs
from crawler.launcher import REPO_ROOT
from shared.stores.redis import redis_client
from tests.integration.crawler.conftest import expected_episodes, expected_titles, point_at

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


def toonpick_crawl(harness, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "shared.cli", "crawl", *args],
                          cwd=REPO_ROOT, env={**os.environ, **harness.env},
                          capture_output=True, text=True, timeout=timeout, check=False)


def report_of(result: subprocess.CompletedProcess) -> dict:
    return json.loads(result.stdout[result.stdout.index("\n{") + 1:])


@pytest.fixture
def client(harness):
    connection = redis_client(harness.redis_url)
    yield connection
    connection.close()


def test_a_second_crawl_joins_the_open_run_and_reports_it_complete(harness, simulator, client):
    server, catalogue = simulator(seed=31, titles=40, episodes=3)
    point_at(harness, server.url)
    harness.env.update({"TOONPICK_CRAWL_HOST_RATE": "10", "TOONPICK_CRAWL_LEASE_SECONDS": "3"})
    request, (first,) = harness.start("naver")
    deadline = time.monotonic() + 30
    while runs.current_run(client, "naver") != request.run_id:
        assert first.process.poll() is None and time.monotonic() < deadline, first.log_text()
        time.sleep(0.1)

    result = toonpick_crawl(harness, "naver")
    harness.wait([first])

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert f"joining open run {request.run_id}" in result.stdout
    report = report_of(result)
    assert report["run_id"] == request.run_id and report["run_choice"] == "joined"
    assert report["ok"] is True and report["problems"] == []
    assert report["summary"]["status"] == "done"
    assert f"run {request.run_id}: done" in result.stdout and "complete: yes" in result.stdout
    for line in ("raw ", "catalogue ", "images ", "dropped ", "truncated ", "retries ",
                 "failed ", "dead ", "paused "):
        assert f"  {line}" in result.stdout, line
    (log,) = report["logs"]
    assert Path(log).parent == REPO_ROOT / "logs" and Path(log).exists()
    assert f"node log: {log}" in result.stdout
    expected = catalogue.expected()
    assert harness.maria_titles("NAVER") == expected_titles(expected, "NAVER")
    assert harness.maria_episodes("NAVER") == expected_episodes(expected, "NAVER")
    # Both processes crawled the one run.
    assert len(harness.run_record("naver", request.run_id)["nodes"]) == 2


def test_new_starts_another_run_and_a_stopped_open_run_is_refused(harness, simulator, client):
    server, _ = simulator(seed=32, titles=6, episodes=2)
    point_at(harness, server.url)
    open_run = runs.start_run(client, "naver", [{"url": server.url + "/nowhere"}])
    runs.request_stop(client, "naver", open_run)

    refused = toonpick_crawl(harness, "naver")
    assert refused.returncode == 2
    assert f"run {open_run}" in refused.stderr and "was stopped" in refused.stderr
    assert f"--run-id {open_run}" in refused.stderr and "--new" in refused.stderr

    fresh = toonpick_crawl(harness, "naver", "--new")
    assert fresh.returncode == 0, fresh.stdout[-3000:] + fresh.stderr[-3000:]
    report = report_of(fresh)
    assert report["run_choice"] == "new" and report["run_id"] != open_run
    assert "(--new)" in fresh.stdout
    assert harness.run_record("naver", open_run)["status"] == runs.RUNNING  # left alone


def _done_run(client, spider: str, **stats: int) -> str:
    run_id = runs.start_run(client, spider, [])
    assert runs.finish_if_done(client, spider, run_id) == runs.DONE
    keys = runs.RunKeys(spider, run_id)
    client.hset(keys.stats, mapping={"catalogue/webtoon/inserted": 5, **stats})
    return run_id


def test_exit_codes_drops_and_redone_failures_are_reported_but_dead_letters_fail(harness,
                                                                                 client):
    only_drops = _done_run(client, "kakao", **{"validate/dropped/bad_json": 3})
    result = toonpick_crawl(harness, "kakao", "--run-id", only_drops)
    assert result.returncode == 0, result.stdout
    assert "is already done" in result.stdout and "validate/dropped/bad_json 3" in result.stdout

    # Failed items of a cluster run were crawled again (their leases never acked).
    redone = _done_run(client, "kakao", **{"catalogue/episode/failed": 15})
    result = toonpick_crawl(harness, "kakao", "--run-id", redone)
    assert result.returncode == 0, result.stdout
    assert "catalogue/episode/failed 15" in result.stdout

    dead = _done_run(client, "kakao")
    client.hset(runs.RunKeys("kakao", dead).dead, "lease-1", b"payload")
    result = toonpick_crawl(harness, "kakao", "--run-id", dead)
    assert result.returncode == 1 and "1 dead-lettered request(s)" in result.stdout


def test_new_and_run_id_together_are_refused(harness):
    result = toonpick_crawl(harness, "naver", "--new", "--run-id", "x")
    assert result.returncode == 2 and "exclude each other" in result.stderr


def test_sigterm_closes_the_nodes_gracefully_and_still_reports_an_unfinished_run(
        harness, simulator, client):
    server, _ = simulator(seed=33, titles=60, episodes=3)
    point_at(harness, server.url)
    harness.env.update({"TOONPICK_CRAWL_HOST_RATE": "8", "TOONPICK_CRAWL_LEASE_SECONDS": "3"})
    crawl = subprocess.Popen([sys.executable, "-m", "shared.cli", "crawl", "naver"],
                             cwd=REPO_ROOT, env={**os.environ, **harness.env},
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while sum(harness.maria_titles("NAVER").values()) < 3:
        assert crawl.poll() is None and time.monotonic() < deadline
        time.sleep(0.2)
    run_id = runs.current_run(client, "naver")
    crawl.terminate()
    out, err = crawl.communicate(timeout=90)
    assert crawl.returncode == 1, out[-3000:] + err[-3000:]
    report = json.loads(out[out.index("\n{") + 1:])
    assert report["run_id"] == run_id and report["exit_codes"] == [3]  # closed "shutdown"
    assert report["problems"] == ["the run is running, not done"]
    assert "complete: NO - the run is running, not done" in out
    record = harness.run_record("naver", run_id)
    assert [n["reason"] for n in record["nodes"]] == ["shutdown"]  # a graceful close
    assert record["queue"]["leased"] == 0  # its leases went back to the run


def test_without_redis_the_single_process_crawl_reports_from_its_stats_file(
        harness, simulator):
    server, catalogue = simulator(seed=34, titles=8, episodes=2)
    point_at(harness, server.url)
    harness.env["REDIS_URL"] = ""
    result = toonpick_crawl(harness, "naver")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = report_of(result)
    assert report["summary"]["status"] == "done" and report["ok"] is True
    assert report["summary"]["titles_stored"] == len(expected_titles(catalogue.expected(),
                                                                     "NAVER"))
    assert "single-process crawl (no REDIS_URL)" in result.stdout


def test_run_id_of_an_interrupted_run_restarts_it_and_crawls_it_to_the_end(
        harness, simulator, client):
    server, catalogue = simulator(seed=35, titles=8, episodes=2)
    point_at(harness, server.url)
    run_id = runs.start_run(client, "naver", [{"url": server.url + "/nowhere"}])
    client.delete(runs.RunKeys("naver", run_id).meta)  # Redis lost it
    assert runs.mark_interrupted(client, "naver", run_id, "test") == runs.INTERRUPTED
    result = toonpick_crawl(harness, "naver", "--run-id", run_id)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert f"run {run_id} was interrupted (Redis lost it): restarted it" in result.stdout
    assert report_of(result)["run_choice"] == "restarted"
    assert harness.maria_titles("NAVER") == expected_titles(catalogue.expected(), "NAVER")
