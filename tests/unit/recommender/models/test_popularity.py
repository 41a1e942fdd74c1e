from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recommender.models.base import NotFittedError
from recommender.models.popularity import PopularityModel

# 5 members x 5 webtoons. Webtoon 0: three members, small confidences; webtoon 1: one
# member, a big confidence; webtoon 2: two members; webtoon 3: dropped only;
# webtoon 4: nobody.
ACTIVITY = sp.csr_matrix(
    np.array(
        [
            [1.0, 0.0, 2.0, -1.0, 0.0],
            [1.0, 8.0, 0.0, -2.0, 0.0],
            [1.0, 0.0, 2.0, 0.0, 0.0],
            [0.0, 0.0, 0.0, 0.0, 0.0],
            [0.0, 0.0, 0.0, -1.0, 0.0],
        ],
        dtype=np.float32,
    )
)


def test_confidence_sum_ignores_dropped() -> None:
    model = PopularityModel().fit(ACTIVITY)
    assert model.item_scores.tolist() == [3.0, 8.0, 4.0, 0.0, 0.0]


def test_member_count() -> None:
    before = ACTIVITY.toarray()
    model = PopularityModel(count="members").fit(ACTIVITY)
    assert model.item_scores.tolist() == [3.0, 1.0, 2.0, 0.0, 0.0]
    assert np.array_equal(ACTIVITY.toarray(), before)  # the caller's matrix is untouched


def test_same_list_for_everyone_minus_seen() -> None:
    model = PopularityModel().fit(ACTIVITY)
    ids, scores = model.recommend(np.arange(5), ACTIVITY, n=3)
    assert ids[3].tolist() == [1, 2, 0]  # no history: the plain list
    assert scores[3].tolist() == [8.0, 4.0, 3.0]
    assert ids[0].tolist()[:2] == [1, 4]  # 0, 2 liked and 3 dropped are seen
    assert ids[1].tolist()[:2] == [2, 4]
    unfiltered, _ = model.recommend(np.arange(5), ACTIVITY, n=3, filter_seen=False)
    assert all(row == [1, 2, 0] for row in unfiltered.tolist())
    new_member, _ = model.recommend_history(sp.csr_matrix((1, 5), dtype=np.float32), n=3)
    assert new_member[0].tolist() == [1, 2, 0]


def test_trending_decays_old_activity() -> None:
    # Webtoon 0: three members 60 days ago; webtoon 1: two members today.
    activity = sp.csr_matrix(
        np.array([[1, 0], [1, 0], [1, 1], [0, 1]], dtype=np.float32)
    )
    ages = sp.csr_matrix(np.array([[60, 0], [60, 0], [60, 0], [0, 0]], dtype=np.float64))
    assert PopularityModel().fit(activity).item_scores.argmax() == 0
    trending = PopularityModel(half_life_days=7).fit(activity, ages)
    assert trending.item_scores[0] == pytest.approx(3 * 0.5 ** (60 / 7), rel=1e-5)
    # Ages of 0 are absent from the sparse matrix and count as today.
    assert trending.item_scores[1] == pytest.approx(2.0)
    assert trending.recommend_history(sp.csr_matrix((1, 2), dtype=np.float32))[0][0, 0] == 1


def test_half_life_halves_weight() -> None:
    activity = sp.csr_matrix(np.array([[4.0, 4.0]], dtype=np.float32))
    ages = sp.csr_matrix(np.array([[30.0, 0.0]]))
    model = PopularityModel(count="confidence", half_life_days=30).fit(activity, ages)
    assert model.item_scores.tolist() == pytest.approx([2.0, 4.0])
    members = PopularityModel(count="members", half_life_days=30).fit(activity, ages)
    assert members.item_scores.tolist() == pytest.approx([0.5, 1.0])


@pytest.mark.parametrize(
    ("model", "ages", "message"),
    [
        (PopularityModel(), sp.csr_matrix((5, 5)), "half_life_days is not set"),
        (PopularityModel(half_life_days=7), sp.csr_matrix((4, 5)), "shape"),
        (PopularityModel(half_life_days=7), np.zeros((5, 5)), "sparse"),
        (PopularityModel(half_life_days=7), sp.csr_matrix(-np.eye(5)), ">= 0"),
    ],
)
def test_bad_ages(model: PopularityModel, ages: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        model.fit(ACTIVITY, ages)


def test_bad_params_and_unfitted() -> None:
    with pytest.raises(ValueError, match="count"):
        PopularityModel(count="views")
    with pytest.raises(ValueError, match="half_life_days"):
        PopularityModel(half_life_days=0)
    with pytest.raises(NotFittedError):
        PopularityModel().similar_items(np.array([0]))
    with pytest.raises(NotFittedError):
        PopularityModel().recommend(np.array([0]), ACTIVITY[:1])


def test_similar_items_are_the_most_popular_others() -> None:
    model = PopularityModel().fit(ACTIVITY)
    ids, scores = model.similar_items(np.array([1, 0, 4]), n=3)
    assert ids[0].tolist() == [2, 0, -1]  # nobody liked 3 or 4: not popular
    assert ids[1].tolist() == [1, 2, -1]
    assert ids[2].tolist() == [1, 2, 0]
    assert scores[2].tolist() == [8.0, 4.0, 3.0]
    with pytest.raises(ValueError, match="item ids"):
        model.similar_items(np.array([5]))


def test_round_trip() -> None:
    model = PopularityModel(count="members", half_life_days=14.0).fit(ACTIVITY)
    params = model.params()
    assert params == {"count": "members", "half_life_days": 14.0}
    restored = PopularityModel.from_arrays(params, model.to_arrays())
    assert restored.n_items == 5
    assert np.array_equal(
        restored.recommend(np.arange(5), ACTIVITY)[0], model.recommend(np.arange(5), ACTIVITY)[0]
    )
    with pytest.raises(ValueError, match="item_scores"):
        PopularityModel.from_arrays(params, {})
