"""Training: members' activity → a hybrid model version, evaluated, stored, serving.

``train_model`` reads the activity matrix and the webtoons' features from MariaDB,
evaluates the parameters on a per-member random 80/20 split (P@10, MAP@10, NDCG@10,
recall@10, coverage, for the collaborative part, the hybrid and the popularity
baseline), fits again on all the activity, stores the version to S3 with those
metrics and, unless told not to, makes it the serving version.

Parameters (``TOONPICK_RECOMMENDER_PARAMS`` and task params override ``DEFAULT_PARAMS``):
``factors``, ``iterations``, ``regularization``, ``alpha`` (ALS); ``full_weight_at``
(hybrid: positive interactions at which a member's list is fully collaborative);
``trending_half_life_days`` (the popularity fallback weighs an interaction by
``0.5 ** (age / half-life)``: what members read lately; 0 = all-time popularity);
``evaluate``, ``test_fraction``,
``seed``; ``serve``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from recommender.activity import (
    ActivityMatrix,
    ConfidenceWeights,
    interaction_ages,
    item_feature_triples,
    load_activity,
)
from recommender.evaluation import ranking_metrics, train_test_split
from recommender.models.als import AlternatingLeastSquares
from recommender.models.content import ContentModel, item_feature_matrix
from recommender.models.hybrid import HybridModel
from recommender.models.popularity import PopularityModel
from recommender.serving import ModelBundle, ModelStore, ModelVersion
from shared.stores.mariadb import connect

DEFAULT_PARAMS: dict[str, Any] = {
    "factors": 64,
    "iterations": 15,
    # Tuned on the seeded activity (300 webtoons x 2,000 members, 80/20 split, NDCG@10):
    # ALS 0.305 at regularization 30 against 0.233 at 10 and 0.218 at 100; the hybrid
    # 0.321 with these blend weights; popularity 0.219. Confidences here run to ~12,
    # so the regularization is far above implicit's 0.01 (made for 0/1 data).
    "regularization": 30.0,
    "alpha": 1.0,
    "full_weight_at": 5,
    "cf_weight": 0.7,
    "content_weight": 0.2,
    "trending_half_life_days": 14.0,
    "evaluate": True,
    "test_fraction": 0.2,
    "seed": 42,
    "serve": True,
    "num_threads": 0,
}

Progress = Callable[[float, str], None]


class TrainingError(ValueError):
    """The parameters or the data cannot make a model."""


def parse_json_object(text: str, what: str) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise TrainingError(f"{what}: not JSON ({exc})") from None
    if not isinstance(value, dict):
        raise TrainingError(f"{what}: expected a JSON object")
    return value


def resolve_params(config: Mapping[str, Any], overrides: Mapping[str, Any] | None) -> dict:
    """Defaults, then the setting, then the task's params; unknown names are refused."""
    params = dict(DEFAULT_PARAMS)
    for source, what in ((parse_json_object(config.get("recommender_params", ""),
                                            "TOONPICK_RECOMMENDER_PARAMS"), "setting"),
                         (dict(overrides or {}), "params")):
        unknown = sorted(set(source) - set(DEFAULT_PARAMS))
        if unknown:
            raise TrainingError(f"unknown training {what}: {', '.join(unknown)}; "
                                f"known: {', '.join(sorted(DEFAULT_PARAMS))}")
        params.update(source)
    for name in ("factors", "iterations", "full_weight_at", "seed", "num_threads"):
        if not isinstance(params[name], int) or isinstance(params[name], bool) \
                or params[name] < 0:
            raise TrainingError(f"{name} must be a non-negative integer, not {params[name]!r}")
    for name in ("cf_weight", "content_weight", "trending_half_life_days"):
        if not isinstance(params[name], int | float) or isinstance(params[name], bool) \
                or params[name] < 0:
            raise TrainingError(f"{name} must be a number >= 0, not {params[name]!r}")
    if params["cf_weight"] > 1 or params["content_weight"] > 1:
        raise TrainingError("cf_weight and content_weight lie in [0, 1]")
    for name in ("regularization", "alpha", "test_fraction"):
        if not isinstance(params[name], int | float) or isinstance(params[name], bool) \
                or params[name] <= 0:
            raise TrainingError(f"{name} must be a positive number, not {params[name]!r}")
    if not 0 < params["test_fraction"] < 1:
        raise TrainingError("test_fraction must be between 0 and 1")
    if params["factors"] == 0 or params["iterations"] == 0:
        raise TrainingError("factors and iterations must be at least 1")
    return params


