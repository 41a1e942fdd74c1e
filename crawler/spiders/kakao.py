"""Kakao Webtoon spider.

Every mode starts with the timetables mon..sun then completed, fetched one after
the other with the cards gathered so far carried in ``cb_kwargs``: the cards are
the only source of the authors and the publish days, and a title listed on two
days must get both. After the last timetable: one detail per wanted content
(``WebtoonItem``), then its episodes (``sort=-NO``, newest first) by offset:
all of them (the first page fans out to the rest) or, in ``episodes`` mode,
pages until one reaches the last known episode.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from scrapy.http import Response
from twisted.python.failure import Failure

from crawler.parsing import kakao
from crawler.spiders.base import PlatformSpider
from shared.domain import CrawlMode, Platform

EPISODES_PER_PAGE = 100


class KakaoSpider(PlatformSpider):
    name = "kakao"
    platform = Platform.KAKAO.value
    base_url_setting = "TOONPICK_KAKAO_BASE_URL"
    headers = kakao.HEADERS
    errbacks = {"parse_timetable": "timetable_failed"}

    def title_id_from_argument(self, value: str) -> str:
        return kakao.content_id_from_argument(value)

    def start_entries(self) -> list[dict[str, Any]]:
        return [self._timetable_entry(0, {})]

    def _timetable_entry(self, index: int, cards: dict[str, Any]) -> dict[str, Any]:
        placement = kakao.PLACEMENTS[index]
        return self.entry(
            kakao.timetable_url(self.base_url, placement),
            "parse_timetable",
            {"index": index, "cards": cards},
        )

    def parse_timetable(self, response: Response, index: int, cards: dict[str, Any]) -> Iterator:
        placement = kakao.PLACEMENTS[index]
        page = self.parsed(response, kakao.parse_timetable, placement)
        if page is not None:
            self.count_drops(page.drops, response.url)
            for ref in page.titles:
                seen = cards.setdefault(ref.external_id, {"card": ref.card, "days": []})
                seen["days"] = [*seen["days"], *(d for d in ref.days if d not in seen["days"])]
                if placement == "completed":
                    seen["completed"] = True
        yield from self._after_timetable(index, cards)

    def timetable_failed(self, failure: Failure) -> Iterator:
        """A timetable that could not be fetched must not cut the chain short."""
        request = failure.request
        self.count_drop("fetch_failed", repr(failure.value), request.url)
        yield from self._after_timetable(request.cb_kwargs["index"], request.cb_kwargs["cards"])

    def _after_timetable(self, index: int, cards: dict[str, Any]) -> Iterator:
        if index + 1 < len(kakao.PLACEMENTS):
            yield self.request_from_entry(self._timetable_entry(index + 1, cards))
            return
        yield from self._details(cards)

    def _details(self, cards: dict[str, Any]) -> Iterator:
        if self.mode is CrawlMode.TITLE:
            targets: dict[str, int | None] = {self.title_id: None}
        elif self.mode is CrawlMode.EPISODES:
            targets = self.titles_due()
        else:
            targets = {cid: None for cid in cards if self.wanted(cid)}
        for content_id, since in targets.items():
            seen = cards.get(content_id, {})
            cb_kwargs: dict[str, Any] = {
                "content_id": content_id,
                "card": seen.get("card"),
                "days": seen.get("days", []),
                "completed_listed": bool(seen.get("completed")),
            }
            if since is not None:
                cb_kwargs["since"] = since
            url = kakao.detail_url(self.base_url, content_id)
            yield self.follow(url, "parse_detail", cb_kwargs)

    def parse_detail(
        self,
        response: Response,
        content_id: str,
        card: dict[str, Any] | None = None,
        days: list[str] | None = None,
        completed_listed: bool = False,
        since: int | None = None,
    ) -> Iterator:
        item = self.parsed(
            response, kakao.parse_detail, content_id, card, days, completed_listed
        )
        if item is None:
            return
        yield item
        seo_id = (item.raw.get("detail") or {}).get("seoId") or (card or {}).get("seoId") or ""
        yield self._episodes_request(content_id, str(seo_id), 0, since)

    def _episodes_request(
        self, content_id: str, seo_id: str, offset: int, since: int | None, fanned: bool = False
    ):
        cb_kwargs: dict[str, Any] = {"content_id": content_id, "seo_id": seo_id, "offset": offset}
        if since is not None:
            cb_kwargs["since"] = since
        if fanned:
            cb_kwargs["fanned"] = True
        return self.follow(
            kakao.episodes_url(self.base_url, content_id, offset, EPISODES_PER_PAGE),
            "parse_episodes",
            cb_kwargs,
        )

    def parse_episodes(
        self,
        response: Response,
        content_id: str,
        seo_id: str,
        offset: int,
        since: int | None = None,
        fanned: bool = False,
    ) -> Iterator:
        page = self.parsed(response, kakao.parse_episode_page, content_id, seo_id)
        if page is None:
            return
        self.count_drops(page.drops, response.url)
        next_offset = offset + EPISODES_PER_PAGE
        # Episode numbers restart in a second season, so "newer than the last known
        # number" only holds for single-season titles; others are listed whole.
        if since is not None and any(item.season_no > 1 for item in page.items):
            since = None
        if since is not None:
            yield from (item for item in page.items if item.episode_no > since)
            reached_known = any(item.episode_no <= since for item in page.items)
            if not reached_known and not page.is_last:
                yield self._episodes_request(content_id, seo_id, next_offset, since)
            return
        yield from page.items
        if page.is_last:
            return
        if offset == 0 and page.total_count is not None:
            for later in range(next_offset, page.total_count, EPISODES_PER_PAGE):
                yield self._episodes_request(content_id, seo_id, later, None, fanned=True)
            if next_offset < page.total_count:
                return
        if not fanned or next_offset >= (page.total_count or 0):
            # No total to fan out by, or more episodes than the total said: walk on.
            yield self._episodes_request(content_id, seo_id, next_offset, None)
