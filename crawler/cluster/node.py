"""This process as one node of a crawl run (Scrapy extension, cluster mode only).

A node *joins* a run when its scheduler opens (creating and seeding it if it is the
first), then *works* while it holds leases, renewing them and its own registration
with a heartbeat, and *idles* when nothing is left for it: an idle node reclaims
expired leases and polls for work, and closes ("finished") only when the run is done
(start queue, request queue, reclaim list and lease set all empty), whichever node
saw it first.

A node also closes ("stopped") when the run's stop flag is raised (``runs.request_stop``):
it checks the flag on every heartbeat and when idle, finishes what it has in flight,
hands its leases back and leaves the run's queues as they are for a restart.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from typing import TYPE_CHECKING, Any

import redis
from scrapy import signals
from scrapy.exceptions import CloseSpider, DontCloseSpider, NotConfigured
from scrapy.utils.defer import deferred_from_coro
from twisted.internet import task

from crawler.cluster import runs
from crawler.cluster.leases import LeasedQueue, LeaseTracker, connect_item_signals
from crawler.cluster.runs import RunKeys

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

    from crawler.cluster.spider import ClusterSpider

logger = logging.getLogger(__name__)

STOPPED = "stopped"


class ClusterNode:
    def __init__(
        self,
        crawler: Crawler,
        server: redis.Redis,
        lease_seconds: float,
        idle_seconds: float,
        max_reclaims: int,
    ):
        self.crawler = crawler
        self.server = server
        self.lease_seconds = lease_seconds
        self.idle_seconds = max(idle_seconds, 0.1)
        self.max_reclaims = max_reclaims
        self.node_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.keys: RunKeys | None = None
        self.queue: LeasedQueue | None = None
        self.tracker: LeaseTracker | None = None
        self.created_run = False
        self._heartbeat: task.LoopingCall | None = None
        self._idle_delay = 0.1
        self._wake_call: Any = None
        self.stopping = False
        crawler.toonpick_node = self
        crawler.signals.connect(self.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(self.spider_idle, signal=signals.spider_idle)
        crawler.signals.connect(self.spider_closed, signal=signals.spider_closed)
        connect_item_signals(crawler, lambda: self.tracker)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ClusterNode:
        settings = crawler.settings
        url = settings.get("REDIS_URL")
        if not url:
            raise NotConfigured("REDIS_URL is empty: single-process crawl")
        return cls(
            crawler,
            redis.Redis.from_url(url),
            lease_seconds=settings.getfloat("TOONPICK_CRAWL_LEASE_SECONDS", 60.0),
            idle_seconds=settings.getfloat("TOONPICK_CRAWL_IDLE_SECONDS", 5.0),
            max_reclaims=settings.getint("TOONPICK_CRAWL_MAX_RECLAIMS", 3),
        )

    # --- joining -----------------------------------------------------------------

    def join(self, spider: ClusterSpider) -> RunKeys:
        """Join the spider's run (creating and seeding it if needed); sets spider.run_id."""
        name = spider.name
        if spider.run_id_requested:
            run_id = spider.run_id
            if self.server.exists(RunKeys(name, run_id).meta):
                created = False
            else:
                created, run_id = runs.create_run(
                    self.server, name, spider.start_entries(), run_id, claim_current=False
                )
        else:
            current = runs.current_run(self.server, name)
            meta = RunKeys(name, current).meta if current else None
            if current and self.server.hget(meta, "status") == runs.RUNNING.encode():
                created, run_id = False, current
            else:
                # Start entries are computed only when this node is likely to seed.
                created, run_id = runs.create_run(
                    self.server, name, spider.start_entries(), spider.run_id,
                    claim_current=True,
                )
        spider.run_id = run_id
        self.created_run = created
        self.keys = RunKeys(name, run_id)
        self.queue = LeasedQueue(
            self.server, self.keys.queue, self.lease_seconds, self.max_reclaims
        )
        self.tracker = LeaseTracker(self.queue, self.crawler.stats)
        self._register()
        logger.info(
            "node %s %s crawl run %s/%s", self.node_id,
            "created" if created else "joined", name, run_id,
        )
        return self.keys

    def _register(self) -> None:
        assert self.keys is not None
        runs.register_node(
            self.server, self.keys.spider, self.keys.run_id, self.node_id,
            ttl=self.lease_seconds,
            info={"host": socket.gethostname(), "pid": os.getpid(), "created": self.created_run},
        )

    # --- heartbeat -----------------------------------------------------------------

    def spider_opened(self, spider: Any) -> None:
        interval = min(max(self.lease_seconds / 3, 0.2), 5.0)
        self._heartbeat = task.LoopingCall(self.heartbeat)
        self._heartbeat.start(interval, now=False).addErrback(
            lambda failure: logger.error("node heartbeat stopped: %s", failure.value)
        )

    def heartbeat(self) -> None:
        if self.tracker is None or self.queue is None:
            return
        try:
            if self.stop_requested():
                self._close_stopped()
                return
            self.queue.renew(self.tracker.held_ids())
            self._register()
            self.reclaim()
        except redis.RedisError as exc:
            # Leases are renewed next beat; a long outage lets them expire, which is safe.
            logger.warning("node heartbeat failed: %s", exc)

    def stop_requested(self) -> bool:
        assert self.keys is not None
        return runs.stop_requested(self.server, self.keys.spider, self.keys.run_id)

    def _close_stopped(self) -> None:
        if self.stopping:
            return
        self.stopping = True
        assert self.keys is not None
        logger.info("crawl run %s/%s: stop requested; node %s closes", self.keys.spider,
                    self.keys.run_id, self.node_id)
        # Scrapy's graceful close: requests in flight finish and their items are stored;
        # the rest stays queued in the run for a restart.
        deferred_from_coro(
            self.crawler.engine.close_spider_async(reason=STOPPED)
        ).addErrback(lambda failure: logger.error("closing on stop failed: %s", failure.value))

    def reclaim(self) -> None:
        assert self.queue is not None
        back, dead = self.queue.reclaim_expired()
        stats = self.crawler.stats
        if back:
            stats.inc_value("lease/reclaimed", back)
            logger.info("reclaimed %d expired leases", back)
        if dead:
            stats.inc_value("lease/dead_lettered", dead)
            logger.error("dead-lettered %d requests after %d reclaims", dead, self.max_reclaims)

    def work_found(self) -> None:
        self._idle_delay = 0.1

    # --- idling and the run's end ------------------------------------------------

    def spider_idle(self, spider: Any) -> None:
        if self.keys is None:
            return
        if self.stopping or self.stop_requested():
            self.stopping = True
            raise CloseSpider(STOPPED)
        self.reclaim()
        status = runs.finish_if_done(self.server, self.keys.spider, self.keys.run_id)
        if status == runs.DONE:
            logger.info("crawl run %s/%s is done", self.keys.spider, self.keys.run_id)
            return
        if status != runs.RUNNING:
            logger.error("crawl run %s/%s vanished from Redis", self.keys.spider, self.keys.run_id)
            return
        self._schedule_wake()
        raise DontCloseSpider

    def _schedule_wake(self) -> None:
        # The engine polls an idle scheduler only every 5 s; poke it sooner, backing
        # off to TOONPICK_CRAWL_IDLE_SECONDS while other nodes hold the remaining work.
        if self._wake_call is not None and self._wake_call.active():
            return
        delay = self._idle_delay
        self._idle_delay = min(self._idle_delay * 2, self.idle_seconds)
        from twisted.internet import reactor  # the one Scrapy installed (asyncio)

        self._wake_call = reactor.callLater(delay, self._wake)

    def _wake(self) -> None:
        slot = getattr(self.crawler.engine, "_slot", None)
        if slot is not None and slot.closing is None:
            slot.nextcall.schedule()

    def spider_closed(self, spider: Any, reason: str) -> None:
        if self._heartbeat is not None and self._heartbeat.running:
            self._heartbeat.stop()
        if self._wake_call is not None and self._wake_call.active():
            self._wake_call.cancel()
        if self.keys is None or self.tracker is None:
            return
        try:
            released = self.tracker.release_all()
            if released:
                logger.info("released %d leases on close", released)
            runs.node_left(self.server, self.keys.spider, self.keys.run_id, self.node_id, reason)
        except redis.RedisError as exc:
            logger.warning("could not deregister node: %s", exc)
