"""Crawl runs in real Redis: creation, joining, the end, the public read API."""

from __future__ import annotations

import pytest
import redis

from crawler.cluster import runs
from crawler.cluster.leases import LeasedQueue
from crawler.cluster.runs import RunKeys


@pytest.fixture
def server(redis_url):
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def test_start_run_seeds_the_start_queue_and_becomes_current(server):
    run_id = runs.start_run(server, "naver", [{"url": "http://a/1"}, {"url": "http://a/2"}])
    assert runs.current_run(server, "naver") == run_id
    assert server.lrange(RunKeys("naver", run_id).start, 0, -1) == [
        b'{"url": "http://a/1"}', b'{"url": "http://a/2"}',
    ]
    run = runs.get_run(server, "naver", run_id)
    assert run["status"] == "running" and run["start_entries"] == 2
    assert run["queue"]["start"] == 2 and run["finished_at"] is None
    assert runs.list_runs(server, "naver") == [run_id]


def test_start_run_refuses_an_existing_id_and_keeps_the_current_run(server):
    first = runs.start_run(server, "kakao", [], run_id="r1")
    with pytest.raises(runs.RunExistsError):
        runs.start_run(server, "kakao", [], run_id="r1")
    second = runs.start_run(server, "kakao", [{"url": "x"}], run_id="r2")
    assert (first, second) == ("r1", "r2")
    assert runs.current_run(server, "kakao") == "r1"


def test_nodes_claiming_the_current_run_join_the_live_one(server):
    created, run_id = runs.create_run(server, "naver", [{"url": "u"}], "r1", claim_current=True)
    assert (created, run_id) == (True, "r1")
    created, run_id = runs.create_run(server, "naver", [{"url": "u"}], "r2", claim_current=True)
    assert (created, run_id) == (False, "r1")
    assert server.llen(RunKeys("naver", "r1").start) == 1
    assert not server.exists(RunKeys("naver", "r2").meta)


def test_run_is_done_only_when_nothing_is_queued_or_leased(server):
    run_id = runs.start_run(server, "naver", [{"url": "u"}])
    keys = RunKeys("naver", run_id)
    queue = LeasedQueue(server, keys.queue, lease_seconds=30)
    server.sadd(keys.dupefilter, "fp")
    assert runs.finish_if_done(server, "naver", run_id) == "running"
    lease = queue.pop()
    assert runs.finish_if_done(server, "naver", run_id) == "running"  # still leased
    queue.ack(lease.lease_id)
    assert runs.finish_if_done(server, "naver", run_id) == "done"
    assert runs.finish_if_done(server, "naver", run_id) == "done"
    run = runs.wait_for_done(server, "naver", run_id, timeout=1)
    assert run["finished_at"] >= run["started_at"]
    assert runs.current_run(server, "naver") is None
    assert not server.exists(keys.dupefilter)


def test_wait_for_done_times_out_on_a_running_run(server):
    run_id = runs.start_run(server, "naver", [{"url": "u"}])
    with pytest.raises(TimeoutError):
        runs.wait_for_done(server, "naver", run_id, timeout=0.3, poll=0.1)
    with pytest.raises(LookupError):
        runs.wait_for_done(server, "naver", "nope", timeout=0.3)


def test_active_nodes_are_those_with_a_live_heartbeat(server):
    run_id = runs.start_run(server, "naver", [])
    runs.register_node(server, "naver", run_id, "n1", ttl=30, info={"pid": 1})
    runs.register_node(server, "naver", run_id, "n2", ttl=30, info={"pid": 2})
    runs.node_left(server, "naver", run_id, "n2", "finished")
    assert runs.active_nodes(server, "naver") == ["n1"]
    nodes = {n["node"]: n for n in runs.get_run(server, "naver", run_id)["nodes"]}
    assert nodes["n1"]["active"] and not nodes["n2"]["active"]
    assert nodes["n2"]["reason"] == "finished"
