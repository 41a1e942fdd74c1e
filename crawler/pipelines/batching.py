"""The base of the store pipelines: items are written in batches, off the reactor.

An item handed to ``process_item`` is *buffered*, then *in flight* (its batch is
being written in the pipeline's single writer thread), then either *stored*
(its Deferred fires with the item), *pending* (the store cannot take it yet,
e.g. an episode whose title is not in the catalogue: it goes back into the
buffer and is retried on later flushes until ``pending_seconds`` have passed),
or *dropped* (its Deferred errbacks with ``DropItem(reason)``). A buffer is
flushed when ``TOONPICK_CRAWL_BATCH_SIZE`` items wait, ``TOONPICK_CRAWL_FLUSH_SECONDS``
after its first item arrived, and on close.

Scrapy reports an item scraped only when the whole pipeline chain has returned,
so an item is never acknowledged before the batch holding it is durably written.
One writer thread keeps batches in order; a transient store error is retried
with a reconnect, a persistent one fails the batch's items (Scrapy logs each).
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
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
    """Not writable yet; retried on later flushes, dropped with ``reason`` when it times out."""

    reason: str


Outcome = Stored | Dropped | Pending


@dataclass
class _Entry:
    item: Any
    deferred: defer.Deferred
    first_attempt: float | None = None
    last_outcome: Pending | None = field(default=None)


class BatchingPipeline:
    """Subclasses set ``stats_prefix`` and implement ``accepts``, ``write_batch``,
    ``open_store``/``close_store``/``reconnect`` and ``transient_errors``."""

    stats_prefix = "batch"
    transient_errors: tuple[type[BaseException], ...] = ()
    max_retries = 3
    retry_backoff_seconds = 0.5

    def __init__(
        self,
        crawler: Crawler | None = None,
        *,
        batch_size: int = 500,
        flush_seconds: float = 0.5,
        pending_seconds: float = 30.0,
        clock: Any = None,
        run_in_writer: Callable[..., defer.Deferred] | None = None,
        stats: Any = None,
    ):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if flush_seconds <= 0:
            raise ValueError(f"flush_seconds must be > 0, got {flush_seconds}")
        self.crawler = crawler
        self.batch_size = batch_size
        self.flush_seconds = flush_seconds
        self.pending_seconds = pending_seconds
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

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> BatchingPipeline:
        return cls(crawler, **cls.batching_settings(crawler))

    @staticmethod
    def batching_settings(crawler: Crawler) -> dict[str, Any]:
        settings = crawler.settings
        return {
            "batch_size": settings.getint("TOONPICK_CRAWL_BATCH_SIZE", 500),
            "flush_seconds": settings.getfloat("TOONPICK_CRAWL_FLUSH_SECONDS", 0.5),
            "pending_seconds": settings.getfloat("TOONPICK_CRAWL_PENDING_SECONDS", 30.0),
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
        return self._run_in_writer(self.open_store)

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
        now = time.monotonic()
        for entry in entries:
            if entry.first_attempt is None:
                entry.first_attempt = now
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
        now = time.monotonic()
        retry: list[_Entry] = []
        for entry, outcome in zip(entries, outcomes, strict=True):
            if isinstance(outcome, Stored):
                self._inc(outcome.status)
                entry.deferred.callback(entry.item)
            elif isinstance(outcome, Dropped):
                self._drop(entry, outcome.reason)
            elif isinstance(outcome, Pending):
                expired = now - (entry.first_attempt or now) >= self.pending_seconds
                if final or expired or self._closing:
                    self._drop(entry, outcome.reason)
                else:
                    entry.last_outcome = outcome
                    retry.append(entry)
            else:
                self._fail_all(Failure(TypeError(f"unknown outcome {outcome!r}")), [entry])
        if retry:
            self._inc("pending", len(retry))
            self._buffer[:0] = retry
            if self._timer is None:
                self._timer = self._clock.callLater(self.flush_seconds, self._on_timer)

    def _drop(self, entry: _Entry, reason: str) -> None:
        self._inc(f"dropped/{reason}")
        if reason not in self._logged_reasons:
            self._logged_reasons.add(reason)
            logger.warning("%s: dropping %s (%s); further drops for this reason are only "
                           "counted in %s/dropped/%s", type(self).__name__,
                           type(entry.item).__name__, reason, self.stats_prefix, reason)
        entry.deferred.errback(
            Failure(DropItem(f"{self.stats_prefix}: {reason}", log_level="DEBUG")))

    def _fail_all(self, failure: Failure, entries: list[_Entry]) -> None:
        self._inc("failed", len(entries))
        logger.error("%s: a batch of %d items could not be written: %s",
                     type(self).__name__, len(entries), failure.getErrorMessage())
        for entry in entries:
            if not entry.deferred.called:
                entry.deferred.errback(failure)

    def _inc(self, key: str, count: int = 1) -> None:
        if self.stats is not None:
            self.stats.inc_value(f"{self.stats_prefix}/{key}", count)

    def _write_with_retry(self, items: list[Any], final: bool) -> list[Outcome]:
        """Runs in the writer thread."""
        attempt = 0
        while True:
            try:
                return self.write_batch(items, final)
            except self.transient_errors as exc:
                attempt += 1
                if attempt > self.max_retries:
                    raise
                logger.warning("%s: store error (%s), reconnecting (attempt %d of %d)",
                               type(self).__name__, exc, attempt, self.max_retries)
                time.sleep(self.retry_backoff_seconds * attempt)
                try:
                    self.reconnect()
                except self.transient_errors as again:
                    logger.warning("%s: reconnect failed: %s", type(self).__name__, again)
            except Exception:
                if len(items) == 1:
                    raise
                # One bad item must not fail its whole batch: write them one by one.
                logger.exception("%s: batch failed, retrying its %d items one by one",
                                 type(self).__name__, len(items))
                return [self._write_one(item, final) for item in items]

    def _write_one(self, item: Any, final: bool) -> Outcome:
        try:
            return self._write_with_retry([item], final)[0]
        except Exception as exc:
            logger.exception("%s: item could not be written", type(self).__name__)
            return Dropped(f"store_error:{type(exc).__name__}")

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
