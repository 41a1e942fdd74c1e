"""Feed a spider's request a saved payload, as the downloader would, and collect what
its callback yields."""

from __future__ import annotations

from typing import Any

import scrapy
from scrapy.http import TextResponse
from scrapy.utils.test import get_crawler

from crawler.items import EpisodeItem, WebtoonItem

SETTINGS = {
    "TOONPICK_NAVER_BASE_URL": "http://sim.test/naver",
    "TOONPICK_KAKAO_BASE_URL": "http://sim.test/kakao",
    "TOONPICK_KAKAOPAGE_BASE_URL": "http://sim.test/kakaopage",
    "TOONPICK_CRAWL_TODAY": "2026-11-02",
    "TOONPICK_TIMEZONE": "Asia/Seoul",
}


def build_spider(
    spider_cls: type[scrapy.Spider], settings: dict[str, Any] | None = None, **arguments: Any
) -> scrapy.Spider:
    crawler = get_crawler(spider_cls, SETTINGS | (settings or {}))
    spider = crawler._create_spider(**arguments)
    crawler.spider = spider
    return spider


def reply(request: scrapy.Request, body: bytes | str) -> list[Any]:
    """Everything the request's callback yields for ``body``."""
    raw = body.encode() if isinstance(body, str) else body
    response = TextResponse(url=request.url, body=raw, encoding="utf-8", request=request)
    return list(request.callback(response, **request.cb_kwargs) or [])


def split(results: list[Any]) -> tuple[list[Any], list[scrapy.Request]]:
    items = [r for r in results if isinstance(r, WebtoonItem | EpisodeItem)]
    requests = [r for r in results if isinstance(r, scrapy.Request)]
    assert len(items) + len(requests) == len(results)
    return items, requests


def dropped(spider: scrapy.Spider) -> dict[str, int]:
    stats = spider.crawler.stats.get_stats()
    return {k.removeprefix("parse/dropped/"): v for k, v in stats.items()
            if k.startswith("parse/dropped/")}
