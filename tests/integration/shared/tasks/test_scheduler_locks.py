"""Taking over RQ scheduler locks left by dead schedulers (shared/tasks/worker.py), on
real Redis: a live owner keeps its lock; a dead one on this host, or a silent one on any
host, loses it."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest
import redis
from rq.scheduler import RQScheduler

from shared.tasks.worker import (
    _RELEASE_IF_OWNER,
    STALE_SCHEDULER_SECONDS,
    release_dead_scheduler_locks,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def client(redis_url):
    connection = redis.Redis.from_url(redis_url)
    yield connection
    connection.close()


def _hold(client, queue: str, owner: str, ttl: float, hostname: str, pid: int) -> None:
    client.set(RQScheduler.get_locking_key(queue), owner, px=int(ttl * 1000))
    client.hset(f"rq:scheduler:{owner}", mapping={
        "name": owner, "hostname": hostname, "pid": str(pid), "queues": queue,
        "created_at": "2026-01-01T00:00:00.000000Z",
        "last_heartbeat": "2026-01-01T00:00:00.000000Z"})


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_live_fresh_locks_stay_and_dead_or_silent_ones_are_freed(client):
    here = socket.gethostname()
    _hold(client, "alive", "a", 61, here, 1)  # pid 1 is always alive
    _hold(client, "remote-fresh", "b", 55, "elsewhere", 4242)
    _hold(client, "dead-here", "c", 61, here, _dead_pid())
    _hold(client, "remote-silent", "d", 60 - STALE_SCHEDULER_SECONDS - 5, "elsewhere", 4242)
    client.set(RQScheduler.get_locking_key("no-hash-fresh"), "e", px=59_000)

    freed = release_dead_scheduler_locks(
        client, ["alive", "remote-fresh", "dead-here", "remote-silent", "no-hash-fresh", "free"])

    assert sorted(freed) == ["dead-here", "remote-silent"]
    for queue, owner in (("alive", b"a"), ("remote-fresh", b"b"), ("no-hash-fresh", b"e")):
        assert client.get(RQScheduler.get_locking_key(queue)) == owner
    for queue in ("dead-here", "remote-silent", "free"):
        assert client.get(RQScheduler.get_locking_key(queue)) is None


def test_a_lock_retaken_by_a_live_scheduler_meanwhile_is_left_alone(client):
    # The owner changed between the look and the delete: the script only deletes the
    # dead owner's own lock.
    key = RQScheduler.get_locking_key("q")
    client.set(key, "new-owner", px=61_000)
    release = client.register_script(_RELEASE_IF_OWNER)
    assert release(keys=[key], args=["old-owner"]) == 0
    assert client.get(key) == b"new-owner"
