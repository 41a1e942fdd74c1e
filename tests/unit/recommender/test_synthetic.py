"""The in-memory synthetic activity: deterministic, realistic shape, taste and style signal."""

from __future__ import annotations

import numpy as np
import pytest

from recommender.activity import ConfidenceWeights
from recommender.synthetic import (
    MAX_STYLES,
    _catalogue_styles,
    synthetic_activity,
    synthetic_matrix,
)

MEMBERS, WEBTOONS, INTERACTIONS = 5_000, 2_000, 150_000


@pytest.fixture(scope="module")
def activity():
    return synthetic_activity(MEMBERS, WEBTOONS, INTERACTIONS, seed=11)


def test_same_seed_same_matrix_other_seed_other_matrix(activity):
    again = synthetic_matrix(MEMBERS, WEBTOONS, INTERACTIONS, seed=11)
    other = synthetic_matrix(MEMBERS, WEBTOONS, INTERACTIONS, seed=12)
    assert np.array_equal(again.indptr, activity.user_items.indptr)
    assert np.array_equal(again.indices, activity.user_items.indices)
    assert np.array_equal(again.data, activity.user_items.data)
    assert not np.array_equal(other.indices, activity.user_items.indices)
    again = synthetic_activity(MEMBERS, WEBTOONS, INTERACTIONS, seed=11)
    assert np.array_equal(again.webtoon_styles, activity.webtoon_styles)
    assert np.array_equal(again.member_styles, activity.member_styles)


def test_exact_count_no_duplicates_canonical_float32(activity):
    m = activity.user_items
    assert m.shape == (MEMBERS, WEBTOONS)
    assert m.nnz == INTERACTIONS
    assert m.dtype == np.float32
    assert m.has_canonical_format
    rows = np.repeat(np.arange(MEMBERS), np.diff(m.indptr))
    keys = rows.astype(np.int64) * WEBTOONS + m.indices
    assert np.unique(keys).size == INTERACTIONS
    assert (m.data != 0).all()


