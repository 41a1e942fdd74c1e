"""Fields fit their columns, end to end (issue 8).

The simulator serves, on each platform, titles longer than the catalogue's
columns: a 500 KB synopsis (once past webtoon.summary's TEXT) ending in half an
emoji (a lone surrogate no store can encode), an author name of 300 characters
(author.name is VARCHAR(255)) and an episode subtitle of 2,000
(webtoon_episode.title is VARCHAR(512)). Real spider processes crawl them into
MongoDB, S3 and MariaDB: no title or episode may be lost over them, the cuts are
counted in the run's stats, and MongoDB keeps the platform's whole text.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from crawler.pipelines.validate import COLUMN_WIDTHS
from crawler.simulator.catalogue import CUT_EMOJI
from shared.stores.mongo import mongo_database
from tests.integration.crawler.conftest import PLATFORM_OF, point_at
from tests.integration.crawler.test_crawl_end_to_end import assert_stores_match

pytestmark = pytest.mark.integration


def strings(value: Any) -> Iterator[str]:
    """Every string anywhere in a JSON-like payload."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for nested in value.values():
            yield from strings(nested)
    elif isinstance(value, list):
        for nested in value:
            yield from strings(nested)


def test_long_fields_are_stored_cut_to_their_columns_and_nothing_is_lost(harness, simulator):
    server, catalogue = simulator(seed=9, titles=20, episodes=4, oversized=2)
    point_at(harness, server.url)
    expected = catalogue.expected()
    runs = [(spider, *harness.start(spider, nodes=1)) for spider in PLATFORM_OF]
    for _, _, procs in runs:
        harness.wait(procs)

    # Every title and episode is in MongoDB, MariaDB (and its thumbnail in S3), once.
    assert_stores_match(harness, expected)

    name_width = COLUMN_WIDTHS["author_name"].limit
    subtitle_width = COLUMN_WIDTHS["episode_title"].limit
    mongo = mongo_database(harness.mongo_url)
    try:
        for spider, request, _ in runs:
            platform = PLATFORM_OF[spider]
            oversized = expected["oversized"][platform]
            assert len(oversized) == 2, platform
            run = harness.run_record(spider, request.run_id)
            assert run["status"] == "done"
            stats = run["stats"]
            # Nothing was dropped: a long optional field never costs its title.
            assert {k: v for k, v in stats.items() if "/dropped/" in k} == {}, platform
            titles = expected["platforms"][platform]
            long_named = sum(1 for t in titles.values()
                             if any(len(a) > name_width for a in t["authors"]))
            assert long_named >= 2
            assert stats["validate/truncated/author_name"] == long_named, platform
            assert stats["validate/truncated/episode_title"] == 2, platform
            # Kakao and KakaoPage have no artist ids: the uid is built from the long name.
            uids = 0 if platform == "NAVER" else long_named
            assert stats.get("validate/truncated/author_uid", 0) == uids, platform
            # 500 KB fits the widened webtoon.summary (0006_long_fields.sql) whole.
            assert "validate/truncated/summary" not in stats
            assert stats["validate/repaired/lone_surrogate"] == 2, platform

            for external_id, fields in oversized.items():
                title = catalogue.title(platform, external_id)
                (summary_bytes, summary), = harness.sql(
                    "SELECT OCTET_LENGTH(w.summary), w.summary FROM webtoon w"
                    " JOIN webtoon_platform wp ON wp.webtoon_id = w.id"
                    " JOIN platform p ON p.id = wp.platform_id"
                    " WHERE p.name = %s AND wp.external_id = %s", platform, external_id)
                # Whole, but for the half emoji it ends in, repaired to U+FFFD.
                synopsis = title.synopsis.replace(CUT_EMOJI, "\ufffd")
                assert summary_bytes == fields["synopsis_bytes"] and summary == synopsis
                names = [r[0] for r in harness.sql(
                    "SELECT a.name FROM author a JOIN webtoon_author wa ON wa.author_id = a.id"
                    " JOIN webtoon_platform wp ON wp.webtoon_id = wa.webtoon_id"
                    " JOIN platform p ON p.id = wp.platform_id"
                    " WHERE p.name = %s AND wp.external_id = %s", platform, external_id)]
                assert fields["author"][:name_width].rstrip() in names
                season, number = fields["episode"]
                (stored_subtitle,), = harness.sql(
                    "SELECT e.title FROM webtoon_episode e"
                    " JOIN webtoon_season s ON s.id = e.season_id"
                    " JOIN webtoon_platform wp ON wp.webtoon_id = e.webtoon_id"
                    " JOIN platform p ON p.id = wp.platform_id"
                    " WHERE p.name = %s AND wp.external_id = %s"
                    " AND s.season_no = %s AND e.episode_no = %s",
                    platform, external_id, season, number)
                episode = next(e for e in title.episodes
                               if [e.season, e.no] == fields["episode"])
                assert 0 < len(stored_subtitle) <= subtitle_width
                assert episode.subtitle_prefix.startswith(stored_subtitle)

                # MongoDB's raw document keeps what the platform sent, uncut.
                doc = mongo.webtoon_raw.find_one({"platform": platform,
                                                  "external_id": external_id})
                served = set(strings(doc["raw"]))
                assert synopsis in served
                assert any(fields["author"] in s for s in served)
                raw_episode = doc["episodes"][f"{season}-{number}"]["raw"]
                assert any(episode.subtitle_prefix in s for s in strings(raw_episode))
    finally:
        mongo.client.close()

    # The cuts are the same on every crawl: a re-crawl finds everything unchanged.
    for spider in PLATFORM_OF:
        request = harness.crawl(spider, nodes=1)
        stats = harness.run_record(spider, request.run_id)["stats"]
        for key in ("catalogue/webtoon/inserted", "catalogue/webtoon/updated",
                    "catalogue/episode/inserted", "catalogue/episode/updated",
                    "raw/webtoon/changed", "raw/episode/changed", "raw/episode/inserted"):
            assert stats.get(key, 0) == 0, (spider, key)
        assert stats["catalogue/webtoon/unchanged"] == len(expected["platforms"][
            PLATFORM_OF[spider]])
    assert_stores_match(harness, expected)
