"""Leased work queue of one crawl run in Redis, and the middlewares that ack leases.

A unit of work (a serialized request, or a JSON start entry) is in exactly one state:

- *queued*: in the run's request queue (sorted set, by priority), start queue (list)
  or reclaim list (lease ids whose payload waits to be handed out again);
- *leased*: popped by a node. ``pop`` moves it atomically (Lua) into the lease set,
  scored by a deadline on Redis' clock; the holding node renews the deadline with
  its heartbeat while it still works on it;
- *acked*: gone, because the response was fully processed (callback output consumed
  and every item it produced stored or deliberately dropped), the download failed
  for good, or the request was handed over to a retry/redirect request;
- *reclaimed*: its deadline passed (node killed, or an item failed to store and the
  node stopped renewing). Any node moves it back to the reclaim list, bypassing the
  dupefilter; after ``max_reclaims`` reclaims it is *dead-lettered* instead.

Each payload carries ``origin|score|reclaims|handed`` (``r`` request / ``s`` start entry).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import redis
from scrapy import Request, signals
from scrapy.http import Response

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from scrapy.crawler import Crawler

logger = logging.getLogger(__name__)

# request.meta key holding the lease id of the request being processed.
LEASE_META = "toonpick_lease"
# request.meta key of a yielded request: the lease of the response that yielded it.
PARENT_META = "toonpick_parent_lease"
# request.meta key set by the retry middleware when a request's retries ran out (network
# errors, 5xx/429 answers): why. Such a request is dead-lettered, not acked, so that it
# shows in the run's report and a replay crawls it once the platform answers again.
GAVE_UP_META = "toonpick_gave_up"

_NOW = "local t = redis.call('TIME') local now = tonumber(t[1]) + tonumber(t[2]) / 1000000 "

# KEYS: reclaimed, requests, start, leases, payloads, infos; ARGV: lease id, lease seconds
_POP = _NOW + """
local id = ARGV[1]
local payload, info
while true do
  local old = redis.call('LPOP', KEYS[1])
  if not old then break end
  payload = redis.call('HGET', KEYS[5], old)
  info = redis.call('HGET', KEYS[6], old)
  redis.call('HDEL', KEYS[5], old)
  redis.call('HDEL', KEYS[6], old)
  if payload and info then break end
  payload = nil
end
if not payload then
  local top = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
  if top[1] then
    redis.call('ZREMRANGEBYRANK', KEYS[2], 0, 0)
    payload = top[1]
    info = 'r|' .. top[2] .. '|0|0'
  else
    payload = redis.call('LPOP', KEYS[3])
    if not payload then return false end
    info = 's|0|0|0'
  end
end
local origin, score, reclaims, handed = string.match(info, '^(%a)|([^|]*)|(%d+)|(%d+)$')
info = origin .. '|' .. score .. '|' .. reclaims .. '|' .. (tonumber(handed) + 1)
redis.call('HSET', KEYS[5], id, payload)
redis.call('HSET', KEYS[6], id, info)
redis.call('ZADD', KEYS[4], now + tonumber(ARGV[2]), id)
return {id, info, payload}
"""

# KEYS: leases; ARGV: lease seconds, ids...
_RENEW = _NOW + """
local deadline = now + tonumber(ARGV[1])
local renewed = 0
for i = 2, #ARGV do
  renewed = renewed + redis.call('ZADD', KEYS[1], 'XX', 'CH', deadline, ARGV[i])
end
return renewed
"""

# KEYS: leases, payloads, infos, reclaimed, dead payloads, dead infos, dead reasons
# ARGV: max reclaims, limit, mode ('expired' | 'release'), ids... (release only)
_RECLAIM = _NOW + """
local ids
if ARGV[3] == 'expired' then
  ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]))
else
  ids = {}
  for i = 4, #ARGV do ids[#ids + 1] = ARGV[i] end
end
local back, dead = 0, 0
for _, id in ipairs(ids) do
  if redis.call('ZREM', KEYS[1], id) == 1 then
    local info = redis.call('HGET', KEYS[3], id)
    local origin, score, reclaims, handed = string.match(info, '^(%a)|([^|]*)|(%d+)|(%d+)$')
    reclaims = tonumber(reclaims)
    if ARGV[3] == 'expired' then reclaims = reclaims + 1 end
    info = origin .. '|' .. score .. '|' .. reclaims .. '|' .. handed
    if reclaims > tonumber(ARGV[1]) then
      redis.call('HSET', KEYS[5], id, redis.call('HGET', KEYS[2], id))
      redis.call('HSET', KEYS[6], id, info)
      redis.call('HSET', KEYS[7], id, 'max_reclaims')
      redis.call('HDEL', KEYS[2], id)
      redis.call('HDEL', KEYS[3], id)
      dead = dead + 1
    else
      redis.call('HSET', KEYS[3], id, info)
      redis.call('RPUSH', KEYS[4], id)
      back = back + 1
    end
  end
