import json

from twisted.python.failure import Failure

from crawler.items import EpisodeItem, WebtoonItem
from crawler.spiders.kakao import KakaoSpider
from tests.unit.crawler.parsing.payloads import payload, payload_bytes

from .replies import build_spider, dropped, reply, split

BASE = "http://sim.test/kakao"
PLACEMENTS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun", "completed"]


def _timetable(placement, cards):
    return json.dumps({"data": [{"placement": f"timetable_{placement}",
                                 "cardGroups": [{"cards": cards}]}]})


def _card(content_id, title, **extra):
    return {"content": {"id": content_id, "seoId": title, "title": title,
                        "authors": [{"name": "작가", "type": "AUTHOR"}], **extra}}


def _walk_timetables(spider, pages):
    """Answer the timetable chain; return what the last timetable yields."""
    request = spider.request_from_entry(spider.start_entries()[0])
    for index, placement in enumerate(PLACEMENTS):
        assert request.url == (
            f"{BASE}/section/v2/timetables/days?placement=timetable_{placement}"
        )
        assert request.headers["Accept-Language"] == b"ko"
        results = reply(request, pages.get(placement, _timetable(placement, [])))
        if index + 1 < len(PLACEMENTS):
            (request,) = results
    return results


def test_timetables_are_chained_and_a_two_day_title_gets_both_days():
    spider = build_spider(KakaoSpider)
    results = _walk_timetables(spider, {
        "mon": _timetable("mon", [_card(1, "a"), _card(2, "b")]),
        "thu": _timetable("thu", [_card(1, "a")]),
        "completed": _timetable("completed", [_card(3, "c")]),
    })
    items, requests = split(results)
    assert items == []
    assert [r.url for r in requests] == [
        f"{BASE}/decorator/v2/decorator/contents/{i}" for i in (1, 2, 3)
    ]
    first, _, done = requests
    assert first.cb_kwargs["days"] == ["MONDAY", "THURSDAY"]
    assert first.cb_kwargs["card"]["title"] == "a" and first.cb_kwargs["content_id"] == "1"
    assert done.cb_kwargs["completed_listed"] is True and done.cb_kwargs["days"] == []
    assert all(r.meta == {} for r in requests)
    json.dumps([r.cb_kwargs for r in requests])


def test_a_failed_timetable_does_not_end_the_chain():
    spider = build_spider(KakaoSpider)
    request = spider.request_from_entry(spider.start_entries()[0])
    (tuesday,) = reply(request, _timetable("mon", [_card(1, "a")]))
    failure = Failure(ConnectionRefusedError("down"))
    failure.request = tuesday
    (wednesday,) = list(tuesday.errback(failure))
    assert wednesday.url.endswith("timetable_wed")
    assert "1" in wednesday.cb_kwargs["cards"]
    assert dropped(spider) == {"fetch_failed": 1}


def test_broken_timetable_is_counted_and_the_chain_goes_on():
    spider = build_spider(KakaoSpider)
    request = spider.request_from_entry(spider.start_entries()[0])
    (tuesday,) = reply(request, b"{broken")
    assert tuesday.url.endswith("timetable_tue")
    (wednesday,) = reply(tuesday, payload_bytes("kakao_timetable_mon.json"))
    assert sorted(wednesday.cb_kwargs["cards"]) == ["2507", "3001"]
    assert dropped(spider) == {"bad_json": 1, "missing_field:id": 1, "wrong_type:card": 1}


def test_new_mode_skips_known_contents():
    spider = build_spider(KakaoSpider, mode="new")
    spider.known_external_ids = lambda: {"1"}
    _, requests = split(_walk_timetables(spider, {
        "mon": _timetable("mon", [_card(1, "a"), _card(2, "b")])}))
    assert [r.cb_kwargs["content_id"] for r in requests] == ["2"]


def test_title_mode_uses_the_card_when_listed_and_asks_unlisted_ones_bare():
    spider = build_spider(KakaoSpider, title="https://webtoon.kakao.com/content/b/2")
    (listed,) = split(_walk_timetables(spider, {
        "mon": _timetable("mon", [_card(1, "a"), _card(2, "b")])}))[1]
    assert listed.cb_kwargs["content_id"] == "2" and listed.cb_kwargs["card"]["title"] == "b"
    spider = build_spider(KakaoSpider, title="99")
    (bare,) = split(_walk_timetables(spider, {}))[1]
    assert bare.cb_kwargs == {"content_id": "99", "card": None, "days": [],
                              "completed_listed": False}


