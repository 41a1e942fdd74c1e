import json

import pytest

from crawler.parsing import kakao
from crawler.parsing.common import ParseError

from .payloads import payload, payload_bytes

BASE = "http://sim.test:8123/kakao"


def test_urls_and_headers():
    assert kakao.timetable_url(BASE, "mon") == (
        f"{BASE}/section/v2/timetables/days?placement=timetable_mon"
    )
    assert kakao.timetable_url(BASE, "completed").endswith("placement=timetable_completed")
    with pytest.raises(ValueError, match="mon, tue"):
        kakao.timetable_url(BASE, "monday")
    assert kakao.detail_url(BASE, 2507) == f"{BASE}/decorator/v2/decorator/contents/2507"
    assert kakao.episodes_url(BASE, 2507, offset=30, limit=30) == (
        f"{BASE}/episode/v2/views/content-home/contents/2507/episodes?sort=-NO&offset=30&limit=30"
    )
    assert kakao.title_page_url(2507, "내일도-출근") == (
        "https://webtoon.kakao.com/content/%EB%82%B4%EC%9D%BC%EB%8F%84-%EC%B6%9C%EA%B7%BC/2507"
    )
    assert kakao.viewer_url(109133, "abc") == "https://webtoon.kakao.com/viewer/abc/109133"
    assert kakao.HEADERS["Accept-Language"] == "ko"
    assert kakao.HEADERS["Referer"] == "https://webtoon.kakao.com/"


@pytest.mark.parametrize(
    "argument",
    ["2507", "https://webtoon.kakao.com/content/내일도-출근/2507",
     "https://webtoon.kakao.com/content/%EB%82%B4/2507/"],
)
def test_content_argument_forms(argument):
    assert kakao.content_id_from_argument(argument) == "2507"


@pytest.mark.parametrize("argument", ["", "x", "https://webtoon.kakao.com/viewer/a/1"])
def test_bad_content_argument(argument):
    with pytest.raises(ValueError, match="content id"):
        kakao.content_id_from_argument(argument)


def test_timetable_cards_with_day_and_drops():
    page = kakao.parse_timetable(payload_bytes("kakao_timetable_mon.json"), "mon")
    assert [ref.external_id for ref in page.titles] == ["2507", "3001"]
    assert all(ref.days == ["MONDAY"] for ref in page.titles)
    assert page.titles[0].card["sorting"] == {"popularity": 480, "views": 377}
    assert sorted(reason for reason, _ in page.drops) == ["missing_field:id", "wrong_type:card"]


def test_completed_timetable_has_no_day():
    data = payload("kakao_timetable_mon.json")
    data["data"][0]["placement"] = "timetable_completed"
    page = kakao.parse_timetable(data, "completed")
    assert page.titles and all(ref.days == [] for ref in page.titles)


def test_timetable_without_data_raises():
    with pytest.raises(ParseError) as err:
        kakao.parse_timetable(b'{"result": []}')
    assert err.value.reason == "missing_field:data"


def test_detail_with_card_to_webtoon_item():
    card = kakao.parse_timetable(payload("kakao_timetable_mon.json")).titles[0].card
    item = kakao.parse_detail(payload_bytes("kakao_detail.json"), "2507", card=card,
                              days=["MONDAY", "THURSDAY"])
    assert (item.platform, item.external_id, item.title) == ("KAKAO", "2507", "내일도 출근!")
    # Same person as AUTHOR and ILLUSTRATOR is BOTH; the publisher is no author.
    assert item.authors == [{"uid": "KAKAO:name:나래", "name": "나래", "role": "BOTH"}]
    assert item.status == "ONGOING"
    assert item.age_rating == "ALL"
    assert item.days_of_week == ["MONDAY", "THURSDAY"]
    assert item.genres == ["로맨스"]
    assert item.tags == ["로맨스", "오피스"]
    assert item.summary == "매일이 전쟁인 직장 생활"
    assert item.link.startswith("https://webtoon.kakao.com/content/")
    assert item.link.endswith("/2507")
    assert item.thumbnail_url == "https://kr-a.kakaopagecdn.com/P/C/2507/sharing/xyz.png"
    assert item.image_urls == [item.thumbnail_url]
    assert item.publish_start_date == "2021-08-01"
    assert item.stats == {"view_count": 987654, "like_count": 4321, "popularity": 480}
    assert item.raw["detail"]["status"] == "EPISODES_PUBLISHING"
    json.dumps(item.raw)


