"""The crawl cluster end to end: simulator → spider processes → MongoDB, MariaDB, S3.

Each test runs real ``scrapy crawl`` processes (two per platform where it
matters) against the project's platform simulator, with real Redis, MariaDB,
SecantusDB and moto_server, then reads the stores back and compares them with
the simulator's own ground truth.
"""

from __future__ import annotations

import os
import signal
import time
from datetime import date, timedelta

import pytest

from tests.integration.crawler.conftest import (
    PLATFORM_OF,
    expected_episodes,
    expected_titles,
    point_at,
    served_responses,
    sim_get,
    sim_post,
    touched_titles,
)

pytestmark = pytest.mark.integration

SPIDERS = tuple(PLATFORM_OF)


def assert_stores_match(harness, expected):
    keys = harness.s3_keys()
    for platform in PLATFORM_OF.values():
        want_titles = expected_titles(expected, platform)
        want_episodes = expected_episodes(expected, platform)
        assert want_titles and want_episodes, f"simulator served nothing for {platform}"
        # Exactly once: Counter equality also fails on duplicates.
        assert harness.mongo_titles(platform) == want_titles, platform
        assert harness.maria_titles(platform) == want_titles, platform
        assert harness.mongo_episodes(platform) == want_episodes, platform
        assert harness.maria_episodes(platform) == want_episodes, platform
        for external_id in want_titles:
            assert f"webtoons/{platform}/{external_id}/thumbnail.jpg" in keys
    # One webtoon row per (title, author set), even when two platforms publish it.
    assert harness.sql("SELECT COUNT(*) FROM webtoon")[0][0] == expected["webtoons"]


def test_two_nodes_per_platform_store_everything_exactly_once(harness, simulator):
    server, catalogue = simulator(seed=11, titles=36, episodes=5)
    point_at(harness, server.url)
    expected = catalogue.expected()
    runs = [harness.start(spider, nodes=2) for spider in SPIDERS]
    for _, procs in runs:
        harness.wait(procs)

    assert_stores_match(harness, expected)

    served = sim_get(server.url, "/_sim/requests")
    total_responses = 0
    for request, _ in runs:
        run = harness.run_record(request.spider, request.run_id)
        assert run["status"] == "done"
        stats = run["stats"]
        platform = PLATFORM_OF[request.spider]
        titles = len(expected["platforms"][platform])
        episodes = len(expected_episodes(expected, platform))
        # Stats summed over both nodes add up to what was stored.
        assert stats["validate/passed/WebtoonItem"] == titles
        assert stats["validate/passed/EpisodeItem"] == episodes
        assert stats["item_scraped_count"] == titles + episodes
        assert stats["raw/webtoon/inserted"] == titles
        assert stats["raw/episode/inserted"] == episodes
        total_responses += (stats["downloader/response_count"]
                            - stats.get("robotstxt/response_count", 0))
        # Both nodes did part of the work.
        assert len(run["nodes"]) == 2
    # Every response any node counted is a request the simulator served (none twice).
    assert total_responses == served_responses(served)


def test_rerun_changes_nothing_and_episode_mode_takes_only_new_episodes(harness, simulator):
    server, catalogue = simulator(seed=5, titles=30, episodes=4)
    point_at(harness, server.url)
    today = date.fromisoformat(sim_get(server.url, "/_sim/clock")["today"])
    for spider in SPIDERS:
        harness.crawl(spider, nodes=1, today=today.isoformat())
    before = catalogue.expected()
    assert_stores_match(harness, before)
    rows_before = harness.sql("SELECT id, updated_at, last_update_date, status FROM webtoon"
                              " ORDER BY id")
    history_before = harness.mongo_history_lengths()

    # The same crawl again: nothing new, nothing rewritten.
    for spider in SPIDERS:
        request = harness.crawl(spider, nodes=1, today=today.isoformat())
        stats = harness.run_record(spider, request.run_id)["stats"]
        assert stats.get("catalogue/webtoon/inserted", 0) == 0
        assert stats.get("catalogue/webtoon/updated", 0) == 0
        assert stats.get("catalogue/episode/inserted", 0) == 0
        assert stats.get("raw/webtoon/changed", 0) == 0
        assert stats.get("raw/episode/inserted", 0) == 0
    assert_stores_match(harness, before)
    assert harness.sql("SELECT id, updated_at, last_update_date, status FROM webtoon"
                       " ORDER BY id") == rows_before
    assert harness.mongo_history_lengths() == history_before

    # A week passes on the platforms: new episodes, some status changes.
    sim_post(server.url, "/_sim/advance?days=7")
    after = catalogue.expected()
    new_today = date.fromisoformat(after["today"])
    assert new_today == today + timedelta(days=7)
    sim_post(server.url, "/_sim/requests/reset")

    # The original rule, computed from the simulator's truth before the update:
    # ongoing or on hiatus, publishing today or tomorrow, last episode > 2 days old.
    days = {new_today.weekday(), (new_today + timedelta(days=1)).weekday()}
    names = ["MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY"]
    due_days = {names[d] for d in days}
    due = {
        platform: {
            ext for ext, t in before["platforms"][platform].items()
            if t["status"] in ("ONGOING", "HIATUS") and due_days & set(t["days"])
            and date.fromisoformat(t["last_episode_date"]) < new_today - timedelta(days=2)
        }
        for platform in PLATFORM_OF.values()
    }
    assert any(due.values()), "the scenario must have titles due for an update"

    for spider in SPIDERS:
        platform = PLATFORM_OF[spider]
        stored_before = harness.maria_episodes(platform)
        request = harness.crawl(spider, nodes=1, mode="episodes", today=new_today.isoformat())
        stats = harness.run_record(spider, request.run_id)["stats"]
        new_for_due = {
            key for key in expected_episodes(after, platform) - expected_episodes(before, platform)
            if key[0] in due[platform]
        }
        stored_now = harness.maria_episodes(platform)
        assert set(stored_now - stored_before) == new_for_due, platform
        assert harness.mongo_episodes(platform) == stored_now
        # Only the new episodes were written, nothing else rewritten.
        assert stats.get("catalogue/episode/inserted", 0) == len(new_for_due)
        assert stats.get("raw/episode/inserted", 0) == len(new_for_due)
        assert stats.get("raw/episode/changed", 0) == 0

    # Only the due titles were fetched at all.
    touched = touched_titles(sim_get(server.url, "/_sim/requests"))
    for platform in PLATFORM_OF.values():
        assert touched[platform] == due[platform], platform


