"""Recommender models, one estimator surface (``base.Recommender``).

``model_class`` maps the algorithm names stored with model versions and used by
experiment variants to their classes; ``model_from_arrays`` rebuilds a stored model.
The model modules are imported on first use, so importing one model does not import
them all.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

import numpy as np

from recommender.models.base import Recommender

# algorithm name -> (module, class)
MODEL_CLASSES: dict[str, tuple[str, str]] = {
    "als": ("recommender.models.als", "AlternatingLeastSquares"),
    "content": ("recommender.models.content", "ContentModel"),
    "popularity": ("recommender.models.popularity", "PopularityModel"),
    "hybrid": ("recommender.models.hybrid", "HybridModel"),
}


def model_class(algorithm: str) -> type[Recommender]:
    try:
        module, name = MODEL_CLASSES[algorithm]
    except KeyError:
        raise ValueError(
            f"unknown algorithm {algorithm!r}; known: {', '.join(sorted(MODEL_CLASSES))}"
        ) from None
    return getattr(import_module(module), name)


def model_from_arrays(algorithm: str, params: dict[str, Any],
                      arrays: dict[str, np.ndarray]) -> Recommender:
    """A stored model back (``params()`` and ``to_arrays()`` of the fitted one)."""
    cls = model_class(algorithm)
    if algorithm == "hybrid":
        return cls.from_arrays(params, arrays, model_class(params["cf_algorithm"]))
    return cls.from_arrays(params, arrays)
