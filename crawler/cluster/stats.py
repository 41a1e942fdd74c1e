"""Crawl stats summed over every node of a run, atomically, in Redis.

Each node keeps its own stats in memory (what Scrapy logs at close) and mirrors every
change to the run's stats hash: increments as HINCRBYFLOAT (sums across nodes), sets
as HSET (last writer wins), max/min as a compare-and-set script. Changes are batched
in one pipeline flushed about once a second and when the spider closes; changes made
before the node has joined its run wait for the first flush after it has.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import TYPE_CHECKING, Any

import redis
from scrapy.statscollectors import StatsCollector
from twisted.internet import task

if TYPE_CHECKING:
    from scrapy import Spider
    from scrapy.crawler import Crawler

logger = logging.getLogger(__name__)

# KEYS: stats hash; ARGV: field, value, 'max' | 'min'
_EXTREMUM = """
local current = tonumber(redis.call('HGET', KEYS[1], ARGV[1]))
local value = tonumber(ARGV[2])
if current == nil or (ARGV[3] == 'max' and value > current)
    or (ARGV[3] == 'min' and value < current) then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
end
return 1
"""

FLUSH_SECONDS = 1.0


def _stored(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, (int, float, str)):
        return str(value)
    return json.dumps(value, default=str, sort_keys=True)


class RunStatsCollector(StatsCollector):
    def __init__(self, crawler: Crawler):
        super().__init__(crawler)
        url = crawler.settings.get("REDIS_URL")
        if not url:
            raise ValueError("RunStatsCollector needs REDIS_URL")
        self._server = redis.Redis.from_url(url)
        self._extremum = self._server.register_script(_EXTREMUM)
        self._key: str | None = None
        self._incs: dict[str, float] = {}
        self._ops: list[tuple[str, str, Any]] = []
        self._loop: task.LoopingCall | None = None

    # --- the StatsCollector surface (``spider`` is accepted and ignored) --------------

    def set_value(self, key: str, value: Any, spider: Spider | None = None) -> None:
        super().set_value(key, value)
        self._op("set", key, value)

    def set_stats(self, stats: dict[str, Any], spider: Spider | None = None) -> None:
        super().set_stats(stats)
        for key, value in stats.items():
            self._op("set", key, value)

    def inc_value(
        self, key: str, count: int = 1, start: int = 0, spider: Spider | None = None
    ) -> None:
        first = key not in self._stats
        super().inc_value(key, count, start)
        self._incs[key] = self._incs.get(key, 0) + count + (start if first else 0)

    def max_value(self, key: str, value: Any, spider: Spider | None = None) -> None:
        super().max_value(key, value)
        self._op("max", key, value)

    def min_value(self, key: str, value: Any, spider: Spider | None = None) -> None:
        super().min_value(key, value)
        self._op("min", key, value)

    def _op(self, op: str, key: str, value: Any) -> None:
        # An increment still buffered for the key must land before this op does.
        if key in self._incs:
            self._ops.append(("inc", key, self._incs.pop(key)))
        self._ops.append((op, key, value))

    # --- lifecycle ----------------------------------------------------------------------

    def open_spider(self, spider: Spider | None = None) -> None:
        node = getattr(self._crawler, "toonpick_node", None)
        if node is not None and node.keys is not None:
            self.bind(node.keys.stats)
        self._loop = task.LoopingCall(self.flush)
        self._loop.start(FLUSH_SECONDS, now=True).addErrback(
            lambda failure: logger.error("stats flushing stopped: %s", failure.value)
        )

    def close_spider(self, spider: Spider | None = None, reason: str | None = None) -> None:
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self.flush()
        super().close_spider(reason=reason)

    def bind(self, run_stats_key: str) -> None:
        """Send changes (including those made so far) to this run's stats hash."""
        self._key = run_stats_key

    def flush(self) -> None:
        """Write buffered changes to the run's stats hash in one pipeline."""
        if self._key is None or not (self._ops or self._incs):
            return
        ops = self._ops + [("inc", key, count) for key, count in self._incs.items()]
        self._ops, self._incs = [], {}
        pipe = self._server.pipeline(transaction=True)
        for op, key, value in ops:
            if op == "inc":
                pipe.hincrbyfloat(self._key, key, value)
            elif op in ("max", "min") and isinstance(value, (int, float)):
                self._extremum(keys=[self._key], args=[key, value, op], client=pipe)
            else:
                pipe.hset(self._key, key, _stored(value))
        try:
            pipe.execute()
        except redis.RedisError as exc:
            # MULTI: nothing was applied, so the batch can be retried whole.
            logger.warning("could not flush run stats (%s); retrying", exc)
            self._ops = ops + self._ops
