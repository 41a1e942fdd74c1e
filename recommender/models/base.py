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
for a batch) and the base class does top-N, seen-item filtering and batching (batches
spread over a thread per core: the dense work releases the GIL), so every model filters
and ranks the same way. ``_scores`` must therefore be safe to call from several threads.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

# Rows scored at once by recommend(): bounds the dense score block to
# BATCH x n_items float32 (1024 x 20k = 80 MB).
BATCH_ROWS = 1024
# Rows per task when recommend() spreads batches over the cores (numpy and BLAS
# release the GIL in the dense work): 256 x 20k float32 = 20 MB per thread.
THREAD_ROWS = 256


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


# Columns per block when pre-selecting top-n candidates by block maxima.
TOP_N_BLOCK = 128


def padded_width(n_items: int) -> int:
    return -(-n_items // TOP_N_BLOCK) * TOP_N_BLOCK


def top_n_padded(padded: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``top_n`` of score rows whose width is a multiple of ``TOP_N_BLOCK`` (padding
    columns hold -inf), reading every score only once.

    Columns are split into groups (column ``j`` in group ``j % groups``: strided, so the
    group maxima are one vectorised pass). The ``n`` groups with the highest maxima hold
    a top ``n``: a score elsewhere is at most its group's maximum, which is at most each
    of those ``n`` maxima; and every top-``n`` score is >= the lowest of them. So only
    the few scores of those groups above that threshold are sorted. Same answers as
    ``top_n`` up to the order of exactly tied scores (here: lower id first).
    """
    rows, width = padded.shape
    groups = width // TOP_N_BLOCK
    if n >= groups // 2:
        return top_n(padded, n)
    if rows == 1:
        return _top_n_padded_row(padded[0], n)
    grouped = padded.reshape(rows, TOP_N_BLOCK, groups)
    maxima = grouped.max(axis=1)
    chosen = np.argpartition(maxima, groups - n, axis=1)[:, groups - n:]
    threshold = np.take_along_axis(maxima, chosen, axis=1).min(axis=1)
    # (rows, n, TOP_N_BLOCK): candidates[r, k, j] is column j * groups + chosen[r, k].
    candidates = grouped[np.arange(rows)[:, None], :, chosen]
    member, group, offset = np.nonzero(candidates >= threshold[:, None, None])
    value = candidates[member, group, offset]
    column = offset * groups + chosen[member, group]
    order = np.lexsort((column, -value, member))
    member, column, value = member[order], column[order], value[order]
    rank = np.arange(len(member)) - np.searchsorted(member, member)
    keep = rank < n
    ids = np.empty((rows, n), dtype=np.int64)
    best = np.empty((rows, n), dtype=np.float32)
    ids[member[keep], rank[keep]] = column[keep]
    best[member[keep], rank[keep]] = value[keep]
    ids[best == -np.inf] = -1
    return ids, best


def _top_n_padded_row(padded: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``top_n_padded`` of one row, in fewer numpy calls (the fold-in path's budget)."""
    groups = len(padded) // TOP_N_BLOCK
    grouped = padded.reshape(TOP_N_BLOCK, groups)
    maxima = grouped.max(axis=0)
    chosen = np.argpartition(maxima, groups - n)[groups - n:]
    candidates = grouped[:, chosen]
    offset, group = np.nonzero(candidates >= maxima[chosen].min())
    value = candidates[offset, group]
    column = offset * groups + chosen[group]
    order = np.lexsort((column, -value))[:n]
    ids, best = column[order], value[order]
    ids[best == -np.inf] = -1
    return ids[None, :], best[None, :]


def top_n_by_blocks(scores: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``top_n`` by ``top_n_padded`` for any score rows (copied into a padded block first)."""
    rows, cols = scores.shape
    padded = np.full((rows, padded_width(cols)), -np.inf, dtype=np.float32)
    padded[:, :cols] = scores
    return top_n_padded(padded, min(n, cols))


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


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
        self._check_fitted_items()
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
        self._check_fitted_items()
        history = as_csr(history, self.n_items)
        return self._ranked(None, history, n, filter_seen, batch_rows)

    def _check_fitted_items(self) -> None:
        # Before fit a model knows no webtoons: say so, rather than that the history's
        # columns do not match a model of 0 webtoons.
        if not self.n_items:
            raise NotFittedError(f"{type(self).__name__} is not fitted")

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
        step = max(1, min(batch_rows, THREAD_ROWS))

        def rank(start: int) -> None:
            stop = min(rows, start + step)
            batch = user_items[start:stop]
            block = self._scores(None if user_ids is None else user_ids[start:stop], batch)
            if filter_seen:
                mask_seen(block, batch)
            ids[start:stop], scores[start:stop] = top_n_by_blocks(block, n)

        threads = min(available_cores(), -(-rows // step))
        if threads <= 1:
            for start in range(0, rows, step):
                rank(start)
        else:
            with ThreadPoolExecutor(threads) as pool:
                for _ in pool.map(rank, range(0, rows, step)):
                    pass
        return ids, scores
