"""Hybrid model: collaborative scores for members we know, content and popularity otherwise.

For a member with ``k`` positive interactions in the history being scored, the blend is::

    a = cf_weight * min(1, k / full_weight_at)
    score = a * cf + (1 - a) * (content_weight * content + (1 - content_weight) * popularity)

so a new member (``k = 0``) gets popularity, re-ranked by content as soon as they have a
history, and a member with ``full_weight_at`` interactions or more is mostly
collaborative. Negative (dropped) interactions do not count in ``k``, but they still
shape the content profile.

Each component is normalised to [0, 1] before blending, since their scales have nothing
in common (ALS dot products, cosines, counts). Collaborative and content scores are
min-max normalised per member: O(webtoons) per row, no sort, and keeping the gaps
between scores, which carry how sure the component is. Popularity is the same for every
member, so it is rank-normalised once at fit: min-max on a power-law count would squash
everything outside the head to ~0.

New webtoons (no positive interaction in the training matrix) have no collaborative
signal: their factors are zero or noise. In the collaborative term their score is
replaced by their content score, so a new title surfaces for members whose taste it
matches. ``similar_items`` likewise gives a new webtoon its content neighbours and the
other webtoons their collaborative ones.

A HybridModel is fitted when ``fit`` has run (it fits the components unless told they
already are) or when it comes back from ``from_arrays``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
import scipy.stats

from recommender.models.base import NotFittedError, Recommender, as_csr
from recommender.models.content import ContentModel
from recommender.models.popularity import PopularityModel

PREFIXES = {"collaborative": "cf.", "content": "content.", "popularity": "pop."}


def _minmax_rows(scores: np.ndarray) -> np.ndarray:
    """Each row scaled to [0, 1] in place; a constant row becomes all zeros."""
    low = scores.min(axis=1, keepdims=True)
    span = scores.max(axis=1, keepdims=True) - low
    span[span == 0] = 1.0
    scores -= low
    scores /= span
    return scores


def _positives_per_row(user_items: sp.csr_matrix) -> np.ndarray:
    rows = np.repeat(np.arange(user_items.shape[0]), np.diff(user_items.indptr))
    return np.bincount(rows[user_items.data > 0], minlength=user_items.shape[0])


class HybridModel(Recommender):
    """Blend of a collaborative model, a ContentModel and a PopularityModel."""

    algorithm = "hybrid"

    def __init__(
        self,
        collaborative: Recommender,
        content: ContentModel,
        popularity: PopularityModel,
        full_weight_at: int = 10,
        cf_weight: float = 0.9,
        content_weight: float = 0.5,
    ) -> None:
        if not isinstance(collaborative, Recommender):
            raise ValueError("collaborative must be a Recommender")
        if not isinstance(content, ContentModel):
            raise ValueError("content must be a ContentModel")
        if not isinstance(popularity, PopularityModel):
            raise ValueError("popularity must be a PopularityModel")
        if isinstance(full_weight_at, bool) or not isinstance(full_weight_at, int | np.integer):
            raise ValueError(f"full_weight_at must be an integer, got {full_weight_at!r}")
        if full_weight_at < 1:
            raise ValueError(f"full_weight_at must be >= 1, got {full_weight_at}")
        for name, value in (("cf_weight", cf_weight), ("content_weight", content_weight)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must lie in [0, 1], got {value}")
        self.collaborative = collaborative
        self.content = content
        self.popularity = popularity
        self.full_weight_at = int(full_weight_at)
        self.cf_weight = float(cf_weight)
        self.content_weight = float(content_weight)
        self.new_items: np.ndarray | None = None
        self._popularity_rank: np.ndarray | None = None

    def fit(
        self,
        user_items: Any,
        interaction_age_days: Any | None = None,
        fit_components: bool = True,
    ) -> HybridModel:
        """Fits the three components on ``user_items`` (unless ``fit_components`` is
        False: they must then be fitted on this catalogue already) and finds new webtoons.

        ``interaction_age_days`` goes to the popularity model (trending).
        """
        user_items = as_csr(user_items, self.content.n_items)
        if fit_components:
            self.collaborative.fit(user_items)
            self.content.fit(user_items)
            self.popularity.fit(user_items, interaction_age_days)
        n_items = user_items.shape[1]
        for name, component in (
            ("collaborative", self.collaborative),
            ("popularity", self.popularity),
        ):
            if component.n_items != n_items:
                raise ValueError(
                    f"{name} model has {component.n_items} webtoons, user_items {n_items}"
                    + ("" if fit_components else " (fit it first, or fit_components=True)")
                )
        liked = np.bincount(user_items.indices[user_items.data > 0], minlength=n_items)
        self.new_items = liked == 0
        self.n_items = n_items
        self._prepare()
        return self

    def with_blend(self, **blend: Any) -> HybridModel:
        """The same fitted components blended with other weights (``full_weight_at``,
        ``cf_weight``, ``content_weight``): how an experiment variant tries a blend
        without a model of its own."""
        unknown = set(blend) - {"full_weight_at", "cf_weight", "content_weight"}
        if unknown:
            raise ValueError(f"unknown hybrid blend parameters: {sorted(unknown)}")
        current = {"full_weight_at": self.full_weight_at, "cf_weight": self.cf_weight,
                   "content_weight": self.content_weight}
        other = HybridModel(self.collaborative, self.content, self.popularity,
                            **{**current, **blend})
        other.new_items = self._check_fitted()
        other.n_items = self.n_items
        other._popularity_rank = self._popularity_rank
        return other

    def _prepare(self) -> None:
        scores = self.popularity.to_arrays()["item_scores"]
        # "min" ranks: every webtoon nobody liked shares the lowest value, 0.
        ranks = scipy.stats.rankdata(scores, method="min")
        top = ranks.max() if len(ranks) else 1
        self._popularity_rank = ((ranks - 1) / max(top - 1, 1)).astype(np.float32)

    def _check_fitted(self) -> np.ndarray:
        if self.new_items is None or self._popularity_rank is None:
            raise NotFittedError("HybridModel is not fitted")
        return self.new_items

    def collaborative_share(self, user_items: sp.csr_matrix) -> np.ndarray:
        """Per row, the weight ``a`` of the collaborative scores (see the module doc)."""
        positives = _positives_per_row(as_csr(user_items, self.n_items))
        share = np.minimum(1.0, positives / self.full_weight_at) * self.cf_weight
        return share.astype(np.float32)

    def _scores(self, user_ids: np.ndarray | None, user_items: sp.csr_matrix) -> np.ndarray:
        new_items = self._check_fitted()
        share = self.collaborative_share(user_items)
        content = _minmax_rows(self.content._scores(None, user_items))
        scores = self.content_weight * content
        scores += (1.0 - self.content_weight) * self._popularity_rank
        scores *= (1.0 - share)[:, np.newaxis]
        warm = np.flatnonzero(share > 0)
        if warm.size == 0:
            return scores
        # Cold rows skip the collaborative model (a fold-in for histories) entirely.
        every_row = warm.size == len(share)
        cf = self.collaborative._scores(
            None if user_ids is None else (user_ids if every_row else user_ids[warm]),
            user_items if every_row else user_items[warm],
        )
        cf = _minmax_rows(np.asarray(cf, dtype=np.float32))
        if new_items.any():
            warm_content = content if every_row else content[warm]
            cf[:, new_items] = warm_content[:, new_items]
        cf *= share[warm][:, np.newaxis]
        if every_row:
            scores += cf
        else:
            scores[warm] += cf
        return scores

    def similar_items(self, item_ids: Any, n: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """Collaborative neighbours, or content neighbours for new webtoons."""
        new_items = self._check_fitted()
        item_ids = np.asarray(item_ids, dtype=np.int64).reshape(-1)
        if item_ids.size and (item_ids.min() < 0 or item_ids.max() >= self.n_items):
            raise ValueError(f"item ids must lie in 0..{self.n_items - 1}")
        n = max(0, min(n, self.n_items - 1))
        ids = np.full((len(item_ids), n), -1, dtype=np.int64)
        scores = np.full((len(item_ids), n), -np.inf, dtype=np.float32)
        is_new = new_items[item_ids]
        for rows, component in (
            (np.flatnonzero(~is_new), self.collaborative),
            (np.flatnonzero(is_new), self.content),
        ):
            if rows.size:
                found_ids, found_scores = component.similar_items(item_ids[rows], n)
                width = found_ids.shape[1]
                ids[rows, :width] = found_ids
                scores[rows, :width] = found_scores
        return ids, scores

    def params(self) -> dict[str, Any]:
        return {
            "full_weight_at": self.full_weight_at,
            "cf_weight": self.cf_weight,
            "content_weight": self.content_weight,
            "cf_algorithm": self.collaborative.algorithm,
            "cf": self.collaborative.params(),
            "content": self.content.params(),
            "popularity": self.popularity.params(),
        }

    def to_arrays(self) -> dict[str, np.ndarray]:
        arrays: dict[str, np.ndarray] = {"new_items": self._check_fitted()}
        for name, component in (
            ("collaborative", self.collaborative),
            ("content", self.content),
            ("popularity", self.popularity),
        ):
            prefix = PREFIXES[name]
            arrays.update({prefix + key: value for key, value in component.to_arrays().items()})
        return arrays

    @classmethod
    def from_arrays(
        cls,
        params: dict[str, Any],
        arrays: dict[str, np.ndarray],
        cf_class: type[Recommender] | None = None,
    ) -> HybridModel:
        """A fitted model back; ``cf_class`` is the collaborative model's class, whose
        ``algorithm`` must be ``params["cf_algorithm"]``."""
        missing = {"cf_algorithm", "cf", "content", "popularity"} - set(params)
        if missing:
            raise ValueError(f"hybrid model params lack {sorted(missing)}")
        if cf_class is None:
            raise ValueError(
                "HybridModel.from_arrays needs cf_class, the class of the collaborative "
                f"model (algorithm {params['cf_algorithm']!r})"
            )
        if getattr(cf_class, "algorithm", None) != params["cf_algorithm"]:
            raise ValueError(
                f"cf_class {cf_class.__name__} is algorithm "
                f"{getattr(cf_class, 'algorithm', None)!r}, the stored model "
                f"{params['cf_algorithm']!r}"
            )
        if "new_items" not in arrays:
            raise ValueError("hybrid model arrays lack 'new_items'")

        def part(name: str) -> dict[str, np.ndarray]:
            prefix = PREFIXES[name]
            return {k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)}

        model = cls(
            cf_class.from_arrays(params["cf"], part("collaborative")),
            ContentModel.from_arrays(params["content"], part("content")),
            PopularityModel.from_arrays(params["popularity"], part("popularity")),
            full_weight_at=params.get("full_weight_at", 10),
            cf_weight=params.get("cf_weight", 0.9),
            content_weight=params.get("content_weight", 0.5),
        )
        new_items = np.asarray(arrays["new_items"], dtype=bool).reshape(-1)
        sizes = {
            "new_items": len(new_items),
            "collaborative": model.collaborative.n_items,
            "content": model.content.n_items,
            "popularity": model.popularity.n_items,
        }
        if len(set(sizes.values())) != 1:
            raise ValueError(f"hybrid model parts disagree on the number of webtoons: {sizes}")
        model.new_items = new_items
        model.n_items = len(new_items)
        model._prepare()
        return model
