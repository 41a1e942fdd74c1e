"""Content-based model: webtoons described by their genres, tags and authors.

Each webtoon is a TF-IDF vector over its features (smooth idf, rows L2-normalised), so a
rare tag or an author counts more than a genre half the catalogue shares. A member's
profile is the confidence-weighted sum of the vectors of the webtoons in their history;
a negative confidence (a dropped title) subtracts, pushing that title's features down.
Scores are cosines between the profile and every webtoon.

The model needs no activity: it is complete as soon as it is built from the catalogue,
and ``fit`` only checks that the activity matrix has one column per webtoon. A webtoon
without features has a zero vector: it scores 0 for everyone and has no neighbours.

The item matrix stays sparse (20k webtoons x ~5k features is ~200k non-zeros); only a
batch of member profiles (or of webtoon vectors, in ``similar_items``) is densified,
and scores come from a sparse x dense product.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import scipy.sparse as sp

from recommender.models.base import BATCH_ROWS, Recommender, as_csr, top_n

#: Weight of a feature by its kind before TF-IDF: an author says more about a title's
#: readers than a genre, a tag a little less than a genre (tags are noisier).
DEFAULT_KIND_WEIGHTS: dict[str, float] = {"genre": 1.0, "tag": 0.7, "author": 1.5}


def item_feature_matrix(
    n_items: int,
    triples: Iterable[tuple[int, str, Any]],
    kind_weights: Mapping[str, float] | None = None,
) -> tuple[sp.csr_matrix, list[str]]:
    """A webtoons x features matrix from ``(item_index, kind, value)`` triples.

    ``(3, "genre", "ROMANCE")``, ``(3, "author", 42)``, ``(3, "tag", "회귀")`` give webtoon
    3 the features ``genre:ROMANCE``, ``author:42`` and ``tag:회귀``, each valued by its
    kind's weight (``kind_weights``, default ``DEFAULT_KIND_WEIGHTS``). A repeated triple
    counts once. Features are sorted by name; returns ``(matrix, feature_names)``.
    """
    weights = dict(DEFAULT_KIND_WEIGHTS if kind_weights is None else kind_weights)
    for kind, weight in weights.items():
        if not np.isfinite(weight) or weight <= 0:
            raise ValueError(f"kind weight of {kind!r} must be a positive number, got {weight}")
    if n_items < 0:
        raise ValueError(f"n_items must be >= 0, got {n_items}")
    cells: set[tuple[int, str]] = set()
    for triple in triples:
        try:
            item, kind, value = triple
        except (TypeError, ValueError):
            raise ValueError(
                f"feature triples are (item_index, kind, value), got {triple!r}"
            ) from None
        if kind not in weights:
            raise ValueError(f"unknown feature kind {kind!r}; known: {sorted(weights)}")
        if isinstance(item, bool) or not isinstance(item, int | np.integer):
            raise ValueError(f"item index must be an integer, got {item!r}")
        if not 0 <= item < n_items:
            raise ValueError(f"item index {item} outside 0..{n_items - 1}")
        cells.add((int(item), f"{kind}:{value}"))
    names = sorted({name for _, name in cells})
    column = {name: i for i, name in enumerate(names)}
    rows = np.fromiter((item for item, _ in cells), dtype=np.int64, count=len(cells))
    cols = np.fromiter((column[name] for _, name in cells), dtype=np.int64, count=len(cells))
    data = np.fromiter(
        (weights[name.split(":", 1)[0]] for _, name in cells), dtype=np.float32, count=len(cells)
    )
    matrix = sp.csr_matrix((data, (rows, cols)), shape=(n_items, len(names)), dtype=np.float32)
    matrix.sort_indices()
    return matrix, names


def _l2_normalise_rows(matrix: sp.csr_matrix) -> sp.csr_matrix:
    norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1)).ravel())
    norms[norms == 0] = 1.0
    return sp.csr_matrix(sp.diags((1.0 / norms).astype(np.float32)) @ matrix, dtype=np.float32)


class ContentModel(Recommender):
    """TF-IDF over genres, tags and authors; profiles from members' histories."""

    algorithm = "content"

    def __init__(
        self,
        item_features: Any,
        feature_names: Iterable[str] | None = None,
        idf: bool = True,
    ) -> None:
        if item_features is None or not (
            sp.issparse(item_features) or isinstance(item_features, np.ndarray)
        ):
            raise ValueError("item_features must be a sparse or dense webtoons x features matrix")
        if item_features.ndim != 2:
            raise ValueError(f"item_features must be 2-D, got {item_features.ndim}-D")
        features = as_csr(item_features)
        if features.nnz and (
            not np.all(np.isfinite(features.data)) or features.data.min() < 0
        ):
            raise ValueError("item_features must hold finite, non-negative weights")
        names = None if feature_names is None else [str(name) for name in feature_names]
        if names is not None and len(names) != features.shape[1]:
            raise ValueError(
                f"{len(names)} feature names for {features.shape[1]} feature columns"
            )
        self.item_features = features
        self.feature_names = names
        self.idf = bool(idf)
        self.n_items = features.shape[0]
        self.idf_weights = self._idf_weights(features) if self.idf else None
        weighted = features
        if self.idf_weights is not None:
            weighted = sp.csr_matrix(features @ sp.diags(self.idf_weights), dtype=np.float32)
        self.item_vectors = _l2_normalise_rows(weighted)

    @classmethod
    def from_triples(
        cls,
        n_items: int,
        triples: Iterable[tuple[int, str, Any]],
        kind_weights: Mapping[str, float] | None = None,
        idf: bool = True,
    ) -> ContentModel:
        """The model from catalogue triples (see ``item_feature_matrix``)."""
        matrix, names = item_feature_matrix(n_items, triples, kind_weights)
        return cls(matrix, names, idf=idf)

    @staticmethod
    def _idf_weights(features: sp.csr_matrix) -> np.ndarray:
        # Smooth idf (as scikit-learn's TfidfTransformer): ln((1 + n) / (1 + df)) + 1,
        # never zero, so a feature every webtoon has still counts a little.
        n = features.shape[0]
        df = np.bincount(features.indices[features.data > 0], minlength=features.shape[1])
        return (np.log((1.0 + n) / (1.0 + df)) + 1.0).astype(np.float32)

    def fit(self, user_items: Any) -> ContentModel:
        """Content needs no activity: only checks the matrix has one column per webtoon."""
        as_csr(user_items, self.n_items)
        return self

    def profiles(self, user_items: sp.csr_matrix) -> np.ndarray:
        """Dense, L2-normalised member profiles (rows x features) from their histories."""
        user_items = as_csr(user_items, self.n_items)
        raw = (user_items @ self.item_vectors).toarray()
        norms = np.linalg.norm(raw, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        return (raw / norms).astype(np.float32, copy=False)

    def _scores(self, user_ids: np.ndarray | None, user_items: sp.csr_matrix) -> np.ndarray:
        # No per-member state: fitted members and histories are scored alike.
        # dense @ CSC-transposed sparse is scipy's fastest route here, ~3x V @ P.T.
        return np.asarray(self.profiles(user_items) @ self.item_vectors.T, dtype=np.float32)

    def similar_items(
        self, item_ids: Any, n: int = 10, batch_rows: int = BATCH_ROWS
    ) -> tuple[np.ndarray, np.ndarray]:
        """Per webtoon, the ``n`` webtoons of highest cosine, itself excluded.

        Only webtoons sharing at least one feature are neighbours; the rest of a row is
        padded with id -1 (score -inf), so a webtoon without features gets only -1.
        """
        item_ids = np.asarray(item_ids, dtype=np.int64).reshape(-1)
        if item_ids.size and (item_ids.min() < 0 or item_ids.max() >= self.n_items):
            raise ValueError(f"item ids must lie in 0..{self.n_items - 1}")
        n = max(0, min(n, self.n_items - 1))
        ids = np.empty((len(item_ids), n), dtype=np.int64)
        scores = np.empty((len(item_ids), n), dtype=np.float32)
        for start in range(0, len(item_ids), batch_rows):
            block_ids = item_ids[start : start + batch_rows]
            vectors = self.item_vectors[block_ids].toarray()
            block = np.asarray(vectors @ self.item_vectors.T, dtype=np.float32)
            block[block <= 0] = -np.inf
            block[np.arange(len(block_ids)), block_ids] = -np.inf
            ids[start : start + len(block_ids)], scores[start : start + len(block_ids)] = top_n(
                block, n
            )
        return ids, scores

    def params(self) -> dict[str, Any]:
        return {"idf": self.idf}

    def to_arrays(self) -> dict[str, np.ndarray]:
        features = self.item_features
        arrays = {
            "features.data": features.data,
            "features.indices": features.indices,
            "features.indptr": features.indptr,
            "features.shape": np.asarray(features.shape, dtype=np.int64),
        }
        if self.feature_names is not None:
            arrays["feature_names"] = np.asarray(self.feature_names, dtype=np.str_)
        return arrays

    @classmethod
    def from_arrays(cls, params: dict[str, Any], arrays: dict[str, np.ndarray]) -> ContentModel:
        missing = {
            "features.data", "features.indices", "features.indptr", "features.shape"
        } - set(arrays)
        if missing:
            raise ValueError(f"content model arrays lack {sorted(missing)}")
        shape = tuple(int(x) for x in np.asarray(arrays["features.shape"]).reshape(-1))
        if len(shape) != 2:
            raise ValueError(f"features.shape must have 2 values, got {shape}")
        try:
            features = sp.csr_matrix(
                (arrays["features.data"], arrays["features.indices"], arrays["features.indptr"]),
                shape=shape,
            )
            features.check_format(full_check=True)
        except ValueError as exc:
            raise ValueError(f"content model arrays are not a valid CSR matrix: {exc}") from exc
        names = arrays.get("feature_names")
        return cls(
            features,
            None if names is None else [str(name) for name in names],
            idf=bool(params.get("idf", True)),
        )
