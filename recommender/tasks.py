"""The recommender's task types (``TOONPICK_TASK_MODULES`` lists this module by default).

- ``RECOMMENDATION_MODEL_TRAINING``: train, evaluate and store a model version, and
  serve it (``serve=False`` stores it only).
- ``RECOMMENDATION_UPDATE`` (the daily 02:30 schedule): by default train a new version
  first (``train=True``), then every member's top-N, similar webtoons and recommend
  groups from the serving version.
- ``RECOMMENDATION_CACHE_UPDATE``: the Redis cache again from MariaDB's stored lists.
- ``MEMBER_PREFERENCE_UPDATE``: fold the given members' current activity into the
  serving model and refresh their lists (real time, no retrain); without
  ``member_ids``, every member whose activity changed since ``since`` (ISO time, UTC).
  Callers give each activity event an ``event_id`` (or an SQS ``request_id``): the same
  members refreshed again later is another run, not a repeat of a completed one.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from recommender.service import RecommendationService
from recommender.serving import ModelNotFound
from recommender.training import TrainingError, resolve_params, train_model
from shared.config import load_config
from shared.stores.mariadb import connect, utc_naive
from shared.tasks.runner import TaskContext
from shared.tasks.types import InvalidParams, RetryPolicy, TaskType, register_task

RETRY = RetryPolicy(max_retries=2, backoff=(30.0, 120.0))
# Their own queue: recommender workers (numpy/scipy, the model in memory) scale apart
# from crawl workers; `toonpick worker` with no --queue serves both.
QUEUE = "recommender"
MAX_MEMBERS_PER_UPDATE = 100_000


def _progress(ctx: TaskContext, low: float, high: float):
    def report(percent: float, message: str) -> None:
        ctx.progress(low + (high - low) * percent / 100.0, message)
        ctx.check_stop()
    return report


def recommendation_model_training(ctx: TaskContext, params: dict[str, Any] | None = None,
                                  serve: bool = True, schedule: str | None = None,
                                  slot: str | None = None,
                                  request_id: str | None = None) -> dict[str, Any]:
    config = load_config()
    try:
        result = train_model(config, {**(params or {}), "serve": serve},
                             progress=_progress(ctx, 0, 100), check_stop=ctx.check_stop)
    except TrainingError as exc:
        raise InvalidParams(str(exc)) from None
    return {"model_version": result.version.version, "serving": result.serving,
            "members": result.version.n_members, "webtoons": result.version.n_webtoons,
            "interactions": result.version.n_interactions,
            "fit_seconds": round(result.version.fit_seconds, 3), "metrics": result.metrics}


def recommendation_update(ctx: TaskContext, train: bool = True,
                          params: dict[str, Any] | None = None, schedule: str | None = None,
                          slot: str | None = None,
                          request_id: str | None = None) -> dict[str, Any]:
    config = load_config()
    result: dict[str, Any] = {}
    done = ctx.checkpoint.get("trained")
    if train and not done:
        try:
            trained = train_model(config, params, progress=_progress(ctx, 0, 50),
                                  check_stop=ctx.check_stop)
        except TrainingError as exc:
            raise InvalidParams(str(exc)) from None
        result["trained"] = trained.version.version
        result["metrics"] = trained.metrics
        ctx.save_checkpoint({"trained": trained.version.version})
    elif done:
        result["trained"] = done
    service = RecommendationService(config)
    try:
        result.update(service.update_all(_progress(ctx, 50 if train else 0, 100),
                                         ctx.check_stop))
    except ModelNotFound as exc:
        # Retrying cannot make a model appear.
        raise InvalidParams(f"{exc}; or run with train=true") from None
    finally:
        service.close()
    return result


def recommendation_cache_update(ctx: TaskContext, schedule: str | None = None,
                                slot: str | None = None,
                                request_id: str | None = None) -> dict[str, Any]:
    service = RecommendationService(load_config())
    try:
        return {"cached_members": service.rebuild_cache(_progress(ctx, 0, 100))}
    finally:
        service.close()


def parse_since(text: str) -> datetime:
    """An ISO date-time as the DATETIME columns compare it (naive UTC); one without an
    offset is UTC."""
    try:
        return utc_naive(datetime.fromisoformat(text))
    except (TypeError, ValueError):
        raise InvalidParams(f"since={text!r} is not an ISO date-time") from None


def _check_member_ids(member_ids: Any) -> None:
    if not isinstance(member_ids, list) or not all(
            isinstance(m, int) and not isinstance(m, bool) and m > 0 for m in member_ids):
        raise InvalidParams("member_ids must be a list of positive integers")
    if len(member_ids) > MAX_MEMBERS_PER_UPDATE:
        raise InvalidParams(f"at most {MAX_MEMBERS_PER_UPDATE} members per update; "
                            "use RECOMMENDATION_UPDATE for everyone")


def _check_flag(params: Mapping[str, Any], name: str) -> None:
    if name in params and not isinstance(params[name], bool):
        raise InvalidParams(f"{name} must be true or false, not {params[name]!r}")


def check_training_params(params: Mapping[str, Any]) -> None:
    """The training overrides and flags, checked when the task is queued. The worker's
    TOONPICK_RECOMMENDER_PARAMS is applied (and checked) when it runs."""
    overrides = params.get("params")
    if overrides is not None and not isinstance(overrides, dict):
        raise InvalidParams(f"params must be a JSON object, not {overrides!r}")
    try:
        resolve_params({}, overrides)
    except TrainingError as exc:
        raise InvalidParams(str(exc)) from None
    _check_flag(params, "serve")
    _check_flag(params, "train")


def check_preference_params(params: Mapping[str, Any]) -> None:
    """member_ids or since, checked when the task is queued."""
    member_ids, since = params.get("member_ids"), params.get("since")
    if member_ids is None:
        if not since:
            raise InvalidParams("MEMBER_PREFERENCE_UPDATE needs member_ids or since")
        parse_since(since)
    else:
        _check_member_ids(member_ids)


def _changed_members(mariadb_url: str, since: datetime) -> list[int]:
    conn = connect(mariadb_url)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT member_id FROM member_webtoon_interaction WHERE updated_at >= %s"
                " UNION SELECT member_id FROM webtoon_review WHERE updated_at >= %s"
                " UNION SELECT member_id FROM webtoon_episode_view_history"
                " WHERE episode_viewed_at >= %s LIMIT %s",
                (since, since, since, MAX_MEMBERS_PER_UPDATE))
            return sorted(int(row[0]) for row in cur.fetchall())
    finally:
        conn.close()


def member_preference_update(ctx: TaskContext, member_ids: list[int] | None = None,
                             since: str | None = None, event_id: str | None = None,
                             request_id: str | None = None) -> dict[str, Any]:
    config = load_config()
    if member_ids is None:
        if not since:
            raise InvalidParams("MEMBER_PREFERENCE_UPDATE needs member_ids or since")
        member_ids = _changed_members(config["mariadb_url"], parse_since(since))
    _check_member_ids(member_ids)
    done = set(ctx.checkpoint.get("done", []))
    todo = [m for m in member_ids if m not in done]
    service = RecommendationService(config)
    timings: dict[int, float] = {}
    try:
        for start in range(0, len(todo), 200):
            ctx.check_stop()
            batch = todo[start:start + 200]
            try:
                timings.update(service.refresh_members(batch))
            except ModelNotFound as exc:
                raise InvalidParams(str(exc)) from None
            done.update(batch)
            ctx.save_checkpoint({"done": sorted(done)})
            ctx.progress(100.0 * len(done) / max(1, len(member_ids)),
                         f"{len(done)} of {len(member_ids)} members refreshed")
    finally:
        service.close()
    values = sorted(timings.values())
    return {"members": len(done),
            "ms_p50": round(values[len(values) // 2], 3) if values else None,
            "ms_max": round(values[-1], 3) if values else None}


for _type, _body, _identifying, _validate in (
    (TaskType.RECOMMENDATION_MODEL_TRAINING, recommendation_model_training,
     ("params", "serve", "schedule", "slot", "request_id"), check_training_params),
    (TaskType.RECOMMENDATION_UPDATE, recommendation_update,
     ("train", "params", "schedule", "slot", "request_id"), check_training_params),
    (TaskType.RECOMMENDATION_CACHE_UPDATE, recommendation_cache_update,
     ("schedule", "slot", "request_id"), None),
    # Each activity event is its own run: callers name it (event_id or request_id), or
    # the same member list twice would be one completed instance, refused the 2nd time.
    (TaskType.MEMBER_PREFERENCE_UPDATE, member_preference_update,
     ("member_ids", "since", "event_id", "request_id"), check_preference_params),
):
    register_task(_type.value, _body, retry=RETRY, identifying=_identifying, queue=QUEUE,
                  validate=_validate)
