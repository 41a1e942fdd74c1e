"""Leased scrapy-redis scheduler and per-run dupefilter (cluster mode).

Differences from ``scrapy_redis.scheduler.Scheduler``:

- keys are per crawl run (``crawler.cluster.runs.RunKeys``), never flushed by a node;
- ``next_request`` *leases* work instead of popping it (``crawler.cluster.leases``),
  serving the run's start queue (JSON start entries, turned into requests by the
  spider) once the request queue is empty; a start entry goes through the dupefilter
  when first handed out, so a start page that other pages link back to is fetched once;
- ``enqueue_request`` of a request that still carries a lease id (a retry or redirect
  made by a downloader middleware) pushes the new request, then acks the old lease;
  a request yielded by a leased response counts as done for its parent's lease only
  once it is in Redis (or found a duplicate);
- the fingerprint and the push are one Lua call, so a request is never "seen" without
  being queued (a push that failed after the fingerprint was added would be filtered
  forever after);
- Redis errors never lose a request: one that cannot be pushed waits in memory and is
  pushed again on the node's heartbeat (its parent lease stays unacked meanwhile), and
  a pop that fails is retried on the next poll;
- back-pressure: no new work is popped while one of the node's stores is failing.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

import redis
from scrapy import Request
from scrapy.utils.request import request_from_dict
from scrapy_redis import picklecompat
from scrapy_redis.dupefilter import RFPDupeFilter
from scrapy_redis.scheduler import Scheduler

from crawler.cluster.connection import crawler_redis
from crawler.cluster.leases import LEASE_META, PARENT_META, Lease
from shared.stores.redis import RedisUnavailable, require_redis, unavailable

if TYPE_CHECKING:
    from scrapy.crawler import Crawler
    from scrapy.spiders import Spider

    from crawler.cluster.node import ClusterNode

logger = logging.getLogger(__name__)

# The close reason of a node that could not reach Redis to join its run.
REDIS_UNAVAILABLE = "redis_unavailable"


class RunDupeFilter(RFPDupeFilter):
    """scrapy-redis' fingerprint set, kept for the run rather than cleared by a node."""

    def __init__(self, server: redis.Redis, key: str, stats: Any, debug: bool = False):
        super().__init__(server, key, debug=debug)
        self.stats = stats

    def close(self, reason: str = "") -> None:
        # Other nodes still crawl the run; the run drops the set when it is done.
        return None

    def log(self, request: Request, spider: Spider) -> None:
        self.stats.inc_value("dupefilter/filtered")
        if self.debug:
            logger.debug("Filtered duplicate request: %s", request)


# KEYS: dupefilter, requests; ARGV: fingerprint ('' = don't filter), payload, score
_PUSH = """
if ARGV[1] ~= '' and redis.call('SADD', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[2])
return 1
"""


class _Unpushed:
    """A request Redis did not take yet, with the leases waiting on it."""

    __slots__ = ("request", "parent", "handed_over")

    def __init__(self, request: Request, parent: str | None, handed_over: str | None):
        self.request = request
        self.parent = parent
        self.handed_over = handed_over


