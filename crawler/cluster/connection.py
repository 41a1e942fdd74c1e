"""A crawler's one Redis client (cluster mode), as ``scrapy_redis.connection`` gives one.

The run's stats collector, the node extension and the leased scheduler share it: one
connection pool per spider process, built by ``shared.stores.redis.redis_client`` from
``REDIS_URL`` (so with its connect and read timeouts), kept on the crawler as
``crawler.toonpick_redis``. The host throttle keeps a client of its own: it waits on the
reactor thread before every download, so it runs with shorter timeouts
(``crawler.cluster.throttle.REDIS_TIMEOUTS``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.stores.redis import redis_client

if TYPE_CHECKING:
    import redis
    from scrapy.crawler import Crawler

# Scrapy components find each other through attributes of their crawler.
ATTRIBUTE = "toonpick_redis"


def crawler_redis(crawler: Crawler) -> redis.Redis:
    """The crawler's client for ``REDIS_URL``, created on first use; ``ValueError`` when the
    setting is empty (components that are optional raise ``NotConfigured`` before)."""
    client = getattr(crawler, ATTRIBUTE, None)
    if client is None:
        url = crawler.settings.get("REDIS_URL")
        if not url:
            raise ValueError("cluster mode needs REDIS_URL")
        client = redis_client(url)
        setattr(crawler, ATTRIBUTE, client)
    return client
