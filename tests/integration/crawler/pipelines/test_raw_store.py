from __future__ import annotations

import pytest

from crawler.items import EpisodeItem, WebtoonItem
from crawler.pipelines.batching import Stored
from crawler.pipelines.raw_store import (
    RawStore,
    content_hash,
    episode_field,
    parse_episode_field,
)
from shared.stores.mongo import mongo_database

pytestmark = pytest.mark.integration


@pytest.fixture
def store(mongo_url):
    db = mongo_database(mongo_url)
    raw = RawStore(db)
    raw.ensure_indexes()
    yield raw
    db.client.close()


def statuses(outcomes):
    assert all(isinstance(o, Stored) for o in outcomes)
    return [o.status for o in outcomes]


def test_history_grows_only_when_the_payload_changes(store):
    titles = [WebtoonItem(platform="NAVER", external_id=str(i), title="t", raw={"v": i})
              for i in range(3)]
    assert statuses(store.write(titles)) == ["webtoon/inserted"] * 3
    first = store.db.webtoon_raw.find_one({"external_id": "1"})
    assert statuses(store.write(titles)) == ["webtoon/unchanged"] * 3
    titles[1].raw = {"v": 1, "title": "renamed"}
    assert statuses(store.write(titles)) == ["webtoon/unchanged", "webtoon/changed",
                                              "webtoon/unchanged"]

    doc = store.db.webtoon_raw.find_one({"external_id": "1"})
    assert doc["raw"] == {"v": 1, "title": "renamed"}
    assert doc["content_hash"] == content_hash({"title": "renamed", "v": 1})
    assert [h["hash"] for h in doc["history"]] == [first["content_hash"], doc["content_hash"]]
    assert doc["history"][1]["previous"] == {"v": 1}
    assert doc["first_seen"] == first["first_seen"] and doc["last_seen"] > first["last_seen"]
    unchanged = store.db.webtoon_raw.find_one({"external_id": "0"})
    assert len(unchanged["history"]) == 1 and unchanged["last_seen"] > first["last_seen"]
    assert store.db.webtoon_raw.count_documents({}) == 3


def test_episodes_are_keyed_by_title_season_and_number(store):
    episodes = [EpisodeItem(platform="KAKAO", webtoon_external_id="7", episode_no=n,
                            season_no=s, title="e", raw={"n": n, "s": s})
                for s in (1, 2) for n in (1, 2)]
    assert statuses(store.write(episodes)) == ["episode/inserted"] * 4
    first = store.db.webtoon_raw.find_one({"platform": "KAKAO", "external_id": "7"})
    episodes[3].raw = {"changed": True}
    assert statuses(store.write(episodes)) == ["episode/unchanged"] * 3 + ["episode/changed"]
    assert store.db.webtoon_raw.count_documents({}) == 1
    doc = store.db.webtoon_raw.find_one({"platform": "KAKAO", "external_id": "7"})
    assert sorted(doc["episodes"]) == ["1-1", "1-2", "2-1", "2-2"]
    changed = doc["episodes"]["2-2"]
    assert changed["raw"] == {"changed": True}
    assert changed["content_hash"] == content_hash({"changed": True})
    assert [h["hash"] for h in changed["history"]] == [
        first["episodes"]["2-2"]["content_hash"], changed["content_hash"]]
    assert changed["history"][1]["previous_hash"] == first["episodes"]["2-2"]["content_hash"]
    assert "previous" not in changed["history"][1]
    assert changed["first_seen"] == first["episodes"]["2-2"]["first_seen"]
    unchanged = doc["episodes"]["1-1"]
    assert len(unchanged["history"]) == 1
    assert unchanged["last_seen"] > first["episodes"]["1-1"]["last_seen"]
    assert unchanged["first_seen"] == first["episodes"]["1-1"]["first_seen"]
    # No title payload has arrived: the document holds only episodes.
    assert "content_hash" not in doc and "raw" not in doc


