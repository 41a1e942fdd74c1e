"""The recommender on real MariaDB, Redis and moto S3: train from seeded activity, lists
land in MariaDB and the Redis cache, real-time refresh without retraining, cold start,
model versions that switch and roll back, and the four task types run by an RQ worker."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from rq import Queue, SimpleWorker

from recommender import groups
from recommender import service as service_module
from recommender.service import RecommendationService
from recommender.serving import ModelBundle, ModelNotFound, ModelStore, stored_top_n
from recommender.synthetic import add_interaction, seed_catalogue, seed_members
from recommender.tasks import QUEUE
from recommender.training import TrainingError, train_model
from shared.config import load_config
from shared.stores.mariadb import connect
from shared.stores.redis import redis_client
from shared.tasks import runner
from shared.tasks.repository import TaskRepository
from shared.tasks.runner import RunnerSettings, enqueue_task
from shared.tasks.types import ExecutionStatus, InvalidParams

pytestmark = pytest.mark.integration

# Small and quick: the point here is where results land, not their quality.
FAST = {"factors": 16, "iterations": 6, "regularization": 0.1}


@pytest.fixture
def config(mariadb_url, redis_url, s3_bucket, monkeypatch):
    environ = {
        "TOONPICK_PROFILE": "test",
        "TOONPICK_MARIADB_URL": mariadb_url,
        "REDIS_URL": redis_url,
        "TOONPICK_RECOMMENDER_MODELS_STORE": f"s3://{s3_bucket}/models/",
        "TOONPICK_RECOMMENDER_TOP_N": "10",
        "TOONPICK_RECOMMENDER_CACHE_TTL": "600",
    }
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    return load_config()


@pytest.fixture
def seeded(config):
    webtoons = seed_catalogue(config.mariadb_url, 80, seed=3)
    members = seed_members(config.mariadb_url, 300, seed=3, mean_interactions=12.0)
    return webtoons, members.member_ids


@pytest.fixture
def service(config):
    svc = RecommendationService(config)
    yield svc
    svc.close()


def _rows(mariadb_url: str, sql: str, args=()) -> list[tuple]:
    conn = connect(mariadb_url)
    try:
        with conn.cursor() as cur:
            cur.execute(sql, args)
            return list(cur.fetchall())
    finally:
        conn.close()


def _active_members_with_lists(mariadb_url: str) -> int:
    return _rows(mariadb_url, "SELECT COUNT(DISTINCT member_id)"
                              " FROM member_webtoon_recommendation")[0][0]


def test_training_and_update_put_every_members_list_in_mariadb_and_redis(config, seeded,
                                                                         service):
    _, member_ids = seeded
    result = train_model(config, FAST)
    assert result.serving and service.store.serving_version() == result.version.version
    for name in ("hybrid", "als", "popularity"):
        assert set(result.metrics[name]) >= {"precision", "map", "ndcg", "recall", "coverage"}
        assert 0.0 < result.metrics[name]["ndcg"] <= 1.0
    assert result.version.n_members == len(member_ids)
    assert result.version.n_interactions > 1000

    summary = service.update_all()
    assert summary["members"] == len(member_ids)
    # A member who has read every webtoon has nothing left to be recommended.
    read_everything = _rows(
        config.mariadb_url,
        "SELECT COUNT(*) FROM (SELECT member_id FROM member_webtoon_interaction"
        " GROUP BY member_id HAVING COUNT(*) = (SELECT COUNT(*) FROM webtoon)) t")[0][0]
    assert _active_members_with_lists(config.mariadb_url) == len(member_ids) - read_everything
    cache = redis_client(config.redis_url)
    try:
        for member_id in member_ids[:50]:
            stored = stored_top_n(config.mariadb_url, member_id)
            cached = service.cache.get(member_id)
            assert 0 < len(stored) <= 10
            assert [w for w, _ in cached["items"]] == [w for w, _, _ in stored]
            assert cached["version"] == result.version.version
            assert 0 < cache.ttl(service.cache.key(member_id)) <= 600
            seen = {w for (w,) in _rows(
                config.mariadb_url,
                "SELECT webtoon_id FROM member_webtoon_interaction WHERE member_id = %s",
                (member_id,))}
            assert not seen & {w for w, _, _ in stored}, "seen webtoons are filtered"
    finally:
        cache.close()

    similar = _rows(config.mariadb_url, "SELECT source_webtoon_id, similar_webtoon_id, `rank`"
                                        " FROM webtoon_similar_webtoon")
    assert similar and all(source != other for source, other, _ in similar)
    for code in ("WEEKLY_BEST", "POPULAR_COMPLETED", "FOR_YOU"):
        active, items = groups.read_group(config.mariadb_url, code)
        assert items, code
        assert len(items) == len(set(items))
    genre_groups = _rows(config.mariadb_url, "SELECT code FROM webtoon_recommend_group"
                                             " WHERE code LIKE 'GENRE\\_%%' AND is_active")
    assert len(genre_groups) >= 3


def test_a_new_interaction_changes_the_members_cached_list_without_retraining(
        config, seeded, service):
    webtoons, member_ids = seeded
    train_model(config, FAST)
    service.update_all()
    versions_before = [v.version for v in service.store.versions()]
    member_id = next(m for m in member_ids
                     if 3 <= len(stored_top_n(config.mariadb_url, m))
                     and len(_rows(config.mariadb_url,
                                   "SELECT 1 FROM member_webtoon_interaction"
                                   " WHERE member_id = %s", (m,))) >= 3)
    before = [w for w, _ in service.cache.get(member_id)["items"]]
    liked = before[:3]
    for webtoon_id in liked:
        add_interaction(config.mariadb_url, member_id, webtoon_id, liked=True,
                        bookmarked=True, viewed_episodes=3, rating=5.0)

    timings = service.refresh_members([member_id])
    after = [w for w, _ in service.cache.get(member_id)["items"]]
    assert after != before
    assert not set(liked) & set(after), "what the member just read is no longer recommended"
    assert [w for w, _, _ in stored_top_n(config.mariadb_url, member_id)] == after
    assert [v.version for v in service.store.versions()] == versions_before, "no retraining"
    assert timings[member_id] < 1000


def test_a_cold_start_member_gets_an_answer_at_once(config, seeded, service):
    train_model(config, FAST)
    conn = connect(config.mariadb_url)
    try:
        with conn.cursor() as cur:
            cur.execute("INSERT INTO member (uid, user_name, email, nick_name) VALUES"
                        " ('00000000-0000-4000-8000-000000000001', 'newcomer', 'n@e.x', 'n')")
            newcomer = cur.lastrowid
        conn.commit()
    finally:
        conn.close()

    served = service.serve(newcomer, 5)
    assert len(served.webtoon_ids) == 5 and served.source == "popularity"
    assert not served.cached
    assert service.cache.get(newcomer)["items"], "the answer is cached for the next request"

    webtoons, _ = seeded
    add_interaction(config.mariadb_url, newcomer, webtoons[0], liked=True, viewed_episodes=2)
    service.refresh_members([newcomer])
    refreshed = service.serve(newcomer, 5)
    assert refreshed.source == "hybrid" and webtoons[0] not in refreshed.webtoon_ids


def test_model_versions_switch_and_roll_back(config, seeded, service, monkeypatch):
    store = service.store
    with pytest.raises(ModelNotFound):
        store.rollback()
    first = train_model(config, FAST).version.version
    with pytest.raises(ModelNotFound):
        store.rollback()  # the only version that ever served
    second = train_model(config, {**FAST, "factors": 8}).version.version
    assert store.serving_version() == second
    assert store.serving_bundle().model.collaborative.params()["factors"] == 8
    service.update_all()
    _, member_ids = seeded
    assert service.serve(member_ids[0], 5).cached

    assert store.rollback(reason="test") == first
    # The serving process notices within SERVING_CHECK_SECONDS (made 0 here), and a
    # list cached under the version that no longer serves is recomputed, not served.
    monkeypatch.setattr(service_module, "SERVING_CHECK_SECONDS", 0.0)
    served = service.serve(member_ids[0], 5)
    assert served.version == first and not served.cached
    assert service.cache.get(member_ids[0])["version"] == first
    assert store.serving_version() == first
    assert store.serving_bundle().model.collaborative.params()["factors"] == 16
    actions = [(e["model_version"], e["action"]) for e in store.serving_history()]
    assert actions == [(first, "ROLLBACK"), (second, "SWITCH"), (first, "SWITCH")]
    with pytest.raises(ModelNotFound):
        store.switch("no-such-version")

    # A version read back from S3 answers exactly like the model that was trained.
    fresh_store = ModelStore.from_config(config)
    bundle = fresh_store.load(first)
    again = ModelBundle.from_bytes(bundle.to_bytes())
    history = sp.csr_matrix((np.array([5.0, 2.0], np.float32), ([0, 0], [0, 3])),
                            shape=(1, len(bundle.webtoon_ids)))
    a = bundle.model.recommend_history(history, n=5)
    b = again.model.recommend_history(history, n=5)
    np.testing.assert_array_equal(a[0], b[0])
    stored = fresh_store.get(first)
    assert stored.metrics["hybrid"]["ndcg"] > 0 and stored.s3_key.endswith(f"{first}.npz")


def test_training_without_catalogue_or_activity_says_why(config):
    with pytest.raises(TrainingError, match="no webtoons"):
        train_model(config, FAST)
    seed_catalogue(config.mariadb_url, 10, seed=1)
    with pytest.raises(TrainingError, match="no member activity yet"):
        train_model(config, FAST)
    assert ModelStore.from_config(config).versions() == []


def test_training_parameters_are_checked_before_anything_runs(config, seeded):
    with pytest.raises(TrainingError, match="unknown training params: factor"):
        train_model(config, {"factor": 3})
    with pytest.raises(TrainingError, match="factors"):
        train_model(config, {"factors": "many"})


@pytest.fixture
def worker_process_config(config, monkeypatch):
    monkeypatch.setattr(runner, "_process_config", runner._ProcessConfig(
        config.mariadb_url, RunnerSettings(heartbeat_interval=0.5, stop_check_interval=0.2)))
    import recommender.tasks  # noqa: F401 - registers the task types in this process

    connection = redis_client(config.redis_url)
    yield connection
    connection.close()


def _run(config, connection, task_type: str, params: dict, force: bool = True) -> dict:
    execution_id = enqueue_task(config.mariadb_url, config.redis_url, task_type, params, "api",
                                force=force)
    SimpleWorker([Queue(QUEUE, connection=connection)], connection=connection).work(
        burst=True, with_scheduler=False)
    execution = TaskRepository(config.mariadb_url).get(execution_id)
    assert execution.status is ExecutionStatus.COMPLETED, execution.error
    assert execution.progress == 100
    return execution.result


def test_the_four_task_types_run_on_an_rq_worker(config, seeded, worker_process_config):
    connection = worker_process_config
    _, member_ids = seeded
    # Before any model: a clear failure, not retries.
    early = enqueue_task(config.mariadb_url, config.redis_url, "RECOMMENDATION_UPDATE",
                         {"train": False}, "api")
    SimpleWorker([Queue(QUEUE, connection=connection)], connection=connection).work(
        burst=True, with_scheduler=False)
    failed = TaskRepository(config.mariadb_url).get(early)
    assert failed.status is ExecutionStatus.FAILED and "no model serves yet" in failed.error
    assert len(TaskRepository(config.mariadb_url).list_executions(
        task_type="RECOMMENDATION_UPDATE")) == 1, "not retried"
    trained = _run(config, connection, "RECOMMENDATION_MODEL_TRAINING", {"params": FAST})
    assert trained["serving"] and trained["metrics"]["als"]["ndcg"] > 0

    updated = _run(config, connection, "RECOMMENDATION_UPDATE", {"train": False})
    assert updated["model_version"] == trained["model_version"]
    assert updated["members"] == len(member_ids)

    cache = redis_client(config.redis_url)
    keys = cache.keys("toonpick:rec:member:*")
    cache.delete(*keys)
    rebuilt = _run(config, connection, "RECOMMENDATION_CACHE_UPDATE", {})
    # Rebuilt from MariaDB: every member with a stored list (none for a member who has
    # read everything).
    assert rebuilt["cached_members"] == _active_members_with_lists(config.mariadb_url)
    assert len(cache.keys("toonpick:rec:member:*")) == rebuilt["cached_members"] > 0
    cache.close()

    # Two activity events of the same members are two runs.
    for event in ("e1", "e2"):
        refreshed = _run(config, connection, "MEMBER_PREFERENCE_UPDATE",
                         {"member_ids": member_ids[:5], "event_id": event}, force=False)
        assert refreshed["members"] == 5

    # Bad parameters are refused when the task is queued, before anything is recorded.
    before = len(TaskRepository(config.mariadb_url).list_executions())
    with pytest.raises(InvalidParams, match="positive integers"):
        enqueue_task(config.mariadb_url, config.redis_url, "MEMBER_PREFERENCE_UPDATE",
                     {"member_ids": ["x"]}, "api")
    assert len(TaskRepository(config.mariadb_url).list_executions()) == before
