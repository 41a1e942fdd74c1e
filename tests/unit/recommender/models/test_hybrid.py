from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp

from recommender.models.base import NotFittedError, Recommender, as_csr, top_n
from recommender.models.content import ContentModel
from recommender.models.hybrid import HybridModel
from recommender.models.popularity import PopularityModel

# Catalogue: 0-11 romance (0-5 by author 1, 6-11 by author 2), 12-23 action (authors 3
# and 4), 24-27 drama (author 5), 28 a new romance title by author 1, 29 a new title
# without features. 28 and 29 have no interactions at all.
N_ITEMS = 30
NEW_ROMANCE = 28
N_FACTORS = 4


def catalogue() -> list[tuple[int, str, str]]:
    triples = []
    for item in range(28):
        genre = "ROMANCE" if item < 12 else "ACTION" if item < 24 else "DRAMA"
        triples += [(item, "genre", genre), (item, "author", str(1 + item // 6))]
    triples += [(NEW_ROMANCE, "genre", "ROMANCE"), (NEW_ROMANCE, "author", "1")]
    return triples


def activity() -> sp.csr_matrix:
    """Members 0-19 read romance, 20-39 action, 3-6 drama too; action is the more
    popular genre.

    Member 0 has 12 positive interactions, member 1 two, member 2 none.
    """
    rng = np.random.default_rng(7)
    dense = np.zeros((40, N_ITEMS), dtype=np.float32)
    dense[0, :12] = 1.0
    dense[1, [0, 1]] = 1.0
    for member in range(3, 20):
        dense[member, rng.choice(12, 3, replace=False)] = 1.0
    dense[3:7, 24:28] = 1.0
    for member in range(20, 40):
        dense[member, 12 + rng.choice(12, 6, replace=False)] = 1.0
    return sp.csr_matrix(dense)


class FixedFactors(Recommender):
    """Test double of a collaborative model: fixed factors, fold-in as a sum of factors."""

    algorithm = "fixed"

    def __init__(self, user_factors: np.ndarray, item_factors: np.ndarray) -> None:
        self.user_factors = user_factors.astype(np.float32)
        self.item_factors = item_factors.astype(np.float32)
        self.n_items = len(item_factors)
        self.scored_rows = 0

    def fit(self, user_items: sp.csr_matrix) -> FixedFactors:
        as_csr(user_items, self.n_items)
        return self

    def _scores(self, user_ids: np.ndarray | None, user_items: sp.csr_matrix) -> np.ndarray:
        self.scored_rows += user_items.shape[0]
        if user_ids is None:
            users = np.asarray(user_items @ self.item_factors)
        else:
            users = self.user_factors[user_ids]
        return (users @ self.item_factors.T).astype(np.float32)

    def similar_items(self, item_ids: np.ndarray, n: int = 10) -> tuple[np.ndarray, np.ndarray]:
        scores = self.item_factors[item_ids] @ self.item_factors.T
        scores[np.arange(len(item_ids)), item_ids] = -np.inf
        return top_n(scores.astype(np.float32), n)

    def params(self) -> dict[str, Any]:
        return {}

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {"user_factors": self.user_factors, "item_factors": self.item_factors}

    @classmethod
    def from_arrays(cls, params: dict[str, Any], arrays: dict[str, np.ndarray]) -> FixedFactors:
        return cls(arrays["user_factors"], arrays["item_factors"])


def collaborative() -> FixedFactors:
    # Random factors: the collaborative order has nothing to do with genres or
    # popularity, so following it is visible. New titles have zero factors.
    rng = np.random.default_rng(3)
    items = rng.standard_normal((N_ITEMS, N_FACTORS))
    items[[28, 29]] = 0.0
    return FixedFactors(rng.standard_normal((40, N_FACTORS)), items)


def make_model(**blend: Any) -> HybridModel:
    model = HybridModel(
        collaborative(),
        ContentModel.from_triples(N_ITEMS, catalogue()),
        PopularityModel(),
        **blend,
    )
    return model.fit(activity())


def ranking(scores: np.ndarray, seen: np.ndarray) -> list[int]:
    scores = scores.astype(np.float64).copy()
    scores[seen] = -np.inf
    order = np.argsort(-scores, kind="stable")
    return [int(i) for i in order if np.isfinite(scores[i])]


def test_new_webtoons_are_the_ones_nobody_liked() -> None:
    model = make_model()
    assert np.flatnonzero(model.new_items).tolist() == [28, 29]
    assert model.collaborative_share(activity()[[0, 1, 2]]).tolist() == pytest.approx(
        [0.9, 0.18, 0.0]
    )


def test_member_without_interactions_gets_popularity() -> None:
    model = make_model()
    matrix = activity()
    popular, _ = model.popularity.recommend(np.array([2]), matrix[2], n=10)
    before = model.collaborative.scored_rows
    ids, _ = model.recommend(np.array([2]), matrix[2], n=10)
    assert ids[0].tolist() == popular[0].tolist()
    assert model.collaborative.scored_rows == before  # cold rows skip the collaborative model
    fresh, _ = model.recommend_history(sp.csr_matrix((1, N_ITEMS), dtype=np.float32), n=10)
    assert fresh[0].tolist() == popular[0].tolist()


def test_member_with_few_interactions_gets_content() -> None:
    model = make_model()
    matrix = activity()
    # Member 1 liked two romance titles by author 1; action is more popular overall.
    assert set(model.popularity.recommend(np.array([1]), matrix[1], n=5)[0][0]) <= set(
        range(12, 24)
    )
    ids, _ = model.recommend(np.array([1]), matrix[1], n=5)
    romance = set(range(12)) | {NEW_ROMANCE}
    assert set(ids[0, :3]) <= romance
    assert len(set(ids[0]) & romance) >= 4  # the most popular hit may still get in


def test_member_with_many_interactions_follows_collaborative() -> None:
    matrix = activity()
    seen = matrix[0].indices
    cf_scores = collaborative()._scores(np.array([0]), matrix[0])[0]
    cf_order = [i for i in ranking(cf_scores, seen) if i not in (28, 29)]

    pure = make_model(cf_weight=1.0)
    pure_order = ranking(pure._scores(np.array([0]), matrix[0])[0], seen)
    assert [i for i in pure_order if i not in (28, 29)] == cf_order

    blended = make_model()
    ids, _ = blended.recommend(np.array([0]), matrix[0], n=5)
    assert len(set(ids[0]) & set(cf_order[:5])) >= 4


def test_new_webtoon_reaches_members_whose_taste_matches() -> None:
    model = make_model()
    matrix = activity()
    # Member 0 read all romance, author 1 included: the new romance title by author 1
    # has no collaborative score at all, yet comes near the top through its content.
    cf_ids, _ = model.collaborative.recommend(np.array([0]), matrix[0], n=5)
    assert NEW_ROMANCE not in cf_ids[0]
    ids, _ = model.recommend(np.array([0]), matrix[0], n=3)
    assert NEW_ROMANCE in ids[0]
    # An action reader does not get it.
    action_reader = sp.csr_matrix(np.r_[np.zeros(12), np.ones(12), np.zeros(6)].reshape(1, -1))
    ids, _ = model.recommend_history(action_reader, n=10)
    assert NEW_ROMANCE not in ids[0]


def test_mixed_batch_matches_one_row_at_a_time() -> None:
    model = make_model()
    matrix = activity()
    members = np.array([2, 0, 1, 25, 2])
    batch = model._scores(members, matrix[members])
    for row, member in enumerate(members):
        single = model._scores(np.array([member]), matrix[[member]])
        assert np.allclose(batch[row], single[0], atol=1e-6)


def test_history_path_folds_in() -> None:
    model = make_model()
    history = sp.csr_matrix(activity()[[0]])
    before = model.collaborative.scored_rows
    by_history = model.recommend_history(history, n=5)
    assert model.collaborative.scored_rows == before + 1
    # The double's fold-in differs from member 0's stored factors, so answers may too;
    # both stay valid, ranked lists of unseen titles.
    assert not set(by_history[0][0]) & set(history.indices)
    assert np.all(np.diff(by_history[1][0]) <= 1e-7)


def test_similar_items_new_webtoons_use_content() -> None:
    model = make_model()
    ids, _ = model.similar_items(np.array([3, NEW_ROMANCE, 29]), n=5)
    assert ids[0].tolist() == model.collaborative.similar_items(np.array([3]), 5)[0][0].tolist()
    assert set(ids[1]) == {0, 1, 2, 3, 4}
    assert ids[2].tolist() == [-1] * 5


def test_round_trip() -> None:
    model = make_model(full_weight_at=5, cf_weight=0.8, content_weight=0.4)
    params = json.loads(json.dumps(model.params()))
    arrays = model.to_arrays()
    assert {"new_items", "cf.item_factors", "content.features.data", "pop.item_scores"} <= set(
        arrays
    )
    restored = HybridModel.from_arrays(params, arrays, FixedFactors)
    assert restored.params() == model.params()
    matrix = activity()
    assert np.array_equal(
        restored.recommend(np.arange(40), matrix)[0], model.recommend(np.arange(40), matrix)[0]
    )
    items = np.arange(N_ITEMS)
    assert np.array_equal(restored.similar_items(items)[0], model.similar_items(items)[0])


def test_from_arrays_rejects_bad_input() -> None:
    model = make_model()
    params, arrays = model.params(), model.to_arrays()
    with pytest.raises(ValueError, match="cf_class"):
        HybridModel.from_arrays(params, arrays)
    with pytest.raises(ValueError, match="algorithm"):
        HybridModel.from_arrays(params, arrays, PopularityModel)
    with pytest.raises(ValueError, match="disagree"):
        HybridModel.from_arrays(params, {**arrays, "new_items": np.zeros(3, bool)}, FixedFactors)


def test_bad_params_and_unfitted() -> None:
    parts = (collaborative(), ContentModel.from_triples(N_ITEMS, catalogue()), PopularityModel())
    for blend, message in (
        ({"full_weight_at": 0}, "full_weight_at"),
        ({"cf_weight": 1.5}, "cf_weight"),
        ({"content_weight": -0.1}, "content_weight"),
    ):
        with pytest.raises(ValueError, match=message):
            HybridModel(*parts, **blend)
    model = HybridModel(*parts)
    with pytest.raises(NotFittedError):
        model.similar_items(np.array([0]))
    with pytest.raises(ValueError, match="fit_components"):
        model.fit(activity(), fit_components=False)  # popularity was never fitted
    with pytest.raises(ValueError, match="columns"):
        model.fit(sp.csr_matrix((2, N_ITEMS - 1), dtype=np.float32))
