"""KakaoPage spider (GraphQL POSTs to ``{base}/graphql``).

all/new: landing list pages of running and of finished webtoons until ``isEnd``
→ ``contentHomeOverview`` per series (``WebtoonItem``) → ``contentHomeProductList``
pages by cursor, oldest first. episodes: the overview of each due series, then
episode pages newest first until one reaches the last known episode. title: one
series and all its episodes.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from scrapy.http import Response

from crawler.parsing import kakaopage
from crawler.spiders.base import PlatformSpider
from shared.domain import CrawlMode, Platform


class KakaoPageSpider(PlatformSpider):
    name = "kakaopage"
    platform = Platform.KAKAOPAGE.value
    base_url_setting = "TOONPICK_KAKAOPAGE_BASE_URL"
    headers = kakaopage.HEADERS

    def title_id_from_argument(self, value: str) -> str:
        return kakaopage.series_id_from_argument(value)

    def _post(
        self, request: tuple[str, str], callback: str, cb_kwargs: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        url, body = request
        return self.entry(url, callback, cb_kwargs, method="POST", body=body)

    def _detail_entry(self, series_id: str, since: int | None = None) -> dict[str, Any]:
        cb_kwargs: dict[str, Any] = {"series_id": series_id}
        if since is not None:
            cb_kwargs["since"] = since
        return self._post(
            kakaopage.detail_request(self.base_url, series_id), "parse_detail", cb_kwargs
        )

    def _list_entry(self, page: int, complete: bool) -> dict[str, Any]:
        return self._post(
            kakaopage.list_request(self.base_url, page, complete),
            "parse_list",
            {"page": page, "complete": complete},
        )

    def start_entries(self) -> list[dict[str, Any]]:
        if self.mode is CrawlMode.TITLE:
            return [self._detail_entry(self.title_id)]
        if self.mode is CrawlMode.EPISODES:
            return [
                self._detail_entry(series_id, last)
                for series_id, last in sorted(self.titles_due().items())
            ]
        return [self._list_entry(1, complete=False), self._list_entry(1, complete=True)]

    def parse_list(self, response: Response, page: int, complete: bool) -> Iterator:
        result = self.parsed(response, kakaopage.parse_list_page)
        if result is None:
            return
        self.count_drops(result.drops, response.url)
        for ref in result.titles:
            if self.wanted(ref.external_id):
                yield self.request_from_entry(self._detail_entry(ref.external_id))
        if not result.is_last:
            yield self.request_from_entry(self._list_entry(page + 1, complete))

    def parse_detail(
        self, response: Response, series_id: str, since: int | None = None
    ) -> Iterator:
        item = self.parsed(response, kakaopage.parse_detail, self.base_url)
        if item is None:
            return
        if item.external_id != series_id:
            self.count_drop("unknown_shape", f"asked {series_id}, got {item.external_id}",
                            response.url)
            return
        yield item
        yield self._episodes_request(series_id, None, since)

    def _episodes_request(self, series_id: str, after: str | None, since: int | None):
        cb_kwargs: dict[str, Any] = {"series_id": series_id}
        if since is not None:
            cb_kwargs["since"] = since
        request = kakaopage.episodes_request(
            self.base_url, series_id, after=after, sort="asc" if since is None else "desc"
        )
        return self.request_from_entry(self._post(request, "parse_episodes", cb_kwargs))

    def parse_episodes(
        self, response: Response, series_id: str, since: int | None = None
    ) -> Iterator:
        page = self.parsed(response, kakaopage.parse_episode_page, self.base_url, series_id)
        if page is None:
            return
        self.count_drops(page.drops, response.url)
        if since is None:
            yield from page.items
        else:
            yield from (item for item in page.items if item.episode_no > since)
            if any(item.episode_no <= since for item in page.items):
                return
        if not page.is_last:
            yield self._episodes_request(series_id, page.end_cursor, since)
