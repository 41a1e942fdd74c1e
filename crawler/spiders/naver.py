"""Naver Webtoon spider.

all/new: weekday list + dailyPlus + finished pages → one title info per title
(``WebtoonItem``) → episode list pages, oldest first, page 1 fanning out to the
rest (``EpisodeItem``). episodes: title info of each due title, then episode
pages newest first until a page reaches the last known episode. title: one
title's info and all its episodes.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from scrapy.http import Response

from crawler.parsing import naver
from crawler.spiders.base import PlatformSpider
from shared.domain import CrawlMode, Platform


class NaverSpider(PlatformSpider):
    name = "naver"
    platform = Platform.NAVER.value
    base_url_setting = "TOONPICK_NAVER_BASE_URL"
    headers = naver.HEADERS

    def title_id_from_argument(self, value: str) -> str:
        return naver.title_id_from_argument(value)

    def start_entries(self) -> list[dict[str, Any]]:
        base = self.base_url
        if self.mode is CrawlMode.TITLE:
            return [self.entry(naver.title_info_url(base, self.title_id), "parse_title_info")]
        if self.mode is CrawlMode.EPISODES:
            return [
                self.entry(
                    naver.title_info_url(base, title_id),
                    "parse_title_info",
                    {"since": last} if last is not None else None,
                )
                for title_id, last in sorted(self.titles_due().items())
            ]
        return [
            self.entry(naver.weekday_list_url(base), "parse_title_list"),
            self.entry(naver.daily_plus_url(base), "parse_title_list"),
            self.entry(naver.finished_list_url(base, 1), "parse_title_list", {"finished_page": 1}),
        ]

    def parse_title_list(self, response: Response, finished_page: int | None = None) -> Iterator:
        page = self.parsed(response, naver.parse_title_list)
        if page is None:
            return
        self.count_drops(page.drops, response.url)
        if finished_page == 1:
            for number in range(2, page.total_pages + 1):
                yield self.follow(
                    naver.finished_list_url(self.base_url, number),
                    "parse_title_list",
                    {"finished_page": number},
                )
        for ref in page.titles:
            if self.wanted(ref.external_id):
                yield self.follow(
                    naver.title_info_url(self.base_url, ref.external_id),
                    "parse_title_info",
                    {"card": ref.card, "card_days": ref.days},
                )

    def parse_title_info(
        self,
        response: Response,
        card: dict[str, Any] | None = None,
        card_days: list[str] | None = None,
        since: int | None = None,
    ) -> Iterator:
        item = self.parsed(response, naver.parse_title_info, self.base_url, card, card_days)
        if item is None:
            return
        yield item
        sort = "ASC" if since is None else "DESC"
        cb_kwargs: dict[str, Any] = {"title_id": item.external_id, "page": 1}
        if since is not None:
            cb_kwargs["since"] = since
        yield self.follow(
            naver.episode_list_url(self.base_url, item.external_id, 1, sort),
            "parse_episodes",
            cb_kwargs,
        )

    def parse_episodes(
        self, response: Response, title_id: str, page: int, since: int | None = None
    ) -> Iterator:
        result = self.parsed(response, naver.parse_episode_page, self.base_url, title_id)
        if result is None:
            return
        self.count_drops(result.drops, response.url)
        if since is None:
            yield from result.items
            if page == 1:
                for number in range(2, result.total_pages + 1):
                    yield self.follow(
                        naver.episode_list_url(self.base_url, title_id, number, "ASC"),
                        "parse_episodes",
                        {"title_id": title_id, "page": number},
                    )
            return
        yield from (item for item in result.items if item.episode_no > since)
        reached_known = any(item.episode_no <= since for item in result.items)
        if not reached_known and page < result.total_pages:
            yield self.follow(
                naver.episode_list_url(self.base_url, title_id, page + 1, "DESC"),
                "parse_episodes",
                {"title_id": title_id, "page": page + 1, "since": since},
            )