def test_detail_roles_adult_and_keywords_as_genre():
    card = kakao.parse_timetable(payload("kakao_timetable_mon.json")).titles[1].card
    item = kakao.parse_detail({"data": {"title": "두 번째 작품"}}, "3001", card=card)
    assert item.authors == [
        {"uid": "KAKAO:name:글작가", "name": "글작가", "role": "WRITER"},
        {"uid": "KAKAO:name:그림작가", "name": "그림작가", "role": "ARTIST"},
        {"uid": "KAKAO:name:원작자", "name": "원작자", "role": "ORIGINAL"},
    ]
    assert item.age_rating == "ADULT"
    assert item.genres == ["판타지"]
    assert item.thumbnail_url.endswith("/character/x.webp")


@pytest.mark.parametrize(
    "status, expected",
    [("EPISODES_PUBLISHING", "ONGOING"), ("EPISODES_NOT_PUBLISHING", "HIATUS"),
     ("END_OF_SEASON", "HIATUS"), ("SEASON_COMPLETED", "COMPLETED"), ("COMPLETED", "COMPLETED"),
     ("SOMETHING_NEW", "ONGOING")],
)
def test_detail_status(status, expected):
    item = kakao.parse_detail({"data": {"title": "t", "status": status}}, "1")
    assert item.status == expected


def test_detail_completed_listing_without_status():
    item = kakao.parse_detail({"data": {"title": "t"}}, "1", completed_listed=True)
    assert item.status == "COMPLETED"


@pytest.mark.parametrize(
    "body, reason",
    [(b"not json", "bad_json"), (b'{"data": null}', "missing_field:data"),
     (b'{"data": {"genre": "x"}}', "missing_field:title"),
     (b'{"data": {"title": {"ko": "x"}}}', "wrong_type:title"),
     (b'{"data": []}', "wrong_type:data"),
     (b'{"data": {"id": {"id": 1}, "title": "x"}}', "wrong_type:id"),
     (b'{"data": {"id": 2, "title": "x"}}', "unknown_shape")],
)
def test_detail_hostile_payloads(body, reason):
    with pytest.raises(ParseError) as err:
        kakao.parse_detail(body, "1")
    assert err.value.reason == reason


def test_episode_page():
    page = kakao.parse_episode_page(payload_bytes("kakao_episodes.json"), "2507", "내일도-출근")
    assert [item.episode_no for item in page.items] == [52, 53, 54]
    free, wait, paid = page.items
    assert free.external_id == "109133" and free.season_no == 1
    assert free.pricing_type == "FREE" and free.published_at == "2024-05-01"
    assert free.thumbnail_url == "https://kr-a.kakaopagecdn.com/P/EP/109133/thumb.png"
    assert free.url.startswith("https://webtoon.kakao.com/viewer/") and free.url.endswith("/109133")
    assert wait.pricing_type == "WAIT_FREE" and wait.season_no == 2
    assert paid.pricing_type == "PAID" and paid.published_at is None and paid.thumbnail_url is None
    assert sorted(reason for reason, _ in page.drops) == ["missing_field:id", "wrong_type:no"]
    assert page.is_last is False and page.total_count == 75


def test_episode_page_last_and_foreign_content():
    data = payload("kakao_episodes.json")
    data["meta"]["pagination"]["last"] = True
    assert kakao.parse_episode_page(data, "2507").is_last
    foreign = kakao.parse_episode_page(data, "9999")
    assert foreign.items == [] and {r for r, _ in foreign.drops} >= {"unknown_shape"}
    assert kakao.parse_episode_page({"data": {"episodes": []}}, "1").is_last


def test_episode_page_without_episodes_raises():
    with pytest.raises(ParseError) as err:
        kakao.parse_episode_page(b'{"data": {}}', "1")
    assert err.value.reason == "missing_field:episodes"