def test_popularity_is_power_law(activity):
    readers = np.sort(np.bincount(activity.user_items.indices, minlength=WEBTOONS))[::-1]
    share = readers / readers.sum()
    # Uniform popularity gives the top 1% of webtoons about 1% of the readers and the top
    # 10% about 10%; here the hits hold far more (capped by each hit's reachable members).
    assert share[: WEBTOONS // 100].sum() > 0.12
    assert share[: WEBTOONS // 10].sum() > 0.4
    assert share[-WEBTOONS // 2:].sum() < 0.25


def test_member_activity_is_long_tailed_with_cold_starts(activity):
    per_member = np.diff(activity.user_items.indptr)
    assert (per_member == 0).mean() > 0.02
    assert per_member.max() > 8 * np.median(per_member)
    assert per_member.max() <= WEBTOONS // 2


def test_members_read_their_favourite_genres(activity):
    m = activity.user_items
    rows = np.repeat(np.arange(MEMBERS), np.diff(m.indptr))
    genres = activity.webtoon_genres[m.indices]
    in_taste = (activity.member_genres[rows] == genres[:, None]).any(axis=1)
    # What a member with the same tastes would hit reading by popularity alone.
    genre_mass = np.bincount(activity.webtoon_genres, weights=activity.popularity)
    favourites = activity.member_genres[rows]
    chance = np.where(favourites >= 0, genre_mass[np.maximum(favourites, 0)], 0).sum(axis=1)
    assert in_taste.mean() > 0.6
    assert in_taste.mean() > 2 * chance.mean()
    # Favourite-genre titles get more confidence (liked, finished, rated higher).
    assert m.data[in_taste].mean() > m.data[~in_taste].mean() + 1.0


def _member_rows(activity):
    m = activity.user_items
    return np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))


def test_styles_nest_in_genres_and_members_pick_styles_of_their_genres(activity):
    styles = activity.webtoon_styles
    # Every style belongs to exactly one genre, and every genre has several styles.
    pairs = np.unique(np.stack([styles, activity.webtoon_genres]), axis=1)
    assert np.unique(pairs[0]).size == pairs.shape[1]
    assert pairs.shape[1] >= 5 * np.unique(activity.webtoon_genres).size
    genre_of_style = np.full(styles.max() + 1, -1)
    genre_of_style[pairs[0]] = pairs[1]
    favourites = activity.member_styles
    assert favourites.shape == (MEMBERS, MAX_STYLES)
    assert ((favourites >= 0).sum(axis=1) >= 1).all()
    chosen = favourites >= 0
    member_of = np.repeat(np.arange(MEMBERS), chosen.sum(axis=1))
    assert (activity.member_genres[member_of] == genre_of_style[favourites[chosen]][:, None]
            ).any(axis=1).all()


def test_members_read_their_favourite_styles_well_above_chance(activity):
    m = activity.user_items
    rows = _member_rows(activity)
    in_style = (activity.member_styles[rows] == activity.webtoon_styles[m.indices][:, None]
                ).any(axis=1)
    # By popularity and genre alone, a member's styles get about their popularity share
    # of the member's favourite-genre reads.
    style_mass = np.bincount(activity.webtoon_styles, weights=activity.popularity)
    genre_mass = np.bincount(activity.webtoon_genres, weights=activity.popularity)
    favourites = np.sort(activity.member_styles[rows], axis=1)
    favourites[:, 1:][favourites[:, 1:] == favourites[:, :-1]] = -1  # a repeat counts once
    favourite_mass = np.where(favourites >= 0, style_mass[np.maximum(favourites, 0)], 0)
    genres = activity.member_genres[rows]
    genre_total = np.where(genres >= 0, genre_mass[np.maximum(genres, 0)], 0).sum(axis=1)
    chance = favourite_mass.sum(axis=1) / genre_total
    in_genre = (genres == activity.webtoon_genres[m.indices][:, None]).any(axis=1)
    assert in_style.sum() / in_genre.sum() > 2 * chance.mean()
    # Without the style signal, reads fall on favourite styles about as often as chance.
    plain = synthetic_activity(MEMBERS, WEBTOONS, INTERACTIONS, seed=11, style_share=0.0)
    p = plain.user_items
    prow = _member_rows(plain)
    plain_in_style = (plain.member_styles[prow] == plain.webtoon_styles[p.indices][:, None]
                      ).any(axis=1)
    assert in_style.mean() > 2 * plain_in_style.mean()


def test_popular_titles_still_reach_most_active_members(activity):
    m = activity.user_items
    hits = np.argsort(activity.popularity)[::-1][: WEBTOONS // 100]
    active = np.diff(m.indptr) >= 10
    read_a_hit = np.asarray((m[:, hits] != 0).sum(axis=1)).ravel() > 0
    assert read_a_hit[active].mean() > 0.5


def test_catalogue_styles_follow_tags_then_authors_with_a_hidden_part():
    n = 400
    rng = np.random.default_rng(0)
    ids = np.arange(1000, 1000 + n)
    genres = rng.integers(1, 4, n)
    tags = np.where(rng.random(n) < 0.7, rng.integers(1, 6, n), -1)
    authors = np.where(rng.random(n) < 0.9, rng.integers(1, 40, n), -1)
    styles = _catalogue_styles(7, ids, genres, tags, authors, styles_per_genre=10)
    assert np.array_equal(styles, _catalogue_styles(7, ids, genres, tags, authors, 10))
    assert not np.array_equal(styles, _catalogue_styles(8, ids, genres, tags, authors, 10))
    assert (styles >= 0).all() and np.unique(styles).size > 15
    # Titles of one genre sharing a tag (or, untagged, an author) span at most two
    # styles; which of the two is hidden.
    for g in range(1, 4):
        for key, mask in ((tags, tags >= 0), (authors, (tags < 0) & (authors >= 0))):
            for value in np.unique(key[mask & (genres == g)]):
                same = mask & (genres == g) & (key == value)
                assert np.unique(styles[same]).size <= 2
    no_genre = _catalogue_styles(7, ids[:3], np.array([-1, 2, 2]), tags[:3], authors[:3], 10)
    assert no_genre[0] == -1 and (no_genre[1:] >= 0).all()


def test_dropped_titles_are_negative_with_the_dropped_weight(activity):
    data = activity.user_items.data
    negative = data[data < 0]
    assert 0.02 < negative.size / data.size < 0.2
    assert np.isclose(negative, ConfidenceWeights().dropped).mean() > 0.5


def test_weights_change_values_not_structure():
    plain = synthetic_matrix(500, 300, 5_000, seed=3)
    weighted = synthetic_matrix(500, 300, 5_000, seed=3,
                                weights=ConfidenceWeights(like=10.0, dropped=-1.0))
    assert np.array_equal(plain.indices, weighted.indices)
    assert weighted.data.max() > plain.data.max()
    dropped = plain.data == np.float32(ConfidenceWeights().dropped)
    assert dropped.any()
    assert np.all(weighted.data[dropped] == np.float32(-1.0))


@pytest.mark.parametrize("args, options", [
    ((0, 10, 10, 1), {}),
    ((10, 10, -1, 1), {}),
    ((10, 10, 90, 1), {}),  # more than half the catalogue per member
    ((10, 10, 5, 1), {"taste_share": 1.5}),
    ((10, 10, 5, 1), {"n_genres": 0}),
    ((10, 10, 5, 1), {"style_share": -0.1}),
    ((10, 10, 5, 1), {"styles_per_genre": 0}),
    ((10.5, 10, 5, 1), {}),
])
def test_bad_parameters_raise_value_error(args, options):
    with pytest.raises(ValueError):
        synthetic_matrix(*args, **options)


def test_empty_activity_is_allowed():
    m = synthetic_matrix(10, 10, 0, seed=1)
    assert m.shape == (10, 10) and m.nnz == 0
