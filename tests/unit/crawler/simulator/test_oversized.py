"""oversized=K on the wire: each platform serves the long fields, the project's
parsers read them like any title, and validation fits them to their columns."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator

import pytest

from crawler.items import EpisodeItem, WebtoonItem
from crawler.parsing import kakao, kakaopage, naver
from crawler.pipelines.validate import COLUMN_WIDTHS, ValidationPipeline
from crawler.simulator import Catalogue, SimulatorServer, serve
from crawler.simulator.catalogue import (
    CUT_EMOJI,
    OVERSIZED_AUTHOR_CHARS,
    OVERSIZED_SUBTITLE_CHARS,
    OVERSIZED_SYNOPSIS_BYTES,
)

from .conftest import fetch


class Stats:
    def __init__(self) -> None:
        self.values: dict[str, int] = {}

    def inc_value(self, key: str, count: int = 1) -> None:
        self.values[key] = self.values.get(key, 0) + count


@pytest.fixture(scope="module")
def simulator() -> Iterator[SimulatorServer]:
    with serve(Catalogue(seed=9, titles=30, episodes=4, oversized=1)) as server:
        yield server


def post(url: str, body: str) -> bytes:
    request = urllib.request.Request(url, data=body.encode("utf-8"),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.read()


def crawl_title(server: SimulatorServer, platform: str, title_id: str
                ) -> tuple[WebtoonItem, list[EpisodeItem]]:
    """The title's item and its episodes, as a spider would parse them."""
    base = server.url
    if platform == "NAVER":
        item = naver.parse_title_info(fetch(naver.title_info_url(base, title_id)).body, base)
        page = naver.parse_episode_page(
            fetch(naver.episode_list_url(base, title_id, 1)).body, base, title_id)
    elif platform == "KAKAO":
        item = kakao.parse_detail(fetch(kakao.detail_url(base, title_id)).body, title_id)
        page = kakao.parse_episode_page(
            fetch(kakao.episodes_url(base, title_id, limit=100)).body, title_id)
    else:
        item = kakaopage.parse_detail(post(*kakaopage.detail_request(base, title_id)), base)
        page = kakaopage.parse_episode_page(
            post(*kakaopage.episodes_request(base, title_id)), base, title_id)
    assert page.is_last and not page.drops
    return item, page.items


@pytest.mark.parametrize("platform", ["NAVER", "KAKAO", "KAKAOPAGE"])
def test_long_fields_are_served_parsed_and_fitted_to_their_columns(
        simulator: SimulatorServer, platform: str) -> None:
    expected = simulator.catalogue.expected()
    (title_id, fields), = expected["oversized"][platform].items()
    item, episodes = crawl_title(simulator, platform, title_id)

    # Served whole: the parser sees the platform's full text, the cut emoji included
    # (sent as the JSON escape "\ud83d").
    title = simulator.catalogue.title(platform, title_id)
    assert item.summary == title.synopsis and item.summary.endswith(CUT_EMOJI)
    assert fields["synopsis_bytes"] >= OVERSIZED_SYNOPSIS_BYTES
    assert len(fields["author"]) == OVERSIZED_AUTHOR_CHARS
    assert fields["author"] in [a["name"] for a in item.authors]
    by_number = {(e.season_no, e.episode_no): e for e in episodes}
    assert sorted(by_number) == sorted(tuple(n) for n in expected["platforms"][platform]
                                       [title_id]["episodes"])
    long_episode = by_number[tuple(fields["episode"])]
    served_subtitle = long_episode.title
    assert len(served_subtitle) > OVERSIZED_SUBTITLE_CHARS

    pipe = ValidationPipeline(stats=Stats())
    pipe.process_item(item)
    for episode in episodes:
        pipe.process_item(episode)

    # Every title and episode passes; the long values are cut to their columns.
    assert pipe.stats.values["validate/passed/WebtoonItem"] == 1
    assert pipe.stats.values["validate/passed/EpisodeItem"] == len(episodes)
    assert pipe.stats.values["validate/truncated/author_name"] == 1
    assert pipe.stats.values["validate/truncated/episode_title"] == 1
    # Cut at the column's width, less a space the cut may leave at the end.
    name_width = COLUMN_WIDTHS["author_name"].limit
    author = next(a for a in item.authors if fields["author"].startswith(a["name"]))
    assert author["name"] == fields["author"][:name_width].rstrip()
    assert len(author["uid"]) <= COLUMN_WIDTHS["author_uid"].limit
    assert long_episode.title == served_subtitle[:COLUMN_WIDTHS["episode_title"].limit].rstrip()
    # 500 KB fits the widened summary column: nothing cut; the half emoji is repaired.
    assert "validate/truncated/summary" not in pipe.stats.values
    assert item.summary == title.synopsis.replace(CUT_EMOJI, "\ufffd")
    assert len(item.summary.encode("utf-8")) == fields["synopsis_bytes"]
    assert pipe.stats.values["validate/repaired/lone_surrogate"] == 1
    # Kakao and KakaoPage name authors without ids: the uid carries the long name.
    uid_cut = pipe.stats.values.get("validate/truncated/author_uid", 0)
    assert uid_cut == (0 if platform == "NAVER" else 1)
    assert set(pipe.stats.values) <= {
        "validate/passed/WebtoonItem", "validate/passed/EpisodeItem",
        "validate/truncated/author_name", "validate/truncated/episode_title",
        "validate/truncated/author_uid", "validate/repaired/lone_surrogate"}


def test_a_lone_surrogate_goes_out_as_its_json_escape(simulator: SimulatorServer) -> None:
    (title_id, _), = simulator.catalogue.expected()["oversized"]["NAVER"].items()
    body = fetch(naver.title_info_url(simulator.url, title_id)).body
    assert body.decode("utf-8").count("\\ud83d") == 1
    assert json.loads(body)["synopsis"].endswith(CUT_EMOJI)


def test_kakao_cards_show_two_lines_not_the_whole_synopsis(simulator: SimulatorServer) -> None:
    (title_id, _), = simulator.catalogue.expected()["oversized"]["KAKAO"].items()
    title = simulator.catalogue.title("KAKAO", title_id)
    for placement in ("mon", "tue", "wed", "thu", "fri", "sat", "sun", "completed"):
        payload = json.loads(fetch(kakao.timetable_url(simulator.url, placement)).body)
        for group in payload["data"][0]["cardGroups"]:
            for card in group["cards"]:
                if str(card["content"]["id"]) == title_id:
                    assert card["content"]["catchphraseTwoLines"] == title.catchphrase
                    assert card["content"]["catchphraseTwoLines"].count("\n") == 1