def test_a_title_after_its_episodes_fills_in_without_losing_them(store):
    episode = EpisodeItem(platform="NAVER", webtoon_external_id="9", episode_no=1,
                          title="e", raw={"n": 1})
    title = WebtoonItem(platform="NAVER", external_id="9", title="t", raw={"v": 1})
    assert statuses(store.write([episode])) == ["episode/inserted"]
    assert statuses(store.write([title])) == ["webtoon/inserted"]
    doc = store.db.webtoon_raw.find_one({"external_id": "9"})
    assert doc["raw"] == {"v": 1} and len(doc["history"]) == 1
    assert "previous_hash" not in doc["history"][0]
    assert doc["episodes"]["1-1"]["raw"] == {"n": 1}
    assert doc["first_seen"] == doc["last_seen"]
    # Title and episodes in one batch, one of them new: one document, exact outcomes.
    second = EpisodeItem(platform="NAVER", webtoon_external_id="9", episode_no=2,
                         title="e", raw={"n": 2})
    assert statuses(store.write([title, episode, second])) == [
        "webtoon/unchanged", "episode/unchanged", "episode/inserted"]
    doc = store.db.webtoon_raw.find_one({"external_id": "9"})
    assert sorted(doc["episodes"]) == ["1-1", "1-2"] and len(doc["history"]) == 1
    assert store.db.webtoon_raw.count_documents({}) == 1


def test_a_new_title_and_its_episodes_are_one_document(store):
    items = [WebtoonItem(platform="NAVER", external_id="3", title="t", raw={"v": 3})] + [
        EpisodeItem(platform="NAVER", webtoon_external_id="3", episode_no=n, title="e",
                    raw={"n": n}) for n in (1, 2, 3)]
    assert statuses(store.write(items)) == ["webtoon/inserted"] + ["episode/inserted"] * 3
    doc = store.db.webtoon_raw.find_one({"external_id": "3"})
    assert doc["content_hash"] == content_hash({"v": 3})
    assert {k: v["raw"] for k, v in doc["episodes"].items()} == {
        "1-1": {"n": 1}, "1-2": {"n": 2}, "1-3": {"n": 3}}
    assert statuses(store.write(items)) == ["webtoon/unchanged"] + ["episode/unchanged"] * 3


def test_episode_field_round_trips():
    assert episode_field(2, 15) == "2-15"
    assert parse_episode_field(episode_field(2, 15)) == (2, 15)


def test_a_key_repeated_in_one_batch_is_applied_in_order(store):
    a = WebtoonItem(platform="NAVER", external_id="1", title="t", raw={"v": 1})
    b = WebtoonItem(platform="NAVER", external_id="1", title="t", raw={"v": 2})
    assert statuses(store.write([a, b, a])) == ["webtoon/inserted", "webtoon/changed",
                                                 "webtoon/changed"]
    assert len(store.db.webtoon_raw.find_one()["history"]) == 3


def test_a_document_created_meanwhile_by_another_node_is_not_duplicated(store):
    item = WebtoonItem(platform="NAVER", external_id="1", title="t", raw={"v": 1})
    other_node = RawStore(store.db)
    # Both read "missing"; the other node inserts first; ours must not fail or duplicate.
    real_existing = store._existing
    calls = []

    def stale_read(*args):
        calls.append(args)
        if len(calls) == 1:
            other_node.write([item])
            return {}
        return real_existing(*args)

    store._existing = stale_read
    assert statuses(store.write([item])) == ["webtoon/unchanged"]
    assert len(calls) == 2
    assert store.db.webtoon_raw.count_documents({}) == 1


def test_episodes_of_a_document_created_meanwhile_are_not_lost(store):
    episode = EpisodeItem(platform="KAKAO", webtoon_external_id="4", episode_no=1,
                          title="e", raw={"n": 1})
    title = WebtoonItem(platform="KAKAO", external_id="4", title="t", raw={"v": 1})
    other_node = RawStore(store.db)
    real_existing = store._existing
    calls = []

    def stale_read(*args):
        calls.append(args)
        if len(calls) == 1:
            # Another node creates the document with the title only; ours read "missing".
            other_node.write([title])
            return {}
        return real_existing(*args)

    store._existing = stale_read
    assert statuses(store.write([episode])) == ["episode/inserted"]
    doc = store.db.webtoon_raw.find_one({"external_id": "4"})
    assert doc["raw"] == {"v": 1} and doc["episodes"]["1-1"]["raw"] == {"n": 1}
    assert store.db.webtoon_raw.count_documents({}) == 1
