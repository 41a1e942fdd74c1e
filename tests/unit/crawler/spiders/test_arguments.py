from datetime import UTC, datetime

import pytest

from crawler.spiders.kakao import KakaoSpider
from crawler.spiders.kakaopage import KakaoPageSpider
from crawler.spiders.naver import NaverSpider

from .replies import build_spider

SPIDERS = [NaverSpider, KakaoSpider, KakaoPageSpider]


@pytest.mark.parametrize("spider_cls", SPIDERS)
def test_unknown_mode_names_the_valid_modes(spider_cls):
    with pytest.raises(ValueError, match="all, new, episodes, title"):
        build_spider(spider_cls, mode="everything")


@pytest.mark.parametrize("spider_cls", SPIDERS)
def test_title_mode_needs_a_title(spider_cls):
    with pytest.raises(ValueError, match="mode=title needs"):
        build_spider(spider_cls, mode="title")


@pytest.mark.parametrize("spider_cls", SPIDERS)
def test_title_with_another_mode_is_refused(spider_cls):
    with pytest.raises(ValueError, match="only goes with mode=title"):
        build_spider(spider_cls, mode="all", title="123")


@pytest.mark.parametrize("spider_cls", SPIDERS)
def test_malformed_title_is_refused(spider_cls):
    with pytest.raises(ValueError, match="expected a numeric"):
        build_spider(spider_cls, title="not a title")


@pytest.mark.parametrize("spider_cls", SPIDERS)
def test_bad_today_is_refused(spider_cls):
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        build_spider(spider_cls, today="02/11/2026")


def test_defaults_and_today_sources():
    spider = build_spider(NaverSpider)
    assert spider.mode == "all" and spider.title_id is None
    assert spider.today.isoformat() == "2026-11-02"  # from TOONPICK_CRAWL_TODAY
    assert build_spider(NaverSpider, today="2026-01-05").today.isoformat() == "2026-01-05"
    assert build_spider(NaverSpider, mode=" NEW ").mode == "new"


def test_today_defaults_to_the_platform_calendar():
    spider = build_spider(NaverSpider, {"TOONPICK_CRAWL_TODAY": "", "TOONPICK_TIMEZONE": "UTC"})
    before = datetime.now(UTC).date()
    assert before <= spider.today <= datetime.now(UTC).date()


@pytest.mark.parametrize(
    "spider_cls, argument, expected_url",
    [
        (NaverSpider, "https://comic.naver.com/webtoon/list?titleId=758037",
         "http://sim.test/naver/api/article/list/info?titleId=758037"),
        (NaverSpider, "758037", "http://sim.test/naver/api/article/list/info?titleId=758037"),
        (KakaoPageSpider, "https://page.kakao.com/content/50000123",
         "http://sim.test/kakaopage/graphql"),
    ],
)
def test_title_argument_alone_means_title_mode(spider_cls, argument, expected_url):
    spider = build_spider(spider_cls, title=argument)
    assert spider.mode == "title"
    entries = spider.start_entries()
    assert [entry["url"] for entry in entries] == [expected_url]


def test_kakao_title_url():
    spider = build_spider(KakaoSpider, title="https://webtoon.kakao.com/content/내일도-출근/2507")
    assert spider.title_id == "2507"
