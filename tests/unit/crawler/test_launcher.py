import pytest

from crawler.launcher import CrawlRequest, LaunchError, start_nodes


def test_command_carries_mode_run_and_settings():
    request = CrawlRequest("kakao", mode="title", title="https://webtoon.kakao.com/content/a/1",
                           run_id="r1", today="2026-11-30")
    cmd = request.command({"ITEM_PIPELINES": "{}"})
    assert cmd[1:5] == ["-m", "scrapy", "crawl", "kakao"]
    assert "mode=title" in cmd and "run_id=r1" in cmd and "today=2026-11-30" in cmd
    assert "title=https://webtoon.kakao.com/content/a/1" in cmd
    assert cmd[-2:] == ["-s", "ITEM_PIPELINES={}"]


def test_each_request_gets_its_own_run_id():
    assert CrawlRequest("naver").run_id != CrawlRequest("naver").run_id


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"spider": "lezhin"}, "unknown spider 'lezhin'"),
        ({"spider": "naver", "mode": "everything"}, "unknown mode 'everything'"),
        ({"spider": "naver", "mode": "title"}, "needs a title"),
    ],
)
def test_bad_arguments_are_clear_errors(kwargs, message):
    with pytest.raises(LaunchError, match=message):
        CrawlRequest(**kwargs)


def test_several_nodes_need_redis():
    with pytest.raises(LaunchError, match="REDIS_URL"):
        start_nodes(CrawlRequest("naver"), nodes=2, env={"REDIS_URL": ""})
    with pytest.raises(LaunchError, match="at least 1"):
        start_nodes(CrawlRequest("naver"), nodes=0)