def _detail_request(spider, since=None):
    group = payload("kakao_timetable_mon.json")["data"][0]["cardGroups"][0]
    cb_kwargs = {"content_id": "2507", "card": group["cards"][0]["content"], "days": ["MONDAY"]}
    if since is not None:
        cb_kwargs["since"] = since
    return spider.follow(f"{BASE}/decorator/v2/decorator/contents/2507", "parse_detail", cb_kwargs)


def test_detail_gives_the_item_then_the_first_episode_page():
    spider = build_spider(KakaoSpider)
    items, (episodes,) = split(reply(_detail_request(spider), payload_bytes("kakao_detail.json")))
    (item,) = items
    assert isinstance(item, WebtoonItem)
    assert item.authors == [{"uid": "KAKAO:name:나래", "name": "나래", "role": "BOTH"}]
    assert item.days_of_week == ["MONDAY"]
    assert episodes.url == (
        f"{BASE}/episode/v2/views/content-home/contents/2507/episodes?sort=-NO&offset=0&limit=100"
    )
    assert episodes.cb_kwargs == {"content_id": "2507", "seo_id": "내일도-출근", "offset": 0}


def _episodes(numbers, total, last, season=1):
    return json.dumps({
        "data": {"episodes": [{"id": 1000 + n, "contentId": 2507, "no": str(n),
                               "seasonNo": season, "title": f"{n}화", "useType": "FREE"}
                              for n in numbers]},
        "meta": {"pagination": {"last": last, "totalCount": total}}})


def test_episode_first_page_fans_out_by_total_count():
    spider = build_spider(KakaoSpider)
    _, (first,) = split(reply(_detail_request(spider), payload_bytes("kakao_detail.json")))
    items, requests = split(reply(first, _episodes(range(250, 150, -1), 250, False)))
    assert len(items) == 100 and all(isinstance(i, EpisodeItem) for i in items)
    assert [r.cb_kwargs["offset"] for r in requests] == [100, 200]
    # The fanned pages do not fan out again.
    items, more = split(reply(requests[1], _episodes(range(50, 0, -1), 250, True)))
    assert len(items) == 50 and more == []


def test_episode_page_drops_are_counted():
    spider = build_spider(KakaoSpider)
    _, (first,) = split(reply(_detail_request(spider), payload_bytes("kakao_detail.json")))
    items, _ = split(reply(first, payload_bytes("kakao_episodes.json")))
    assert [i.episode_no for i in items] == [52, 53, 54]
    assert dropped(spider) == {"wrong_type:no": 1, "missing_field:id": 1}


def test_episodes_mode_stops_at_the_known_episode():
    spider = build_spider(KakaoSpider, mode="episodes")
    spider.titles_due = lambda: {"2507": 140, "77": None}
    results = _walk_timetables(spider, {"mon": payload_bytes("kakao_timetable_mon.json")})
    _, requests = split(results)
    assert [(r.cb_kwargs["content_id"], r.cb_kwargs.get("since")) for r in requests] == [
        ("2507", 140), ("77", None)]
    _, (first,) = split(reply(requests[0], payload_bytes("kakao_detail.json")))
    assert first.cb_kwargs["since"] == 140
    items, (second,) = split(reply(first, _episodes(range(250, 150, -1), 250, False)))
    assert len(items) == 100 and second.cb_kwargs["offset"] == 100
    items, requests = split(reply(second, _episodes(range(150, 50, -1), 250, False)))
    assert sorted(i.episode_no for i in items) == list(range(141, 151))
    assert requests == []


def test_episodes_mode_lists_multi_season_titles_whole():
    spider = build_spider(KakaoSpider)
    first = spider.follow(f"{BASE}/x", "parse_episodes",
                          {"content_id": "2507", "seo_id": "s", "offset": 0, "since": 40})
    items, requests = split(reply(first, _episodes(range(5, 0, -1), 205, False, season=2)))
    assert [i.episode_no for i in items] == [5, 4, 3, 2, 1]
    assert [i.season_no for i in items] == [2] * 5
    # Numbers restart in season 2, so "newer than 40" says nothing: list the rest too.
    assert [r.cb_kwargs["offset"] for r in requests] == [100, 200]
    assert all("since" not in r.cb_kwargs for r in requests)