end
return {back, dead}
"""

# Dead-letter leases still held, with a reason (work that cannot be finished in this run).
# KEYS: leases, payloads, infos, dead payloads, dead infos, dead reasons; ARGV: reason, ids...
_BURY = """
local buried = 0
for i = 2, #ARGV do
  local id = ARGV[i]
  if redis.call('ZREM', KEYS[1], id) == 1 then
    redis.call('HSET', KEYS[4], id, redis.call('HGET', KEYS[2], id))
    redis.call('HSET', KEYS[5], id, redis.call('HGET', KEYS[3], id))
    redis.call('HSET', KEYS[6], id, ARGV[1])
    redis.call('HDEL', KEYS[2], id)
    redis.call('HDEL', KEYS[3], id)
    buried = buried + 1
  end
end
return buried
"""

# Record which of this node's leases only wait on other work (``waiting``), then say
# whether the whole run is nothing but such leases: no queued work and every lease
# (expired ones included: a dead node's work comes back) waiting.
# KEYS: requests, start, reclaimed, leases, waiting, dead
# ARGV: number of ids to add, ids to add..., ids to remove...
# Returns {quiescent (0|1), dead letters}.
_QUIESCENT = """
local n = tonumber(ARGV[1])
for i = 2, n + 1 do redis.call('SADD', KEYS[5], ARGV[i]) end
for i = n + 2, #ARGV do redis.call('SREM', KEYS[5], ARGV[i]) end
local dead = redis.call('HLEN', KEYS[6])
if redis.call('ZCARD', KEYS[1]) + redis.call('LLEN', KEYS[2])
    + redis.call('LLEN', KEYS[3]) > 0 then
  return {0, dead}
end
local leases = redis.call('ZRANGE', KEYS[4], 0, -1)
if #leases == 0 then return {0, dead} end
for _, id in ipairs(leases) do
  if redis.call('SISMEMBER', KEYS[5], id) == 0 then return {0, dead} end
