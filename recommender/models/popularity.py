"""Popularity and trending: one list for everyone, the fallback when nothing else knows.

A webtoon's score comes from the activity matrix's positive confidences (a dropped title
neither adds nor subtracts): their sum (``count="confidence"``), or the number of members
who like it (``count="members"``). With ``half_life_days`` set and interaction ages given
to ``fit``, every interaction is weighted by ``0.5 ** (age / half_life_days)``: an
interaction of today counts 1, one of a half-life ago 1/2, so the list follows what is
read now (trending) rather than what was read over the years.

``similar_items`` answers with the most popular *other* webtoons, the same list for every
webtoon: this model knows nothing about pairs of titles, and co-occurrence is what the
collaborative model already learns (better, and at any catalogue size).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from recommender.models.base import NotFittedError, Recommender, as_csr, top_n

COUNTS = ("confidence", "members")


class PopularityModel(Recommender):
    """Most popular (or trending) webtoons, minus what each member has seen."""

    algorithm = "popularity"

    def __init__(self, count: str = "confidence", half_life_days: float | None = None) -> None:
        if count not in COUNTS:
            raise ValueError(f"count must be one of {COUNTS}, got {count!r}")
        if half_life_days is not None and not (
            np.isfinite(half_life_days) and half_life_days > 0
        ):
            raise ValueError(f"half_life_days must be a positive number, got {half_life_days}")
        self.count = count
        self.half_life_days = None if half_life_days is None else float(half_life_days)
        self.item_scores: np.ndarray | None = None

    def fit(
        self, user_items: Any, interaction_age_days: Any | None = None
    ) -> PopularityModel:
        """Scores every webtoon from ``user_items``.

        ``interaction_age_days`` (trending only) is a sparse matrix of the same shape
        holding each interaction's age in days; an absent entry means age 0 (today), so
        explicit zeros may be dropped. Entries where ``user_items`` has none are ignored.
        """
        user_items = as_csr(user_items)
        # copy=True: eliminate_zeros below rewrites indices in place, never the caller's.
        weights = sp.csr_matrix(user_items, dtype=np.float64, copy=True)
        weights.data = np.maximum(weights.data, 0.0)
        if self.count == "members":
            weights.data = (weights.data > 0).astype(np.float64)
        weights.eliminate_zeros()
        if interaction_age_days is not None:
            weights = self._decayed(weights, interaction_age_days)
        self.item_scores = np.asarray(weights.sum(axis=0), dtype=np.float32).ravel()
        self.n_items = user_items.shape[1]
        return self

    def _decayed(self, weights: sp.csr_matrix, interaction_age_days: Any) -> sp.csr_matrix:
        if self.half_life_days is None:
            raise ValueError("interaction_age_days given but half_life_days is not set")
        if not sp.issparse(interaction_age_days):
            raise ValueError("interaction_age_days must be a sparse matrix")
        ages = sp.csr_matrix(interaction_age_days, dtype=np.float64, copy=True)
        if ages.shape != weights.shape:
            raise ValueError(
                f"interaction_age_days has shape {ages.shape}, user_items {weights.shape}"
            )
        if ages.nnz and (not np.all(np.isfinite(ages.data)) or ages.data.min() < 0):
            raise ValueError("interaction ages must be finite and >= 0 days")
        # decay - 1 is 0 at age 0, so weights * (1 + (decay - 1)) treats an absent age as
        # today without needing the two matrices to share their sparsity pattern.
        ages.data = np.exp2(-ages.data / self.half_life_days) - 1.0
        return sp.csr_matrix(weights + weights.multiply(ages))

    def _fitted_scores(self) -> np.ndarray:
        if self.item_scores is None:
            raise NotFittedError("PopularityModel is not fitted")
        return self.item_scores

    def _scores(self, user_ids: np.ndarray | None, user_items: sp.csr_matrix) -> np.ndarray:
        scores = self._fitted_scores()
        return np.repeat(scores[np.newaxis, :], user_items.shape[0], axis=0)

    def similar_items(self, item_ids: Any, n: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """The ``n`` most popular other webtoons, for every webtoon (see the module doc).

        Webtoons nobody liked are not "popular": a row may end in -1 ids.
        """
        scores = self._fitted_scores()
        item_ids = np.asarray(item_ids, dtype=np.int64).reshape(-1)
        if item_ids.size and (item_ids.min() < 0 or item_ids.max() >= self.n_items):
            raise ValueError(f"item ids must lie in 0..{self.n_items - 1}")
        n = max(0, min(n, self.n_items - 1))
        eligible = np.where(scores > 0, scores, -np.inf).astype(np.float32)
        # The overall top n + 1 holds every item's answer: drop the item itself if there.
        best_ids, best_scores = top_n(eligible[np.newaxis, :], n + 1)
        best_ids = np.broadcast_to(best_ids, (len(item_ids), n + 1))
        best_scores = np.broadcast_to(best_scores, (len(item_ids), n + 1))
        # A stable sort on "is the item itself" moves it last, keeping the others' order.
        order = np.argsort(best_ids == item_ids[:, np.newaxis], axis=1, kind="stable")[:, :n]
        ids = np.take_along_axis(best_ids, order, axis=1)
        out = np.take_along_axis(best_scores, order, axis=1)
        return ids, out

    def params(self) -> dict[str, Any]:
        return {"count": self.count, "half_life_days": self.half_life_days}

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {"item_scores": self._fitted_scores()}

    @classmethod
    def from_arrays(
        cls, params: dict[str, Any], arrays: dict[str, np.ndarray]
    ) -> PopularityModel:
        if "item_scores" not in arrays:
            raise ValueError("popularity model arrays lack 'item_scores'")
        scores = np.asarray(arrays["item_scores"], dtype=np.float32)
        if scores.ndim != 1:
            raise ValueError(f"item_scores must be 1-D, got shape {scores.shape}")
        model = cls(
            count=params.get("count", "confidence"), half_life_days=params.get("half_life_days")
        )
        model.item_scores = scores
        model.n_items = len(scores)
        return model
