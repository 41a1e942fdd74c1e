"""Each spider crawls the local simulator single-process (pipelines off): the items
must be exactly the simulator's ground truth, and its malformed payloads counted drops."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from crawler.simulator.catalogue import Catalogue
from crawler.simulator.server import serve

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[4]


def crawl(tmp_path: Path, spider: str, base: str, **arguments: str) -> tuple[list, dict]:
    items_path, stats_path = tmp_path / f"{spider}.jsonl", tmp_path / f"{spider}.stats.json"
    items_path.unlink(missing_ok=True)
    command = [sys.executable, "-m", "tests.integration.crawler.spiders.crawl_once", spider,
               base, str(items_path), str(stats_path)]
    command += [f"{k}={v}" for k, v in arguments.items()]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    lines = items_path.read_text(encoding="utf-8").splitlines() if items_path.exists() else []
    return [json.loads(line) for line in lines], json.loads(stats_path.read_text())


@pytest.fixture(scope="module")
def simulator():
    catalogue = Catalogue(seed=11, titles=150, episodes=45, malformed=2)
    with serve(catalogue) as server:
        yield server


def _by_title(items: list[dict]) -> tuple[dict, dict]:
    webtoons = {i["external_id"]: i for i in items if "webtoon_external_id" not in i}
    episodes: dict[str, list] = {}
    for item in items:
        if "webtoon_external_id" in item:
            episodes.setdefault(item["webtoon_external_id"], []).append(item)
    return webtoons, episodes


@pytest.mark.parametrize("spider, platform", [("naver", "NAVER"), ("kakao", "KAKAO"),
                                              ("kakaopage", "KAKAOPAGE")])
def test_full_crawl_matches_the_simulator(tmp_path, simulator, spider, platform):
    expected = simulator.catalogue.expected()
    truth = expected["platforms"][platform]
    items, stats = crawl(tmp_path, spider, simulator.url, mode="all",
                         today=expected["today"])
    webtoons, episodes = _by_title(items)

    assert sorted(webtoons) == sorted(truth)
    keys = Counter((i["webtoon_external_id"], i["season_no"], i["episode_no"])
                   for i in items if "webtoon_external_id" in i)
    assert max(keys.values()) == 1, "an episode was yielded twice"
    for external_id, want in truth.items():
        got = webtoons[external_id]
        assert got["title"] == want["title"]
        assert sorted(a["name"] for a in got["authors"]) == sorted(want["authors"])
        assert got["status"] == want["status"], external_id
        assert sorted(got["days_of_week"]) == sorted(want["days"]), external_id
        assert got["age_rating"] == want["age_rating"], external_id
        assert got["genres"] == want["genres"], external_id
        assert got["image_urls"] == [got["thumbnail_url"]] and got["thumbnail_url"]
        crawled = sorted(episodes.get(external_id, []),
                         key=lambda e: (e["season_no"], e["episode_no"]))
        assert [[e["season_no"], e["episode_no"]] for e in crawled] == sorted(want["episodes"])
        pricing = dict(zip(map(tuple, want["episodes"]), want["pricing"], strict=True))
        assert [e["pricing_type"] for e in crawled] == [
            pricing[(e["season_no"], e["episode_no"])] for e in crawled]

    bad_titles = expected["malformed"]["titles"][platform]
    bad_episodes = sum(len(v) for v in expected["malformed"]["episodes"][platform].values())
    drops = sum(v for k, v in stats.items() if k.startswith("parse/dropped/"))
    assert drops == len(bad_titles) + bad_episodes
    assert stats.get("log_count/ERROR", 0) == 0


@pytest.mark.parametrize("spider, platform, url", [
    ("naver", "NAVER", "https://comic.naver.com/webtoon/list?titleId={id}"),
    ("kakao", "KAKAO", "https://webtoon.kakao.com/content/slug/{id}"),
    ("kakaopage", "KAKAOPAGE", "https://page.kakao.com/content/{id}"),
])
def test_title_mode_crawls_one_title_whole(tmp_path, simulator, spider, platform, url):
    truth = simulator.catalogue.expected()["platforms"][platform]
    external_id, want = next(iter(sorted(truth.items())))
    items, _ = crawl(tmp_path, spider, simulator.url, title=url.format(id=external_id))
    webtoons, episodes = _by_title(items)
    assert list(webtoons) == [external_id]
    assert list(episodes) in ([external_id], [])
    assert sorted([e["season_no"], e["episode_no"]] for e in episodes.get(external_id, [])) == (
        sorted(want["episodes"]))
