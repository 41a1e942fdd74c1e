"""Leased scrapy-redis scheduler and per-run dupefilter (cluster mode).

Differences from ``scrapy_redis.scheduler.Scheduler``:

- keys are per crawl run (``crawler.cluster.runs.RunKeys``), never flushed by a node;
- ``next_request`` *leases* work instead of popping it (``crawler.cluster.leases``),
  serving the run's start queue (JSON start entries, turned into requests by the
  spider) once the request queue is empty; a start entry goes through the dupefilter
  when first handed out, so a start page that other pages link back to is fetched once;
- ``enqueue_request`` of a request that still carries a lease id (a retry or redirect
  made by a downloader middleware) pushes the new request, then acks the old lease.
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

from crawler.cluster.leases import LEASE_META, Lease

if TYPE_CHECKING:
    from scrapy.crawler import Crawler
    from scrapy.spiders import Spider

    from crawler.cluster.node import ClusterNode

logger = logging.getLogger(__name__)


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


class ClusterScheduler(Scheduler):
    def __init__(self, crawler: Crawler, server: redis.Redis):
        super().__init__(server, persist=True, serializer=picklecompat)
        self.crawler = crawler
        self.stats = crawler.stats
        self.debug = crawler.settings.getbool("DUPEFILTER_DEBUG")
        self.node: ClusterNode | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ClusterScheduler:
        url = crawler.settings.get("REDIS_URL")
        if not url:
            raise ValueError("ClusterScheduler needs REDIS_URL")
        server = redis.Redis.from_url(url)
        server.ping()
        return cls(crawler, server)

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
        keys = node.join(spider)
        self.queue = node.queue
        self.df = RunDupeFilter(self.server, keys.dupefilter, self.stats, debug=self.debug)

    def close(self, reason: str) -> None:
        return None

    def flush(self) -> None:
        raise NotImplementedError("a crawl run's queue is shared; it is never flushed by a node")

    # --- requests in --------------------------------------------------------------

    def enqueue_request(self, request: Request) -> bool:
        handed_over = request.meta.pop(LEASE_META, None)
        try:
            if not request.dont_filter and self.df.request_seen(request):
                self.df.log(request, self.spider)
                return False
            self.queue.push(self._encode(request), request.priority)
            self.stats.inc_value("scheduler/enqueued/redis")
            return True
        finally:
            if handed_over is not None:
                # Pushed (or found a duplicate) first, acked second: the run never
                # looks empty in between.
                self.stats.inc_value("lease/handed_over")
                self.node.tracker.done(handed_over)

    def _encode(self, request: Request) -> bytes:
        return self.serializer.dumps(request.to_dict(spider=self.spider))

    # --- requests out -------------------------------------------------------------

    def next_request(self) -> Request | None:
        while True:
            lease = self.queue.pop()
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
