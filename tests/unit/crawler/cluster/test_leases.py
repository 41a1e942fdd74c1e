"""The leased queue's Lua scripts against real Redis (db 15)."""

from __future__ import annotations

import time

import pytest
import redis

from crawler.cluster.leases import LeasedQueue
from crawler.cluster.runs import RunKeys


@pytest.fixture
def server(redis_url):
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def queue(server, lease_seconds=30.0, max_reclaims=2) -> LeasedQueue:
    return LeasedQueue(server, RunKeys("spider", "run").queue, lease_seconds, max_reclaims)


def test_pop_serves_requests_by_priority_then_start_entries(server):
    q = queue(server)
    q.push_start(['{"url": "s1"}', '{"url": "s2"}'])
    q.push(b"low", priority=0)
    q.push(b"high", priority=10)
    popped = [q.pop() for _ in range(4)]
    assert [(lease.origin, lease.payload) for lease in popped] == [
        ("r", b"high"), ("r", b"low"), ("s", b'{"url": "s1"}'), ("s", b'{"url": "s2"}'),
    ]
    assert q.pop() is None
    assert q.pending() == 0 and q.leased() == 4
    assert len({lease.lease_id for lease in popped}) == 4


def test_ack_removes_the_lease_once(server):
    q = queue(server)
    q.push(b"r1")
    lease = q.pop()
    assert q.ack(lease.lease_id) == 1
    assert q.ack(lease.lease_id) == 0
    assert q.leased() == 0 and q.pending() == 0


def test_expired_lease_is_reclaimed_with_a_new_id_and_its_count(server):
    q = queue(server, lease_seconds=0.2)
    q.push(b"r1")
    first = q.pop()
    assert q.reclaim_expired() == (0, 0)  # not expired yet
    time.sleep(0.3)
    assert q.reclaim_expired() == (1, 0)
    again = q.pop()
    assert again.payload == b"r1" and again.lease_id != first.lease_id
    assert (again.reclaims, again.handed) == (1, 2)
    # The dead node's late ack does not touch the new holder's lease.
    assert q.ack(first.lease_id) == 0
    assert q.leased() == 1


def test_renewed_lease_does_not_expire(server):
    q = queue(server, lease_seconds=0.3)
    q.push(b"r1")
    lease = q.pop()
    for _ in range(3):
        time.sleep(0.15)
        assert q.renew([lease.lease_id]) == 1
    assert q.reclaim_expired() == (0, 0)
    assert q.renew(["no-such-lease"]) == 0
    assert q.leased() == 1


def test_lease_reclaimed_too_often_is_dead_lettered(server):
    q = queue(server, lease_seconds=0.05, max_reclaims=2)
    q.push(b"poison")
    for _ in range(2):
        q.pop()
        time.sleep(0.1)
        assert q.reclaim_expired() == (1, 0)
    q.pop()
    time.sleep(0.1)
    assert q.reclaim_expired() == (0, 1)
    assert q.pop() is None
    assert q.dead_letters() == 1 and q.leased() == 0


def test_release_hands_work_back_without_counting_a_reclaim(server):
    q = queue(server)
    q.push_start(['{"url": "s1"}'])
    lease = q.pop()
    assert q.release([lease.lease_id]) == 1
    again = q.pop()
    assert again.origin == "s" and (again.reclaims, again.handed) == (0, 2)


def test_tracker_acks_after_output_and_items_and_abandons_on_item_error(server):
    from crawler.cluster.leases import LeaseTracker

    q = queue(server, lease_seconds=0.2)
    q.push(b"ok")
    q.push(b"fails")
    tracker = LeaseTracker(q)
    popped = {lease.payload: lease for lease in (q.pop(), q.pop())}
    ok, fails = popped[b"ok"], popped[b"fails"]
    for lease in (ok, fails):
        tracker.hold(lease.lease_id)
        tracker.item_started(lease.lease_id)
        tracker.output_finished(lease.lease_id)
    assert q.leased() == 2  # items not stored yet
    tracker.item_finished(ok.lease_id, ok=True)
    tracker.item_finished(fails.lease_id, ok=False)
    assert q.leased() == 1 and len(tracker) == 0
    assert tracker.held_ids() == []  # the failed lease is no longer renewed...
    time.sleep(0.3)
    assert q.reclaim_expired() == (1, 0)  # ...so it comes back for another attempt
    assert q.pop().payload == b"fails"


def test_a_parent_is_acked_only_after_its_children_are_queued(server):
    from crawler.cluster.leases import LeaseTracker

    q = queue(server)
    q.push(b"list page")
    tracker = LeaseTracker(q)
    lease = q.pop()
    tracker.hold(lease.lease_id)
    tracker.child_started(lease.lease_id)
    tracker.child_started(lease.lease_id)
    tracker.output_finished(lease.lease_id)
    tracker.child_finished(lease.lease_id)
    # The callback's output ended, but one child is still only in this process' memory.
    assert q.leased() == 1 and lease.lease_id in tracker
    tracker.child_finished(lease.lease_id)
    assert q.leased() == 0 and len(tracker) == 0


def test_a_lease_whose_items_all_wait_is_reported_waiting(server):
    from crawler.cluster.leases import LeaseTracker

    q = queue(server)
    q.push(b"episodes")
    tracker = LeaseTracker(q)
    lease = q.pop()
    item_a, item_b = {"no": 1}, {"no": 2}
    tracker.hold(lease.lease_id)
    tracker.item_started(lease.lease_id, item_a)
    tracker.item_started(lease.lease_id, item_b)
    tracker.output_finished(lease.lease_id)
    assert tracker.lease_of_item(item_a) == lease.lease_id
    tracker.item_waiting(item_a, True)
    assert tracker.waiting_ids() == []  # item_b is still being written
    tracker.item_waiting(item_b, True)
    assert tracker.waiting_ids() == [lease.lease_id]
    tracker.item_waiting(item_a, False)
    tracker.item_finished(lease.lease_id, True, item_a)
    assert tracker.waiting_ids() == [lease.lease_id]
    tracker.item_waiting(item_b, False)
    tracker.item_finished(lease.lease_id, True, item_b)
    assert q.leased() == 0 and tracker.lease_of_item(item_b) is None


