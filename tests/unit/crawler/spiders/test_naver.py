import json

from crawler.items import EpisodeItem, WebtoonItem
from crawler.spiders.naver import NaverSpider
from tests.unit.crawler.parsing.payloads import payload_bytes

from .replies import build_spider, dropped, reply, split

BASE = "http://sim.test/naver"


def _episodes_payload(numbers, total_pages=3, page=1):
    return json.dumps({
        "titleId": 758037,
        "articleList": [{"no": n, "subtitle": f"{n}화", "serviceDateDescription": "24.01.01"}
                        for n in numbers],
        "pageInfo": {"totalPages": total_pages, "page": page},
    })


def test_all_mode_starts_with_the_three_lists():
    spider = build_spider(NaverSpider, mode="all")
    entries = spider.start_entries()
    assert [e["url"] for e in entries] == [
        f"{BASE}/api/webtoon/titlelist/weekday?order=user",
        f"{BASE}/api/webtoon/titlelist/weekday?week=dailyPlus&order=user",
        f"{BASE}/api/webtoon/titlelist/finished?page=1&order=UPDATE",
    ]
    request = spider.request_from_entry(entries[0])
    assert request.headers["Referer"] == b"https://comic.naver.com/webtoon/"
    assert request.callback == spider.parse_title_list
    json.dumps(entries)


def test_weekday_list_asks_each_title_once_and_counts_drops():
    spider = build_spider(NaverSpider)
    request = spider.request_from_entry(spider.start_entries()[0])
    items, requests = split(reply(request, payload_bytes("naver_weekday.json")))
    assert items == []
    assert [r.url for r in requests] == [
        f"{BASE}/api/article/list/info?titleId={i}" for i in ("183559", "758037", "800100")
    ]
    two_days = requests[1]
    assert two_days.cb_kwargs["card_days"] == ["MONDAY", "THURSDAY"]
    assert two_days.cb_kwargs["card"]["titleName"] == "참교육"
    assert all(r.meta == {} for r in requests)
    assert dropped(spider) == {"missing_field:titleId": 1, "wrong_type:titleId": 1}


def test_new_mode_skips_known_titles():
    spider = build_spider(NaverSpider, mode="new")
    spider.known_external_ids = lambda: {"183559", "800100"}
    request = spider.request_from_entry(spider.start_entries()[0])
    _, requests = split(reply(request, payload_bytes("naver_weekday.json")))
    assert [r.url.rsplit("=", 1)[1] for r in requests] == ["758037"]


def test_finished_first_page_fans_out_the_other_pages():
    spider = build_spider(NaverSpider)
    request = spider.request_from_entry(spider.start_entries()[2])
    _, requests = split(reply(request, payload_bytes("naver_finished_p1.json")))
    urls = [r.url for r in requests]
    assert urls[:2] == [f"{BASE}/api/webtoon/titlelist/finished?page={n}&order=UPDATE"
                        for n in (2, 3)]
    assert urls[2:] == [f"{BASE}/api/article/list/info?titleId={i}" for i in ("20853", "20854")]
    # A later page does not fan out again.
    _, again = split(reply(requests[0], payload_bytes("naver_finished_p1.json")))
    assert all("finished" not in r.url for r in again)


def test_title_info_gives_the_item_then_the_first_episode_page():
    spider = build_spider(NaverSpider, title="758037")
    request = spider.request_from_entry(spider.start_entries()[0])
    items, requests = split(reply(request, payload_bytes("naver_info.json")))
    assert len(items) == 1 and isinstance(items[0], WebtoonItem)
    assert items[0].external_id == "758037" and items[0].days_of_week == ["MONDAY", "THURSDAY"]
    assert [r.url for r in requests] == [f"{BASE}/api/article/list?titleId=758037&page=1&sort=ASC"]
    assert requests[0].cb_kwargs == {"title_id": "758037", "page": 1}


def test_episode_pages_yield_items_fan_out_and_count_drops():
    spider = build_spider(NaverSpider, title="758037")
    info = spider.request_from_entry(spider.start_entries()[0])
    _, (first,) = split(reply(info, payload_bytes("naver_info.json")))
    items, requests = split(reply(first, payload_bytes("naver_episodes_p1.json")))
    assert [i.episode_no for i in items] == [1, 2, 5, 6]
    assert all(isinstance(i, EpisodeItem) for i in items)
    assert [r.url for r in requests] == [f"{BASE}/api/article/list?titleId=758037&page=2&sort=ASC"]
    assert dropped(spider) == {"wrong_type:no": 1, "missing_field:subtitle": 1}


def test_bad_payloads_are_counted_and_the_crawl_goes_on():
    spider = build_spider(NaverSpider, title="1")
    request = spider.request_from_entry(spider.start_entries()[0])
    assert reply(request, b"<html>maintenance</html>") == []
    assert reply(request, b'{"titleId": 1}') == []
    assert reply(request, b'{"titleId": {"x": 1}, "titleName": "t"}') == []
    assert dropped(spider) == {"bad_json": 1, "missing_field:titleName": 1,
                               "wrong_type:titleId": 1}


def test_episodes_mode_fetches_due_titles_newest_first_and_stops_at_the_known_one():
    spider = build_spider(NaverSpider, mode="episodes")
    spider.titles_due = lambda: {"758037": 40, "183559": None}
    entries = spider.start_entries()
    assert [(e["url"], e.get("cb_kwargs")) for e in entries] == [
        (f"{BASE}/api/article/list/info?titleId=183559", None),
        (f"{BASE}/api/article/list/info?titleId=758037", {"since": 40}),
    ]
    info = spider.request_from_entry(entries[1])
    items, (first,) = split(reply(info, payload_bytes("naver_info.json")))
    assert first.url == f"{BASE}/api/article/list?titleId=758037&page=1&sort=DESC"
    # Page 1 is all new: keep it and go on to page 2.
    items, (second,) = split(reply(first, _episodes_payload([45, 44, 43, 42, 41])))
    assert [i.episode_no for i in items] == [41, 42, 43, 44, 45]
    assert second.url.endswith("page=2&sort=DESC") and second.cb_kwargs["since"] == 40
    # Page 2 reaches the last known episode: only the newer ones, and no page 3.
    items, requests = split(reply(second, _episodes_payload([41, 40, 39, 38], page=2)))
    assert [i.episode_no for i in items] == [41]
    assert requests == []


def test_episodes_mode_title_without_known_episodes_is_crawled_whole():
    spider = build_spider(NaverSpider, mode="episodes")
    spider.titles_due = lambda: {"758037": None}
    info = spider.request_from_entry(spider.start_entries()[0])
    _, (first,) = split(reply(info, payload_bytes("naver_info.json")))
    assert first.url.endswith("page=1&sort=ASC")