class ClusterScheduler(Scheduler):
    def __init__(self, crawler: Crawler, server: redis.Redis):
        super().__init__(server, persist=True, serializer=picklecompat)
        self.crawler = crawler
        self.stats = crawler.stats
        self.debug = crawler.settings.getbool("DUPEFILTER_DEBUG")
        self.node: ClusterNode | None = None
        self._unpushed: list[_Unpushed] = []
        self._push = server.register_script(_PUSH)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ClusterScheduler:
        if not crawler.settings.get("REDIS_URL"):
            raise ValueError("ClusterScheduler needs REDIS_URL")
        # Redis is first asked in open(): a failure here would be a traceback, there it
        # closes the spider with a reason.
        return cls(crawler, crawler_redis(crawler))

    def __len__(self) -> int:
        return 0 if self.node is None or self.node.queue is None else self.node.queue.pending()

    def open(self, spider: Spider) -> None:
        self.spider = spider
        node = getattr(self.crawler, "toonpick_node", None)
        if node is None:
            raise RuntimeError(
                "ClusterScheduler needs the crawler.cluster.node.ClusterNode extension"
            )
        self.node = node
        try:
            require_redis(self.server)
            keys = node.join(spider)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            # A node that cannot join has nothing to do: one line, and the spider closes
            # (no lease taken, nothing to give back; exit code 3). Not CloseSpider from
            # here: Scrapy then skips opening its scraper, whose close traces back.
            error = exc if isinstance(exc, RedisUnavailable) else unavailable(self.server, exc)
            logger.error("%s; this node cannot join its run and stops", error)
            node.close_at_open = REDIS_UNAVAILABLE
            return
        self.queue = node.queue
        self.df = RunDupeFilter(self.server, keys.dupefilter, self.stats, debug=self.debug)

    def close(self, reason: str) -> None:
        return None

    def flush(self) -> None:
        raise NotImplementedError("a crawl run's queue is shared; it is never flushed by a node")

    # --- requests in --------------------------------------------------------------

    def enqueue_request(self, request: Request) -> bool:
        handed_over = request.meta.pop(LEASE_META, None)
        parent = request.meta.pop(PARENT_META, None)
        entry = _Unpushed(request, parent, handed_over)
        try:
            return self._push_one(entry)
        except redis.RedisError as exc:
            # Kept, not lost: pushed again on the next heartbeat; its parent (or the
            # lease it replaces) is not acked until then.
            if not self._unpushed:
                logger.warning("could not queue requests in Redis (%s); they wait in this "
                               "node and are pushed on the next heartbeat", exc)
            self._unpushed.append(entry)
            self.stats.inc_value("scheduler/push_deferred")
            return True

    def _push_one(self, entry: _Unpushed) -> bool:
        """Push (or find a duplicate), then settle the leases waiting on it; whether it
        was queued now."""
        request = entry.request
        fingerprint = "" if request.dont_filter else self.df.request_fingerprint(request)
        pushed = self._push(keys=[self.df.key, self.queue.keys.requests],
                            args=[fingerprint, self._encode(request), -request.priority])
        if pushed:
            self.stats.inc_value("scheduler/enqueued/redis")
        else:
            self.df.log(request, self.spider)
        tracker = self.node.tracker
        if entry.parent is not None:
            tracker.child_finished(entry.parent)
        if entry.handed_over is not None:
            # Pushed (or found a duplicate) first, acked second: the run never
            # looks empty in between.
            self.stats.inc_value("lease/handed_over")
            tracker.done(entry.handed_over)
        return bool(pushed)

    def push_deferred(self) -> int:
        """Push requests Redis refused earlier; returns how many are still waiting."""
        waiting, self._unpushed = self._unpushed, []
        for index, entry in enumerate(waiting):
            try:
                self._push_one(entry)
            except redis.RedisError:
                self._unpushed = waiting[index:] + self._unpushed
                break
        return len(self._unpushed)

    def _encode(self, request: Request) -> bytes:
        return self.serializer.dumps(request.to_dict(spider=self.spider))

    # --- requests out -------------------------------------------------------------

    def next_request(self) -> Request | None:
        if self.node.paused():
            # A store is failing: take no new work until it answers again.
            return None
        while True:
            try:
                lease = self.queue.pop()
            except redis.RedisError as exc:
                self.stats.inc_value("scheduler/pop_failed")
                logger.warning("could not pop from Redis (%s); retrying", exc)
                return None
            if lease is None:
                return None
            request = self._request_from(lease)
            if request is None:
                self.queue.ack(lease.lease_id)
                continue
            request.meta[LEASE_META] = lease.lease_id
            self.node.tracker.hold(lease.lease_id)
            self.node.work_found()
            self.stats.inc_value("scheduler/dequeued/redis")
            if lease.reclaims:
                self.stats.inc_value("scheduler/dequeued/reclaimed")
            return request

    def _request_from(self, lease: Lease) -> Request | None:
        """The request a lease stands for, or None (counted, logged) if it is unusable."""
        if not lease.is_start_entry:
            try:
                return request_from_dict(self.serializer.loads(lease.payload), spider=self.spider)
            except Exception as exc:  # a payload from another code version, or corrupt
                self.stats.inc_value("scheduler/undecodable")
                logger.error("dropped undecodable queued request: %r", exc)
                return None
        try:
            entry = json.loads(lease.payload)
            request = self.spider.request_from_entry(entry)
        except Exception as exc:
            self.stats.inc_value("start_entries/invalid")
            logger.error("dropped start entry %r: %s", lease.payload[:200], exc)
            return None
        # Only the first hand-out consults the dupefilter: a reclaimed entry's
        # fingerprint is already there from the attempt that died.
        first_time = lease.handed == 1 and lease.reclaims == 0
        if first_time and not request.dont_filter and self.df.request_seen(request):
            self.stats.inc_value("start_entries/duplicate")
            return None
        self.stats.inc_value("start_entries/dequeued")
        return request

    def has_pending_requests(self) -> bool:
        # Nothing is ever pending *locally*: when a pop finds nothing the engine goes
        # idle and ClusterNode decides between waiting and closing.
        return False