end
return {1, dead}
"""


@dataclass(frozen=True)
class Lease:
    """A unit of work handed to this node."""

    lease_id: str
    origin: str  # "r": serialized request, "s": JSON start entry
    payload: bytes
    reclaims: int  # times it came back after a lease expired
    handed: int  # times it was popped, this time included

    @property
    def is_start_entry(self) -> bool:
        return self.origin == "s"


@dataclass(frozen=True)
class QueueKeys:
    requests: str
    start: str
    reclaimed: str
    leases: str
    payloads: str
    infos: str
    dead: str
    dead_infos: str
    dead_reasons: str  # lease id -> why it was dead-lettered (max_reclaims, ...)
    waiting: str  # lease ids whose items only wait on other work (see ``quiescent``)


class LeasedQueue:
    """The run's work queue: push, leased pop, ack, renew, reclaim (see module doc)."""

    def __init__(
        self,
        server: redis.Redis,
        keys: QueueKeys,
        lease_seconds: float,
        max_reclaims: int = 3,
    ):
        if lease_seconds <= 0:
            raise ValueError(f"lease_seconds must be positive, got {lease_seconds}")
        self.server = server
        self.keys = keys
        self.lease_seconds = lease_seconds
        self.max_reclaims = max_reclaims
        self._pop = server.register_script(_POP)
        self._renew = server.register_script(_RENEW)
        self._reclaim = server.register_script(_RECLAIM)
        self._bury = server.register_script(_BURY)
        self._quiescent = server.register_script(_QUIESCENT)

    def push(self, payload: bytes, priority: int = 0) -> None:
        # Lower score pops first, as scrapy-redis' PriorityQueue.
        self.server.zadd(self.keys.requests, {payload: -priority})

    def push_start(self, entries_json: list[str]) -> None:
        if entries_json:
            self.server.rpush(self.keys.start, *entries_json)

    def pop(self) -> Lease | None:
        k = self.keys
        lease_id = uuid.uuid4().hex
        result = self._pop(
            keys=[k.reclaimed, k.requests, k.start, k.leases, k.payloads, k.infos],
            args=[lease_id, self.lease_seconds],
        )
        if not result:
            return None
        raw_id, raw_info, payload = result
        origin, _score, reclaims, handed = raw_info.decode().split("|")
        return Lease(raw_id.decode(), origin, payload, int(reclaims), int(handed))

    def ack(self, *lease_ids: str) -> int:
        """Forget finished leases; returns how many were still leased (not reclaimed)."""
        if not lease_ids:
            return 0
        k = self.keys
        pipe = self.server.pipeline(transaction=True)
        pipe.zrem(k.leases, *lease_ids)
        pipe.hdel(k.payloads, *lease_ids)
        pipe.hdel(k.infos, *lease_ids)
        return int(pipe.execute()[0])

    def renew(self, lease_ids: list[str]) -> int:
        """Push the deadline of leases still held; returns how many were renewed."""
        if not lease_ids:
            return 0
        return int(self._renew(keys=[self.keys.leases], args=[self.lease_seconds, *lease_ids]))

    def reclaim_expired(self, limit: int = 500) -> tuple[int, int]:
        """Requeue expired leases; returns (requeued, dead-lettered)."""
        return self._run_reclaim("expired", limit, [])

    def release(self, lease_ids: list[str]) -> int:
        """Hand leases back without counting a reclaim (a node shutting down cleanly)."""
        if not lease_ids:
            return 0
        return self._run_reclaim("release", len(lease_ids), lease_ids)[0]

    def _run_reclaim(self, mode: str, limit: int, ids: list[str]) -> tuple[int, int]:
        k = self.keys
        back, dead = self._reclaim(
            keys=[k.leases, k.payloads, k.infos, k.reclaimed, k.dead, k.dead_infos,
                  k.dead_reasons],
            args=[self.max_reclaims, limit, mode, *ids],
        )
        return int(back), int(dead)

    def bury(self, lease_ids: list[str], reason: str) -> int:
        """Dead-letter leases this node holds, with ``reason``; returns how many."""
        if not lease_ids:
            return 0
        k = self.keys
        return int(self._bury(
            keys=[k.leases, k.payloads, k.infos, k.dead, k.dead_infos, k.dead_reasons],
            args=[reason, *lease_ids]))

    def quiescent(self, waiting: list[str], not_waiting: list[str] = ()) -> tuple[bool, int]:
        """Record ``waiting`` leases; (whether the run holds nothing else, dead letters)."""
        k = self.keys
        flag, dead = self._quiescent(
            keys=[k.requests, k.start, k.reclaimed, k.leases, k.waiting, k.dead],
            args=[len(waiting), *waiting, *not_waiting])
        return bool(flag), int(dead)

    def pending(self) -> int:
        """Work not yet handed out (queued, start entries, reclaimed)."""
        k = self.keys
        pipe = self.server.pipeline(transaction=False)
        pipe.zcard(k.requests)
        pipe.llen(k.start)
        pipe.llen(k.reclaimed)
        return sum(pipe.execute())

    def leased(self) -> int:
        return int(self.server.zcard(self.keys.leases))

    def dead_letters(self) -> int:
        return int(self.server.hlen(self.keys.dead))


@dataclass
class _Held:
    items: int = 0  # items yielded and not yet stored or dropped
    children: int = 0  # requests yielded and not yet in Redis (or filtered)
    waiting: int = 0  # of ``items``: parked by a store until other work lands
    output_done: bool = False
    failed: bool = False
    produced: int = 0  # items and requests yielded so far
    gave_up: str | None = None  # retries ran out (GAVE_UP_META): dead-letter if no output


