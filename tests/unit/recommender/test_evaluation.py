"""Offline evaluation: .inter reading, the per-member split, hand-computed metrics."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp

from recommender.evaluation import (
    evaluate_inter_file,
    ranking_metrics,
    read_inter,
    train_test_split,
)
from recommender.models.base import Recommender


class FixedScores(Recommender):
    """Scores every member the same fixed way: webtoon i scores -i (0 best)."""

    algorithm = "fixed"

    def __init__(self, n_items: int) -> None:
        self.n_items = n_items

    def fit(self, user_items: sp.csr_matrix) -> FixedScores:
        self.n_items = user_items.shape[1]
        return self

    def _scores(self, user_ids, user_items) -> np.ndarray:
        return np.tile(-np.arange(self.n_items, dtype=np.float32), (user_items.shape[0], 1))

    def similar_items(self, item_ids, n=10):
        raise NotImplementedError

    def params(self) -> dict[str, Any]:
        return {}

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {}

    @classmethod
    def from_arrays(cls, params, arrays):
        raise NotImplementedError


def test_metrics_on_a_hand_computed_case():
    # Member 0: top-3 = [0, 1, 2], test {1, 5}: one hit at rank 2.
    # Member 1: seen 0, so top-3 = [1, 2, 3], test {1, 2, 3, 4}: hits at ranks 1-3.
    # Member 2: no test item -> not evaluated.
    train = sp.csr_matrix((np.ones(2), ([1, 2], [0, 0])), shape=(3, 6))
    test = sp.csr_matrix((np.ones(6), ([0, 0, 1, 1, 1, 1], [1, 5, 1, 2, 3, 4])), shape=(3, 6))
    metrics = ranking_metrics(FixedScores(6), train, test, k=3)
    d = 1 / np.log2(np.arange(2, 5))
    assert metrics["members"] == 2
    assert metrics["precision"] == pytest.approx((1 + 3) / (2 + 3))
    assert metrics["map"] == pytest.approx(((1 / 2) / 2 + 3 / 3) / 2)
    assert metrics["ndcg"] == pytest.approx((d[1] / (d[0] + d[1]) + 1.0) / 2)
    assert metrics["recall"] == pytest.approx((1 / 2 + 3 / 4) / 2)
    assert metrics["coverage"] == pytest.approx(4 / 6)  # webtoons 0, 1, 2, 3


def test_metrics_without_seen_filtering_count_seen_webtoons():
    train = sp.csr_matrix((np.ones(1), ([0], [0])), shape=(1, 4))
    test = sp.csr_matrix((np.ones(1), ([0], [0])), shape=(1, 4))
    assert ranking_metrics(FixedScores(4), train, test, k=2, filter_seen=False)["ndcg"] == 1
    assert ranking_metrics(FixedScores(4), train, test, k=2)["ndcg"] == 0


def test_metrics_reject_bad_input():
    matrix = sp.csr_matrix((2, 3))
    with pytest.raises(ValueError, match="no interactions"):
        ranking_metrics(FixedScores(3), matrix, matrix)
    with pytest.raises(ValueError, match="shapes"):
        ranking_metrics(FixedScores(3), matrix, sp.csr_matrix((3, 3)))
    with pytest.raises(ValueError, match="k must"):
        ranking_metrics(FixedScores(3), matrix, matrix, k=0)


def test_split_properties():
    rng = np.random.default_rng(3)
    dense = (rng.random((200, 50)) < 0.2) * 2.0
    dense[0] = 0
    dense[1] = 0
    dense[1, 3] = 2.0
    matrix = sp.csr_matrix(dense, dtype=np.float32)
    train, test = train_test_split(matrix, 0.2, seed=42)
    assert (train + test - matrix).nnz == 0
    assert train.multiply(test).nnz == 0
    counts = np.diff(matrix.indptr)
    test_counts = np.diff(test.indptr)
    expected = np.where(counts >= 2,
                        np.clip(np.floor(counts * 0.2 + 0.5), 1, counts - 1), 0)
    np.testing.assert_array_equal(test_counts, expected)
    assert test_counts[0] == 0 and test_counts[1] == 0 and np.diff(train.indptr)[1] == 1
    again, _ = train_test_split(matrix, 0.2, seed=42)
    assert (again != train).nnz == 0
    other, _ = train_test_split(matrix, 0.2, seed=7)
    assert (other != train).nnz > 0
    with pytest.raises(ValueError):
        train_test_split(matrix, 1.0)


def write(tmp_path, text: str):
    path = tmp_path / "x.inter"
    path.write_text(text, encoding="utf-8")
    return path


def test_read_inter_maps_tokens_in_order_and_keeps_largest_duplicate(tmp_path):
    path = write(tmp_path, (
        "timestamp:float\titem_id:token\tuser_id:token\trating:float\textra:token\n"
        "1\tThe Movie (1999)\tu1\t4\tx\n"
        "2\tOther\tu2\t2\tx\n"
        "\n"
        "3\tThe Movie (1999)\tu2\t5\tx\r\n"
        "4\tOther\tu2\t3\tx"
    ))
    binary = read_inter(path)
    assert binary.user_tokens == ["u1", "u2"]
    assert binary.item_tokens == ["The Movie (1999)", "Other"]
    np.testing.assert_array_equal(binary.user_items.toarray(), [[1, 0], [1, 1]])
    rated = read_inter(path, values="rating", confidence=2.0)
    np.testing.assert_array_equal(rated.user_items.toarray(), [[8, 0], [10, 6]])
    liked = read_inter(path, min_rating=4)
    np.testing.assert_array_equal(liked.user_items.toarray(), [[1, 0], [1, 0]])


@pytest.mark.parametrize("text, message", [
    ("user_id\titem_id:token\nu\ti\n", "line 1: header field"),
    ("user_id:token\tfoo:token\nu\ti\n", "no item_id"),
    ("user_id:token\titem_id:token\nu\ti\nu\ti\tz\n", "line 3: 3 fields"),
    ("user_id:token\titem_id:token\trating:float\nu\ti\t1\nu\tj\tfive\n",
     "line 3: rating 'five'"),
    ("user_id:token\titem_id:token\nu\t\n", "line 2: empty"),
    ("user_id:token\titem_id:token\n", "no interactions"),
])
def test_read_inter_bad_files(tmp_path, text, message):
    with pytest.raises(ValueError, match=message):
        read_inter(write(tmp_path, text), values="rating" if "rating" in text else "binary")


def test_read_inter_needs_a_rating_column_for_ratings(tmp_path):
    with pytest.raises(ValueError, match="no rating column"):
        read_inter(write(tmp_path, "user_id:token\titem_id:token\nu\ti\n"), min_rating=3)


def test_evaluate_inter_file(tmp_path):
    lines = ["user_id:token\titem_id:token"]
    lines += [f"u{u}\tw{i}" for u in range(20) for i in range(10) if (u + i) % 3]
    metrics = evaluate_inter_file(write(tmp_path, "\n".join(lines)), FixedScores(0), k=5)
    assert metrics["members"] == 20 and metrics["webtoons"] == 10
    assert metrics["train_interactions"] + metrics["test_interactions"] == len(lines) - 1
    assert 0 <= metrics["ndcg"] <= 1 and math.isfinite(metrics["fit_seconds"])
