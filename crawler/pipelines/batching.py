"""The base of the store pipelines: items are written in batches, off the reactor.

An item handed to ``process_item`` is *buffered*, then *in flight* (its batch is
being written in the pipeline's single writer thread), then either *stored*
(its Deferred fires with the item), *waiting* (the store cannot take it yet, e.g.
an episode whose title is not in the catalogue: it goes back into the buffer and is
written again with later batches), *dropped* for a reason about the data (its
Deferred errbacks with ``DropItem(reason)``) or *failed* (not stored, and not about
the data: a bug, or a store still down when the node closes; its Deferred errbacks
with the error, Scrapy fires item_error and the item's lease is not acknowledged, so
the request is crawled again). A buffer is flushed when ``TOONPICK_CRAWL_BATCH_SIZE``
items wait, ``TOONPICK_CRAWL_FLUSH_SECONDS`` after its first item arrived, and on
close.

Scrapy reports an item scraped only when the whole pipeline chain has returned,
so an item is never acknowledged before the batch holding it is durably written.

Errors are sorted three ways (each subclass names its driver's exceptions):

- ``transient_errors`` (the store is unreachable, times out, restarts, refuses the
  connection): the batch is retried with a reconnect and capped backoff for as long
  as it takes, never turned into a drop. While a store fails, ``failing_since`` is
  set: the cluster node stops taking new work (back-pressure) and, past
  ``TOONPICK_CRAWL_OUTAGE_SECONDS``, lets its leases expire. Only a node that is
  closing gives up, after that same bound: its items fail and their leases go back.
- ``data_errors`` (the store refuses one item's values): the batch is written item by
  item and the refused item is dropped as ``rejected:<code>``.
- anything else: the batch is written item by item and the item that raises fails.

Waiting items never time out. In cluster mode the node decides when nothing can bring
what they wait for (``resolve_pending``, see ``crawler.cluster.node``); in a single
process the pipeline decides itself once the engine has nothing else in flight.
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from scrapy.crawler import Crawler
from scrapy.exceptions import DropItem
from scrapy.utils.defer import maybe_deferred_to_future
from twisted.internet import defer, threads
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool

logger = logging.getLogger(__name__)

_heap_frozen = False


def freeze_startup_heap() -> None:
    """Hide everything alive at spider open from the cyclic garbage collector, once a process.

    Scrapy, boto3's service models and the drivers leave ~300k long-lived objects; every
    full collection walked them all (2.5 s of a 12 s crawl of 9k items here). ``gc.freeze``
    keeps them alive and out of the collector's walks (Python's documented use of it).
    """
    global _heap_frozen
    if _heap_frozen:
        return
    _heap_frozen = True
    gc.collect()
    gc.freeze()


@dataclass(frozen=True)
class Stored:
    """Written; ``status`` is the stats key under the pipeline's prefix (``webtoon/inserted``)."""

    status: str


@dataclass(frozen=True)
class Dropped:
    reason: str


@dataclass(frozen=True)
class Pending:
    """Not writable yet (waits for other work); dropped with ``reason`` once nothing can
    bring what it waits for."""

    reason: str


@dataclass(frozen=True)
class Failed:
    """Not stored, for a reason that is not about the data (see the module doc)."""

    error: BaseException


Outcome = Stored | Dropped | Pending | Failed

# What becomes of a waiting item nothing can complete any more (``resolve_pending``).
DROP = "drop"  # a data verdict: dropped with the store's reason
DEAD_LETTERED = "dead_lettered"  # its request was dead-lettered: replay brings it back
RELEASED = "released"  # its node closed: the request goes back to the queue


class StoreUnavailable(RuntimeError):
    """The store kept failing past the outage bound while the node was closing: the item
    is not stored and its lease not acked, so its request is crawled again."""


class GivenBack(DropItem):
    """A waiting item handed back unstored with its request (released by a closing node,
    or dead-lettered): a quiet drop for Scrapy's log, but its lease is not acked
    (``ack_lease``, read by ``crawler.cluster.leases``), so the request comes back."""

    ack_lease = False

    def __init__(self, message: str):
        super().__init__(message, log_level="INFO")


