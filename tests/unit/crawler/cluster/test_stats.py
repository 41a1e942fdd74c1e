"""Run stats: two nodes' collectors sum into one Redis hash."""

from __future__ import annotations

from datetime import UTC, datetime

import redis
from scrapy.utils.test import get_crawler

from crawler.cluster.runs import RunKeys
from crawler.cluster.stats import RunStatsCollector


def test_two_collectors_sum_their_counts_into_the_run(redis_url):
    key = RunKeys("site", "r1").stats
    nodes = [RunStatsCollector(get_crawler(settings_dict={"REDIS_URL": redis_url}))
             for _ in range(2)]
    nodes[0].inc_value("pages")  # before the node knows its run: kept for the first flush
    for stats in nodes:
        stats.bind(key)
        for _ in range(5):
            stats.inc_value("pages")
        stats.inc_value("bytes", 2.5)
        stats.max_value("max_depth", 3 if stats is nodes[0] else 7)
        stats.min_value("min_depth", 3 if stats is nodes[0] else 7)
        stats.set_value("start_time", datetime(2025, 1, 1, tzinfo=UTC))
        stats.flush()
    nodes[1].inc_value("pages", 10)
    nodes[1].flush()
    server = redis.Redis.from_url(redis_url)
    stored = {k.decode(): v.decode() for k, v in server.hgetall(key).items()}
    assert stored["pages"] == "21" and stored["bytes"] == "5"
    assert stored["max_depth"] == "7" and stored["min_depth"] == "3"
    assert stored["start_time"] == "2025-01-01T00:00:00+00:00"
    # Each node still reports its own numbers locally.
    assert nodes[0].get_value("pages") == 6 and nodes[1].get_value("pages") == 15


def test_set_after_increment_keeps_the_order(redis_url):
    key = RunKeys("site", "r2").stats
    stats = RunStatsCollector(get_crawler(settings_dict={"REDIS_URL": redis_url}))
    stats.bind(key)
    stats.inc_value("x", 4)
    stats.set_value("x", 1)
    stats.inc_value("x", 2)
    stats.flush()
    assert redis.Redis.from_url(redis_url).hget(key, "x") == b"3"
