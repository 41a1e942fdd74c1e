"""BatchingPipeline's buffering, outcomes, waiting items and retries, without a reactor.

The writer runs synchronously (``run_now``) and time is a twisted ``Clock``; the
store is a list in the test subclass, which is what the base class writes to.
"""

from __future__ import annotations

from twisted.internet.task import Clock

from crawler.pipelines.batching import (
    DROP,
    BatchingPipeline,
    Dropped,
    Pending,
    Stored,
    StoreUnavailable,
    run_now,
)


class Stats:
    def __init__(self):
        self.values: dict[str, int] = {}

    def inc_value(self, key, count=1):
        self.values[key] = self.values.get(key, 0) + count


class ConnectionLost(Exception):
    pass


class ValueRefused(Exception):
    pass


class ListPipeline(BatchingPipeline):
    stats_prefix = "list"
    transient_errors = (ConnectionLost,)
    data_errors = (ValueRefused,)
    retry_backoff_seconds = 0

    def __init__(self, outcome_for=None, failures=0, **kwargs):
        self.clock = Clock()
        kwargs.setdefault("flush_seconds", 0.5)
        kwargs.setdefault("outage_seconds", 60.0)
        super().__init__(clock=self.clock, run_in_writer=run_now, stats=Stats(), **kwargs)
        self.written: list = []
        self.batches: list[list] = []
        self.outcome_for = outcome_for or (lambda item: Stored("item/inserted"))
        self.failures = failures
        self.reconnects = 0
        self.closed = False

    def write_batch(self, items, final=False):
        if self.failures:
            self.failures -= 1
            raise ConnectionLost("server went away")
        self.batches.append(list(items))
        outcomes = [self.outcome_for(item) for item in items]
        self.written += [i for i, o in zip(items, outcomes, strict=True) if isinstance(o, Stored)]
        return outcomes

    def reconnect(self):
        self.reconnects += 1

    def close_store(self):
        self.closed = True


def results(deferreds):
    out = []
    for d in deferreds:
        d.addBoth(out.append)
    return out


def test_items_resolve_only_when_their_batch_is_written():
    pipe = ListPipeline(batch_size=3, flush_seconds=1.0)
    pipe.start()
    got = results([pipe.enqueue(n) for n in (1, 2)])
    assert got == [] and pipe.written == []

    got += results([pipe.enqueue(3)])  # the third item fills the batch

    assert pipe.written == [1, 2, 3]
    assert got == [1, 2, 3]
    assert pipe.stats.values == {"list/item/inserted": 3}


def test_a_partial_batch_is_flushed_after_flush_seconds():
    pipe = ListPipeline(batch_size=100, flush_seconds=0.5)
    pipe.start()
    got = results([pipe.enqueue("a")])
    pipe.clock.advance(0.4)
    assert got == []
    pipe.clock.advance(0.1)
    assert got == ["a"] and pipe.batches == [["a"]]


def test_dropped_items_errback_with_dropitem_and_are_counted():
    pipe = ListPipeline(batch_size=2, outcome_for=lambda i: Dropped("bad") if i == "x" else
                        Stored("item/inserted"))
    pipe.start()
    got = results([pipe.enqueue("x"), pipe.enqueue("y")])
    assert got[1] == "y"
    assert got[0].type.__name__ == "DropItem" and "bad" in str(got[0].value)
    assert pipe.stats.values["list/dropped/bad"] == 1


def test_waiting_items_never_time_out_and_drop_only_when_resolved():
    pipe = ListPipeline(batch_size=10, flush_seconds=1.0,
                        outcome_for=lambda i: Pending("unknown_parent"))
    pipe.start()
    got = results([pipe.enqueue("orphan")])
    pipe.flush()
    pipe.clock.advance(3600)  # an hour of retries: still waiting, not dropped
    assert got == [] and pipe.stats.values["list/waiting"] == 1
    assert pipe.waiting_count() == 1
    # Nothing can bring the parent any more: one last write, then the data verdict.
    pipe.resolve_pending(None, DROP)
    pipe.clock.advance(0)
    assert len(got) == 1 and "unknown_parent" in str(got[0].value)
    assert pipe.stats.values["list/dropped/unknown_parent"] == 1


