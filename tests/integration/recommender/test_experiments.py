"""A/B experiments on real MariaDB: storage, exposures, and results from later activity.

The simulation: members are assigned, shown 10 webtoons each (recorded exposures), then
their later activity is written straight into the activity tables, with per-variant
click and conversion rates, plus activity that must not count (before the exposure,
after the window, on webtoons not shown, interaction rows that are neither a like nor a
bookmark).
"""

from __future__ import annotations

import random
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pytest

from recommender.experiments import (
    ExperimentExists,
    ExperimentNotFound,
    ExperimentNotRunning,
    Variant,
    assign,
    create_experiment,
    experiment_results,
    get_experiment,
    record_exposures,
    running_experiments,
    stop_experiment,
)
from shared.stores.mariadb import connect

pytestmark = pytest.mark.integration

T0 = datetime(2024, 6, 1, 12, 0, 0)
WINDOW_DAYS = 7
N_WEBTOONS = 40
SHOWN = 10


@pytest.fixture
def conn(mariadb_url):
    conn = connect(mariadb_url)
    yield conn
    conn.close()


def seed_catalogue(conn, n_webtoons: int = N_WEBTOONS) -> dict[int, list[int]]:
    """Webtoons with one season and two episodes each: {webtoon id: [episode ids]}."""
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO webtoon (id, title, normalized_title, external_id, identity_key, "
            "status, age_rating) VALUES (%s, %s, %s, %s, %s, 'ONGOING', 'ALL')",
            [(w, f"title {w}", f"title{w}", str(w), f"{w:040d}") for w in range(1, n_webtoons + 1)],
        )
        cur.executemany(
            "INSERT INTO webtoon_season (id, webtoon_id, season_no) VALUES (%s, %s, 1)",
            [(w, w) for w in range(1, n_webtoons + 1)],
        )
        episodes = {w: [2 * w - 1, 2 * w] for w in range(1, n_webtoons + 1)}
        cur.executemany(
            "INSERT INTO webtoon_episode (id, webtoon_id, season_id, episode_no, title, "
            "pricing_type) VALUES (%s, %s, %s, %s, %s, 'FREE')",
            [(e, w, w, n, f"{n}") for w, ids in episodes.items() for n, e in enumerate(ids, 1)],
        )
    conn.commit()
    return episodes


def seed_members(conn, member_ids) -> None:
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO member (id, uid, user_name, email, nick_name) VALUES (%s, %s, %s, %s, %s)",
            [(m, str(uuid.UUID(int=m)), f"member{m}", f"member{m}@example.com", f"m{m}")
             for m in member_ids],
        )
    conn.commit()


@dataclass
class Activity:
    """Rows for the activity tables, and what experiment_results must find."""

    views: list[tuple] = field(default_factory=list)
    interactions: list[tuple] = field(default_factory=list)
    clicked: dict[str, int] = field(default_factory=dict)
    converted: dict[str, int] = field(default_factory=dict)

    def view(self, member, episode, at):
        self.views.append((member, episode, at))

    def interaction(self, member, webtoon, *, liked_at=None, bookmarked=False, updated_at):
        self.interactions.append(
            (member, webtoon, liked_at is not None, liked_at, bookmarked, updated_at, updated_at)
        )

    def write(self, conn) -> None:
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO webtoon_episode_view_history (member_id, episode_id, "
                "episode_viewed_at) VALUES (%s, %s, %s)",
                self.views,
            )
            cur.executemany(
                "INSERT INTO member_webtoon_interaction (member_id, webtoon_id, liked, "
                "liked_at, bookmarked, created_at, updated_at) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s)",
                self.interactions,
            )
        conn.commit()


