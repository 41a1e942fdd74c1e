"""Crawl stats summed over every node of a run, atomically, in Redis.

Each node keeps its own stats in memory (what Scrapy logs at close) and mirrors every
change to the run's stats hash: increments as HINCRBYFLOAT (sums across nodes), sets
as HSET (last writer wins), max/min as compare-and-set. Changes are batched and
flushed about once a second and when the spider closes, each batch by one script
(atomic); changes made before the node has joined its run wait for the first flush
after it has.

A batch is written only while the run is intact (``crawler.cluster.runs.run_intact``):
after Redis lost the run, a flush would re-create a stats hash for a run that no longer
exists. Such a batch is dropped with a warning: the run is re-crawled from its start
when it is restarted, and its stats start again with it.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import TYPE_CHECKING, Any

import redis
from scrapy.statscollectors import StatsCollector
from twisted.internet import task

from crawler.cluster.connection import crawler_redis

if TYPE_CHECKING:
    from scrapy import Spider
    from scrapy.crawler import Crawler

logger = logging.getLogger(__name__)

# KEYS: stats hash, run meta; ARGV: guard (1|0), creation marker, then (op, field, value)
# triples, op one of inc | set | max | min. Returns 0, writing nothing, when guarded and
# the run is not intact. A non-number meets HSET instead of failing the script halfway,
# so every error Redis answers is the infrastructure's and the batch can be retried.
_APPLY = """
if ARGV[1] == '1' then
  local status = redis.call('HGET', KEYS[2], 'status')
  if (status ~= 'running' and status ~= 'done')
      or redis.call('HEXISTS', KEYS[2], ARGV[2]) == 0 then
    return 0
  end
end
for i = 3, #ARGV, 3 do
  local op, field, value = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local number = tonumber(value)
  local raw = redis.call('HGET', KEYS[1], field)
  local current = tonumber(raw)
  if op == 'set' or number == nil then
    redis.call('HSET', KEYS[1], field, value)
  elseif op == 'inc' then
    if raw and current == nil then
      redis.call('HSET', KEYS[1], field, value)
    else
      redis.call('HINCRBYFLOAT', KEYS[1], field, value)
    end
  elseif current == nil or (op == 'max' and number > current)
      or (op == 'min' and number < current) then
    redis.call('HSET', KEYS[1], field, value)
  end
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
        if not crawler.settings.get("REDIS_URL"):
            raise ValueError("RunStatsCollector needs REDIS_URL")
        self._server = crawler_redis(crawler)
        self._apply = self._server.register_script(_APPLY)
        self._key: str | None = None
        self._meta_key: str | None = None
        self._refused = 0
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
            self.bind(node.keys.stats, node.keys.meta)
        self._loop = task.LoopingCall(self.flush)
        self._loop.start(FLUSH_SECONDS, now=True).addErrback(
            lambda failure: logger.error("stats flushing stopped: %s", failure.value)
        )

    def close_spider(self, spider: Spider | None = None, reason: str | None = None) -> None:
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self.flush()
        super().close_spider(reason=reason)

    def bind(self, run_stats_key: str, run_meta_key: str | None = None) -> None:
        """Send changes (including those made so far) to this run's stats hash; with
        ``run_meta_key``, only while that run is intact."""
        self._key = run_stats_key
        self._meta_key = run_meta_key

    def flush(self) -> bool:
        """Write buffered changes to the run's stats hash in one script; returns False
        if the run is not intact (the batch is dropped) or Redis failed (kept)."""
        from crawler.cluster.runs import CREATION_MARKER

        if self._key is None or not (self._ops or self._incs):
            return True
        ops = self._ops + [("inc", key, count) for key, count in self._incs.items()]
        self._ops, self._incs = [], {}
        args: list[Any] = ["0" if self._meta_key is None else "1", CREATION_MARKER]
        for op, key, value in ops:
            numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
            args += [op if op == "inc" or numeric else "set", key,
                     value if numeric else _stored(value)]
        try:
            applied = self._apply(keys=[self._key, self._meta_key or self._key], args=args)
        except redis.RedisError as exc:
            # One script runs whole or not at all: retry the batch whole (only a reply
            # lost after it ran would count it twice).
            logger.warning("could not flush run stats (%s); retrying", exc)
            self._ops = ops + self._ops
            return False
        if not applied:
            self._refused += len(ops)
            logger.warning("crawl run behind %s is lost or interrupted: %d stats changes not "
                           "written (%d so far)", self._key, len(ops), self._refused)
            return False
        return True
