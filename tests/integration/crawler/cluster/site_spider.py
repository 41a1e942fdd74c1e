"""Test spider for the cluster: crawls TestSite, one item per page, into a Redis list.

Run as ``scrapy runspider tests/integration/crawler/cluster/site_spider.py
-a base_url=... -a start=/page/0`` from the repo root.
"""

from __future__ import annotations

from typing import Any

import redis
from scrapy.http import Response

from crawler.cluster.spider import ClusterSpider, start_entry

ITEMS_KEY_SETTING = "TEST_ITEMS_KEY"


class RedisListPipeline:
    """Stores each item's URL in a Redis list, so a test can count them."""

    def __init__(self, url: str, key: str):
        self.server = redis.Redis.from_url(url)
        self.key = key

    @classmethod
    def from_crawler(cls, crawler: Any) -> RedisListPipeline:
        settings = crawler.settings
        # Its own URL setting: single-process crawls run without REDIS_URL.
        return cls(settings.get("TEST_ITEMS_REDIS_URL"), settings.get(ITEMS_KEY_SETTING))

    def process_item(self, item: dict[str, Any]) -> dict[str, Any]:
        self.server.rpush(self.key, item["url"])
        return item


class SiteSpider(ClusterSpider):
    name = "site"
    custom_settings = {
        "ITEM_PIPELINES": {
            "tests.integration.crawler.cluster.site_spider.RedisListPipeline": 100,
        },
    }

    def __init__(self, *args: Any, base_url: str = "", start: str = "/page/0", **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.base_url = base_url.rstrip("/")
        self.start_paths = [p for p in start.split(",") if p]

    def start_entries(self) -> list[dict[str, Any]]:
        return [start_entry(self.base_url + path, callback="parse") for path in self.start_paths]

    def parse(self, response: Response) -> Any:
        yield {"url": response.url}
        for href in response.css("a::attr(href)").getall():
            yield response.follow(href, callback=self.parse)
