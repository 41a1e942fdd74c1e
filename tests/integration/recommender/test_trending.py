"""Interaction ages from MariaDB drive the popularity model's trending mode."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pytest

from recommender.activity import interaction_ages, load_activity
from recommender.models.popularity import PopularityModel
from recommender.synthetic import seed_catalogue
from shared.stores.mariadb import connect

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 26, 12, 0, 0)


def test_recent_interactions_outrank_old_hits_in_trending_mode(mariadb_url):
    old_hit, recent, untouched = seed_catalogue(mariadb_url, 3, seed=5)
    conn = connect(mariadb_url)
    try:
        with conn.cursor() as cur:
            members = []
            for i in range(6):
                cur.execute("INSERT INTO member (uid, user_name, email, nick_name)"
                            " VALUES (%s, %s, %s, %s)",
                            (f"00000000-0000-4000-8000-{i:012d}", f"m{i}", f"m{i}@e.x", "m"))
                members.append(cur.lastrowid)
            rows = [(m, old_hit, NOW - timedelta(days=120)) for m in members[:5]]
            rows += [(m, recent, NOW - timedelta(days=1)) for m in members[3:]]
            cur.executemany(
                "INSERT INTO member_webtoon_interaction (member_id, webtoon_id, liked, liked_at,"
                " created_at, updated_at) VALUES (%s, %s, TRUE, %s, %s, %s)",
                [(m, w, at, at, at) for m, w, at in rows])
            # A review written later makes the pair younger than its interaction row.
            cur.execute("INSERT INTO webtoon_review (member_id, webtoon_id, rating, created_at,"
                        " updated_at) VALUES (%s, %s, 5.0, %s, %s)",
                        (members[0], old_hit, NOW - timedelta(days=2), NOW - timedelta(days=2)))
        conn.commit()

        activity = load_activity(conn)
        ages = interaction_ages(conn, activity, now=NOW)
    finally:
        conn.close()

    column = {int(w): i for i, w in enumerate(activity.webtoon_ids)}
    row = {int(m): i for i, m in enumerate(activity.member_ids)}
    assert ages[row[members[1]], column[old_hit]] == pytest.approx(120.0)
    assert ages[row[members[0]], column[old_hit]] == pytest.approx(2.0)
    assert ages[row[members[4]], column[recent]] == pytest.approx(1.0)
    assert ages[row[members[0]], column[untouched]] == 0 and ages.nnz == activity.user_items.nnz

    all_time = PopularityModel().fit(activity.user_items).item_scores
    trending = PopularityModel(half_life_days=14).fit(activity.user_items, ages).item_scores
    assert all_time[column[old_hit]] > all_time[column[recent]]
    assert trending[column[recent]] > trending[column[old_hit]]
    assert np.all(trending <= all_time + 1e-6)
