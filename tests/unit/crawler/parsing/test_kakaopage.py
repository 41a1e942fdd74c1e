import json

import pytest

from crawler.parsing import kakaopage
from crawler.parsing.common import ParseError

from .payloads import payload, payload_bytes

BASE = "http://sim.test:8123/kakaopage"


def test_graphql_requests():
    url, body = kakaopage.list_request(BASE, 2, complete=True)
    assert url == f"{BASE}/graphql"
    sent = json.loads(body)
    assert sent["operationName"] == "staticLandingGenreSection"
    assert "staticLandingGenreSection(" in sent["query"]
    assert sent["variables"]["param"] == {"categoryUid": 10, "subcategoryUid": "0",
                                          "sortType": "update", "isComplete": True, "page": 2}
    _, body = kakaopage.detail_request(BASE, "50000123")
    assert json.loads(body)["variables"] == {"seriesId": 50000123}
    _, body = kakaopage.episodes_request(BASE, 50000123, after="abc", sort="desc")
    assert json.loads(body)["variables"] == {"seriesId": 50000123, "after": "abc", "first": 100,
                                             "sortType": "desc", "boughtOnly": False}
    with pytest.raises(ValueError):
        kakaopage.graphql_request(BASE, "somethingElse", {})
    assert kakaopage.HEADERS["Referer"] == "https://page.kakao.com"
    assert kakaopage.HEADERS["Content-Type"] == "application/json"


@pytest.mark.parametrize(
    "argument",
    ["50000123", "https://page.kakao.com/content/50000123",
     "https://page.kakao.com/content/50000123/viewer/5000012300001"],
)
def test_series_argument_forms(argument):
    assert kakaopage.series_id_from_argument(argument) == "50000123"


@pytest.mark.parametrize("argument", ["", "abc", "https://page.kakao.com/menu/10"])
def test_bad_series_argument(argument):
    with pytest.raises(ValueError, match="series id"):
        kakaopage.series_id_from_argument(argument)


def test_list_page():
    page = kakaopage.parse_list_page(payload_bytes("kakaopage_list.json"))
    assert [ref.external_id for ref in page.titles] == ["50000123", "50000124"]
    assert page.titles[0].card["title"] == "달빛 검객"
    assert [reason for reason, _ in page.drops] == ["missing_field:seriesId"]
    assert page.is_last is False and page.page == 1
    data = payload("kakaopage_list.json")
    data["data"]["staticLandingGenreSection"].update(isEnd=True, groups=[])
    assert kakaopage.parse_list_page(data).is_last


@pytest.mark.parametrize(
    "body, reason",
    [(b"{", "bad_json"), (b'{"data": null, "errors": [{"message": "boom"}]}', "unknown_shape"),
     (b'{"data": {"staticLandingGenreSection": null}}', "missing_field:staticLandingGenreSection"),
     (b'{"data": {"staticLandingGenreSection": {"groups": 3}}}', "wrong_type:groups")],
)
def test_list_hostile_payloads(body, reason):
    with pytest.raises(ParseError) as err:
        kakaopage.parse_list_page(body)
    assert err.value.reason == reason


def test_detail_to_webtoon_item():
    item = kakaopage.parse_detail(payload_bytes("kakaopage_detail.json"), BASE)
    assert (item.platform, item.external_id, item.title) == ("KAKAOPAGE", "50000123", "달빛 검객")
    assert item.authors == [
        {"uid": "KAKAOPAGE:name:홍길동", "name": "홍길동", "role": "WRITER"},
        {"uid": "KAKAOPAGE:name:김화백", "name": "김화백", "role": "ARTIST"},
    ]
    assert item.status == "ONGOING" and item.age_rating == "AGE_15"
    assert item.days_of_week == ["MONDAY", "THURSDAY"]
    assert item.genres == ["무협"]
    assert item.summary == "달빛 아래 검을 든 자."
    assert item.link == f"{BASE}/content/50000123"
    assert item.image_urls == [item.thumbnail_url] and item.thumbnail_url
    assert item.publish_start_date == "2025-03-03"
    assert item.stats["view_count"] == 123456 and item.stats["rating_count"] == 321
    assert item.stats["star_score"] == pytest.approx(3050 / 321)
    assert item.raw["content"]["seriesId"] == 50000123


@pytest.mark.parametrize(
    "change, field, expected",
    [({"onIssue": "End", "pubPeriod": None}, "status", "COMPLETED"),
     ({"ageGrade": "Nineteen"}, "age_rating", "ADULT"),
     ({"ageGrade": "All"}, "age_rating", "ALL"),
     ({"ageGrade": "Twelve"}, "age_rating", "AGE_12"),
     ({"authors": "혼자"}, "authors", [{"uid": "KAKAOPAGE:name:혼자", "name": "혼자",
                                       "role": "BOTH"}]),
     ({"pubPeriod": "토"}, "days_of_week", ["SATURDAY"])],
)
def test_detail_normalisation(change, field, expected):
    data = payload("kakaopage_detail.json")
    data["data"]["contentHomeOverview"]["content"].update(change)
    assert getattr(kakaopage.parse_detail(data, BASE), field) == expected


@pytest.mark.parametrize(
    "change, reason",
    [({"title": None}, "missing_field:title"), ({"title": ["a"]}, "wrong_type:title"),
     ({"seriesId": {"id": 1}}, "wrong_type:seriesId")],
)
def test_detail_hostile_content(change, reason):
    data = payload("kakaopage_detail.json")
    data["data"]["contentHomeOverview"]["content"].update(change)
    with pytest.raises(ParseError) as err:
        kakaopage.parse_detail(data, BASE)
    assert err.value.reason == reason


def test_detail_of_unknown_series():
    body = b'{"data": {"contentHomeOverview": null}, "errors": [{"message": "not found"}]}'
    with pytest.raises(ParseError) as err:
        kakaopage.parse_detail(body, BASE)
    assert err.value.reason == "missing_field:contentHomeOverview"


def test_episode_page():
    page = kakaopage.parse_episode_page(payload_bytes("kakaopage_episodes.json"), BASE, "50000123")
    assert [item.episode_no for item in page.items] == [1, 2, 3]
    free, wait, paid = page.items
    assert free.external_id == "5000012300001" and free.pricing_type == "FREE"
    assert free.url == f"{BASE}/content/50000123/viewer/5000012300001"
    assert free.published_at == "2025-03-03" and free.title == "달빛 검객 1화"
    assert wait.pricing_type == "WAIT_FREE" and wait.published_at == "2025-03-06"
    assert paid.pricing_type == "PAID" and paid.published_at == "2025-03-10"
    assert sorted(reason for reason, _ in page.drops) == ["missing_field:episode_no",
                                                          "missing_field:productId"]
    assert page.end_cursor == "YXJyYXk6MjQ=" and page.is_last is False and page.total_count == 12


def test_episode_page_end():
    data = payload("kakaopage_episodes.json")
    data["data"]["contentHomeProductList"]["pageInfo"] = {"hasNextPage": False,
                                                          "endCursor": "x"}
    assert kakaopage.parse_episode_page(data, BASE, "50000123").is_last
