from __future__ import annotations

import json
import logging

import bson
import pytest
from scrapy.exceptions import DropItem

from crawler.items import EpisodeItem, WebtoonItem
from crawler.pipelines.validate import (
    COLUMN_WIDTHS,
    ColumnWidth,
    ValidationPipeline,
    clean_episode,
    clean_webtoon,
    has_lone_surrogate,
    repair_surrogates,
)


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


# --- fields fit their columns ------------------------------------------------------------

KOREAN = "가나다라마바사아자차카타파하"  # 3 bytes each in UTF-8


def korean(chars: int) -> str:
    return (KOREAN * (chars // len(KOREAN) + 1))[:chars]


def test_values_that_fit_exactly_are_kept_whole(pipe):
    item = WebtoonItem(platform="NAVER", external_id="9" * 64, title=korean(255),
                       authors=[{"uid": "NAVER:" + "1" * 185, "name": korean(255),
                                 "role": "WRITER"}],
                       genres=[korean(64)], tags=["t" * 64], summary=korean(1000),
                       link="https://x/" + "a" * 1014)
    pipe.process_item(item)
    assert item.title == korean(255) and item.authors[0]["name"] == korean(255)
    assert item.authors[0]["uid"] == "NAVER:" + "1" * 185
    assert item.genres == [korean(64)] and item.tags == ["t" * 64]
    assert len(item.link) == 1024 and item.summary == korean(1000)
    assert pipe.stats.values == {"validate/passed/WebtoonItem": 1}


def test_long_korean_text_is_cut_at_its_column_in_characters_and_counted(pipe):
    item = WebtoonItem(
        platform="KAKAO", external_id="1", title=korean(256),
        authors=[{"uid": "KAKAO:name:" + korean(300), "name": korean(300), "role": "WRITER"}],
        genres=[korean(65), "판타지"], tags=[korean(64) + "끝", korean(64) + "다른"])
    pipe.process_item(item)
    # VARCHAR(n) in utf8mb4 counts characters: 255 Korean syllables are 765 bytes.
    assert item.title == korean(255)
    assert item.authors[0]["name"] == korean(255)
    assert item.genres == [korean(64), "판타지"]
    # Two tags equal in their first 64 characters are one tag row.
    assert item.tags == [korean(64)]
    assert pipe.stats.values == {
        "validate/passed/WebtoonItem": 1,
        "validate/truncated/title": 1,
        "validate/truncated/author_name": 1,
        "validate/truncated/author_uid": 1,
        "validate/truncated/genres": 1,
        "validate/truncated/tags": 2,
    }


def test_a_cut_never_leaves_trailing_space():
    item = EpisodeItem(platform="NAVER", webtoon_external_id="1", episode_no=1,
                       title="가" * 511 + " 나")
    clean_episode(item)
    assert item.title == "가" * 511


def test_a_long_author_uid_is_shortened_with_a_digest_so_it_cannot_collide(pipe):
    common = korean(250)
    item = WebtoonItem(platform="KAKAO", external_id="1", title="t", authors=[
        {"uid": f"KAKAO:name:{common}앞", "name": common + "앞", "role": "WRITER"},
        {"uid": f"KAKAO:name:{common}뒤", "name": common + "뒤", "role": "ARTIST"},
    ])
    pipe.process_item(item)
    first, second = (a["uid"] for a in item.authors)
    assert len(first) == len(second) == COLUMN_WIDTHS["author_uid"].limit
    assert first != second and first.startswith("KAKAO:name:가나다")
    # The same long uid shortens the same way on every crawl.
    again = WebtoonItem(platform="KAKAO", external_id="1", title="t", authors=[
        {"uid": f"KAKAO:name:{common}앞", "name": common + "앞", "role": "WRITER"}])
    clean_webtoon(again)
    assert again.authors[0]["uid"] == first
    assert pipe.stats.values["validate/truncated/author_uid"] == 2


def test_the_summary_is_cut_by_utf8_bytes_without_splitting_a_character():
    limit = COLUMN_WIDTHS["summary"].limit
    assert COLUMN_WIDTHS["summary"].unit == "bytes"
    # One ASCII byte first, so the limit falls inside a 3-byte syllable.
    item = WebtoonItem(platform="NAVER", external_id="1", title="t",
                       summary="a" + "가" * (limit // 3 + 10))
    fitted = []
    clean_webtoon(item, fitted)
    encoded = item.summary.encode("utf-8")
    assert len(encoded) <= limit and len(encoded) > limit - 3
    assert item.summary == "a" + "가" * ((limit - 1) // 3)
    assert [(f.field, f.action) for f in fitted] == [("summary", "truncated")]


def test_a_summary_within_its_bytes_keeps_its_line_breaks():
    text = "첫 줄\n" + korean(20_000)  # 60 KB: once too long for TEXT, fits MEDIUMTEXT
    item = WebtoonItem(platform="NAVER", external_id="1", title="t", summary=text)
    fitted = []
    clean_webtoon(item, fitted)
    assert item.summary == text and fitted == []


def test_byte_width_counts_four_byte_characters():
    width = ColumnWidth(10, "bytes", "cut", "test")
    assert width.size("😀😀") == 8
    assert width.cut("😀😀😀") == "😀😀"
    assert ColumnWidth(2, "chars", "cut", "test").cut("😀😀😀") == "😀😀"


def test_urls_too_long_for_their_column_are_cleared_not_cut(pipe):
    long_url = "https://example.com/" + "a" * 1100
    title = WebtoonItem(platform="NAVER", external_id="1", title="t", link=long_url,
                        thumbnail_url=long_url, image_urls=[long_url])
    episode = EpisodeItem(platform="NAVER", webtoon_external_id="1", episode_no=1,
                          title="1화", url=long_url, thumbnail_url=long_url)
    pipe.process_item(title)
    pipe.process_item(episode)
    assert title.link == "" and title.thumbnail_url is None
    # The image is still downloaded from where the platform serves it.
    assert title.image_urls == [long_url]
    assert episode.url == "" and episode.thumbnail_url is None
    assert pipe.stats.values == {
        "validate/passed/WebtoonItem": 1, "validate/passed/EpisodeItem": 1,
        "validate/cleared/link": 1, "validate/cleared/thumbnail_url": 1,
        "validate/cleared/episode_url": 1, "validate/cleared/episode_thumbnail_url": 1,
    }


def test_an_episode_subtitle_is_cut_to_512_characters(pipe):
    item = EpisodeItem(platform="KAKAOPAGE", webtoon_external_id="5", episode_no=3,
                       title=korean(2000) + " 3화")
    pipe.process_item(item)
    assert item.title == korean(512)
    assert pipe.stats.values == {"validate/passed/EpisodeItem": 1,
                                 "validate/truncated/episode_title": 1}


@pytest.mark.parametrize(("item", "reason"), [
    (WebtoonItem(platform="NAVER", external_id="1" * 65, title="t"), "too_long_external_id"),
    (EpisodeItem(platform="NAVER", webtoon_external_id="1" * 65, episode_no=1, title="1화"),
     "too_long_webtoon_external_id"),
    (EpisodeItem(platform="NAVER", webtoon_external_id="1", episode_no=1, title="1화",
                 external_id="2" * 65), "too_long_episode_external_id"),
    (EpisodeItem(platform="NAVER", webtoon_external_id="1", episode_no=2**31, title="1화"),
     "bad_episode_no"),
    (EpisodeItem(platform="NAVER", webtoon_external_id="1", episode_no=1, season_no=2**31,
                 title="1화"), "bad_season_no"),
])
def test_ids_too_long_for_their_column_drop_the_item_with_a_reason(pipe, item, reason):
    with pytest.raises(DropItem, match=reason):
        pipe.process_item(item)
    assert pipe.stats.values == {f"validate/dropped/{reason}": 1}


def test_stats_too_large_for_their_column_are_left_out_and_the_title_kept(pipe):
    item = WebtoonItem(platform="NAVER", external_id="1", title="t",
                       stats={f"figure_{i}": i for i in range(5000)})
    pipe.process_item(item)
    assert item.stats == {}
    assert pipe.stats.values == {"validate/passed/WebtoonItem": 1, "validate/cleared/stats": 1}


def test_a_dropped_item_counts_no_truncation(pipe):
    item = WebtoonItem(platform="NAVER", external_id="1", title=korean(300), status="ENDED")
    with pytest.raises(DropItem):
        pipe.process_item(item)
    assert pipe.stats.values == {"validate/dropped/bad_status": 1}


def test_the_first_fit_of_each_field_is_logged_without_the_value(pipe, caplog):
    caplog.set_level(logging.WARNING, logger="crawler.pipelines.validate")
    for i in range(3):
        pipe.process_item(WebtoonItem(platform="NAVER", external_id=str(i), title=korean(300),
                                      summary="s"))
    pipe.process_item(EpisodeItem(platform="NAVER", webtoon_external_id="1", episode_no=1,
                                  title=korean(600)))
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2, messages
    assert "NAVER WebtoonItem 0: title of 300 chars does not fit webtoon.title" in messages[0]
    assert "validate/truncated/title" in messages[0]
    assert "episode 1-1: episode_title of 600 chars" in messages[1]
    assert all(korean(40) not in m for m in messages)
    assert pipe.stats.values["validate/truncated/title"] == 3


def test_every_width_names_its_column_and_a_known_policy():
    for field, width in COLUMN_WIDTHS.items():
        assert width.limit > 0 and width.column, field
        assert width.unit in ("chars", "bytes") and width.overflow in (
            "cut", "clear", "digest", "drop"), field


# --- text every store can encode ----------------------------------------------------------

def test_lone_surrogates_are_repaired_everywhere_in_the_item_and_counted(pipe, caplog):
    caplog.set_level(logging.WARNING, logger="crawler.pipelines.validate")
    # What json.loads makes of a platform that cut an emoji in half ("\ud83d").
    raw = json.loads('{"synopsis": "끝\\ud83d", "list": ["\\udc00"], "\\ud800key": 1}')
    item = WebtoonItem(platform="NAVER", external_id="1", title="제목\ud83d",
                       authors=[{"uid": "NAVER:1", "name": "작가\udfff", "role": "WRITER"}],
                       # Two halves written apart in Python source are two lone ones.
                       summary="요약 \ud83d\ude00", raw=raw)
    pipe.process_item(item)
    assert item.title == "제목\ufffd" and item.authors[0]["name"] == "작가\ufffd"
    assert item.summary == "요약 \ufffd\ufffd"
    assert item.raw == {"synopsis": "끝\ufffd", "list": ["\ufffd"], "\ufffdkey": 1}
    # Every store can take it now.
    bson.encode(item.raw)
    json.dumps(vars(item), ensure_ascii=False).encode("utf-8")
    episode = EpisodeItem(platform="NAVER", webtoon_external_id="1", episode_no=1,
                          title="1화\ud83d", raw={"subtitle": "1화\ud83d"})
    pipe.process_item(episode)
    assert episode.title == "1화\ufffd" and episode.raw == {"subtitle": "1화\ufffd"}
    assert pipe.stats.values == {"validate/passed/WebtoonItem": 1,
                                 "validate/passed/EpisodeItem": 1,
                                 "validate/repaired/lone_surrogate": 2}
    (record,) = caplog.records
    assert "NAVER WebtoonItem 1: 7 lone surrogate(s) replaced by U+FFFD" in record.getMessage()


def test_repair_reaches_tuples_and_keys():
    value = {"a": ("x\udc00", ["y"]), "k\ud800": "z"}
    fixed, count = repair_surrogates(value)
    assert count == 2 and fixed == {"a": ("x\ufffd", ["y"]), "k\ufffd": "z"}
    assert not has_lone_surrogate(fixed) and has_lone_surrogate(["ok", {"b": "\ud800"}])


def test_a_valid_pair_and_clean_text_are_left_alone(pipe):
    raw = json.loads('{"t": "\\ud83d\\ude00"}')
    assert raw == {"t": "😀"}
    item = WebtoonItem(platform="NAVER", external_id="1", title="😀", raw=raw)
    pipe.process_item(item)
    assert item.title == "😀" and item.raw == {"t": "😀"}
    assert pipe.stats.values == {"validate/passed/WebtoonItem": 1}


def test_a_drop_quotes_at_most_a_line_of_the_bad_value(pipe, caplog):
    caplog.set_level(logging.WARNING, logger="crawler.pipelines.validate")
    with pytest.raises(DropItem) as dropped:
        pipe.process_item(WebtoonItem(platform="NAVER", external_id="1", title="t",
                                      status="X" * 500_000))
    (record,) = caplog.records
    assert len(record.getMessage()) < 600 and "bad_status" in record.getMessage()
    assert len(str(dropped.value)) < 400
