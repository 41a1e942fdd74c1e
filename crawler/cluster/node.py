"""This process as one node of a crawl run (Scrapy extension, cluster mode only).

A node *joins* a run when its scheduler opens (creating and seeding it if it is the
first), then *works* while it holds leases, renewing them and its own registration
with a heartbeat, and *idles* when nothing is left for it: an idle node reclaims
expired leases and polls for work, and closes ("finished") only when the run is done
(start queue, request queue, reclaim list and lease set all empty), whichever node
saw it first.

A node also closes ("stopped") when the run's stop flag is raised (``runs.request_stop``):
it checks the flag on every heartbeat and when idle, finishes what it has in flight,
hands its leases back and leaves the run's queues as they are for a restart. It closes
("interrupted", a non-zero exit) when its run vanished from Redis (a restart without
persistence, a flush): the run is marked interrupted, never done.

Stores: while one of the node's store writers keeps failing (every write is retried,
never dropped), the node takes no new work (back-pressure, ``node/paused``). For up to
``TOONPICK_CRAWL_OUTAGE_SECONDS`` it keeps renewing its leases; past that it lets them
expire, so healthy nodes can reclaim the work, and stops reclaiming itself.

Items a store parks until other work lands (an episode whose title is not in the
catalogue yet) keep their lease, renewed. The node records such *waiting* leases in
the run; when the run holds nothing else (no queued work, every lease waiting, a dead
node's expired leases included), nothing can bring what they wait for: their items get
one last try, then are dropped for the store's reason (a data verdict) — or, when the
run has dead letters (the missing title may be among them), dead-lettered with them so
that a replay brings both back.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from typing import TYPE_CHECKING, Any

import redis
from scrapy import signals
from scrapy.exceptions import CloseSpider, DontCloseSpider, NotConfigured
from scrapy.utils.defer import deferred_from_coro
from twisted.internet import task

from crawler.cluster import runs
from crawler.cluster.connection import crawler_redis
from crawler.cluster.leases import LeasedQueue, LeaseTracker, connect_item_signals
from crawler.cluster.runs import RunKeys
from crawler.pipelines.batching import DEAD_LETTERED, DROP

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

    from crawler.cluster.spider import ClusterSpider

logger = logging.getLogger(__name__)

STOPPED = "stopped"
# A dead letter made of a lease whose items waited for work that is itself dead.
WAITING_ON_DEAD = "waiting_on_dead_letters"


class ClusterNode:
    def __init__(
        self,
        crawler: Crawler,
        server: redis.Redis,
        lease_seconds: float,
        idle_seconds: float,
        max_reclaims: int,
        outage_seconds: float,
    ):
        self.crawler = crawler
        self.outage_seconds = outage_seconds
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
        self.close_reason = STOPPED
        self._registered_waiting: set[str] = set()
        self._paused_since: float | None = None
        self._letting_expire = False
        # Set by the scheduler when the node could not join its run: the close reason.
        self.close_at_open: str | None = None
        crawler.toonpick_node = self
        crawler.signals.connect(self.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(self.spider_idle, signal=signals.spider_idle)
        crawler.signals.connect(self.spider_closed, signal=signals.spider_closed)
        connect_item_signals(crawler, lambda: self.tracker)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ClusterNode:
        settings = crawler.settings
        if not settings.get("REDIS_URL"):
            raise NotConfigured("REDIS_URL is empty: single-process crawl")
        return cls(
            crawler,
            crawler_redis(crawler),
            lease_seconds=settings.getfloat("TOONPICK_CRAWL_LEASE_SECONDS"),
            idle_seconds=settings.getfloat("TOONPICK_CRAWL_IDLE_SECONDS"),
            max_reclaims=settings.getint("TOONPICK_CRAWL_MAX_RECLAIMS"),
            outage_seconds=settings.getfloat("TOONPICK_CRAWL_OUTAGE_SECONDS"),
        )

    # --- joining -----------------------------------------------------------------

    def join(self, spider: ClusterSpider) -> RunKeys:
        """Join the spider's run (creating and seeding it if needed); sets spider.run_id."""
        name = spider.name
        if spider.run_id_requested:
            run_id = spider.run_id
            # Created if missing, restarted (re-seeded, clean keys) if Redis lost it.
            opened = runs.open_requested_run(self.server, name, run_id, spider.start_entries)
            created = opened != "joined"
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
        if self.close_at_open is not None:
            raise CloseSpider(self.close_at_open)
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
            if self._run_lost():
                return
            self.tracker.retry_acks()
            outage = self.outage()
            if outage <= self.outage_seconds:
                self.queue.renew(self.tracker.held_ids())
                self._letting_expire = False
            elif not self._letting_expire:
                self._letting_expire = True
                self.crawler.stats.inc_value("node/leases_let_expire")
                logger.error("a store has failed for %.0f s: letting this node's %d leases "
                             "expire so other nodes can take the work (writes still retried)",
                             outage, len(self.tracker))
            self._register()
            if outage == 0.0:
                self.reclaim()
            scheduler = self._scheduler()
            unpushed = scheduler.push_deferred() if scheduler is not None else 0
            if unpushed:
                logger.warning("requests still waiting for Redis: %d", unpushed)
            self.resolve_waiting()
        except redis.RedisError as exc:
            # Leases are renewed next beat; a long outage lets them expire, which is safe.
            logger.warning("node heartbeat failed: %s", exc)

    # --- stores ---------------------------------------------------------------------

    def writers(self) -> list[Any]:
        """The store pipelines of this crawler (they register themselves)."""
        return list(getattr(self.crawler, "toonpick_writers", ()))

    def outage(self) -> float:
        """Seconds the longest-failing store of this node has been failing (0: none)."""
        now = time.monotonic()
        since = [w.failing_since for w in self.writers() if w.failing_since is not None]
        return max((now - t for t in since), default=0.0)

    def paused(self) -> bool:
        """Whether to take no new work (a store is failing); counts pauses."""
        failing = self.outage() > 0.0
        if failing and self._paused_since is None:
            self._paused_since = time.monotonic()
            self.crawler.stats.inc_value("node/paused")
            logger.warning("a store is failing: this node takes no new work until it answers")
        elif not failing and self._paused_since is not None:
            self.crawler.stats.inc_value("node/paused_seconds",
                                         round(time.monotonic() - self._paused_since, 3))
            self._paused_since = None
            logger.info("stores answer again: taking work")
        return failing

    def _scheduler(self) -> Any:
        slot = getattr(self.crawler.engine, "_slot", None)
        return getattr(slot, "scheduler", None)

    # --- waiting leases -----------------------------------------------------------

    def resolve_waiting(self) -> None:
        """Settle leases whose items wait for work the run no longer has (module doc)."""
        assert self.tracker is not None and self.queue is not None
        waiting = self.tracker.waiting_ids()
        gone = sorted(self._registered_waiting - set(waiting))
        if not waiting and not gone:
            return
        quiescent, dead = self.queue.quiescent(waiting, gone)
        self._registered_waiting = set(waiting)
        if not quiescent or not waiting:
            return
        stats = self.crawler.stats
        if dead:
            buried = self.queue.bury(waiting, WAITING_ON_DEAD)
            self.tracker.forget(waiting)
            stats.inc_value("lease/dead_lettered", buried)
            logger.error("dead-lettered %d requests whose items waited for work that was "
                         "dead-lettered (%d dead letters); replay the run's dead letters",
                         buried, dead)
            for writer in self.writers():
                writer.resolve_pending(set(waiting), DEAD_LETTERED)
        else:
            logger.info("the run holds nothing but %d waiting requests: their items get a "
                        "last try, then are dropped", len(waiting))
            for writer in self.writers():
                writer.resolve_pending(set(waiting), DROP)
        self._registered_waiting = set()

    # --- run loss -------------------------------------------------------------------

    def _run_lost(self) -> bool:
        """True (and the node closing) when the run vanished from Redis."""
        assert self.keys is not None
        if runs.run_intact(self.server, self.keys.spider, self.keys.run_id):
            return False
        if not self.stopping:
            self.stopping = True
            self.close_reason = runs.INTERRUPTED
            reason = "the run's keys vanished from Redis (restart without persistence?)"
            runs.mark_interrupted(self.server, self.keys.spider, self.keys.run_id, reason)
            self.crawler.stats.inc_value("node/run_lost")
            logger.error("crawl run %s/%s: %s; marked interrupted, node %s closes",
                         self.keys.spider, self.keys.run_id, reason, self.node_id)
            deferred_from_coro(
                self.crawler.engine.close_spider_async(reason=runs.INTERRUPTED)
            ).addErrback(lambda failure: logger.error("closing failed: %s", failure.value))
        return True

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
        if self.stopping:
            raise CloseSpider(self.close_reason)
        try:
            if self.stop_requested():
                self.stopping = True
                raise CloseSpider(STOPPED)
            if self._run_lost():
                raise CloseSpider(runs.INTERRUPTED)
            if self.outage() == 0.0:
                self.reclaim()
            status = runs.finish_if_done(self.server, self.keys.spider, self.keys.run_id)
        except redis.RedisError as exc:
            logger.warning("idle check failed (%s); retrying", exc)
            self._schedule_wake()
            raise DontCloseSpider from None
        if status == runs.DONE:
            logger.info("crawl run %s/%s is done", self.keys.spider, self.keys.run_id)
            return
        if status != runs.RUNNING:
            # Interrupted by another node, or lost between the check above and this one
            # (a stopped run stays running): close as interrupted, never as "finished".
            try:
                lost = self._run_lost()
            except redis.RedisError:
                lost = False
            if not lost:
                self.stopping = True
                self.close_reason = runs.INTERRUPTED
            raise CloseSpider(self.close_reason)
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
            # Best effort: what Redis refused during a blip goes in before the node leaves
            # (anything left is redone by another node once its lease expires).
            scheduler = self._scheduler()
            if scheduler is not None:
                scheduler.push_deferred()
            self.tracker.retry_acks()
            released = self.tracker.release_all()
            if released:
                logger.info("released %d leases on close", released)
            runs.node_left(self.server, self.keys.spider, self.keys.run_id, self.node_id, reason)
        except redis.RedisError as exc:
            logger.warning("could not deregister node: %s", exc)
