"""Offline evaluation: RecBole ``.inter`` files, the per-member split, ranking metrics.

Every model is measured by the same code through the ``Recommender`` surface
(``recommend(user_ids, train_rows, n)``), the way ``implicit.evaluation`` measures every
``implicit`` model, so numbers are comparable across algorithms and with ``implicit``.

- ``read_inter`` reads a RecBole atomic ``.inter`` file into an ``Interactions``
  (member tokens, webtoon tokens, a members x webtoons CSR matrix).
- ``train_test_split`` holds out a random share of each member's interactions.
- ``ranking_metrics`` scores a fitted model's top-k against the held-out part.
- ``evaluate_inter_file`` chains the three for the ``recommender evaluate`` command.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from recommender.models.base import Recommender, as_csr

# Members scored per recommend() call while evaluating.
EVAL_BATCH = 1024


@dataclass(frozen=True)
class Interactions:
    """Members x webtoons interactions read from a file.

    Row ``u`` of ``user_items`` is the member ``user_tokens[u]``, column ``i`` the webtoon
    ``item_tokens[i]``; tokens are numbered in order of first appearance in the file.
    """

    user_tokens: list[str]
    item_tokens: list[str]
    user_items: sp.csr_matrix

    @property
    def n_interactions(self) -> int:
        return int(self.user_items.nnz)


def _parse_header(header: str, path: Path) -> dict[str, int]:
    """Column positions by field name (``user_id``, ``item_id``, ``rating``...)."""
    columns: dict[str, int] = {}
    for position, field in enumerate(header.split("\t")):
        name, sep, kind = field.strip().partition(":")
        if not sep or not name or not kind:
            raise ValueError(
                f"{path}: line 1: header field {field!r} is not 'name:type' "
                "(a RecBole atomic file starts with e.g. 'user_id:token\\titem_id:token')"
            )
        columns[name] = position
    for needed in ("user_id", "item_id"):
        if needed not in columns:
            raise ValueError(f"{path}: line 1: header has no {needed} column: {header!r}")
    return columns


def _floats(values: list[bytes], lines: np.ndarray, name: str, path: Path) -> np.ndarray:
    try:
        return np.array(values).astype(np.float32)
    except ValueError:
        for value, line in zip(values, lines, strict=True):
            try:
                float(value)
            except ValueError:
                raise ValueError(
                    f"{path}: line {line}: {name} {value.decode(errors='replace')!r} "
                    "is not a number"
                ) from None
        raise


def _tokens(index: dict[bytes, int], path: Path) -> list[str]:
    try:
        return [token.decode("utf-8") for token in index]
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: a token is not UTF-8 ({exc})") from None


def read_inter(
    path: str | Path,
    min_rating: float | None = None,
    values: str = "binary",
    confidence: float = 1.0,
) -> Interactions:
    """Read a RecBole atomic ``.inter`` file (tab-separated, ``name:type`` header).

    Columns may come in any order and extra columns are ignored; ``user_id`` and
    ``item_id`` are required, ``rating`` is required by ``min_rating`` or
    ``values="rating"``. Blank lines are skipped.

    - ``min_rating``: keep only rows whose rating is ``>= min_rating``.
    - ``values``: ``"binary"`` (every kept row is one interaction of value
      ``confidence``) or ``"rating"`` (the value is ``confidence * rating``).
      A member-webtoon pair appearing twice keeps its largest value.
    """
    if values not in ("binary", "rating"):
        raise ValueError(f"values must be 'binary' or 'rating', not {values!r}")
    path = Path(path)
    raw = path.read_bytes().replace(b"\r\n", b"\n")
    header_bytes, _, body = raw.partition(b"\n")
    try:
        header = header_bytes.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: line 1: header is not UTF-8 ({exc})") from None
    columns = _parse_header(header, path)
    n_fields = header.count("\t") + 1
    need_rating = min_rating is not None or values == "rating"
    if need_rating and "rating" not in columns:
        raise ValueError(f"{path}: line 1: header has no rating column")
    if body and not body.endswith(b"\n"):
        body += b"\n"

    # Field counts are checked on the raw bytes (one pass, vectorised), so the split
    # below can be one flat str.split instead of a million small per-line lists.
    chars = np.frombuffer(body, dtype=np.uint8)
    ends = np.flatnonzero(chars == 10)
    starts = np.concatenate([[0], ends[:-1] + 1]).astype(np.int64)
    tabs = np.flatnonzero(chars == 9)
    tabs_per_line = np.searchsorted(tabs, ends) - np.searchsorted(tabs, starts)
    blank = ends == starts
    line_numbers = np.flatnonzero(~blank) + 2
    wrong = np.flatnonzero(~blank & (tabs_per_line != n_fields - 1))
    if len(wrong):
        line = wrong[0]
        raise ValueError(
            f"{path}: line {line + 2}: {tabs_per_line[line] + 1} fields, "
            f"the header has {n_fields}"
        )
    if blank.any():
        body = b"\n".join(line for line in body.split(b"\n") if line) + b"\n"
    n_rows = len(line_numbers)
    if n_rows == 0:
        raise ValueError(f"{path}: no interactions after the header")
    flat = body[:-1].replace(b"\n", b"\t").split(b"\t")
    user_column = flat[columns["user_id"]::n_fields]
    item_column = flat[columns["item_id"]::n_fields]

    keep = np.ones(n_rows, dtype=bool)
    value = np.full(n_rows, confidence, dtype=np.float32)
    if need_rating:
        rating = _floats(flat[columns["rating"]::n_fields], line_numbers, "rating", path)
        if min_rating is not None:
            keep = rating >= min_rating
        if values == "rating":
            value = confidence * rating
    if b"" in user_column or b"" in item_column:
        empty = next(i for i, (u, t) in enumerate(zip(user_column, item_column, strict=True))
                     if not u or not t)
        raise ValueError(f"{path}: line {line_numbers[empty]}: empty user_id or item_id")

    # dict.fromkeys keeps first-appearance order; map() keeps the lookups in C.
    user_index = {token: i for i, token in enumerate(dict.fromkeys(user_column))}
    item_index = {token: i for i, token in enumerate(dict.fromkeys(item_column))}
    users = np.fromiter(map(user_index.__getitem__, user_column), np.int64, n_rows)
    items = np.fromiter(map(item_index.__getitem__, item_column), np.int64, n_rows)
    users, items, value = users[keep], items[keep], value[keep]
    # Duplicated pairs keep their largest value: sort by (member, webtoon, value), take last.
    order = np.lexsort((value, items, users))
    users, items, value = users[order], items[order], value[order]
    last = np.ones(len(users), dtype=bool)
    last[:-1] = (users[1:] != users[:-1]) | (items[1:] != items[:-1])
    matrix = sp.csr_matrix(
        (value[last], (users[last], items[last])),
        shape=(len(user_index), len(item_index)),
        dtype=np.float32,
    )
    return Interactions(_tokens(user_index, path), _tokens(item_index, path), matrix)


def train_test_split(
    user_items: sp.csr_matrix, test_fraction: float = 0.2, seed: int = 42
) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Per-member random split of ``user_items`` into (train, test), same shape.

    A member with ``n`` interactions gets ``n_test = floor(n * test_fraction + 0.5)``
    (round half up) of them, drawn uniformly without replacement, clipped to
    ``[1, n - 1]`` when ``n >= 2`` so they keep at least one in train and one in test;
    a member with one interaction keeps it in train. Deterministic for a given seed.
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), not {test_fraction}")
    matrix = as_csr(user_items)
    counts = np.diff(matrix.indptr)
    n_test = np.floor(counts * test_fraction + 0.5).astype(np.int64)
    n_test = np.where(counts >= 2, np.clip(n_test, 1, np.maximum(counts - 1, 1)), 0)
    rows = np.repeat(np.arange(matrix.shape[0]), counts)
    keys = np.random.default_rng(seed).random(matrix.nnz)
    order = np.lexsort((keys, rows))
    # Rank of each interaction within its member's random order.
    rank = np.empty(matrix.nnz, dtype=np.int64)
    rank[order] = np.arange(matrix.nnz) - matrix.indptr[rows[order]]
    in_test = rank < n_test[rows]

    def part(mask: np.ndarray) -> sp.csr_matrix:
        return sp.csr_matrix(
            (matrix.data[mask], matrix.indices[mask],
             np.concatenate([[0], np.cumsum(np.bincount(rows[mask],
                                                        minlength=matrix.shape[0]))])),
            shape=matrix.shape,
        )

    return part(~in_test), part(in_test)


def ranking_metrics(
    model: Recommender,
    train: sp.csr_matrix,
    test: sp.csr_matrix,
    k: int = 10,
    filter_seen: bool = True,
    batch_rows: int = EVAL_BATCH,
) -> dict[str, float]:
    """Top-``k`` metrics over members with at least one test interaction.

    For member ``u`` with test set ``T_u`` and top-k list ``r_1..r_k`` (from
    ``model.recommend(u, train[u])``, seen items filtered unless told otherwise),
    ``hit_j = [r_j in T_u]`` and ``m_u = min(k, |T_u|)``:

    - ``precision@k = sum_u sum_j hit_j / sum_u m_u`` (pooled, with ``implicit``'s
      ``min(k, |T_u|)`` denominator so a member with 3 test items can score 1);
    - ``map@k = mean_u (sum_j hit_j * (hits in r_1..r_j) / j) / m_u``;
    - ``ndcg@k = mean_u (sum_j hit_j / log2(j + 1)) / (sum_{j<=m_u} 1 / log2(j + 1))``;
    - ``recall@k = mean_u sum_j hit_j / |T_u|``;
    - ``coverage = |distinct recommended webtoons| / n_items``.

    precision, map and ndcg equal ``implicit.evaluation.ranking_metrics_at_k``'s.
    ``members`` is the number of members evaluated.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, not {k}")
    train = as_csr(train)
    test = as_csr(test)
    if train.shape != test.shape:
        raise ValueError(f"train {train.shape} and test {test.shape} shapes differ")
    n_items = train.shape[1]
    test_counts = np.diff(test.indptr)
    members = np.flatnonzero(test_counts > 0)
    if len(members) == 0:
        raise ValueError("test has no interactions")
    test_keys = np.repeat(np.arange(test.shape[0], dtype=np.int64), test_counts) * n_items
    test_keys += test.indices
    test_keys.sort()

    discount = 1.0 / np.log2(np.arange(2, k + 2))
    ideal = np.cumsum(discount)
    hits_total = 0.0
    denominator = 0.0
    ap_sum = ndcg_sum = recall_sum = 0.0
    recommended = np.zeros(n_items, dtype=bool)
    for start in range(0, len(members), batch_rows):
        batch = members[start:start + batch_rows]
        ids, _ = model.recommend(batch, train[batch], n=k, filter_seen=filter_seen)
        ids = np.asarray(ids, dtype=np.int64)
        if ids.shape[1] < k:
            ids = np.pad(ids, ((0, 0), (0, k - ids.shape[1])), constant_values=-1)
        valid = ids >= 0
        recommended[ids[valid]] = True
        keys = batch[:, None] * n_items + ids
        found = np.searchsorted(test_keys, keys)
        found = np.minimum(found, len(test_keys) - 1)
        hit = valid & (test_keys[found] == keys)
        n_relevant = test_counts[batch]
        m = np.minimum(k, n_relevant)
        cumulative_hits = np.cumsum(hit, axis=1)
        hits_total += hit.sum()
        denominator += m.sum()
        ap_sum += ((hit * cumulative_hits / np.arange(1, k + 1)).sum(axis=1) / m).sum()
        ndcg_sum += ((hit * discount).sum(axis=1) / ideal[m - 1]).sum()
        recall_sum += (hit.sum(axis=1) / n_relevant).sum()
    count = len(members)
    return {
        "precision": float(hits_total / denominator),
        "map": float(ap_sum / count),
        "ndcg": float(ndcg_sum / count),
        "recall": float(recall_sum / count),
        "coverage": float(recommended.sum() / n_items),
        "members": float(count),
    }


def evaluate_inter_file(
    path: str | Path,
    model: Recommender,
    seed: int = 42,
    k: int = 10,
    test_fraction: float = 0.2,
    min_rating: float | None = None,
    values: str = "binary",
    confidence: float = 1.0,
) -> dict[str, Any]:
    """Read ``path``, split per member, fit ``model`` on train, score on test.

    Returns the metrics of ``ranking_metrics`` plus the data's size and the fit time.
    """
    interactions = read_inter(path, min_rating=min_rating, values=values,
                              confidence=confidence)
    train, test = train_test_split(interactions.user_items, test_fraction, seed)
    started = time.perf_counter()
    model.fit(train)
    fit_seconds = time.perf_counter() - started
    metrics: dict[str, Any] = dict(ranking_metrics(model, train, test, k=k))
    metrics.update(
        members=len(interactions.user_tokens),
        webtoons=len(interactions.item_tokens),
        interactions=interactions.n_interactions,
        train_interactions=int(train.nnz),
        test_interactions=int(test.nnz),
        fit_seconds=fit_seconds,
        k=k,
    )
    return metrics
