from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recommender.models.content import (
    DEFAULT_KIND_WEIGHTS,
    ContentModel,
    item_feature_matrix,
)

# 0-5 romance by author 1 (0-2 also tagged 회귀), 6-11 romance by author 2,
# 12-17 action by author 3, 18-23 action by author 4, 24 has no features.
N_ITEMS = 25


def catalogue() -> list[tuple[int, str, str]]:
    triples = []
    for item in range(24):
        triples.append((item, "genre", "ROMANCE" if item < 12 else "ACTION"))
        triples.append((item, "author", str(1 + item // 6)))
    triples += [(item, "tag", "회귀") for item in range(3)]
    return triples


@pytest.fixture
def model() -> ContentModel:
    return ContentModel.from_triples(N_ITEMS, catalogue())


def history(rows: list[dict[int, float]]) -> sp.csr_matrix:
    matrix = sp.lil_matrix((len(rows), N_ITEMS), dtype=np.float32)
    for row, items in enumerate(rows):
        for item, confidence in items.items():
            matrix[row, item] = confidence
    return matrix.tocsr()


def test_feature_matrix_names_weights_and_duplicates() -> None:
    triples = [
        (0, "genre", "ROMANCE"),
        (0, "genre", "ROMANCE"),
        (0, "author", 42),
        (1, "tag", "회귀"),
    ]
    matrix, names = item_feature_matrix(3, triples)
    assert names == ["author:42", "genre:ROMANCE", "tag:회귀"]
    assert matrix.shape == (3, 3)
    dense = matrix.toarray()
    assert dense[0].tolist() == pytest.approx([1.5, 1.0, 0.0])
    assert dense[1].tolist() == pytest.approx([0.0, 0.0, DEFAULT_KIND_WEIGHTS["tag"]])
    assert dense[2].tolist() == [0.0, 0.0, 0.0]

    custom, _ = item_feature_matrix(1, [(0, "genre", "X")], {"genre": 2.0})
    assert custom.toarray().tolist() == [[2.0]]


@pytest.mark.parametrize(
    ("triples", "message"),
    [
        ([(0, "studio", "x")], "unknown feature kind"),
        ([(5, "genre", "x")], "outside"),
        ([("0", "genre", "x")], "integer"),
        ([(0, "genre")], "triples are"),
    ],
)
def test_feature_matrix_rejects_bad_triples(triples: list, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        item_feature_matrix(2, triples)


def test_feature_matrix_rejects_bad_weights() -> None:
    with pytest.raises(ValueError, match="positive"):
        item_feature_matrix(1, [], {"genre": 0.0})


def test_item_vectors_are_tfidf_and_unit_length(model: ContentModel) -> None:
    norms = np.sqrt(np.asarray(model.item_vectors.multiply(model.item_vectors).sum(axis=1)))
    assert norms[:24].ravel() == pytest.approx(np.ones(24), abs=1e-6)
    assert norms[24] == 0.0
    # Smooth idf: the tag (3 titles) weighs more than the genre (12) that is its kind's peer.
    names = model.feature_names
    assert names is not None
    idf = dict(zip(names, model.idf_weights, strict=True))
    assert idf["tag:회귀"] == pytest.approx(np.log(26 / 4) + 1, rel=1e-6)
    assert idf["genre:ROMANCE"] == pytest.approx(np.log(26 / 13) + 1, rel=1e-6)
    assert sp.issparse(model.item_vectors)


def test_similar_items_same_author_then_same_genre(model: ContentModel) -> None:
    ids, scores = model.similar_items(np.array([3, 14]), n=10)
    assert set(ids[0, :5]) == {0, 1, 2, 4, 5}  # same author and genre
    assert set(ids[0, 5:10]) <= set(range(6, 12))  # then the other romance titles
    assert set(ids[1, :5]) == {12, 13, 15, 16, 17}
    assert 3 not in ids[0] and 14 not in ids[1]
    assert np.all(np.diff(scores, axis=1) <= 1e-7)


def test_similar_items_without_shared_features_are_padded(model: ContentModel) -> None:
    ids, scores = model.similar_items(np.array([24, 0]), n=15)
    assert ids[0].tolist() == [-1] * 15
    assert np.all(np.isneginf(scores[0]))
    # Only the 11 other romance titles share a feature with title 0.
    assert set(ids[1, :11]) == set(range(1, 12))
    assert ids[1, 11:].tolist() == [-1] * 4


def test_similar_items_in_blocks_match_one_block(model: ContentModel) -> None:
    items = np.arange(N_ITEMS)
    one_ids, one_scores = model.similar_items(items, n=5)
    ids, scores = model.similar_items(items, n=5, batch_rows=4)
    assert np.array_equal(ids, one_ids)
    assert np.allclose(scores, one_scores)


def test_similar_items_rejects_unknown_items(model: ContentModel) -> None:
    with pytest.raises(ValueError, match="item ids"):
        model.similar_items(np.array([N_ITEMS]))


def test_romance_history_gets_romance(model: ContentModel) -> None:
    ids, _ = model.recommend_history(history([{0: 3.0, 7: 1.0, 8: 2.0}]), n=9)
    assert set(ids[0]) <= set(range(12))
    assert not {0, 7, 8} & set(ids[0])


def test_dropped_title_pushes_its_features_down(model: ContentModel) -> None:
    liked = {0: 1.0, 12: 1.0}
    rows = history([liked, {**liked, 18: -1.0}])
    scores = model._scores(None, rows)
    # Author 4's other titles fall below the romance ones once one of theirs is dropped.
    assert np.all(scores[1, 19:24] < scores[0, 19:24])
    assert scores[1, 19:24].max() < scores[1, 1:6].min()
    ids, _ = model.recommend_history(rows, n=8)
    assert not set(ids[1]) & set(range(18, 24))


def test_fitted_members_and_histories_score_alike(model: ContentModel) -> None:
    rows = history([{0: 1.0}, {13: 2.0, 20: 1.0}, {}])
    assert model.fit(rows) is model
    by_id = model.recommend(np.arange(3), rows, n=5)
    by_history = model.recommend_history(rows, n=5)
    assert np.array_equal(by_id[0], by_history[0])
    # An empty history has a zero profile: every score 0, nothing to prefer.
    assert np.all(by_history[1][2] == 0)


def test_fit_rejects_other_catalogue(model: ContentModel) -> None:
    with pytest.raises(ValueError, match="columns"):
        model.fit(sp.csr_matrix((2, N_ITEMS + 1), dtype=np.float32))


def test_constructor_rejects_bad_features() -> None:
    with pytest.raises(ValueError, match="non-negative"):
        ContentModel(sp.csr_matrix(np.array([[1.0, -1.0]])))
    with pytest.raises(ValueError, match="feature names"):
        ContentModel(sp.csr_matrix(np.eye(2)), ["only-one"])
    with pytest.raises(ValueError, match="matrix"):
        ContentModel([[1, 0]])


def test_round_trip(model: ContentModel) -> None:
    restored = ContentModel.from_arrays(model.params(), model.to_arrays())
    assert restored.feature_names == model.feature_names
    rows = history([{0: 1.0, 13: 1.0}, {20: 2.0}])
    assert np.array_equal(restored.recommend_history(rows)[0], model.recommend_history(rows)[0])
    assert np.array_equal(
        restored.similar_items(np.arange(N_ITEMS))[0], model.similar_items(np.arange(N_ITEMS))[0]
    )
    with pytest.raises(ValueError, match="lack"):
        ContentModel.from_arrays({}, {"features.data": np.ones(1)})


def test_no_idf_keeps_kind_weights_only() -> None:
    model = ContentModel.from_triples(2, [(0, "genre", "A"), (0, "author", "1")], idf=False)
    row = model.item_vectors.toarray()[0]
    assert sorted(row) == pytest.approx(sorted(np.array([1.5, 1.0]) / np.hypot(1.5, 1.0)))
    assert model.params() == {"idf": False}
