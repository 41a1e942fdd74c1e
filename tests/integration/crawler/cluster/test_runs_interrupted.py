"""Runs that Redis lost (FLUSHDB, a restart without persistence): detected, marked
interrupted, never done, never resurrected by heartbeats, restarted to a clean run."""

from __future__ import annotations

import pytest
import redis
from scrapy.utils.test import get_crawler

from crawler.cluster import runs
from crawler.cluster.leases import LeasedQueue
from crawler.cluster.runs import RunKeys
from crawler.cluster.stats import RunStatsCollector

pytestmark = pytest.mark.integration

ENTRIES = [{"url": "http://sim/list"}, {"url": "http://sim/finished/1"}]


@pytest.fixture
def server(redis_url):
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def _guarded_stats(redis_url: str, keys: RunKeys) -> RunStatsCollector:
    stats = RunStatsCollector(get_crawler(settings_dict={"REDIS_URL": redis_url}))
    stats.bind(keys.stats, keys.meta)
    return stats


def test_a_flushed_run_is_detected_and_marked_interrupted_never_done(server, redis_url):
    run_id = runs.start_run(server, "naver", ENTRIES, run_id="r-lost")
    keys = RunKeys("naver", run_id)
    assert runs.run_intact(server, "naver", run_id)
    assert runs.register_node(server, "naver", run_id, "n1", ttl=30, info={"pid": 1})
    stats = _guarded_stats(redis_url, keys)
    stats.inc_value("pages", 3)
    assert stats.flush() and server.hget(keys.stats, "pages") == b"3"

    server.flushdb()

    assert not runs.run_intact(server, "naver", run_id)
    # Empty queues in a lost run are not a finished crawl.
    assert runs.finish_if_done(server, "naver", run_id) == ""
    # Heartbeats and stats flushes write nothing for it: it does not come back as running.
    assert not runs.register_node(server, "naver", run_id, "n1", ttl=30, info={"pid": 1})
    stats.inc_value("pages", 2)
    assert not stats.flush()
    assert server.keys("*") == []
    assert runs.active_nodes(server, "naver", run_id) == []
    assert runs.get_run(server, "naver", run_id) is None

    status = runs.mark_interrupted(server, "naver", run_id, "keys vanished")
    assert status == runs.INTERRUPTED
    run = runs.get_run(server, "naver", run_id)
    assert run["status"] == runs.INTERRUPTED
    assert run["interrupted_reason"] == "keys vanished" and run["interrupted_at"] > 0
    assert run["finished_at"] is None and run["started_at"] is None
    assert runs.list_runs(server, "naver") == [run_id]
    assert runs.current_run(server, "naver") is None
    # Marking twice keeps the first record; the run stays not intact and not done.
    assert runs.mark_interrupted(server, "naver", run_id, "again") == runs.INTERRUPTED
    assert runs.get_run(server, "naver", run_id)["interrupted_reason"] == "keys vanished"
    assert not runs.run_intact(server, "naver", run_id)
    assert runs.finish_if_done(server, "naver", run_id) == runs.INTERRUPTED
    assert not runs.register_node(server, "naver", run_id, "n2", ttl=30, info={})
    with pytest.raises(runs.RunStateError, match="interrupted: keys vanished"):
        runs.wait_for_done(server, "naver", run_id, timeout=1)
    # A node leaving an interrupted run still records why.
    runs.node_left(server, "naver", run_id, "n1", runs.INTERRUPTED)
    (node,) = runs.get_run(server, "naver", run_id)["nodes"]
    assert node["reason"] == runs.INTERRUPTED and not node["active"]


def test_meta_remade_without_its_creation_marker_is_not_intact(server):
    run_id = runs.start_run(server, "naver", ENTRIES, run_id="r-partial")
    keys = RunKeys("naver", run_id)
    server.flushdb()
    # Some stray writer re-made part of the meta: it must not pass for the run.
    server.hset(keys.meta, "status", runs.RUNNING)
    assert not runs.run_intact(server, "naver", run_id)
    assert runs.finish_if_done(server, "naver", run_id) == ""
    assert server.hget(keys.meta, "status") == b"running"  # not "done"
    assert runs.mark_interrupted(server, "naver", run_id, "partial meta") == runs.INTERRUPTED
    assert runs.get_run(server, "naver", run_id)["status"] == runs.INTERRUPTED


def test_mark_interrupted_never_downgrades_a_done_or_live_run(server):
    live = runs.start_run(server, "kakao", ENTRIES, run_id="r-live")
    assert runs.mark_interrupted(server, "kakao", live, "wrong guess") == runs.RUNNING
    assert runs.get_run(server, "kakao", live)["status"] == runs.RUNNING
    assert runs.run_intact(server, "kakao", live)
    assert runs.current_run(server, "kakao") == live

    done = runs.start_run(server, "kakao", [], run_id="r-done")
    assert runs.finish_if_done(server, "kakao", done) == runs.DONE
    assert runs.mark_interrupted(server, "kakao", done, "late node") == runs.DONE
    run = runs.get_run(server, "kakao", done)
    assert run["status"] == runs.DONE and run["interrupted_reason"] is None
    assert runs.run_intact(server, "kakao", done)


