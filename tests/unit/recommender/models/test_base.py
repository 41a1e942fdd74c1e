"""The shared ranking: block top-n and the threaded batch loop of every model."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from recommender.models import base
from recommender.models.content import ContentModel


def test_block_top_n_equals_a_full_sort_without_ties():
    rng = np.random.default_rng(3)
    scores = rng.standard_normal((37, 5000)).astype(np.float32)
    scores[0, :4990] = -np.inf  # fewer eligible webtoons than asked for
    ids, best = base.top_n_by_blocks(scores, 20)
    order = np.argsort(-scores, axis=1)[:, :20]
    np.testing.assert_array_equal(ids[1:], order[1:])
    np.testing.assert_array_equal(best[1:], np.take_along_axis(scores, order, 1)[1:])
    assert list(ids[0, 10:]) == [-1] * 10 and set(ids[0, :10]) == set(range(4990, 5000))


def test_batches_spread_over_threads_rank_like_one_row_at_a_time(monkeypatch):
    rng = np.random.default_rng(4)
    n_items = 700
    triples = [(i, "genre", f"g{i % 9}") for i in range(n_items)]
    triples += [(i, "author", f"a{rng.integers(150)}") for i in range(n_items)]
    model = ContentModel.from_triples(n_items, triples)
    history = sp.random(900, n_items, density=0.01, format="csr", random_state=5,
                        dtype=np.float32)
    history.data = (history.data * 5).astype(np.float32)
    model.fit(history)
    monkeypatch.setattr(base, "available_cores", lambda: 4)
    ids, scores = model.recommend_history(history, n=10)  # 900 rows: 4 threads
    for row in (0, 255, 256, 511, 899):
        one_ids, one_scores = model.recommend_history(history[row], n=10)
        np.testing.assert_allclose(scores[row], one_scores[0], rtol=1e-5)
        assert not set(ids[row]) & set(history[row].indices), "seen webtoons filtered"