def test_the_run_is_quiescent_only_when_every_lease_waits(server):
    q = queue(server, lease_seconds=0.1)
    for payload in (b"a", b"b", b"c"):
        q.push(payload)
    a, b = q.pop(), q.pop()
    assert q.quiescent([a.lease_id]) == (False, 0)  # c is still queued
    c = q.pop()
    assert q.quiescent([a.lease_id, b.lease_id]) == (False, 0)  # c is being crawled
    assert q.quiescent([c.lease_id]) == (True, 0)
    # A lease that stops waiting is taken out again.
    assert q.quiescent([], [b.lease_id]) == (False, 0)
    # An expired lease of a dead node is work that may come back: not quiescent.
    time.sleep(0.2)
    assert q.quiescent([b.lease_id]) == (True, 0)
    q.reclaim_expired()
    assert q.quiescent([]) == (False, 0)


def test_bury_dead_letters_held_leases_with_a_reason(server):
    q = queue(server)
    q.push(b"waits forever")
    lease = q.pop()
    assert q.bury([lease.lease_id], "waiting_on_dead_letters") == 1
    assert q.leased() == 0 and q.dead_letters() == 1
    keys = q.keys
    assert server.hget(keys.dead, lease.lease_id) == b"waits forever"
    assert server.hget(keys.dead_reasons, lease.lease_id) == b"waiting_on_dead_letters"
    assert q.bury([lease.lease_id], "again") == 0  # only leases still held


def test_reclaim_dead_letters_record_their_reason(server):
    q = queue(server, lease_seconds=0.05, max_reclaims=0)
    q.push(b"poison")
    lease = q.pop()
    time.sleep(0.1)
    assert q.reclaim_expired() == (0, 1)
    assert server.hget(q.keys.dead_reasons, lease.lease_id) == b"max_reclaims"


def test_an_ack_refused_by_redis_is_retried(server, redis_url):
    from crawler.cluster.leases import LeaseTracker

    q = queue(server)
    q.push(b"page")
    lease = q.pop()
    broken = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    tracker = LeaseTracker(LeasedQueue(broken, q.keys, 30.0))
    tracker.hold(lease.lease_id)
    tracker.output_finished(lease.lease_id)  # settles: the ack fails, is kept
    assert tracker.unacked_ids() == [lease.lease_id] and q.leased() == 1
    with pytest.raises(redis.RedisError):
        tracker.retry_acks()
    tracker.queue = q  # Redis answers again
    tracker.retry_acks()
    assert tracker.unacked_ids() == [] and q.leased() == 0


def test_a_request_whose_retries_ran_out_is_dead_lettered_not_acked(server):
    from crawler.cluster.leases import LeaseTracker

    q = queue(server)
    q.push(b"503 to the end")
    q.push(b"503 but the spider handles it")
    tracker = LeaseTracker(q)
    popped = {lease.payload: lease for lease in (q.pop(), q.pop())}
    gave_up, handled = popped[b"503 to the end"], popped[b"503 but the spider handles it"]
    for lease in (gave_up, handled):
        tracker.hold(lease.lease_id)
        tracker.gave_up(lease.lease_id, "503 Service Unavailable")
    tracker.output_finished(gave_up.lease_id)  # HttpErrorMiddleware left nothing
    tracker.item_started(handled.lease_id, {"x": 1})
    tracker.output_finished(handled.lease_id)
    tracker.item_finished(handled.lease_id, True, {"x": 1})
    assert q.leased() == 0 and q.dead_letters() == 1
    assert server.hget(q.keys.dead_reasons, gave_up.lease_id) == \
        b"download_failed:503 Service Unavailable"
    assert server.hget(q.keys.dead, gave_up.lease_id) == b"503 to the end"


def test_an_item_given_back_by_a_store_does_not_ack_its_lease(server):
    from types import SimpleNamespace

    from scrapy import Request, signals
    from scrapy.exceptions import DropItem
    from scrapy.http import Response
    from scrapy.signalmanager import SignalManager

    from crawler.cluster.leases import LEASE_META, LeaseTracker, connect_item_signals
    from crawler.pipelines.batching import GivenBack

    q = queue(server)
    q.push(b"given back")
    q.push(b"dropped for its data")
    tracker = LeaseTracker(q)
    crawler = SimpleNamespace(signals=SignalManager())
    connect_item_signals(crawler, lambda: tracker)
    popped = {lease.payload: lease for lease in (q.pop(), q.pop())}
    for payload, exception in ((b"given back", GivenBack("catalogue: released")),
                               (b"dropped for its data", DropItem("bad_json"))):
        lease = popped[payload]
        item = {"payload": payload}
        tracker.hold(lease.lease_id)
        tracker.item_started(lease.lease_id, item)
        tracker.output_finished(lease.lease_id)
        response = Response("http://x/", request=Request("http://x/",
                                                         meta={LEASE_META: lease.lease_id}))
        crawler.signals.send_catch_log(signals.item_dropped, item=item, response=response,
                                       spider=None, exception=exception)
    # The data drop is acked; the given-back item's lease is left to come back.
    assert q.leased() == 1
    assert tracker.held_ids() == []
    assert tracker.release_all() == 1 and q.pending() == 1
