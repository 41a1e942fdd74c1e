import json

import pytest

from crawler.parsing import naver
from crawler.parsing.common import ParseError

from .payloads import payload, payload_bytes

BASE = "http://sim.test:8123"


def test_urls_derive_from_the_base():
    assert naver.weekday_list_url(BASE + "/") == f"{BASE}/api/webtoon/titlelist/weekday?order=user"
    assert naver.daily_plus_url(BASE).endswith("/weekday?week=dailyPlus&order=user")
    assert naver.finished_list_url(BASE, 3) == (
        f"{BASE}/api/webtoon/titlelist/finished?page=3&order=UPDATE"
    )
    assert naver.title_info_url(BASE, 183559) == f"{BASE}/api/article/list/info?titleId=183559"
    assert naver.episode_list_url(BASE, "1", 2, "DESC") == (
        f"{BASE}/api/article/list?titleId=1&page=2&sort=DESC"
    )
    assert naver.viewer_url(BASE, 1, 5) == f"{BASE}/webtoon/detail?titleId=1&no=5"
    assert naver.title_page_url(BASE, 1) == f"{BASE}/webtoon/list?titleId=1"
    with pytest.raises(ValueError):
        naver.episode_list_url(BASE, 1, 1, "UP")
    assert naver.HEADERS["Referer"] == "https://comic.naver.com/webtoon/"


@pytest.mark.parametrize(
    "argument",
    ["758037", "https://comic.naver.com/webtoon/list?titleId=758037",
     "https://comic.naver.com/webtoon/detail?titleId=758037&no=3"],
)
def test_title_argument_forms(argument):
    assert naver.title_id_from_argument(argument) == "758037"


@pytest.mark.parametrize("argument", ["", "abc", "https://comic.naver.com/webtoon/list?titleId=x"])
def test_bad_title_argument_names_the_valid_forms(argument):
    with pytest.raises(ValueError, match="titleId="):
        naver.title_id_from_argument(argument)


def test_weekday_list_merges_two_day_titles_and_reports_bad_entries():
    page = naver.parse_title_list(payload_bytes("naver_weekday.json"))
    by_id = {ref.external_id: ref for ref in page.titles}
    assert list(by_id) == ["183559", "758037", "800100"]
    assert by_id["758037"].days == ["MONDAY", "THURSDAY"]
    assert by_id["800100"].days == ["FRIDAY"]
    assert sorted(reason for reason, _ in page.drops) == ["missing_field:titleId",
                                                          "wrong_type:titleId"]
    assert page.is_last


def test_finished_page_carries_paging():
    page = naver.parse_title_list(payload_bytes("naver_finished_p1.json"))
    assert [ref.external_id for ref in page.titles] == ["20853", "20854"]
    assert (page.page, page.total_pages, page.is_last) == (1, 3, False)


def test_list_of_unknown_shape_raises():
    with pytest.raises(ParseError) as err:
        naver.parse_title_list(b'{"somethingElse": []}')
    assert err.value.reason == "unknown_shape"


def test_title_info_to_webtoon_item():
    card = payload("naver_weekday.json")["titleListMap"]["MONDAY"][1]
    item = naver.parse_title_info(payload_bytes("naver_info.json"), BASE, card=card)
    assert item.platform == "NAVER"
    assert item.external_id == "758037"
    assert item.title == "참교육"
    assert item.authors == [
        {"uid": "NAVER:1", "name": "채용택", "role": "WRITER"},
        {"uid": "NAVER:2", "name": "한가람", "role": "ARTIST"},
        {"uid": "NAVER:3", "name": "원작자", "role": "ORIGINAL"},
        {"uid": "NAVER:4", "name": "둘다", "role": "BOTH"},
    ]
    assert item.status == "ONGOING"
    assert item.age_rating == "AGE_15"
    assert item.days_of_week == ["MONDAY", "THURSDAY"]
    assert item.genres == ["액션", "드라마"]
    assert item.tags == ["사이다"]
    assert item.summary == "무너진 교권을 바로 세운다."
    assert item.link == f"{BASE}/webtoon/list?titleId=758037"
    assert item.thumbnail_url.endswith("/758037/thumbnail/t.jpg")
    assert item.image_urls == [item.thumbnail_url]
    assert item.stats == {"favorite_count": 123456, "star_score": 9.5}
    assert item.raw["titleId"] == 758037
    json.dumps(item.raw)


