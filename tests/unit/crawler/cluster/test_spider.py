"""ClusterSpider: run ids, start entries, the single-process start path."""

from __future__ import annotations

import asyncio

import pytest
from scrapy.utils.test import get_crawler

from crawler.cluster.spider import ClusterSpider, StartEntryError, start_entry


class PagesSpider(ClusterSpider):
    name = "pages"

    def start_entries(self):
        return [
            start_entry("http://a.example/1", callback="parse_page", cb_kwargs={"n": 1}),
            {"url": "http://a.example/2", "callback": "nope"},
            start_entry("http://a.example/3", method="POST", body="{}", dont_filter=True),
        ]

    def parse_page(self, response, n):
        return None


def collect_start(spider) -> list:
    async def run():
        return [request async for request in spider.start()]

    return asyncio.run(run())


def test_run_id_from_argument_or_new():
    assert PagesSpider(run_id="r1").run_id == "r1"
    assert PagesSpider(run_id="r1").run_id_requested
    spider = PagesSpider()
    assert spider.run_id and not spider.run_id_requested
    assert PagesSpider().run_id != spider.run_id


def test_single_process_start_yields_requests_and_drops_bad_entries():
    crawler = get_crawler(PagesSpider, settings_dict={"TOONPICK_CLUSTER_MODE": False})
    crawler.spider = crawler._create_spider()
    crawler.stats.open_spider()
    requests = collect_start(crawler.spider)
    assert [r.url for r in requests] == ["http://a.example/1", "http://a.example/3"]
    first, third = requests
    assert first.callback == crawler.spider.parse_page and first.cb_kwargs == {"n": 1}
    assert not first.dont_filter
    assert third.method == "POST" and third.body == b"{}" and third.dont_filter
    assert crawler.stats.get_value("start_entries/invalid") == 1


def test_cluster_mode_start_yields_nothing():
    crawler = get_crawler(PagesSpider, settings_dict={"TOONPICK_CLUSTER_MODE": True})
    crawler.spider = crawler._create_spider()
    assert collect_start(crawler.spider) == []


@pytest.mark.parametrize(
    "entry",
    [{"callback": "parse_page"}, {"url": "u", "colour": "red"}, "http://a", {"url": 3}],
)
def test_malformed_entries_are_refused(entry):
    with pytest.raises(StartEntryError):
        PagesSpider().request_from_entry(entry)


def test_start_entry_must_be_json():
    with pytest.raises(StartEntryError):
        start_entry("http://a", cb_kwargs={"when": object()})
