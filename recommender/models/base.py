"""The one estimator surface every recommender model offers.

Rows are members, columns webtoons, both as contiguous indices (``recommender.activity``
maps them to database ids). ``user_items`` is a CSR matrix of *confidences*: a positive
value says "this member likes this webtoon, this sure"; a negative one says "this member
does not like it, this sure" (a dropped title); absent means unknown. This is the
convention of Hu, Koren and Volinsky's implicit-feedback ALS, and of ``implicit``.

- ``fit(user_items)`` learns from the whole matrix.
- ``recommend(user_ids, user_items)`` answers for members the model was fitted on;
  ``user_items`` holds those members' rows (current history, used to filter what they
  have seen and, for models without per-member state, to score).
- ``recommend_history(history)`` answers for anyone from a history alone: a new member,
  or a member whose activity changed since the fit (ALS folds the history in).
- ``similar_items(item_ids)`` gives the nearest webtoons of each webtoon.
- ``to_arrays`` / ``from_arrays`` turn a fitted model into named numpy arrays and back,
  which is how model versions are stored.

Scoring is batched: subclasses implement ``_scores`` (dense member-by-webtoon scores
for a batch) and the base class does top-N, seen-item filtering and batching, so
every model filters and ranks the same way.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

# Rows scored at once by recommend(): bounds the dense score block to
# BATCH x n_items float32 (1024 x 20k = 80 MB).
BATCH_ROWS = 1024


class NotFittedError(RuntimeError):
    """The model was asked for answers before ``fit``."""


def as_csr(user_items: Any, n_items: int | None = None) -> sp.csr_matrix:
    """``user_items`` as a canonical float32 CSR matrix (sorted, no duplicates)."""
    matrix = sp.csr_matrix(user_items, dtype=np.float32)
    if n_items is not None and matrix.shape[1] != n_items:
        raise ValueError(f"user_items has {matrix.shape[1]} columns, the model {n_items}")
    if not matrix.has_canonical_format:
        matrix = matrix.copy()
        matrix.sum_duplicates()
    return matrix


def top_n(scores: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the column indices of the ``n`` highest scores, best first, and the scores.

    ``-inf`` marks columns that must not be returned; a row with fewer than ``n``
    eligible columns gets ``-1`` ids (score ``-inf``) at its end.
    """
    rows, cols = scores.shape
    n = min(n, cols)
    if n <= 0:
        return np.empty((rows, 0), np.int64), np.empty((rows, 0), np.float32)
    if n < cols:
        part = np.argpartition(-scores, n - 1, axis=1)[:, :n]
    else:
        part = np.broadcast_to(np.arange(cols), (rows, cols)).copy()
    part_scores = np.take_along_axis(scores, part, axis=1)
    order = np.argsort(-part_scores, axis=1, kind="stable")
    ids = np.take_along_axis(part, order, axis=1).astype(np.int64)
    best = np.take_along_axis(part_scores, order, axis=1).astype(np.float32)
    ids[~np.isfinite(best) & (best < 0)] = -1
    return ids, best


def mask_seen(scores: np.ndarray, user_items: sp.csr_matrix) -> None:
    """Set the scores of the webtoons each row's history holds (liked or dropped) to -inf."""
    indptr, indices = user_items.indptr, user_items.indices
    rows = np.repeat(np.arange(user_items.shape[0]), np.diff(indptr))
    scores[rows, indices] = -np.inf


class Recommender(ABC):
    """Base class: ``fit``, ``recommend``, ``recommend_history``, ``similar_items``."""

    #: The name stored with model versions and used by experiments' variants.
    algorithm: ClassVar[str]

    n_items: int = 0

    @abstractmethod
    def fit(self, user_items: sp.csr_matrix) -> Recommender:
        """Learn from a members x webtoons confidence matrix; returns ``self``."""

    @abstractmethod
    def _scores(self, user_ids: np.ndarray | None, user_items: sp.csr_matrix) -> np.ndarray:
        """Dense float32 scores (len(rows) x n_items) for a batch of rows.

        ``user_ids`` are the fitted members' indices, or None when only the history is
        known (the model must then answer from ``user_items`` alone).
        """

    @abstractmethod
    def similar_items(self, item_ids: np.ndarray, n: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """Per item, the ``n`` most similar other items (ids, scores), best first."""

    @abstractmethod
    def params(self) -> dict[str, Any]:
        """The constructor's parameters, JSON-serialisable."""

    @abstractmethod
    def to_arrays(self) -> dict[str, np.ndarray]:
        """The fitted state as named arrays (see ``from_arrays``)."""

    @classmethod
    @abstractmethod
    def from_arrays(cls, params: dict[str, Any], arrays: dict[str, np.ndarray]) -> Recommender:
        """A fitted model back from ``params()`` and ``to_arrays()``."""

    def recommend(
        self,
        user_ids: np.ndarray,
        user_items: sp.csr_matrix,
        n: int = 10,
        filter_seen: bool = True,
        batch_rows: int = BATCH_ROWS,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``n`` for fitted members; ``user_items`` rows align with ``user_ids``."""
        user_ids = np.asarray(user_ids, dtype=np.int64).reshape(-1)
        user_items = as_csr(user_items, self.n_items)
        if user_items.shape[0] != len(user_ids):
            raise ValueError(
                f"{len(user_ids)} user ids but {user_items.shape[0]} history rows"
            )
        return self._ranked(user_ids, user_items, n, filter_seen, batch_rows)

    def recommend_history(
        self,
        history: sp.csr_matrix,
        n: int = 10,
        filter_seen: bool = True,
        batch_rows: int = BATCH_ROWS,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``n`` from histories alone (one row per member), without a refit."""
        history = as_csr(history, self.n_items)
        return self._ranked(None, history, n, filter_seen, batch_rows)

    def _ranked(
        self,
        user_ids: np.ndarray | None,
        user_items: sp.csr_matrix,
        n: int,
        filter_seen: bool,
        batch_rows: int,
    ) -> tuple[np.ndarray, np.ndarray]:
        rows = user_items.shape[0]
        n = min(n, self.n_items)
        ids = np.empty((rows, n), dtype=np.int64)
        scores = np.empty((rows, n), dtype=np.float32)
        for start in range(0, rows, batch_rows):
            stop = min(rows, start + batch_rows)
            batch = user_items[start:stop]
            block = self._scores(None if user_ids is None else user_ids[start:stop], batch)
            if filter_seen:
                mask_seen(block, batch)
            ids[start:stop], scores[start:stop] = top_n(block, n)
        return ids, scores