def simulate(conn, experiment, member_ids, episodes, rates, seed, noise_for=()):
    """Expose every member, then write their later activity.

    ``rates`` maps a variant name to (click rate, conversion rate); members of the
    variants in ``noise_for`` also get plenty of activity that must not count.
    """
    rng = random.Random(seed)
    activity = Activity()
    window = timedelta(days=WINDOW_DAYS)
    webtoons = sorted(episodes)
    for member in member_ids:
        shown = rng.sample(webtoons, SHOWN)
        at = T0 + timedelta(seconds=rng.randrange(86_400))
        variant = record_exposures(conn, experiment, member, shown, at=at)
        assert variant == assign(experiment, member)
        click_rate, conversion_rate = rates[variant.name]
        inside = at + timedelta(seconds=rng.randrange(60, int(window.total_seconds()) - 60))
        if rng.random() < click_rate:
            activity.view(member, rng.choice(episodes[shown[0]]), inside)
            activity.clicked[variant.name] = activity.clicked.get(variant.name, 0) + 1
        if rng.random() < conversion_rate:
            if rng.random() < 0.5:
                activity.interaction(member, shown[0], liked_at=inside, updated_at=inside)
            else:
                activity.interaction(member, shown[0], bookmarked=True, updated_at=inside)
            activity.converted[variant.name] = activity.converted.get(variant.name, 0) + 1
        if variant.name in noise_for:
            not_shown = next(w for w in webtoons if w not in shown)
            activity.view(member, episodes[shown[1]][0], at - timedelta(hours=1))
            activity.view(member, episodes[shown[1]][1], at + window + timedelta(hours=1))
            activity.view(member, episodes[not_shown][0], at + timedelta(hours=1))
            late = at + window + timedelta(minutes=5)
            activity.interaction(member, shown[2], liked_at=late, updated_at=late)
            activity.interaction(member, shown[3], bookmarked=True,
                                 updated_at=at - timedelta(hours=2))
            # Read, neither liked nor bookmarked, inside the window: not a conversion.
            activity.interaction(member, shown[4], updated_at=at + timedelta(hours=3))
            activity.interaction(member, not_shown, liked_at=at + timedelta(hours=1),
                                 updated_at=at + timedelta(hours=1))
    activity.write(conn)
    return activity


# -- storage --------------------------------------------------------------------------


def test_experiments_are_stored_listed_and_stopped(conn):
    variants = [
        Variant("control", 1, "als", {"factors": 64}),
        {"name": "hybrid", "weight": 3, "algorithm": "hybrid", "params": {"cold_start": 5}},
    ]
    created = create_experiment(conn, "home-feed", variants, description="ALS vs hybrid")
    assert created.status == "RUNNING" and created.started_at is not None
    assert [(v.name, v.weight, v.algorithm, v.params) for v in created.variants] == [
        ("control", 1, "als", {"factors": 64}),
        ("hybrid", 3, "hybrid", {"cold_start": 5}),
    ]
    assert created.control.name == "control"
    before = [assign(created, m).name for m in range(1, 2001)]

    with pytest.raises(ExperimentExists, match="home-feed"):
        create_experiment(conn, "home-feed", variants)
    other = create_experiment(conn, "similar-rail", [Variant("A"), Variant("B", 1, "content")])
    assert other.salt != created.salt
    assert [e.code for e in running_experiments(conn)] == ["home-feed", "similar-rail"]

    # A fresh load, after another experiment appeared, splits members the same way.
    reloaded = get_experiment(conn, "home-feed")
    assert reloaded == created
    assert [assign(reloaded, m).name for m in range(1, 2001)] == before

    variant = record_exposures(conn, reloaded, 42, [7, 3, 9], at=T0)
    with conn.cursor() as cur:
        cur.execute("SELECT variant_id, member_id, webtoon_id, `rank`, exposed_at "
                    "FROM recommendation_exposure ORDER BY `rank`")
        rows = cur.fetchall()
    assert rows == ((variant.id, 42, 7, 1, T0), (variant.id, 42, 3, 2, T0),
                    (variant.id, 42, 9, 3, T0))

    stopped = stop_experiment(conn, "home-feed")
    assert stopped.status == "STOPPED" and stopped.stopped_at is not None
    assert stop_experiment(conn, "home-feed").stopped_at == stopped.stopped_at
    assert [e.code for e in running_experiments(conn)] == ["similar-rail"]
    with pytest.raises(ExperimentNotRunning):
        record_exposures(conn, stopped, 42, [1], at=T0)
    with pytest.raises(ExperimentNotFound):
        get_experiment(conn, "nope")
    with pytest.raises(ExperimentNotFound):
        stop_experiment(conn, "nope")


# -- results --------------------------------------------------------------------------