def confidence_weights(config: Mapping[str, Any]) -> ConfidenceWeights:
    return ConfidenceWeights.from_mapping(
        parse_json_object(config.get("recommender_weights", ""), "TOONPICK_RECOMMENDER_WEIGHTS"))


def build_model(params: Mapping[str, Any], item_features, feature_names) -> HybridModel:
    cf = AlternatingLeastSquares(
        factors=params["factors"], iterations=params["iterations"],
        regularization=params["regularization"], alpha=params["alpha"],
        random_state=params["seed"], num_threads=params["num_threads"],
    )
    content = ContentModel(item_features, feature_names)
    popularity = PopularityModel(half_life_days=params["trending_half_life_days"] or None)
    return HybridModel(cf, content, popularity, full_weight_at=params["full_weight_at"],
                       cf_weight=params["cf_weight"], content_weight=params["content_weight"])


@dataclass
class TrainingResult:
    version: ModelVersion
    bundle: ModelBundle
    metrics: dict[str, Any]
    serving: bool


def evaluate(params: Mapping[str, Any], activity: ActivityMatrix, item_features,
             feature_names, ages=None) -> dict[str, Any]:
    """Offline metrics of these parameters on a per-member random split."""
    train, test = train_test_split(activity.user_items, params["test_fraction"], params["seed"])
    # What a member held out but dropped or rated low is not a hit to find.
    test = test.multiply(test > 0).tocsr()
    test.eliminate_zeros()
    model = build_model(params, item_features, feature_names)
    model.fit(train, None if ages is None else ages.multiply(train != 0).tocsr())
    metrics: dict[str, Any] = {
        "split": {"test_fraction": params["test_fraction"], "seed": params["seed"],
                  "test_members": int((np.diff(test.indptr) > 0).sum())},
    }
    for name, candidate in (("hybrid", model), ("als", model.collaborative),
                            ("popularity", model.popularity)):
        metrics[name] = ranking_metrics(candidate, train, test, k=10)
    return metrics


def train_model(config: Mapping[str, Any], params: Mapping[str, Any] | None = None,
                progress: Progress | None = None, store: ModelStore | None = None,
                check_stop: Callable[[], None] | None = None) -> TrainingResult:
    report = progress or (lambda percent, message: None)
    stop = check_stop or (lambda: None)
    params = resolve_params(config, params)
    weights = confidence_weights(config)
    report(5, "loading activity")
    activity = load_activity(config["mariadb_url"], weights)
    n_interactions = int(activity.user_items.nnz)
    if activity.user_items.shape[1] == 0:
        raise TrainingError("the catalogue has no webtoons: crawl first")
    if n_interactions == 0:
        raise TrainingError(f"no member activity yet ({activity.user_items.shape[0]} active "
                            "members, 0 interactions): nothing to learn from")
    conn = connect(config["mariadb_url"])
    try:
        triples = item_feature_triples(conn, activity.webtoon_ids)
        ages = interaction_ages(conn, activity) if params["trending_half_life_days"] else None
    finally:
        conn.close()
    item_features, feature_names = item_feature_matrix(len(activity.webtoon_ids), triples)
    stop()
    metrics: dict[str, Any] = {}
    if params["evaluate"] and n_interactions:
        report(15, "evaluating on an 80/20 split")
        metrics = evaluate(params, activity, item_features, feature_names, ages)
        stop()
    report(55, "fitting on all activity")
    model = build_model(params, item_features, feature_names)
    started = time.perf_counter()
    model.fit(activity.user_items, ages)
    fit_seconds = time.perf_counter() - started
    stop()
    report(85, "storing the model version")
    bundle = ModelBundle(model, activity.member_ids, activity.webtoon_ids)
    store = store or ModelStore.from_config(config)
    version = store.save(bundle, metrics=metrics or None, n_interactions=n_interactions,
                         fit_seconds=fit_seconds)
    serving = bool(params["serve"])
    if serving:
        store.switch(version.version, reason="trained")
    report(100, f"model {version.version} {'serving' if serving else 'stored'}")
    return TrainingResult(version, bundle, metrics, serving)
