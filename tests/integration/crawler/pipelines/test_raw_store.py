from __future__ import annotations

import pytest

from crawler.items import EpisodeItem, WebtoonItem
from crawler.pipelines.batching import Stored
from crawler.pipelines.raw_store import RawStore, content_hash
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
    episodes[3].raw = {"changed": True}
    assert statuses(store.write(episodes)) == ["episode/unchanged"] * 3 + ["episode/changed"]
    assert store.db.episode_raw.count_documents({}) == 4
    doc = store.db.episode_raw.find_one({"season_no": 2, "episode_no": 2})
    assert len(doc["history"]) == 2 and "previous" not in doc["history"][1]


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
