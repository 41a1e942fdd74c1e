from __future__ import annotations

import logging

import pytest
from scrapy.exceptions import DropItem

from crawler.items import EpisodeItem, WebtoonItem
from crawler.pipelines.validate import ValidationPipeline


class Stats:
    def __init__(self):
        self.values: dict[str, int] = {}

    def inc_value(self, key, count=1):
        self.values[key] = self.values.get(key, 0) + count


@pytest.fixture
def pipe():
    return ValidationPipeline(stats=Stats())


def test_a_valid_webtoon_is_cleaned_and_passes(pipe):
    item = WebtoonItem(
        platform="NAVER", external_id=" 123 ", title="  화산   귀환 ",
        authors=[{"uid": "NAVER:1", "name": " 비가 ", "role": "WRITER"},
                 {"uid": "NAVER:1", "name": "비가", "role": "ARTIST"}],
        days_of_week=["MONDAY", "MONDAY", ""], genres=["무협", " 무협 ", "액션"],
        summary="첫 줄   \r\n\n\n둘째 줄", publish_start_date="2021-03-01T00:00:00+09:00",
    )
    assert pipe.process_item(item) is item
    assert item.external_id == "123" and item.title == "화산 귀환"
    assert item.authors == [{"uid": "NAVER:1", "name": "비가", "role": "BOTH"}]
    assert item.days_of_week == ["MONDAY"] and item.genres == ["무협", "액션"]
    assert item.summary == "첫 줄\n\n둘째 줄"
    assert item.publish_start_date == "2021-03-01"
    assert pipe.stats.values == {"validate/passed/WebtoonItem": 1}


@pytest.mark.parametrize(("change", "reason"), [
    ({"platform": "NETFLIX"}, "bad_platform"),
    ({"external_id": "  "}, "missing_external_id"),
    ({"external_id": 5}, "bad_external_id"),
    ({"title": ""}, "missing_title"),
    ({"status": "ENDED"}, "bad_status"),
    ({"age_rating": "R"}, "bad_age_rating"),
    ({"days_of_week": ["MON"]}, "bad_days_of_week"),
    ({"authors": [{"uid": "x", "name": "y"}]}, "bad_author_role"),
    ({"authors": ["someone"]}, "bad_authors"),
    ({"publish_start_date": "yesterday"}, "bad_publish_start_date"),
    ({"stats": {"views": "many"}}, "bad_stats"),
])
def test_invalid_webtoons_are_dropped_with_a_reason(pipe, change, reason):
    item = WebtoonItem(platform="NAVER", external_id="1", title="t")
    for key, value in change.items():
        setattr(item, key, value)
    with pytest.raises(DropItem, match=reason):
        pipe.process_item(item)
    assert pipe.stats.values == {f"validate/dropped/{reason}": 1}


@pytest.mark.parametrize(("change", "reason"), [
    ({"episode_no": 0}, "bad_episode_no"),
    ({"episode_no": "3"}, "bad_episode_no"),
    ({"episode_no": True}, "bad_episode_no"),
    ({"season_no": 0}, "bad_season_no"),
    ({"pricing_type": "CHEAP"}, "bad_pricing_type"),
    ({"webtoon_external_id": ""}, "missing_webtoon_external_id"),
    ({"published_at": "2024-13-45"}, "bad_published_at"),
])
def test_invalid_episodes_are_dropped_with_a_reason(pipe, change, reason):
    item = EpisodeItem(platform="KAKAO", webtoon_external_id="9", episode_no=1, title="1화")
    for key, value in change.items():
        setattr(item, key, value)
    with pytest.raises(DropItem, match=reason):
        pipe.process_item(item)
    assert pipe.stats.values == {f"validate/dropped/{reason}": 1}


def test_each_reason_is_logged_once(pipe, caplog):
    caplog.set_level(logging.WARNING, logger="crawler.pipelines.validate")
    for _ in range(3):
        with pytest.raises(DropItem):
            pipe.process_item(WebtoonItem(platform="NAVER", external_id="1", title=""))
    with pytest.raises(DropItem):
        pipe.process_item({"not": "an item"})
    assert len(caplog.records) == 2
    assert pipe.stats.values == {"validate/dropped/missing_title": 3,
                                 "validate/dropped/unknown_item_type": 1}