def test_node_killed_mid_crawl_loses_nothing(harness, simulator):
    server, catalogue = simulator(seed=3, titles=40, episodes=8)
    point_at(harness, server.url)
    # Short leases so the survivor reclaims the dead node's requests quickly; a slow
    # host rate so the crawl is still running when the node is killed.
    harness.env.update({"TOONPICK_CRAWL_LEASE_SECONDS": "3", "TOONPICK_CRAWL_HOST_RATE": "10"})
    expected = catalogue.expected()
    request, procs = harness.start("naver", nodes=2)
    victim = procs[0]
    deadline = time.monotonic() + 60
    while sum(harness.mongo_episodes("NAVER").values()) < 10:
        assert time.monotonic() < deadline, "crawl did not get going"
        assert victim.process.poll() is None, victim.log_text()[-3000:]
        time.sleep(0.2)
    os.kill(victim.pid, signal.SIGKILL)
    victim.process.wait()
    harness.wait(procs[1:], timeout=180)

    assert harness.mongo_titles("NAVER") == expected_titles(expected, "NAVER")
    assert harness.maria_titles("NAVER") == expected_titles(expected, "NAVER")
    assert harness.mongo_episodes("NAVER") == expected_episodes(expected, "NAVER")
    assert harness.maria_episodes("NAVER") == expected_episodes(expected, "NAVER")
    keys = harness.s3_keys()
    for external_id in expected["platforms"]["NAVER"]:
        assert f"webtoons/NAVER/{external_id}/thumbnail.jpg" in keys
    run = harness.run_record("naver", request.run_id)
    assert run["status"] == "done"
    assert run["stats"].get("lease/reclaimed", 0) >= 1


def test_malformed_payloads_are_dropped_with_counted_reasons(harness, simulator):
    server, catalogue = simulator(seed=9, titles=30, episodes=4, malformed=3,
                                  throttle_every=17)
    point_at(harness, server.url)
    expected = catalogue.expected()
    malformed = expected["malformed"]
    runs = [(spider, harness.crawl(spider, nodes=1)) for spider in SPIDERS]
    throttled = sim_get(server.url, "/_sim/requests")["throttled"]
    assert throttled >= 3
    paused = 0

    # Everything well-formed still arrived, exactly once.
    assert_stores_match(harness, expected)
    for spider, request in runs:
        platform = PLATFORM_OF[spider]
        stats = harness.run_record(spider, request.run_id)["stats"]
        reasons = {k: v for k, v in stats.items() if "/dropped/" in k}
        bad_titles = len(malformed["titles"][platform])
        bad_episodes = sum(len(v) for v in malformed["episodes"][platform].values())
        assert bad_titles == 3 and bad_episodes >= 1
        # Every malformed title and episode is accounted for by a named reason.
        assert sum(reasons.values()) == bad_titles + bad_episodes, reasons
        assert any("bad_json" in k for k in reasons), reasons
        assert any("missing_field" in k for k in reasons), reasons
        assert any("wrong_type" in k for k in reasons), reasons
        # 429/503 answers were retried after their Retry-After, not dropped.
        paused += stats.get("retry_after/paused", 0)
        assert stats.get("retry/max_reached", 0) == 0
    # Every 429/503 the simulator sent paused the host for its Retry-After.
    assert paused == throttled