class LeaseTracker:
    """This node's leases in progress and when each can be acked.

    A lease is acked once its response's output is consumed, every request it yielded
    is in the run's queue (or was filtered as a duplicate) and every item it yielded
    has fired item_scraped / item_dropped: Kafka's ack-after-durable, per request. An
    item_error marks the lease failed: it is no longer renewed, so it expires and
    another attempt is made.

    Items are tracked by ``id()`` while they travel the pipelines (Scrapy's items are
    unhashable dataclasses, and the item signals name the response, not the item).
    """

    def __init__(self, queue: LeasedQueue, stats: Any | None = None):
        self.queue = queue
        self.stats = stats
        self._held: dict[str, _Held] = {}
        self._item_leases: dict[int, str] = {}
        # Finished leases whose ack Redis refused (a blip): acked on the next heartbeat.
        self._unacked: list[str] = []
        # Leases given up (an item failed): left to expire while the node runs (so a
        # request that keeps failing is dead-lettered), handed back when it closes.
        self._abandoned: list[str] = []

    def __len__(self) -> int:
        return len(self._held)

    def __contains__(self, lease_id: object) -> bool:
        return lease_id in self._held

    def held_ids(self) -> list[str]:
        return [lease_id for lease_id, h in self._held.items() if not h.failed]

    def all_ids(self) -> list[str]:
        return list(self._held)

    def waiting_ids(self) -> list[str]:
        """Leases with nothing left to do but items parked until other work lands.

        A response's output need not be finished: Scrapy processes at most
        CONCURRENT_ITEMS of its items at a time, so when that many are parked the rest of
        its output cannot come until they are settled.
        """
        return [lease_id for lease_id, h in self._held.items()
                if not h.failed and h.children == 0 and h.items > 0
                and h.waiting >= h.items]

    def hold(self, lease_id: str) -> None:
        self._held[lease_id] = _Held()

    def item_started(self, lease_id: str, item: Any = None) -> None:
        held = self._held.get(lease_id)
        if held is not None:
            held.items += 1
            held.produced += 1
            if item is not None:
                self._item_leases[id(item)] = lease_id

    def lease_of_item(self, item: Any) -> str | None:
        return self._item_leases.get(id(item))

    def item_waiting(self, item: Any, waiting: bool) -> None:
        """A store parked ``item`` (or took it back): counts towards ``waiting_ids``."""
        lease_id = self._item_leases.get(id(item))
        held = self._held.get(lease_id) if lease_id else None
        if held is not None:
            held.waiting = max(0, held.waiting + (1 if waiting else -1))

    def item_finished(self, lease_id: str, ok: bool, item: Any = None) -> None:
        if item is not None:
            self._item_leases.pop(id(item), None)
        held = self._held.get(lease_id)
        if held is None:
            return
        held.items -= 1
        if not ok:
            held.failed = True
        self._settle(lease_id, held)

    def child_started(self, lease_id: str) -> None:
        held = self._held.get(lease_id)
        if held is not None:
            held.children += 1
            held.produced += 1

    def gave_up(self, lease_id: str, reason: str) -> None:
        """The request's retries ran out: unless its response still yields something
        (a spider handling the status itself), it is dead-lettered with ``reason``."""
        held = self._held.get(lease_id)
        if held is not None:
            held.gave_up = reason

    def bury(self, lease_id: str, reason: str) -> None:
        """Dead-letter now: the request cannot be done in this run (download given up)."""
        if self._held.pop(lease_id, None) is None:
            return
        try:
            buried = self.queue.bury([lease_id], reason)
        except redis.RedisError as exc:
            # Left to expire: reclaimed and tried again, which is safe.
            logger.warning("could not dead-letter a lease (%s); it will expire", exc)
            return
        if buried:
            self._inc("lease/dead_lettered")

    def child_finished(self, lease_id: str) -> None:
        held = self._held.get(lease_id)
        if held is None:
            return
        held.children -= 1
        self._settle(lease_id, held)

    def output_finished(self, lease_id: str) -> None:
        held = self._held.get(lease_id)
        if held is None or held.output_done:
            return
        held.output_done = True
        self._settle(lease_id, held)

    def done(self, lease_id: str) -> None:
        """Ack now: the request ended without output (download failed, handed over)."""
        if self._held.pop(lease_id, None) is not None:
            self._ack(lease_id)

    def forget(self, lease_ids: list[str]) -> None:
        """Stop tracking leases that were settled in Redis some other way (buried)."""
        for lease_id in lease_ids:
            self._held.pop(lease_id, None)

    def release_all(self) -> int:
        """Hand every unfinished lease back (a node closing): another node redoes it."""
        ids = self.all_ids() + self._abandoned
        self._held.clear()
        self._item_leases.clear()
        self._abandoned = []
        return self.queue.release(ids)

    def _settle(self, lease_id: str, held: _Held) -> None:
        if not held.output_done or held.items > 0 or held.children > 0:
            return
        if held.gave_up is not None and not held.produced and not held.failed:
            self.bury(lease_id, f"download_failed:{held.gave_up}")
            return
        del self._held[lease_id]
        if held.failed:
            # Not acked and no longer renewed: it expires and is reclaimed.
            self._inc("lease/abandoned")
            self._abandoned.append(lease_id)
            return
        self._ack(lease_id)

    def _ack(self, lease_id: str) -> None:
        try:
            still_leased = self.queue.ack(lease_id)
        except redis.RedisError as exc:
            self._unacked.append(lease_id)
            logger.warning("could not ack a lease (%s); retrying on the next heartbeat", exc)
            return
        if still_leased:
            self._inc("lease/acked")
        else:
            # Its deadline passed while we worked; another node may be on it already.
            self._inc("lease/acked_late")

    def unacked_ids(self) -> list[str]:
        """Finished leases not acked yet (Redis refused): renewed until they are."""
        return list(self._unacked)

    def retry_acks(self) -> None:
        """Ack what Redis refused earlier; raises RedisError if it still does."""
        while self._unacked:
            lease_id = self._unacked[0]
            if self.queue.ack(lease_id):
                self._inc("lease/acked")
            else:
                self._inc("lease/acked_late")
            self._unacked.pop(0)

    def _inc(self, key: str) -> None:
        if self.stats is not None:
            self.stats.inc_value(key)