def test_only_activity_inside_the_window_after_the_exposure_counts(conn):
    episodes = seed_catalogue(conn, n_webtoons=3)
    seed_members(conn, range(1, 9))
    experiment = create_experiment(conn, "window", [Variant("A", 1), Variant("B", 1)])
    for member in range(1, 9):
        record_exposures(conn, experiment, member, [1, 2], at=T0)
    end = T0 + timedelta(days=3)
    second = timedelta(seconds=1)
    activity = Activity()
    activity.view(1, episodes[1][0], T0 - second)          # before: no
    activity.view(2, episodes[1][1], end - second)         # inside: click
    activity.view(3, episodes[2][0], end + second)         # after: no
    activity.view(4, episodes[3][0], T0 + second)          # not shown: no
    activity.interaction(5, 1, liked_at=end - second, updated_at=end - second)   # conversion
    activity.interaction(6, 2, liked_at=T0 - second, updated_at=T0 + second)     # liked before
    activity.interaction(7, 2, bookmarked=True, updated_at=T0 + second)          # conversion
    activity.interaction(8, 1, bookmarked=True, updated_at=end + second)         # after
    activity.write(conn)

    results = experiment_results(conn, "window", window_days=3)
    total = {key: sum(v[key] for v in results["variants"].values())
             for key in ("members", "exposures", "clicks", "clicked_members", "conversions",
                         "converted_members")}
    assert total == {"members": 8, "exposures": 16, "clicks": 1, "clicked_members": 1,
                     "conversions": 2, "converted_members": 2}
    by_member = {m: assign(experiment, m).name for m in range(1, 9)}
    assert results["variants"][by_member[2]]["clicked_members"] == 1
    converted = Counter([by_member[5], by_member[7]])
    for name, variant in results["variants"].items():
        assert variant["converted_members"] == converted.get(name, 0)
    # A day longer and member 3's view and member 8's bookmark count too.
    wider = experiment_results(conn, "window", window_days=4)
    assert sum(v["clicked_members"] for v in wider["variants"].values()) == 2
    assert sum(v["converted_members"] for v in wider["variants"].values()) == 3
    with pytest.raises(ValueError, match="window_days"):
        experiment_results(conn, "window", window_days=0)


def test_a_better_variant_is_found_significant_and_an_a_a_split_is_not(conn):
    episodes = seed_catalogue(conn)
    seed_members(conn, range(1, 4001))

    # Fixed salts and seeds make the run deterministic: with random salts the A/A check
    # would fail by design in 1 run of ~10 (two tests at alpha 0.05); the unit tests
    # check the false-positive rate itself over many A/A replications.
    ab = create_experiment(conn, "ab", [Variant("A", 1, "als"), Variant("B", 1, "hybrid")],
                           salt="ab-salt")
    ab_activity = simulate(conn, ab, range(1, 2001), episodes,
                           rates={"A": (0.15, 0.10), "B": (0.30, 0.20)}, seed=7,
                           noise_for=("A",))
    aa = create_experiment(conn, "aa", [Variant("A", 1, "als"), Variant("A2", 1, "als")],
                           salt="aa-salt")
    aa_activity = simulate(conn, aa, range(2001, 4001), episodes,
                           rates={"A": (0.20, 0.10), "A2": (0.20, 0.10)}, seed=11,
                           noise_for=("A", "A2"))

    results = experiment_results(conn, "ab", window_days=WINDOW_DAYS)
    a, b = results["variants"]["A"], results["variants"]["B"]
    assert results["control"] == "A"
    assert a["members"] + b["members"] == 2000
    assert 900 < a["members"] < 1100  # a 1:1 split of 2000 members
    for name, variant in (("A", a), ("B", b)):
        assert variant["exposures"] == variant["members"] * SHOWN
        # Exactly what was simulated inside the windows: the noise counted for nothing.
        assert variant["clicked_members"] == variant["clicks"] == ab_activity.clicked[name]
        assert variant["converted_members"] == variant["conversions"] \
            == ab_activity.converted[name]
        assert variant["click_through_rate"] == pytest.approx(variant["clicks"] / (
            variant["members"] * SHOWN))
    assert a["member_conversion_rate"] == pytest.approx(0.10, abs=0.03)
    assert b["member_conversion_rate"] == pytest.approx(0.20, abs=0.03)
    assert a["vs_control"] is None
    conversion = b["vs_control"]["member_conversion"]
    click = b["vs_control"]["member_click"]
    assert conversion["test"] == "chi2"
    assert conversion["significant"] and conversion["p_value"] < 0.001
    assert click["significant"] and click["p_value"] < 0.001
    assert 0.5 < conversion["relative_lift"] < 1.5  # simulated: +100 %
    assert 0 < conversion["ci_low"] < 0.10 < conversion["ci_high"]

    null = experiment_results(conn, "aa", window_days=WINDOW_DAYS)
    a2 = null["variants"]["A2"]
    for name, variant in null["variants"].items():
        assert variant["converted_members"] == aa_activity.converted[name]
    assert not a2["vs_control"]["member_conversion"]["significant"]
    assert a2["vs_control"]["member_conversion"]["p_value"] > 0.05
    assert not a2["vs_control"]["member_click"]["significant"]
    assert a2["vs_control"]["member_conversion"]["ci_low"] < 0 \
        < a2["vs_control"]["member_conversion"]["ci_high"]