@pytest.mark.parametrize(
    "change, status, age",
    [
        ({"finished": True}, "COMPLETED", "AGE_15"),
        ({"rest": True}, "HIATUS", "AGE_15"),
        ({"age": {"type": "RATE_18"}}, "ONGOING", "ADULT"),
        ({"age": {"type": "RATE_ALL"}}, "ONGOING", "ALL"),
        ({"age": {"type": "RATE_12"}}, "ONGOING", "AGE_12"),
    ],
)
def test_title_info_status_and_age(change, status, age):
    info = payload("naver_info.json") | change
    item = naver.parse_title_info(info, BASE)
    assert (item.status, item.age_rating) == (status, age)


def test_title_info_minimal_payload_uses_the_card():
    card = payload("naver_weekday.json")["titleListMap"]["FRIDAY"][0]
    item = naver.parse_title_info({"titleId": "800100", "titleName": "문자열 아이디"}, BASE,
                                  card=card, card_days=["FRIDAY"])
    # Only the display string is left: "A / B" is writer then artist.
    assert item.authors == [
        {"uid": "NAVER:name:A", "name": "A", "role": "WRITER"},
        {"uid": "NAVER:name:B", "name": "B", "role": "ARTIST"},
    ]
    assert item.days_of_week == ["FRIDAY"]
    assert item.genres == [] and item.summary == "" and item.thumbnail_url is None
    assert item.image_urls == []


def test_title_info_single_author_from_card_ids():
    card = payload("naver_weekday.json")["titleListMap"]["MONDAY"][0]
    item = naver.parse_title_info({"titleId": 183559, "titleName": "신의 탑"}, BASE, card=card)
    assert item.authors == [{"uid": "NAVER:155779", "name": "SIU", "role": "BOTH"}]


@pytest.mark.parametrize(
    "body, reason",
    [
        (b"<html>oops</html>", "bad_json"),
        (json.dumps({"titleId": 1}).encode(), "missing_field:titleName"),
        (json.dumps({"titleId": {"id": 1}, "titleName": "x"}).encode(), "wrong_type:titleId"),
        (json.dumps({"titleName": "x"}).encode(), "missing_field:titleId"),
    ],
)
def test_title_info_hostile_payloads(body, reason):
    with pytest.raises(ParseError) as err:
        naver.parse_title_info(body, BASE)
    assert err.value.reason == reason


def test_episode_page_keeps_good_entries_and_reports_bad_ones():
    page = naver.parse_episode_page(payload_bytes("naver_episodes_p1.json"), BASE, "758037")
    assert [item.episode_no for item in page.items] == [1, 2, 5, 6]
    first, second, charged, folder = page.items
    assert first.title == "1화" and first.published_at == "2020-07-30"
    assert first.pricing_type == "FREE" and first.season_no == 1 and first.external_id is None
    assert first.url == f"{BASE}/webtoon/detail?titleId=758037&no=1"
    assert first.thumbnail_url.endswith("/758037/1/t.jpg")
    assert first.webtoon_external_id == "758037" and first.platform == "NAVER"
    assert second.episode_no == 2 and second.raw["no"] == "2"
    assert charged.pricing_type == "PAID" and charged.published_at is None
    assert folder.pricing_type == "PAID" and folder.title == "미리보기 6화"
    assert sorted(reason for reason, _ in page.drops) == ["missing_field:subtitle",
                                                          "wrong_type:no"]
    assert (page.page, page.total_pages, page.is_last, page.total_count) == (1, 2, False, 7)


def test_episode_page_of_another_title_or_shape_is_rejected():
    with pytest.raises(ParseError) as other:
        naver.parse_episode_page(payload_bytes("naver_episodes_p1.json"), BASE, "1")
    assert other.value.reason == "unknown_shape"
    with pytest.raises(ParseError) as shape:
        naver.parse_episode_page(b'{"titleId": 1}', BASE, "1")
    assert shape.value.reason == "unknown_shape"
    with pytest.raises(ParseError) as wrong:
        naver.parse_episode_page(b'{"articleList": {"no": 1}}', BASE, "1")
    assert wrong.value.reason == "wrong_type:articleList"