@dataclass
class _Entry:
    item: Any
    deferred: defer.Deferred
    attempt: int = 0  # the flush that last wrote it
    waiting: bool = False


class BatchingPipeline:
    """Subclasses set ``stats_prefix`` and implement ``accepts``, ``write_batch``,
    ``open_store``/``close_store``/``reconnect``/``is_open``, ``transient_errors`` and
    ``data_errors``."""

    stats_prefix = "batch"
    transient_errors: tuple[type[BaseException], ...] = ()
    data_errors: tuple[type[BaseException], ...] = ()
    retry_backoff_seconds = 0.5
    max_backoff_seconds = 5.0

    def __init__(
        self,
        crawler: Crawler | None = None,
        *,
        batch_size: int,
        flush_seconds: float,
        outage_seconds: float,
        clock: Any = None,
        run_in_writer: Callable[..., defer.Deferred] | None = None,
        stats: Any = None,
    ):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if flush_seconds <= 0:
            raise ValueError(f"flush_seconds must be > 0, got {flush_seconds}")
        if outage_seconds < 0:
            raise ValueError(f"outage_seconds must be >= 0, got {outage_seconds}")
        self.crawler = crawler
        self.batch_size = batch_size
        self.flush_seconds = flush_seconds
        self.outage_seconds = outage_seconds
        self.stats = stats if stats is not None else (crawler.stats if crawler else None)
        if clock is None:
            from twisted.internet import reactor as clock
        self._clock = clock
        self._pool: ThreadPool | None = None
        # Tests pass a synchronous runner; production uses the dedicated writer thread.
        self._run_in_writer = run_in_writer or self._defer_to_writer
        self._buffer: list[_Entry] = []
        self._timer: Any = None
        self._in_flight: set[defer.Deferred] = set()
        self._closing = False
        self._logged_reasons: set[str] = set()
        # Monotonic time of the first failure of the write now being retried (None: the
        # store answers). Written by the writer thread, read by the node.
        self.failing_since: float | None = None
        self._flushes = 0
        # lease id -> (verdict, flush number): waiting items of these leases get their
        # last try in a flush after that number, then are dropped (or failed).
        self._resolved: dict[str, tuple[str, int]] = {}
        self._resolve_all: tuple[str, int] | None = None
        if crawler is not None:
            # The cluster node reads every store's health from here (back-pressure).
            if not hasattr(crawler, "toonpick_writers"):
                crawler.toonpick_writers = []
            crawler.toonpick_writers.append(self)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> BatchingPipeline:
        return cls(crawler, **cls.batching_settings(crawler))

    @staticmethod
    def batching_settings(crawler: Crawler) -> dict[str, Any]:
        settings = crawler.settings
        return {
            "batch_size": settings.getint("TOONPICK_CRAWL_BATCH_SIZE"),
            "flush_seconds": settings.getfloat("TOONPICK_CRAWL_FLUSH_SECONDS"),
            "outage_seconds": settings.getfloat("TOONPICK_CRAWL_OUTAGE_SECONDS"),
        }

    # --- what a subclass provides -------------------------------------------------
    def accepts(self, item: Any) -> bool:
        return True

    def open_store(self) -> None:
        """Runs in the writer thread when the spider opens."""

    def close_store(self) -> None:
        """Runs in the writer thread after the last batch."""

    def reconnect(self) -> None:
        """Runs in the writer thread after a transient error, before the retry."""

    def is_open(self) -> bool:
        """Whether the store is open (a failed open or reconnect leaves it closed)."""
        return True

    def error_code(self, exc: BaseException) -> str:
        """The store's name for a data error, for the ``rejected:<code>`` reason."""
        return type(exc).__name__

    def write_batch(self, items: Sequence[Any], final: bool = False) -> list[Outcome]:
        """Write ``items``; one outcome per item, in order. ``final`` is the close flush."""
        raise NotImplementedError

    # --- Scrapy hooks -------------------------------------------------------------
    async def open_spider(self) -> None:
        await maybe_deferred_to_future(self.start())
        freeze_startup_heap()

    async def process_item(self, item: Any) -> Any:
        if not self.accepts(item):
            return item
        return await maybe_deferred_to_future(self.enqueue(item))

    async def close_spider(self) -> None:
        await maybe_deferred_to_future(self.stop())

    # --- the machinery ------------------------------------------------------------
    def start(self) -> defer.Deferred:
        if self._run_in_writer == self._defer_to_writer and self._pool is None:
            self._pool = ThreadPool(minthreads=1, maxthreads=1,
                                    name=f"{type(self).__name__}-writer")
            self._pool.start()
        return self._run_in_writer(self._open_at_start)

    def _open_at_start(self) -> None:
        try:
            self.open_store()
        except self.transient_errors as exc:
            # A store down at start is an outage like any other: the first write opens it.
            logger.warning("%s: store not reachable at start (%s); writes will retry",
                           type(self).__name__, exc)

    def enqueue(self, item: Any) -> defer.Deferred:
        """Buffer ``item``; the Deferred fires once its batch is written (or it is dropped)."""
        entry = _Entry(item, defer.Deferred())
        self._buffer.append(entry)
        if len(self._buffer) >= self.batch_size:
            self.flush()
        elif self._timer is None:
            self._timer = self._clock.callLater(self.flush_seconds, self._on_timer)
        return entry.deferred

    def _on_timer(self) -> None:
        self._timer = None
        self._check_local_quiescence()
        self.flush()

    def flush(self, final: bool = False) -> defer.Deferred:
        """Hand the buffer to the writer; the Deferred fires when that batch is settled."""
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        entries, self._buffer = self._buffer[: self.batch_size], self._buffer[self.batch_size:]
        if self._buffer:
            # More than a batch was waiting (pending items came back): keep going.
            self._timer = self._clock.callLater(0, self._on_timer)
        if not entries:
            return defer.succeed(None)
        self._flushes += 1
        for entry in entries:
            entry.attempt = self._flushes
        d = self._run_in_writer(self._write_with_retry, [e.item for e in entries], final)
        d.addCallbacks(self._settle, self._fail_all, callbackArgs=(entries, final),
                       errbackArgs=(entries,))
        self._in_flight.add(d)
        d.addBoth(self._forget, d)
        return d

    def _forget(self, result: Any, d: defer.Deferred) -> Any:
        self._in_flight.discard(d)
        return result

    def _settle(self, outcomes: list[Outcome], entries: list[_Entry], final: bool) -> None:
        if len(outcomes) != len(entries):
            self._fail_all(Failure(RuntimeError(
                f"{type(self).__name__}.write_batch returned {len(outcomes)} outcomes "
                f"for {len(entries)} items")), entries)
            return
        retry: list[_Entry] = []
        for entry, outcome in zip(entries, outcomes, strict=True):
            if isinstance(outcome, Pending):
                verdict = self._verdict(entry, final)
                if verdict is None:
                    if not entry.waiting:
                        entry.waiting = True
                        self._inc("waiting")
                        self._tell_tracker(entry, True)
                    retry.append(entry)
                    continue
                self._unwait(entry)
                if verdict == DROP:
                    self._drop(entry, outcome.reason)
                else:
                    # Not stored and not acked: its request comes back (released with the
                    # closing node's leases, or replayed with the run's dead letters).
                    self._inc(f"waiting_{verdict}")
                    entry.deferred.errback(Failure(GivenBack(
                        f"{self.stats_prefix}: {outcome.reason}; request {verdict}")))
                continue
            self._unwait(entry)
            if isinstance(outcome, Stored):
                self._inc(outcome.status)
                entry.deferred.callback(entry.item)
            elif isinstance(outcome, Dropped):
                self._drop(entry, outcome.reason)
            elif isinstance(outcome, Failed):
                self._fail(entry, outcome.error)
            else:
                self._fail_all(Failure(TypeError(f"unknown outcome {outcome!r}")), [entry])
        if retry:
            self._buffer[:0] = retry
            if self._timer is None:
                self._timer = self._clock.callLater(self.flush_seconds, self._on_timer)

    def _verdict(self, entry: _Entry, final: bool) -> str | None:
        """For a waiting item: None (keep waiting), DROP, DEAD_LETTERED or RELEASED."""
        lease = self._lease_of(entry.item)
        resolved = self._resolved.get(lease) if lease is not None else None
        resolved = resolved or self._resolve_all
        if resolved is not None and entry.attempt > resolved[1]:
            return resolved[0]
        if final or self._closing:
            # A closing cluster node hands the lease back (another node finishes it);
            # a single process is at the crawl's end: nothing else will come.
            return RELEASED if self._clustered() else DROP
        return None

    def resolve_pending(self, lease_ids: set[str] | None, verdict: str) -> None:
        """Nothing can bring what these leases' waiting items wait for (None: any lease):
        after one more write they are dropped (DROP: a data verdict) or, their request
        dead-lettered, given up (DEAD_LETTERED)."""
        if verdict not in (DROP, DEAD_LETTERED):
            raise ValueError(f"unknown verdict {verdict!r}")
        # The first resolution stands: marking again before the last try has settled
        # would put that try off once more.
        mark = (verdict, self._flushes)
        if lease_ids is None:
            self._resolve_all = self._resolve_all or mark
        else:
            for lease_id in lease_ids:
                self._resolved.setdefault(lease_id, mark)
        if self._buffer:
            # The last try comes now, not at the next retry tick.
            if self._timer is not None and self._timer.active():
                self._timer.cancel()
            self._timer = self._clock.callLater(0, self._on_timer)

    def _unwait(self, entry: _Entry) -> None:
        if entry.waiting:
            entry.waiting = False
            self._tell_tracker(entry, False)

    def waiting_count(self) -> int:
        return sum(1 for entry in self._buffer if entry.waiting)

    def _tracker(self) -> Any:
        node = getattr(self.crawler, "toonpick_node", None) if self.crawler else None
        return getattr(node, "tracker", None)

    def _clustered(self) -> bool:
        return self._tracker() is not None

    def _lease_of(self, item: Any) -> str | None:
        tracker = self._tracker()
        return tracker.lease_of_item(item) if tracker is not None else None

    def _tell_tracker(self, entry: _Entry, waiting: bool) -> None:
        tracker = self._tracker()
        if tracker is not None:
            tracker.item_waiting(entry.item, waiting)

    def _check_local_quiescence(self) -> None:
        """Single process: waiting items are hopeless once the engine has nothing else
        in flight (no download, no queued request, no response being parsed, and no
        item in the pipelines but the waiting ones)."""
        if self.crawler is None or self._clustered() or self._resolve_all is not None:
            return
        engine = getattr(self.crawler, "engine", None)
        slot = getattr(engine, "_slot", None)
        scraper_slot = getattr(getattr(engine, "scraper", None), "slot", None)
        if engine is None or slot is None or scraper_slot is None:
            return
        writers = getattr(self.crawler, "toonpick_writers", ())
        # Writers that never park items (the thumbnails) have no waiting_count.
        waiting = sum(w.waiting_count() for w in writers if hasattr(w, "waiting_count"))
        if not waiting:
            return
        # Responses still being parsed are not counted: a response stays active while its
        # items travel the pipelines, so the one holding the waiting items is among them.
        busy = (engine.downloader.active or slot.scheduler.has_pending_requests()
                or scraper_slot.queue or scraper_slot.itemproc_size > waiting)
        if not busy:
            for writer in writers:
                writer.resolve_pending(None, DROP)

    def _drop(self, entry: _Entry, reason: str) -> None:
        self._inc(f"dropped/{reason}")
        if reason not in self._logged_reasons:
            self._logged_reasons.add(reason)
            logger.warning("%s: dropping %s (%s); further drops for this reason are only "
                           "counted in %s/dropped/%s", type(self).__name__,
                           type(entry.item).__name__, reason, self.stats_prefix, reason)
        entry.deferred.errback(
            Failure(DropItem(f"{self.stats_prefix}: {reason}", log_level="DEBUG")))

    def _fail(self, entry: _Entry, error: BaseException) -> None:
        self._inc("failed")
        logger.error("%s: %s not stored: %r", type(self).__name__,
                     type(entry.item).__name__, error)
        entry.deferred.errback(Failure(error))

    def _fail_all(self, failure: Failure, entries: list[_Entry]) -> None:
        self._inc("failed", len(entries))
        logger.error("%s: a batch of %d items could not be written: %s",
                     type(self).__name__, len(entries), failure.getErrorMessage())
        for entry in entries:
            self._unwait(entry)
            if not entry.deferred.called:
                entry.deferred.errback(failure)

    def _inc(self, key: str, count: int = 1) -> None:
        if self.stats is not None:
            self.stats.inc_value(f"{self.stats_prefix}/{key}", count)

    def _write_with_retry(self, items: list[Any], final: bool) -> list[Outcome]:
        """Runs in the writer thread (see the module doc for the three kinds of error)."""
        attempt = 0
        while True:
            try:
                if not self.is_open():
                    self.open_store()
                outcomes = self.write_batch(items, final)
            except self.transient_errors as exc:
                attempt += 1
                self._store_failed(exc, attempt)
                continue
            except Exception as exc:
                if len(items) == 1:
                    raise
                # One bad item must not fail its whole batch: write them one by one.
                logger.warning("%s: batch of %d refused (%r); writing its items one by one",
                               type(self).__name__, len(items), exc)
                return [self._write_one(item, final) for item in items]
            if self.failing_since is not None:
                logger.warning("%s: store answers again after %.1f s", type(self).__name__,
                               time.monotonic() - self.failing_since)
                self.failing_since = None
            return outcomes

    def _store_failed(self, exc: BaseException, attempt: int) -> None:
        """Account for one transient failure, wait, reconnect; raises past the bound
        only while closing."""
        now = time.monotonic()
        if self.failing_since is None:
            self.failing_since = now
        failing = now - self.failing_since
        self._from_writer(self._inc, "retries")
        if self._closing and failing > self.outage_seconds:
            raise StoreUnavailable(
                f"{self.stats_prefix}: store failing for {failing:.0f} s while closing: {exc}"
            ) from exc
        if attempt == 1 or attempt % 10 == 0:
            logger.warning("%s: store error (%s); retrying (attempt %d, failing for %.1f s)",
                           type(self).__name__, exc, attempt, failing)
        time.sleep(min(self.retry_backoff_seconds * 2 ** min(attempt - 1, 10),
                       self.max_backoff_seconds))
        try:
            self.reconnect()
        except self.transient_errors as again:
            # Left closed: the next attempt opens it again.
            logger.debug("%s: reconnect failed: %s", type(self).__name__, again)

    def _write_one(self, item: Any, final: bool) -> Outcome:
        try:
            return self._write_with_retry([item], final)[0]
        except StoreUnavailable:
            raise
        except self.data_errors as exc:
            return Dropped(f"rejected:{self.error_code(exc)}")
        except Exception as exc:
            logger.exception("%s: item could not be written", type(self).__name__)
            return Failed(exc)

    def _from_writer(self, func: Callable[..., Any], *args: Any) -> None:
        """Run ``func`` on the reactor thread (stats are not thread-safe)."""
        if self._pool is None:
            func(*args)
            return
        from twisted.internet import reactor

        reactor.callFromThread(func, *args)

    def stop(self) -> defer.Deferred:
        """Flush everything (pending items get one last try), then close the store."""
        self._closing = True

        @defer.inlineCallbacks
        def drain():
            while self._buffer or self._in_flight:
                if self._buffer:
                    yield self.flush(final=True)
                else:
                    yield defer.DeferredList(list(self._in_flight), consumeErrors=True)
            yield self._run_in_writer(self.close_store)

        d = drain()
        d.addBoth(self._stop_pool)
        return d

    def _stop_pool(self, result: Any) -> Any:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        if self._pool is not None:
            self._pool.stop()
            self._pool = None
        return result

    def _defer_to_writer(self, func: Callable[..., Any], *args: Any) -> defer.Deferred:
        from twisted.internet import reactor

        if self._pool is None:
            raise RuntimeError(f"{type(self).__name__} is not open")
        return threads.deferToThreadPool(reactor, self._pool, func, *args)


def run_now(func: Callable[..., Any], *args: Any) -> defer.Deferred:
    """A writer that runs in the caller's thread: for tests and tools without a reactor."""
    return defer.maybeDeferred(func, *args)
