import json

from crawler.items import EpisodeItem, WebtoonItem
from crawler.spiders.kakaopage import KakaoPageSpider
from tests.unit.crawler.parsing.payloads import payload, payload_bytes

from .replies import build_spider, dropped, reply, split

BASE = "http://sim.test/kakaopage"


def _sent(request):
    return json.loads(request.body)


def test_all_mode_lists_running_and_finished_titles():
    spider = build_spider(KakaoPageSpider)
    entries = spider.start_entries()
    requests = [spider.request_from_entry(e) for e in entries]
    assert all(r.method == "POST" and r.url == f"{BASE}/graphql" for r in requests)
    assert [_sent(r)["variables"]["param"]["isComplete"] for r in requests] == [False, True]
    assert requests[0].headers["Content-Type"] == b"application/json"
    assert requests[0].headers["Referer"] == b"https://page.kakao.com"
    json.dumps(entries)


def test_list_page_asks_details_and_the_next_page():
    spider = build_spider(KakaoPageSpider)
    first = spider.request_from_entry(spider.start_entries()[0])
    _, requests = split(reply(first, payload_bytes("kakaopage_list.json")))
    details, (next_page,) = requests[:-1], requests[-1:]
    assert [_sent(r)["variables"] for r in details] == [{"seriesId": 50000123},
                                                         {"seriesId": 50000124}]
    assert [r.cb_kwargs for r in details] == [{"series_id": "50000123"},
                                              {"series_id": "50000124"}]
    assert _sent(next_page)["variables"]["param"]["page"] == 2
    assert next_page.cb_kwargs == {"page": 2, "complete": False}
    assert dropped(spider) == {"missing_field:seriesId": 1}


def test_last_list_page_ends_the_listing_and_new_mode_skips_known():
    spider = build_spider(KakaoPageSpider, mode="new")
    spider.known_external_ids = lambda: {"50000123"}
    data = payload("kakaopage_list.json")
    data["data"]["staticLandingGenreSection"]["isEnd"] = True
    first = spider.request_from_entry(spider.start_entries()[1])
    _, requests = split(reply(first, json.dumps(data)))
    assert [r.cb_kwargs for r in requests] == [{"series_id": "50000124"}]


def test_detail_then_episodes_by_cursor():
    spider = build_spider(KakaoPageSpider, title="50000123")
    detail = spider.request_from_entry(spider.start_entries()[0])
    assert _sent(detail)["operationName"] == "contentHomeOverview"
    items, (episodes,) = split(reply(detail, payload_bytes("kakaopage_detail.json")))
    assert isinstance(items[0], WebtoonItem) and items[0].external_id == "50000123"
    assert _sent(episodes)["variables"] == {"seriesId": 50000123, "after": None, "first": 100,
                                            "sortType": "asc", "boughtOnly": False}
    items, (more,) = split(reply(episodes, payload_bytes("kakaopage_episodes.json")))
    assert [i.episode_no for i in items] == [1, 2, 3]
    assert all(isinstance(i, EpisodeItem) for i in items)
    assert _sent(more)["variables"]["after"] == "YXJyYXk6MjQ="
    assert dropped(spider) == {"missing_field:episode_no": 1, "missing_field:productId": 1}


def test_broken_detail_is_counted():
    spider = build_spider(KakaoPageSpider, title="50000123")
    detail = spider.request_from_entry(spider.start_entries()[0])
    assert reply(detail, b"not json") == []
    data = payload("kakaopage_detail.json")
    data["data"]["contentHomeOverview"]["content"]["seriesId"] = {"id": 1}
    assert reply(detail, json.dumps(data)) == []
    data["data"]["contentHomeOverview"]["content"]["seriesId"] = 42
    assert reply(detail, json.dumps(data)) == []
    assert dropped(spider) == {"bad_json": 1, "wrong_type:seriesId": 1, "unknown_shape": 1}


def _products(numbers, has_next):
    edges = [{"node": {"single": {"productId": 900 + n, "title": f"검객 {n}화", "isFree": True}}}
             for n in numbers]
    return json.dumps({"data": {"contentHomeProductList": {
        "edges": edges, "pageInfo": {"hasNextPage": has_next, "endCursor": f"c{numbers[-1]}"}}}})


def test_episodes_mode_reads_newest_first_and_stops_at_the_known_episode():
    spider = build_spider(KakaoPageSpider, mode="episodes")
    spider.titles_due = lambda: {"50000123": 7}
    (entry,) = spider.start_entries()
    detail = spider.request_from_entry(entry)
    assert detail.cb_kwargs == {"series_id": "50000123", "since": 7}
    _, (episodes,) = split(reply(detail, payload_bytes("kakaopage_detail.json")))
    assert _sent(episodes)["variables"]["sortType"] == "desc"
    items, (more,) = split(reply(episodes, _products([12, 11, 10], True)))
    assert [i.episode_no for i in items] == [12, 11, 10]
    assert _sent(more)["variables"]["after"] == "c10" and more.cb_kwargs["since"] == 7
    items, requests = split(reply(more, _products([9, 8, 7, 6], True)))
    assert [i.episode_no for i in items] == [9, 8]
    assert requests == []
