"""Run one spider single-process against a base URL, pipelines off; write the items
(JSON lines) and the final crawl stats (JSON) to the given paths.

``python -m tests.integration.crawler.spiders.crawl_once SPIDER BASE_URL ITEMS STATS [k=v ...]``
(the ``k=v`` pairs are spider arguments). A subprocess, so each crawl gets a fresh reactor.
"""

from __future__ import annotations

import json
import sys

from scrapy.crawler import CrawlerProcess

from crawler.spiders.kakao import KakaoSpider
from crawler.spiders.kakaopage import KakaoPageSpider
from crawler.spiders.naver import NaverSpider

SPIDERS = {"naver": NaverSpider, "kakao": KakaoSpider, "kakaopage": KakaoPageSpider}


def main(argv: list[str]) -> None:
    name, base, items_path, stats_path, *pairs = argv
    arguments = dict(pair.split("=", 1) for pair in pairs)
    process = CrawlerProcess({
        "TOONPICK_NAVER_BASE_URL": base,
        "TOONPICK_KAKAO_BASE_URL": base,
        "TOONPICK_KAKAOPAGE_BASE_URL": base,
        "TOONPICK_TIMEZONE": "Asia/Seoul",
        "ITEM_PIPELINES": {},
        "ROBOTSTXT_OBEY": True,
        "COOKIES_ENABLED": False,
        "TELNETCONSOLE_ENABLED": False,
        "CONCURRENT_REQUESTS": 16,
        "LOG_LEVEL": "WARNING",
        "TWISTED_REACTOR": "twisted.internet.asyncioreactor.AsyncioSelectorReactor",
        "FEEDS": {items_path: {"format": "jsonlines", "encoding": "utf-8"}},
    })
    crawler = process.create_crawler(SPIDERS[name])
    process.crawl(crawler, **arguments)
    process.start()
    with open(stats_path, "w", encoding="utf-8") as out:
        json.dump(crawler.stats.get_stats(), out, default=str)


if __name__ == "__main__":
    main(sys.argv[1:])
