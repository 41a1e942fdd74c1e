"""An A/B experiment run through serving: simulated members are served lists by their
variant (exposures recorded), later act on what suits their taste, and the results find
the personalised variant significantly better than the popularity control."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from recommender import experiments
from recommender.service import RecommendationService
from recommender.synthetic import add_interaction, seed_catalogue, seed_members
from recommender.training import train_model
from shared.config import load_config
from shared.stores.mariadb import connect

pytestmark = pytest.mark.integration

SHOWN = 3


@pytest.fixture
def config(mariadb_url, redis_url, s3_bucket, monkeypatch):
    monkeypatch.setenv("TOONPICK_PROFILE", "test")
    monkeypatch.setenv("TOONPICK_MARIADB_URL", mariadb_url)
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("TOONPICK_RECOMMENDER_MODELS_STORE", f"s3://{s3_bucket}/models/")
    return load_config()


def _genres(conn) -> dict[int, str]:
    with conn.cursor() as cur:
        cur.execute("SELECT wg.webtoon_id, MIN(g.name) FROM webtoon_genre wg"
                    " JOIN genre g ON g.id = wg.genre_id GROUP BY wg.webtoon_id")
        return {int(w): g for w, g in cur.fetchall()}


def _favourite_genres(conn, genre_of: dict[int, str], member_id: int) -> set[str]:
    with conn.cursor() as cur:
        cur.execute("SELECT webtoon_id FROM member_webtoon_interaction WHERE member_id = %s"
                    " AND status <> 'DROPPED'", (member_id,))
        counts = Counter(genre_of.get(int(w)) for (w,) in cur.fetchall())
    return {g for g, _ in counts.most_common(2) if g}


def test_a_served_experiment_records_exposures_and_finds_the_better_variant(config):
    seed_catalogue(config.mariadb_url, 120, seed=11)
    members = seed_members(config.mariadb_url, 400, seed=11, mean_interactions=14.0,
                           cold_start_share=0.0).member_ids
    train_model(config, {"factors": 16, "iterations": 8, "regularization": 1.0,
                         "evaluate": False})
    service = RecommendationService(config)
    conn = connect(config.mariadb_url)
    try:
        experiment = experiments.create_experiment(
            conn, "home_feed",
            [experiments.Variant("control", 1, "popularity"),
             experiments.Variant("personal", 1, "hybrid")],
            salt="ab-serving-test")
        conn.commit()

        served = {m: service.serve(m, SHOWN) for m in members}
        # Every list came from the member's own, stable variant.
        for member_id, answer in served.items():
            assert answer.experiment == "home_feed"
            assert answer.variant == experiments.assign(experiment, member_id).name
            assert len(answer.webtoon_ids) == SHOWN
        again = service.serve(members[0], SHOWN)
        assert again.variant == served[members[0]].variant
        arms = Counter(a.variant for a in served.values())
        assert set(arms) == {"control", "personal"} and min(arms.values()) > 150

        # Later activity: a member reads a shown title when it is of one of their two
        # favourite genres (often) or not (rarely), and sometimes likes it.
        genre_of = _genres(conn)
        rng = np.random.default_rng(5)
        later = datetime.now(UTC).replace(tzinfo=None) + timedelta(minutes=5)
        simulated = Counter()
        for member_id, answer in served.items():
            favourites = _favourite_genres(conn, genre_of, member_id)
            for webtoon_id in answer.webtoon_ids:
                suits = genre_of.get(webtoon_id) in favourites
                if rng.random() < (0.45 if suits else 0.04):
                    liked = bool(rng.random() < 0.5)
                    add_interaction(conn, member_id, webtoon_id, viewed_episodes=1,
                                    liked=liked or None, at=later)
                    simulated[answer.variant] += 1

        results = experiments.experiment_results(conn, "home_feed", window_days=7)
    finally:
        conn.close()
        service.close()

    control, personal = results["variants"]["control"], results["variants"]["personal"]
    # Every serving is recorded, the repeated one included.
    assert control["exposures"] + personal["exposures"] == SHOWN * (len(members) + 1)
    assert control["members"] + personal["members"] == len(members)
    assert control["clicks"] + personal["clicks"] == sum(simulated.values())
    assert personal["member_click_rate"] > control["member_click_rate"]
    test = personal["vs_control"]["member_click"]
    assert test["significant"] and test["p_value"] < 0.05 and test["relative_lift"] > 0