def test_a_resolution_applies_only_to_writes_made_after_it():
    known = set()
    pipe = ListPipeline(batch_size=10, flush_seconds=1.0,
                        outcome_for=lambda i: Stored("item/inserted") if i in known
                        else Pending("unknown_parent"))
    pipe.start()
    got = results([pipe.enqueue("child")])
    pipe.flush()
    pipe.resolve_pending(None, DROP)
    known.add("child")  # the parent landed just before the last try
    pipe.clock.advance(0)
    assert got == ["child"]


def test_waiting_items_come_back_with_later_batches():
    known = set()
    pipe = ListPipeline(batch_size=10, flush_seconds=1.0,
                        outcome_for=lambda i: Stored("item/inserted") if i in known
                        else Pending("unknown_parent"))
    pipe.start()
    got = results([pipe.enqueue("child")])
    pipe.flush()
    assert got == [] and pipe.stats.values["list/waiting"] == 1
    known.add("child")
    pipe.clock.advance(1.0)  # the retry timer
    assert got == ["child"] and pipe.waiting_count() == 0


def test_close_of_a_single_process_drops_what_is_still_waiting():
    pipe = ListPipeline(batch_size=10,
                        outcome_for=lambda i: Pending("unknown_parent") if i == "orphan"
                        else Stored("item/inserted"))
    pipe.start()
    orphan, ok = results([pipe.enqueue("orphan")]), results([pipe.enqueue("ok")])
    done = results([pipe.stop()])
    assert done == [None] and pipe.closed
    assert ok == ["ok"] and "unknown_parent" in str(orphan[0].value)


def test_transient_errors_are_retried_with_a_reconnect():
    pipe = ListPipeline(batch_size=1, failures=2)
    pipe.start()
    got = results([pipe.enqueue("a")])
    assert got == ["a"] and pipe.reconnects == 2
    assert pipe.stats.values["list/retries"] == 2


def test_a_store_down_for_long_is_retried_until_it_answers_never_dropped():
    pipe = ListPipeline(batch_size=1, failures=200, outage_seconds=0.0)
    pipe.start()
    got = results([pipe.enqueue("a")])
    assert got == ["a"] and pipe.stats.values["list/retries"] == 200
    assert not any("dropped" in k or "failed" in k for k in pipe.stats.values)
    assert pipe.failing_since is None  # healthy again


def test_a_closing_pipeline_gives_up_on_a_dead_store_after_the_bound():
    pipe = ListPipeline(batch_size=2, failures=10**6, outage_seconds=0.0)
    pipe.start()
    got = results([pipe.enqueue("a")])  # buffered: half a batch
    pipe._closing = True  # as stop() sets it; the buffered write now may give up
    pipe.flush()
    assert got[0].check(StoreUnavailable)
    assert pipe.stats.values["list/failed"] == 1
    assert not any("dropped" in k for k in pipe.stats.values)


def test_one_bad_item_does_not_fail_its_batch():
    def outcome(item):
        if item == "poison":
            raise ValueError("a bug in the writer")
        if item == "too-long":
            raise ValueRefused("data too long")
        return Stored("item/inserted")

    pipe = ListPipeline(batch_size=4, outcome_for=outcome)
    pipe.start()
    got = results([pipe.enqueue("a"), pipe.enqueue("poison"), pipe.enqueue("too-long"),
                   pipe.enqueue("b")])
    assert got[0] == "a" and got[3] == "b"
    # A bug is a failure (the item's request is crawled again), not a data drop...
    assert got[1].check(ValueError) and pipe.stats.values["list/failed"] == 1
    # ...while the store refusing the values is a drop with the store's reason.
    assert "rejected:ValueRefused" in str(got[2].value)
    assert pipe.stats.values["list/dropped/rejected:ValueRefused"] == 1


def test_startup_heap_is_frozen_once_per_process():
    import gc

    from crawler.pipelines import batching

    batching.freeze_startup_heap()
    frozen = gc.get_freeze_count()
    assert frozen > 0
    batching.freeze_startup_heap()
    # The second call is a no-op: objects made since stay collectable.
    assert gc.get_freeze_count() == frozen
