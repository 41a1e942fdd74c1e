"""Members' activity in MariaDB -> confidence matrix, and the seeded generator's rows."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import numpy as np
import pytest
from pymysql.constants import SERVER_STATUS

from recommender.activity import (
    ConfidenceWeights,
    item_feature_triples,
    load_activity,
    member_history,
)
from recommender.synthetic import add_interaction, seed_catalogue, seed_members
from shared.stores.mariadb import connect

pytestmark = pytest.mark.integration

NOW = datetime(2025, 6, 1, 12, 0, 0)
W = ConfidenceWeights()


# --- ConfidenceWeights (no database) -----------------------------------------------------
def test_weights_from_mapping_overrides_defaults_and_round_trips():
    weights = ConfidenceWeights.from_mapping({"like": 6, "dropped": -5.5})
    assert weights.like == 6.0 and weights.dropped == -5.5 and weights.bookmark == 3.0
    assert ConfidenceWeights.from_mapping(weights.as_dict()) == weights
    assert ConfidenceWeights.from_mapping(None) == ConfidenceWeights()


@pytest.mark.parametrize("values", [
    {"likes": 1.0},
    {"like": "4"},
    {"like": True},
    {"view": float("nan")},
    {"dropped": 2.0},
    {"bookmark": -1.0},
    {"rating_center": 7.0},
    ["like", 1.0],
])
def test_weights_from_mapping_rejects_bad_values(values):
    with pytest.raises(ValueError):
        ConfidenceWeights.from_mapping(values)


def test_confidence_formula():
    assert W.confidence(liked=True, bookmarked=True, status="FINISHED", episodes_viewed=20) == \
        pytest.approx(4 + 3 + 2 + math.log1p(20))
    assert W.confidence(rating=1.0) == pytest.approx(-3.0)
    assert W.confidence(rating=5.0, status="PLANNED") == pytest.approx(3.0 + 0.5)
    assert W.confidence(liked=True, rating=5.0, status="DROPPED") == -3.0
    table = W.status_table()
    assert table[1 + 2 + 4 * 2] == pytest.approx(W.confidence(liked=True, bookmarked=True,
                                                              status="FINISHED"))


# --- hand-written rows -----------------------------------------------------------------
def _member(cur, name, status="ACTIVE"):
    cur.execute("INSERT INTO member (uid, user_name, email, nick_name, status) "
                "VALUES (UUID(), %s, %s, %s, %s)", (name, f"{name}@x.invalid", name, status))
    return cur.lastrowid


def _episodes(cur, webtoon_id):
    cur.execute("SELECT e.id FROM webtoon_episode e JOIN webtoon_season s ON s.id = e.season_id "
                "WHERE e.webtoon_id = %s ORDER BY s.season_no, e.episode_no", (webtoon_id,))
    return [r[0] for r in cur.fetchall()]


def _interaction(cur, member, webtoon, liked=0, bookmarked=0, status="WATCHING", at=NOW):
    cur.execute("INSERT INTO member_webtoon_interaction (member_id, webtoon_id, liked, "
                "bookmarked, status, created_at, updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                (member, webtoon, liked, bookmarked, status, at, at))


def _review(cur, member, webtoon, rating, at=NOW):
    cur.execute("INSERT INTO webtoon_review (member_id, webtoon_id, rating, created_at, "
                "updated_at) VALUES (%s, %s, %s, %s, %s)", (member, webtoon, rating, at, at))


def _views(cur, member, episode_ids, at=NOW):
    cur.executemany("INSERT INTO webtoon_episode_view_history (member_id, episode_id, "
                    "episode_viewed_at) VALUES (%s, %s, %s)",
                    [(member, e, at) for e in episode_ids])


@pytest.fixture
def hand_written(mariadb_url):
    """Five webtoons, four members with crafted activity (see the assertions)."""
    webtoons = seed_catalogue(mariadb_url, 5, seed=1, min_episodes=4, max_episodes=4)
    conn = connect(mariadb_url)
    with conn.cursor() as cur:
        a, b, c = _member(cur, "a"), _member(cur, "b"), _member(cur, "c")
        inactive = _member(cur, "gone", status="WITHDRAWN")
        w0, w1, w2, w3, w4 = webtoons
        e0 = _episodes(cur, w0)
        # a: liked + bookmarked + finished + 3 distinct episodes (one read twice).
        _interaction(cur, a, w0, liked=1, bookmarked=1, status="FINISHED")
        _views(cur, a, [e0[0], e0[1], e0[2], e0[2]])
        # a: dropped overrides a like and a 5-star review.
        _interaction(cur, a, w1, liked=1, status="DROPPED")
        _review(cur, a, w1, "5.0")
        # a: a lone 1-star review.
        _review(cur, a, w2, "1.0")
        # b: two episodes viewed, no interaction row; a neutral review; a planned title;
        # an old interaction outside a `since` window.
        _views(cur, b, e0[:2])
        _review(cur, b, w3, "3.0")
        _interaction(cur, b, w4, status="PLANNED")
        _interaction(cur, b, w2, liked=1, at=NOW - timedelta(days=30))
        # not ACTIVE: no row at all.
        _interaction(cur, inactive, w0, liked=1)
    conn.commit()
    conn.close()
    return {"url": mariadb_url, "webtoons": webtoons, "a": a, "b": b, "c": c,
            "inactive": inactive}


def test_load_activity_confidences_from_hand_written_rows(hand_written):
    h = hand_written
    activity = load_activity(h["url"], W)
    w0, w1, w2, w3, w4 = h["webtoons"]
    assert list(activity.member_ids) == [h["a"], h["b"], h["c"]]
    assert list(activity.webtoon_ids) == sorted(h["webtoons"])
    assert activity.user_items.shape == (3, 5)
    assert activity.user_items.has_canonical_format

    def value(member, webtoon):
        return activity.user_items[activity.member_index(member),
                                   activity.webtoon_index(webtoon)]

    assert value(h["a"], w0) == pytest.approx(4 + 3 + 2 + math.log1p(3), rel=1e-6)
    assert value(h["a"], w1) == pytest.approx(-3.0)
    assert value(h["a"], w2) == pytest.approx(-3.0)
    assert value(h["b"], w0) == pytest.approx(math.log1p(2), rel=1e-6)
    assert value(h["b"], w4) == pytest.approx(0.5)
    assert value(h["b"], w2) == pytest.approx(4 + 1)
    # A neutral 3.0 review carries nothing: no stored zero.
    assert value(h["b"], w3) == 0
    assert activity.user_items.nnz == 6
    assert activity.row(h["c"]).nnz == 0
    with pytest.raises(KeyError):
        activity.member_index(h["inactive"])
    assert activity.member_indices([h["inactive"], h["b"]]).tolist() == [-1, 1]


def test_load_activity_columns_and_window(hand_written):
    h = hand_written
    w0, w1, w2, w3, w4 = h["webtoons"]
    conn = connect(h["url"])
    try:
        columns = [w4, w0, 999_999]
        activity = load_activity(conn, W, webtoon_ids=columns)
        assert activity.webtoon_ids.tolist() == columns
        row_b = activity.row(h["b"]).toarray().ravel()
        assert row_b == pytest.approx([0.5, math.log1p(2), 0.0], rel=1e-6)

        recent = load_activity(conn, W, since=NOW - timedelta(days=1))
        assert recent.row(h["b"])[0, recent.webtoon_index(w2)] == 0
        assert recent.member_ids.tolist() == [h["a"], h["b"], h["c"]]
        history = member_history(conn, h["b"], W, recent)
        assert (history != recent.row(h["b"])).nnz == 0
    finally:
        conn.close()
    with pytest.raises(ValueError):
        load_activity(h["url"], W, webtoon_ids=[w0, w0])


# --- seeded members --------------------------------------------------------------------
def _snapshot(url):
    """The seeded activity keyed by user_name (ids differ between seedings)."""
    conn = connect(url)
    with conn.cursor() as cur:
        cur.execute("SELECT uid, user_name, email, gender, birthday FROM member ORDER BY user_name")
        members = cur.fetchall()
        cur.execute("SELECT m.user_name, i.webtoon_id, i.liked, i.bookmarked, i.status, "
                    "i.last_read_episode, i.created_at, i.updated_at FROM "
                    "member_webtoon_interaction i JOIN member m ON m.id = i.member_id "
                    "ORDER BY 1, 2")
        interactions = cur.fetchall()
        cur.execute("SELECT m.user_name, v.episode_id, v.episode_viewed_at FROM "
                    "webtoon_episode_view_history v JOIN member m ON m.id = v.member_id "
                    "ORDER BY 1, 2")
        views = cur.fetchall()
        cur.execute("SELECT m.user_name, r.webtoon_id, r.rating FROM webtoon_review r "
                    "JOIN member m ON m.id = r.member_id ORDER BY 1, 2")
        reviews = cur.fetchall()
    conn.close()
    return members, interactions, views, reviews


def test_seed_members_is_deterministic_idempotent_and_realistic(mariadb_url):
    webtoons = seed_catalogue(mariadb_url, 60, seed=5)
    assert seed_catalogue(mariadb_url, 60, seed=5) == webtoons
    first = seed_members(mariadb_url, 120, seed=5, now=NOW, days=30)
    assert first.inserted == 120 and first.skipped == 0 and len(first.member_ids) == 120
    snapshot = _snapshot(mariadb_url)

    again = seed_members(mariadb_url, 120, seed=5, now=NOW, days=30)
    assert again.inserted == 0 and again.skipped == 120
    assert again.member_ids == first.member_ids
    assert _snapshot(mariadb_url) == snapshot

    conn = connect(mariadb_url)
    with conn.cursor() as cur:
        cur.execute("DELETE FROM member")  # cascades to their activity
    conn.commit()
    conn.close()
    reseeded = seed_members(mariadb_url, 120, seed=5, now=NOW, days=30)
    assert reseeded.inserted == 120
    assert _snapshot(mariadb_url) == snapshot

    members, interactions, views, reviews = snapshot
    assert len({m[0] for m in members}) == 120
    assert first.interactions == len(interactions) and first.views == len(views)
    statuses = {row[4] for row in interactions}
    assert {"WATCHING", "FINISHED", "DROPPED"} <= statuses
    assert first.cold_start > 0 and first.likes > 0 and first.dropped > 0
    ratings = {float(r[2]) for r in reviews}
    assert ratings <= {x / 2 for x in range(2, 11)} and len(ratings) > 3
    stamps = [row[6] for row in interactions] + [row[7] for row in interactions] + \
        [v[2] for v in views]
    assert min(stamps) >= NOW - timedelta(days=30) and max(stamps) <= NOW

    activity = load_activity(mariadb_url, W)
    assert activity.user_items.shape == (120, 60)
    per_member = np.diff(activity.user_items.indptr)
    assert (per_member < 3).any() and per_member.max() > 3 * max(1, np.median(per_member))
    assert (activity.user_items.data < 0).any() and (activity.user_items.data > 0).mean() > 0.7


def test_member_history_equals_load_activity_row_and_follows_changes(mariadb_url):
    seed_catalogue(mariadb_url, 40, seed=2)
    summary = seed_members(mariadb_url, 60, seed=2, now=NOW)
    # Autocommit off, as a long-lived serving connection may be: every read must still
    # see activity committed since by other connections.
    conn = connect(mariadb_url)
    try:
        activity = load_activity(conn, W)
        assert not conn.server_status & SERVER_STATUS.SERVER_STATUS_IN_TRANS
        for member in summary.member_ids[:25]:
            history = member_history(conn, member, W, activity)
            assert history.shape == (1, 40)
            assert (history != activity.row(member)).nnz == 0

        member = summary.member_ids[0]
        webtoon = next(int(w) for w in activity.webtoon_ids
                       if activity.row(member)[0, activity.webtoon_index(int(w))] == 0)
        assert add_interaction(mariadb_url, member, webtoon, liked=True, viewed_episodes=2,
                               at=NOW) == 2
        column = activity.webtoon_index(webtoon)
        after = member_history(conn, member, W, activity)
        assert after[0, column] == pytest.approx(4 + 1 + math.log1p(2), rel=1e-6)
        assert activity.row(member)[0, column] == 0  # the loaded matrix is a snapshot

        add_interaction(mariadb_url, member, webtoon, status="DROPPED", at=NOW)
        assert member_history(conn, member, W, activity)[0, column] == pytest.approx(-3.0)
        assert load_activity(conn, W).row(member)[0, column] == pytest.approx(-3.0)
    finally:
        conn.close()


def test_add_interaction_upserts_and_validates(mariadb_url):
    w0, w1 = seed_catalogue(mariadb_url, 2, seed=9, min_episodes=3, max_episodes=3)
    conn = connect(mariadb_url, autocommit=True)
    try:
        with conn.cursor() as cur:
            member = _member(cur, "m")
        assert add_interaction(conn, member, w0, viewed_episodes=2, at=NOW) == 2
        assert add_interaction(conn, member, w0, viewed_episodes=5, at=NOW) == 1  # 1 left
        add_interaction(conn, member, w0, bookmarked=True, at=NOW)
        add_interaction(conn, member, w0, rating=4.5, at=NOW)
        add_interaction(conn, member, w0, rating=2.0, at=NOW)
        add_interaction(conn, member, w1, rating=1.0, at=NOW)  # a review alone
        with conn.cursor() as cur:
            cur.execute("SELECT liked, bookmarked, status, last_read_episode "
                        "FROM member_webtoon_interaction WHERE member_id = %s", (member,))
            assert cur.fetchall() == ((0, 1, "WATCHING", 3),)
            cur.execute("SELECT webtoon_id, rating FROM webtoon_review WHERE member_id = %s "
                        "ORDER BY webtoon_id", (member,))
            assert [(w, float(r)) for w, r in cur.fetchall()] == [(w0, 2.0), (w1, 1.0)]
        activity = load_activity(conn, W)
        row = activity.row(member).toarray().ravel()
        assert row[activity.webtoon_index(w0)] == pytest.approx(
            W.confidence(bookmarked=True, status="WATCHING", episodes_viewed=3, rating=2.0))
        assert row[activity.webtoon_index(w1)] == pytest.approx(-3.0)

        for bad in ({"status": "LOVED"}, {"rating": 0.5}, {"rating": 3.3},
                    {"viewed_episodes": -1}):
            with pytest.raises(ValueError):
                add_interaction(conn, member, w0, **bad)
        with pytest.raises(ValueError, match="no member"):
            add_interaction(conn, 987_654, w0, liked=True)
    finally:
        conn.close()


def test_item_feature_triples_returns_genres_tags_authors(mariadb_url):
    webtoons = seed_catalogue(mariadb_url, 30, seed=4)
    order = list(reversed(webtoons))
    triples = item_feature_triples(mariadb_url, order)
    assert {kind for _, kind, _ in triples} == {"genre", "tag", "author"}
    assert triples == sorted(triples, key=lambda t: (t[0], ["genre", "tag", "author"].index(
        t[1]), t[2]))
    conn = connect(mariadb_url)
    with conn.cursor() as cur:
        for index, webtoon in enumerate(order[:5]):
            cur.execute("SELECT g.name FROM webtoon_genre wg JOIN genre g ON g.id = wg.genre_id "
                        "WHERE wg.webtoon_id = %s", (webtoon,))
            genres = sorted(r[0] for r in cur.fetchall())
            cur.execute("SELECT a.name FROM webtoon_author wa JOIN author a "
                        "ON a.id = wa.author_id WHERE wa.webtoon_id = %s", (webtoon,))
            authors = sorted(r[0] for r in cur.fetchall())
            mine = [(k, v) for i, k, v in triples if i == index]
            assert [v for k, v in mine if k == "genre"] == genres and genres
            assert [v for k, v in mine if k == "author"] == authors and authors
    conn.close()
    # Authors write several titles, so the author feature links webtoons.
    author_counts = {}
    for _, kind, value in triples:
        if kind == "author":
            author_counts[value] = author_counts.get(value, 0) + 1
    assert max(author_counts.values()) > 1
    assert item_feature_triples(mariadb_url, []) == []
