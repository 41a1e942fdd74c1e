"""Write a crawl node's final stats to a JSON file (setting ``TOONPICK_STATS_FILE``).

Cluster runs sum their stats in Redis; a single-process crawl has only its
own process, so the launcher, benchmarks and tests read its figures from this
file instead of scraping the log. Off when the setting is empty.
"""

from __future__ import annotations

import json
import os
from datetime import date, datetime
from pathlib import Path
from typing import Any

from scrapy import signals
from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


class StatsFileExport:
    def __init__(self, crawler: Crawler, path: Path):
        self.crawler = crawler
        self.path = path

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> StatsFileExport:
        path = crawler.settings.get("TOONPICK_STATS_FILE")
        if not path:
            raise NotConfigured
        ext = cls(crawler, Path(path))
        crawler.signals.connect(ext.spider_closed, signal=signals.spider_closed)
        return ext

    def spider_closed(self, spider: Any, reason: str) -> None:
        stats = {k: _jsonable(v) for k, v in self.crawler.stats.get_stats().items()}
        stats["finish_reason"] = reason
        stats["run_id"] = getattr(spider, "run_id", None)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(stats, ensure_ascii=False, indent=1, sort_keys=True))
        tmp.replace(self.path)  # readers never see half a file
