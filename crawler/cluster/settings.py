"""Scrapy setting overrides that make a crawl a cluster node, or a single process.

``crawler/settings.py`` ends with ``globals().update(cluster_settings(REDIS_URL))``.
Both modes get Retry-After handling (in place of Scrapy's RetryMiddleware, at its
priority), robots.txt checks that hold for concurrent first requests (in place of
Scrapy's RobotsTxtMiddleware) and the per-host throttle; cluster mode adds the leased scheduler, the
run's summed stats and the node extension (joining, heartbeat, reclaim, run end).
"""

from __future__ import annotations

from typing import Any

from crawler.cluster.spider import CLUSTER_MODE_SETTING

# Downloader middleware orders: the throttle waits right before the network (after
# robots, retry, redirect, cache); the lease acker's process_exception runs last.
THROTTLE_ORDER = 950
LEASE_DOWNLOADER_ORDER = 1
LEASE_SPIDER_ORDER = 1


def cluster_settings(redis_url: str) -> dict[str, Any]:
    """Setting overrides for a crawl with (``redis_url``) or without ("") Redis."""
    downloader_middlewares: dict[str, int | None] = {
        "scrapy.downloadermiddlewares.retry.RetryMiddleware": None,
        "crawler.cluster.retry.RetryAfterMiddleware": 550,
        "scrapy.downloadermiddlewares.robotstxt.RobotsTxtMiddleware": None,
        "crawler.cluster.robots.SharedRobotsTxtMiddleware": 100,
        "crawler.cluster.throttle.HostThrottleMiddleware": THROTTLE_ORDER,
    }
    common: dict[str, Any] = {
        "DOWNLOADER_MIDDLEWARES": downloader_middlewares,
    }
    if not redis_url:
        return {**common, CLUSTER_MODE_SETTING: False}
    downloader_middlewares["crawler.cluster.leases.LeaseDownloaderMiddleware"] = (
        LEASE_DOWNLOADER_ORDER
    )
    return {
        **common,
        CLUSTER_MODE_SETTING: True,
        "SCHEDULER": "crawler.cluster.scheduler.ClusterScheduler",
        "STATS_CLASS": "crawler.cluster.stats.RunStatsCollector",
        "EXTENSIONS": {"crawler.cluster.node.ClusterNode": 0},
        "SPIDER_MIDDLEWARES": {"crawler.cluster.leases.LeaseSpiderMiddleware": LEASE_SPIDER_ORDER},
    }
