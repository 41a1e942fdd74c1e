"""Serving: model versions in S3, the serving switch, top-N in MariaDB and Redis.

**Model versions.** A trained ``ModelBundle`` (the model plus the member and webtoon ids
its rows and columns stand for) is written to S3 as one ``.npz`` under the models store
(``TOONPICK_RECOMMENDER_MODELS_STORE``), *then* recorded in ``recommendation_model`` with
its parameters and offline metrics, so a row never points at a missing file. Which
version serves is an append-only log (``recommendation_serving_log``): ``switch`` appends
a version, ``rollback`` appends the one that served before the current one, and the
history stays readable.

**Top-N.** ``write_top_n`` replaces each member's rows of
``member_webtoon_recommendation`` (delete + insert per chunk of members, one
transaction each, so a reader sees a member's old list or new list, never half) and
sets ``RecommendationCache`` entries: one JSON value per member with a TTL.

**Real time.** ``Recommendations`` answers one member at request time: the cache if
fresh, else the member's current history read from MariaDB, folded into the serving
model (no retrain), cached and stored. ``refresh_member`` does the same unconditionally
after an activity change. A member the model never saw (joined after training) gets the
hybrid's cold-start answer from their history, or the popularity list if they have none.

**When the cache's Redis fails.** A cache call that Redis refuses, or leaves unanswered
past the client's timeout, raises ``RedisUnavailable`` (one line: where, which timeout).
Serving does not fall back to MariaDB's stored list: every request would first wait out
the timeout, and the refresh path would store lists it cannot cache (the cache would keep
the older list of the same version and serve it once Redis is back).
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import redis
import scipy.sparse as sp

from recommender.activity import ActivityMatrix
from recommender.models import model_from_arrays
from recommender.models.base import Recommender
from shared.stores.mariadb import connect
from shared.stores.redis import redis_client, unavailable
from shared.stores.s3 import ensure_bucket, parse_s3_url, s3_client_from_config

log = logging.getLogger(__name__)

# Members per transaction when replacing top-N rows.
WRITE_CHUNK = 500
CACHE_PREFIX = "toonpick:rec:member:"


class ModelNotFound(LookupError):
    """No such model version (or nothing serves yet)."""


@dataclass
class ModelBundle:
    """A fitted model and the ids of its rows (members) and columns (webtoons).

    ``index`` is an empty ``ActivityMatrix`` over those ids: its vectorised id lookups,
    and the columns ``member_history`` aligns a member's current activity to.
    """

    model: Recommender
    member_ids: np.ndarray
    webtoon_ids: np.ndarray
    version: str | None = None
    index: ActivityMatrix = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.member_ids = np.asarray(self.member_ids, dtype=np.int64)
        self.webtoon_ids = np.asarray(self.webtoon_ids, dtype=np.int64)
        if len(self.webtoon_ids) != self.model.n_items:
            raise ValueError(
                f"{len(self.webtoon_ids)} webtoon ids for a model of {self.model.n_items} items"
            )
        self.index = ActivityMatrix(
            self.member_ids, self.webtoon_ids,
            sp.csr_matrix((len(self.member_ids), len(self.webtoon_ids)), dtype=np.float32))

    def to_bytes(self) -> bytes:
        arrays = {f"model.{name}": value for name, value in self.model.to_arrays().items()}
        meta = {"algorithm": self.model.algorithm, "params": self.model.params()}
        buffer = io.BytesIO()
        np.savez(
            buffer,
            member_ids=self.member_ids,
            webtoon_ids=self.webtoon_ids,
            meta=np.array(json.dumps(meta)),
            **arrays,
        )
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes, version: str | None = None) -> ModelBundle:
        with np.load(io.BytesIO(data), allow_pickle=False) as stored:
            meta = json.loads(str(stored["meta"]))
            arrays = {
                name[len("model."):]: stored[name]
                for name in stored.files if name.startswith("model.")
            }
            member_ids, webtoon_ids = stored["member_ids"], stored["webtoon_ids"]
        model = model_from_arrays(meta["algorithm"], meta["params"], arrays)
        return cls(model, member_ids, webtoon_ids, version=version)


@dataclass(frozen=True)
class ModelVersion:
    version: str
    algorithm: str
    params: dict[str, Any]
    metrics: dict[str, Any] | None
    s3_key: str
    n_members: int
    n_webtoons: int
    n_interactions: int
    fit_seconds: float
    trained_at: datetime


def new_version(now: datetime | None = None) -> str:
    """A sortable version name: UTC time to the microsecond."""
    return (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%S%fZ")


class ModelStore:
    """Model versions (S3 + ``recommendation_model``) and the serving switch."""

    def __init__(self, mariadb_url: str, store_url: str, s3: Any):
        self.mariadb_url = mariadb_url
        self.bucket, prefix = parse_s3_url(store_url)
        self.prefix = prefix if not prefix or prefix.endswith("/") else prefix + "/"
        self.s3 = s3
        self._bucket_checked = False
        self._loaded: dict[str, ModelBundle] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> ModelStore:
        return cls(config["mariadb_url"], config["recommender_models_store"],
                   s3_client_from_config(config))

    # -- versions -------------------------------------------------------------------

    def save(self, bundle: ModelBundle, *, metrics: Mapping[str, Any] | None,
             n_interactions: int, fit_seconds: float, version: str | None = None) -> ModelVersion:
        """Upload the bundle, then record it. The new version does not serve until
        ``switch``."""
        version = version or new_version()
        key = f"{self.prefix}{version}.npz"
        if not self._bucket_checked:
            ensure_bucket(self.s3, self.bucket, self.s3.meta.region_name)
            self._bucket_checked = True
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=bundle.to_bytes(),
                           ContentType="application/octet-stream")
        params = {"algorithm": bundle.model.algorithm, **bundle.model.params()}
        conn = connect(self.mariadb_url)
        try:
            with conn.cursor() as cur:
                cur.execute(
                    "INSERT INTO recommendation_model (version, algorithm, params, metrics,"
                    " s3_key, n_members, n_webtoons, n_interactions, fit_seconds)"
                    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                    (version, bundle.model.algorithm, json.dumps(params),
                     None if metrics is None else json.dumps(dict(metrics)), key,
                     len(bundle.member_ids), len(bundle.webtoon_ids), int(n_interactions),
                     float(fit_seconds)),
                )
            conn.commit()
        finally:
            conn.close()
        bundle.version = version
        return self.get(version)

    def get(self, version: str) -> ModelVersion:
        rows = self._versions("WHERE version = %s", (version,))
        if not rows:
            raise ModelNotFound(f"no model version {version!r}")
        return rows[0]

    def versions(self, limit: int = 50) -> list[ModelVersion]:
        return self._versions("ORDER BY id DESC LIMIT %s", (limit,))

    def _versions(self, where: str, args: tuple) -> list[ModelVersion]:
        conn = connect(self.mariadb_url, dict_cursor=True)
        try:
            with conn.cursor() as cur:
                cur.execute(
                    "SELECT version, algorithm, params, metrics, s3_key, n_members, n_webtoons,"
                    f" n_interactions, fit_seconds, trained_at FROM recommendation_model {where}",
                    args,
                )
                rows = cur.fetchall()
        finally:
            conn.close()
        return [
            ModelVersion(
                version=r["version"], algorithm=r["algorithm"], params=json.loads(r["params"]),
                metrics=None if r["metrics"] is None else json.loads(r["metrics"]),
                s3_key=r["s3_key"], n_members=r["n_members"], n_webtoons=r["n_webtoons"],
                n_interactions=r["n_interactions"], fit_seconds=r["fit_seconds"],
                trained_at=r["trained_at"],
            )
            for r in rows
        ]

    def load(self, version: str) -> ModelBundle:
        """The bundle of a version; kept in this process once loaded (versions never
        change)."""
        with self._lock:
            cached = self._loaded.get(version)
        if cached is not None:
            return cached
        record = self.get(version)
        body = self.s3.get_object(Bucket=self.bucket, Key=record.s3_key)["Body"].read()
        bundle = ModelBundle.from_bytes(body, version=version)
        with self._lock:
            # Old versions are rarely asked for again: keep the last two.
            while len(self._loaded) >= 2:
                self._loaded.pop(next(iter(self._loaded)))
            self._loaded[version] = bundle
        return bundle

    # -- the serving switch -----------------------------------------------------------

    def serving_version(self) -> str | None:
        history = self.serving_history(limit=1)
        return history[0]["model_version"] if history else None

    def serving_history(self, limit: int = 20) -> list[dict[str, Any]]:
        conn = connect(self.mariadb_url, dict_cursor=True)
        try:
            with conn.cursor() as cur:
                cur.execute(
                    "SELECT id, model_version, action, reason, switched_at"
                    " FROM recommendation_serving_log ORDER BY id DESC LIMIT %s", (limit,))
                return list(cur.fetchall())
        finally:
            conn.close()

    def switch(self, version: str, reason: str | None = None, action: str = "SWITCH") -> str:
        self.get(version)  # an unknown version is refused, not logged
        conn = connect(self.mariadb_url)
        try:
            with conn.cursor() as cur:
                cur.execute(
                    "INSERT INTO recommendation_serving_log (model_version, action, reason)"
                    " VALUES (%s, %s, %s)", (version, action, reason))
            conn.commit()
        finally:
            conn.close()
        log.info("recommendation model %s now serves (%s)", version, action)
        return version

    def rollback(self, reason: str | None = None) -> str:
        """Serve the version that served before the current one."""
        history = self.serving_history(limit=1000)
        if not history:
            raise ModelNotFound("no model serves yet: nothing to roll back")
        current = history[0]["model_version"]
        for entry in history[1:]:
            if entry["model_version"] != current:
                return self.switch(entry["model_version"], reason, action="ROLLBACK")
        raise ModelNotFound(f"{current} is the only version that ever served")

    def serving_bundle(self) -> ModelBundle:
        version = self.serving_version()
        if version is None:
            raise ModelNotFound("no model serves yet: train one (RECOMMENDATION_MODEL_TRAINING)")
        return self.load(version)


class RecommendationCache:
    """Each member's current list in Redis, one JSON value with a TTL."""

    def __init__(self, redis_url: str, ttl_seconds: int, prefix: str = CACHE_PREFIX):
        self.redis = redis_client(redis_url)
        self.ttl = int(ttl_seconds)
        self.prefix = prefix

    def key(self, member_id: int) -> str:
        return f"{self.prefix}{int(member_id)}"

    @contextlib.contextmanager
    def _answered(self) -> Iterator[None]:
        """A refused or unanswered call as ``RedisUnavailable`` naming the cache."""
        try:
            yield
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise unavailable(self.redis, exc, "the recommendation cache's Redis") from exc

    def put_many(self, entries: Iterable[tuple[int, dict[str, Any]]]) -> int:
        pipe = self.redis.pipeline(transaction=False)
        count = 0
        with self._answered():
            for member_id, value in entries:
                pipe.set(self.key(member_id), json.dumps(value, separators=(",", ":")),
                         ex=self.ttl)
                count += 1
                if count % 1000 == 0:
                    pipe.execute()
            pipe.execute()
        return count

    def get(self, member_id: int) -> dict[str, Any] | None:
        with self._answered():
            raw = self.redis.get(self.key(member_id))
        if raw is None:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            log.warning("dropping unreadable cache entry of member %s", member_id)
            with self._answered():
                self.redis.delete(self.key(member_id))
            return None

    def clear(self) -> int:
        """Delete every member's entry (keys under this cache's prefix)."""
        deleted = 0
        batch: list[bytes] = []
        for key in self.redis.scan_iter(match=f"{self.prefix}*", count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                deleted += self.redis.delete(*batch)
                batch = []
        if batch:
            deleted += self.redis.delete(*batch)
        return deleted

    def close(self) -> None:
        self.redis.close()


def cache_value(webtoon_ids: Sequence[int], scores: Sequence[float], source: str,
                version: str | None, generated_at: float | None = None) -> dict[str, Any]:
    return {
        "version": version,
        "source": source,
        "generated_at": round(generated_at or time.time(), 3),
        "items": [[int(w), round(float(s), 6)] for w, s in zip(webtoon_ids, scores, strict=True)],
    }


def replace_rows(cur: Any, table: str, key_column: str, keys: Sequence[int],
                 columns: Sequence[str], rows: Sequence[tuple]) -> None:
    """Delete ``table``'s rows whose ``key_column`` is in ``keys`` and insert ``rows``,
    on the caller's transaction: readers see the old rows or the new ones."""
    if keys:
        cur.execute(f"DELETE FROM {table} WHERE {key_column} IN ("
                    + ",".join(["%s"] * len(keys)) + ")", list(keys))
    if rows:
        cur.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ("
                        + ", ".join(["%s"] * len(columns)) + ")", rows)


def write_top_n(mariadb: str | Any, cache: RecommendationCache | None,
                lists: Iterable[tuple[int, Sequence[int], Sequence[float], str]],
                version: str | None) -> int:
    """Replace members' stored lists: ``(member_id, webtoon_ids, scores, source)``.

    ``mariadb`` is a URL or an open connection (kept open). Chunks of ``WRITE_CHUNK``
    members, each one transaction; the cache is set after its chunk commits, so the
    cache never holds a list MariaDB does not.
    """
    own = isinstance(mariadb, str)
    conn = connect(mariadb) if own else mariadb
    written = 0
    try:
        chunk: list[tuple[int, Sequence[int], Sequence[float], str]] = []
        for entry in lists:
            chunk.append(entry)
            if len(chunk) >= WRITE_CHUNK:
                written += _write_chunk(conn, cache, chunk, version)
                chunk = []
        if chunk:
            written += _write_chunk(conn, cache, chunk, version)
    finally:
        if own:
            conn.close()
    return written


def _write_chunk(conn: Any, cache: RecommendationCache | None,
                 chunk: list[tuple[int, Sequence[int], Sequence[float], str]],
                 version: str | None) -> int:
    now = time.time()
    rows = []
    for member_id, webtoon_ids, scores, source in chunk:
        for rank, (webtoon_id, score) in enumerate(zip(webtoon_ids, scores, strict=True), 1):
            rows.append((int(member_id), rank, int(webtoon_id), float(score), source, version))
    try:
        with conn.cursor() as cur:
            replace_rows(cur, "member_webtoon_recommendation", "member_id",
                         [int(entry[0]) for entry in chunk],
                         ("member_id", "`rank`", "webtoon_id", "score", "source",
                          "model_version"), rows)
        conn.commit()
    except Exception:
        conn.rollback()
        raise
    if cache is not None:
        cache.put_many(
            (member_id, cache_value(webtoon_ids, scores, source, version, now))
            for member_id, webtoon_ids, scores, source in chunk
        )
    return len(chunk)


def stored_top_n(mariadb_url: str, member_id: int) -> list[tuple[int, float, str]]:
    """A member's stored list: ``(webtoon_id, score, source)`` by rank."""
    conn = connect(mariadb_url)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT webtoon_id, score, source FROM member_webtoon_recommendation"
                " WHERE member_id = %s ORDER BY `rank`", (int(member_id),))
            return [(int(w), float(s), src) for w, s, src in cur.fetchall()]
    finally:
        conn.close()


__all__ = [
    "ModelBundle",
    "ModelNotFound",
    "ModelStore",
    "ModelVersion",
    "RecommendationCache",
    "cache_value",
    "new_version",
    "replace_rows",
    "stored_top_n",
    "write_top_n",
]