def lease_of(source: Any) -> str | None:
    """The lease id behind a request, response or download Failure, if any."""
    request = source if isinstance(source, Request) else getattr(source, "request", None)
    if request is None:
        return None
    return request.meta.get(LEASE_META)


def tracker_of(crawler: Crawler) -> LeaseTracker | None:
    node = getattr(crawler, "toonpick_node", None)
    return None if node is None else node.tracker


class LeaseSpiderMiddleware:
    """Counts the items a leased response produces and acks it when its output ends.

    Sits next to the engine (low order) so it sees the final output of every other
    spider middleware, including the empty output HttpErrorMiddleware leaves.
    Requests yielded by a callback lose the parent's lease id (a spider that copies
    ``response.meta`` would otherwise make them look like a hand-over).
    """

    def __init__(self, crawler: Crawler):
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> LeaseSpiderMiddleware:
        return cls(crawler)

    async def process_spider_output(
        self, response: Response, result: AsyncIterator[Any]
    ) -> AsyncIterator[Any]:
        tracker = tracker_of(self.crawler)
        lease_id = lease_of(response)
        if tracker is None or lease_id is None or lease_id not in tracker:
            async for output in result:
                if isinstance(output, Request):
                    output.meta.pop(LEASE_META, None)
                    output.meta.pop(PARENT_META, None)
                yield output
            return
        gave_up = response.meta.get(GAVE_UP_META)
        if gave_up:
            tracker.gave_up(lease_id, gave_up)
        try:
            async for output in result:
                if isinstance(output, Request):
                    output.meta.pop(LEASE_META, None)
                    # The parent is acked only once this child is in Redis (the
                    # scheduler calls child_finished): Scrapy may hold yielded requests
                    # in memory for a while after the output ends.
                    output.meta[PARENT_META] = lease_id
                    tracker.child_started(lease_id)
                elif output is not None:
                    tracker.item_started(lease_id, output)
                yield output
        finally:
            tracker.output_finished(lease_id)

    def process_spider_exception(self, response: Response, exception: Exception) -> None:
        # A callback that raised before yielding anything never reaches
        # process_spider_output: its response is still finished.
        tracker = tracker_of(self.crawler)
        lease_id = lease_of(response)
        if tracker is not None and lease_id is not None:
            tracker.output_finished(lease_id)
        return None


class LeaseDownloaderMiddleware:
    """Settles the lease of a request whose download failed for good.

    Its ``process_exception`` runs last (lowest order), so a retry or another
    middleware had its chance; what reaches it is final. Robots-forbidden, offsite or
    ignored requests are acked (a verdict); one whose retries ran out (the platform was
    not reached) is dead-lettered.
    """

    def __init__(self, crawler: Crawler):
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> LeaseDownloaderMiddleware:
        return cls(crawler)

    def process_exception(self, request: Request, exception: Exception) -> None:
        tracker = tracker_of(self.crawler)
        lease_id = lease_of(request)
        if tracker is not None and lease_id is not None:
            gave_up = request.meta.get(GAVE_UP_META)
            if gave_up:
                # Network errors to the end: the platform was not reached, not a verdict.
                tracker.bury(lease_id, f"download_failed:{gave_up}")
            else:
                tracker.done(lease_id)
        return None


def connect_item_signals(crawler: Crawler, tracker_getter: Callable[[], LeaseTracker | None]):
    """Wire item_scraped / item_dropped / item_error to the lease tracker."""

    def finished(ok: bool):
        def handler(item: Any, response: Any = None, exception: Any = None,
                    **kwargs: Any) -> None:
            tracker = tracker_getter()
            lease_id = lease_of(response)
            if tracker is not None and lease_id is not None:
                # A drop that gives the item back unstored (``ack_lease = False``, see
                # crawler.pipelines.batching.GivenBack) must not ack its lease.
                settled = ok and getattr(exception, "ack_lease", True)
                tracker.item_finished(lease_id, settled, item)

        return handler

    handlers = {
        signals.item_scraped: finished(True),
        signals.item_dropped: finished(True),
        signals.item_error: finished(False),
    }
    for signal, handler in handlers.items():
        crawler.signals.connect(handler, signal=signal, weak=False)
    return handlers