def test_restart_clears_what_the_lost_run_left_and_crawls_again(server, redis_url):
    run_id = runs.start_run(server, "naver", ENTRIES, run_id="r-restart")
    keys = RunKeys("naver", run_id)
    server.flushdb()
    # Nodes still alive after the loss went on: a fingerprint and a request in fresh keys.
    server.sadd(keys.dupefilter, "fingerprint-of-a-title-page")
    server.zadd(keys.requests, {b"orphan": 0})
    server.hset(keys.dead, "x", b"old")
    runs.mark_interrupted(server, "naver", run_id, "keys vanished")

    runs.restart_run(server, "naver", run_id, ENTRIES)

    assert runs.run_intact(server, "naver", run_id)
    for name in ("dupefilter", "requests", "dead", "stats", "leases", "reclaimed"):
        assert not server.exists(getattr(keys, name)), name
    assert server.lrange(keys.start, 0, -1) == [
        b'{"url": "http://sim/list"}', b'{"url": "http://sim/finished/1"}']
    run = runs.get_run(server, "naver", run_id)
    assert run["status"] == runs.RUNNING and run["restarts"] == 1
    assert run["start_entries"] == 2 and run["started_at"] > 0 and run["finished_at"] is None
    assert runs.current_run(server, "naver") == run_id
    assert runs.list_runs(server, "naver") == [run_id]
    # Heartbeats and stats land again, and the run can end.
    assert runs.register_node(server, "naver", run_id, "n3", ttl=30, info={})
    stats = _guarded_stats(redis_url, keys)
    stats.inc_value("pages")
    assert stats.flush() and server.hget(keys.stats, "pages") == b"1"
    queue = LeasedQueue(server, keys.queue, lease_seconds=30)
    for _ in ENTRIES:
        queue.ack(queue.pop().lease_id)
    assert runs.finish_if_done(server, "naver", run_id) == runs.DONE
    # A done run is not restarted (replay its dead letters instead).
    with pytest.raises(runs.RunStateError, match="is done"):
        runs.restart_run(server, "naver", run_id, ENTRIES)


def test_restart_of_a_run_that_vanished_unmarked(server):
    runs.start_run(server, "naver", ENTRIES, run_id="r-gone")
    server.flushdb()
    runs.restart_run(server, "naver", "r-gone", ENTRIES[:1])
    run = runs.get_run(server, "naver", "r-gone")
    assert run["status"] == runs.RUNNING and run["queue"]["start"] == 1 and run["restarts"] == 1


def test_restart_refuses_a_live_run_and_restarts_a_stopped_one(server):
    run_id = runs.start_run(server, "kakao", ENTRIES, run_id="r-stop")
    keys = RunKeys("kakao", run_id)
    queue = LeasedQueue(server, keys.queue, lease_seconds=30)
    queue.pop()
    server.sadd(keys.dupefilter, "fp")
    with pytest.raises(runs.RunStateError, match="is running"):
        runs.restart_run(server, "kakao", run_id, ENTRIES)
    assert server.zcard(keys.leases) == 1  # untouched

    runs.request_stop(server, "kakao", run_id)
    other = runs.start_run(server, "kakao", [], run_id="r-other")  # now the current run
    runs.restart_run(server, "kakao", run_id, ENTRIES)
    assert not runs.stop_requested(server, "kakao", run_id)
    assert server.zcard(keys.leases) == 0 and not server.exists(keys.dupefilter)
    assert server.llen(keys.start) == 2
    # Another live run stays current; nodes given -a run_id crawl the restarted one.
    assert runs.current_run(server, "kakao") == other
    assert runs.get_run(server, "kakao", run_id)["restarts"] == 1
    assert runs.run_intact(server, "kakao", run_id)


def test_a_run_created_again_after_a_loss_starts_from_clean_keys(server):
    # tasks.open_runs re-creates a checkpointed run Redis no longer has (start_run).
    run_id = runs.start_run(server, "naver", ENTRIES, run_id="r-again")
    keys = RunKeys("naver", run_id)
    server.flushdb()
    server.sadd(keys.dupefilter, "fingerprint-of-the-list-page")
    server.hset(keys.stats, "item_scraped_count", 40)
    assert runs.start_run(server, "naver", ENTRIES, run_id=run_id) == run_id
    assert not server.exists(keys.dupefilter) and not server.exists(keys.stats)
    assert server.llen(keys.start) == 2 and runs.run_intact(server, "naver", run_id)


def test_a_node_given_the_run_id_creates_restarts_or_joins_it(server):
    seeded = []

    def entries():
        seeded.append(1)
        return ENTRIES

    assert runs.open_requested_run(server, "naver", "r-node", entries) == "created"
    assert runs.open_requested_run(server, "naver", "r-node", entries) == "joined"
    assert len(seeded) == 1  # joining a live run computes no start entries
    server.flushdb()
    runs.mark_interrupted(server, "naver", "r-node", "keys vanished")
    assert runs.open_requested_run(server, "naver", "r-node", entries) == "restarted"
    assert runs.open_requested_run(server, "naver", "r-node", entries) == "joined"
    run = runs.get_run(server, "naver", "r-node")
    assert run["status"] == runs.RUNNING and run["restarts"] == 1
    assert run["queue"]["start"] == 2 and len(seeded) == 2
