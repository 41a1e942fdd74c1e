"""What the recommender's jobs and commands do, on top of the serving model.

- ``update_all``: every active member's top-N from the serving version, into MariaDB
  and the Redis cache; similar webtoons; recommend groups.
- ``refresh_members``: real time. Each member's history is read again from MariaDB and
  folded into the serving model (no retrain), and their stored and cached lists are
  replaced. A member who joined after training is answered the same way (the hybrid's
  cold-start blend; the popularity list when they have no history yet).
- ``serve``: one member's list for a request: a running A/B experiment decides the
  variant (and records the exposures); otherwise the cache, else a refresh.
- ``rebuild_cache``: the Redis cache again from MariaDB's stored lists (after a Redis
  flush or TTL expiry), no model involved.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from recommender import experiments, groups
from recommender.activity import load_activity, member_history
from recommender.serving import (
    ModelBundle,
    ModelStore,
    RecommendationCache,
    cache_value,
    replace_rows,
    write_top_n,
)
from recommender.training import confidence_weights
from shared.stores.mariadb import connect

log = logging.getLogger(__name__)

Progress = Callable[[float, str], None]
SIMILAR_N = 10
SIMILAR_CHUNK = 500
# How often a serving process asks MariaDB which version serves: a switch or rollback
# reaches every process within this many seconds.
SERVING_CHECK_SECONDS = 5.0


@dataclass
class Served:
    member_id: int
    webtoon_ids: list[int]
    scores: list[float]
    source: str
    version: str | None
    experiment: str | None = None
    variant: str | None = None
    cached: bool = False


class RecommendationService:
    def __init__(self, config: Mapping[str, Any], store: ModelStore | None = None,
                 cache: RecommendationCache | None = None):
        self.config = config
        self.mariadb_url = config["mariadb_url"]
        self.store = store or ModelStore.from_config(config)
        self.cache = cache or RecommendationCache(config["redis_url"],
                                                  config["recommender_cache_ttl"])
        self.top_n = int(config["recommender_top_n"])
        self.weights = confidence_weights(config)
        self._connection: Any = None
        self._serving: tuple[str, float] | None = None

    def _conn(self) -> Any:
        """This service's connection, opened once (a connection costs a TCP and a
        MariaDB handshake: more than the whole fold-in)."""
        if self._connection is None or not self._connection.open:
            self._connection = connect(self.mariadb_url)
        return self._connection

    def serving_bundle(self) -> ModelBundle:
        now = time.monotonic()
        if self._serving is None or now - self._serving[1] > SERVING_CHECK_SECONDS:
            version = self.store.serving_version()
            if version is None:
                return self.store.serving_bundle()  # raises ModelNotFound
            self._serving = (version, now)
        return self.store.load(self._serving[0])

    def close(self) -> None:
        self.cache.close()
        if self._connection is not None and self._connection.open:
            self._connection.close()

    # -- batch -----------------------------------------------------------------------

    def update_all(self, progress: Progress | None = None,
                   check_stop: Callable[[], None] | None = None) -> dict[str, Any]:
        report = progress or (lambda percent, message: None)
        stop = check_stop or (lambda: None)
        bundle = self.serving_bundle()
        report(5, f"loading activity for model {bundle.version}")
        # Columns fixed to the model's webtoons: newer ones cannot be scored by it yet.
        activity = load_activity(self.mariadb_url, self.weights, webtoon_ids=bundle.webtoon_ids)
        histories = activity.user_items
        known = bundle.index.member_indices(activity.member_ids)
        lists = 0
        total = max(1, len(activity.member_ids))
        chunk = 2000
        for start in range(0, len(activity.member_ids), chunk):
            stop()
            rows = slice(start, min(start + chunk, len(activity.member_ids)))
            lists += write_top_n(self._conn(), self.cache,
                                 self._lists(bundle, activity.member_ids[rows], known[rows],
                                             histories[rows]), bundle.version)
            report(10 + 60 * min(1.0, (start + chunk) / total), f"{lists} members' lists")
        report(75, "similar webtoons")
        similar = self.write_similar(bundle)
        stop()
        report(90, "recommend groups")
        cold_ids, _ = bundle.model.recommend_history(
            sp.csr_matrix((1, len(bundle.webtoon_ids)), dtype=np.float32), n=groups.GROUP_SIZE)
        group_counts = groups.write_groups(
            self.mariadb_url,
            groups.build_groups(self.mariadb_url, [int(bundle.webtoon_ids[i])
                                                   for i in cold_ids[0] if i >= 0]))
        report(100, "done")
        return {"model_version": bundle.version, "members": lists,
                "similar_webtoons": similar, "groups": group_counts}

    def _lists(self, bundle: ModelBundle, member_ids: np.ndarray, known: np.ndarray,
               histories: sp.csr_matrix) -> Iterable[tuple[int, list[int], list[float], str]]:
        ids = np.full((len(member_ids), self.top_n), -1, dtype=np.int64)
        scores = np.zeros((len(member_ids), self.top_n), dtype=np.float32)
        fitted = np.flatnonzero(known >= 0)
        if len(fitted):
            got_ids, got_scores = bundle.model.recommend(known[fitted], histories[fitted],
                                                         n=self.top_n)
            ids[fitted, : got_ids.shape[1]] = got_ids
            scores[fitted, : got_ids.shape[1]] = got_scores
        fresh = np.flatnonzero(known < 0)
        if len(fresh):
            got_ids, got_scores = bundle.model.recommend_history(histories[fresh], n=self.top_n)
            ids[fresh, : got_ids.shape[1]] = got_ids
            scores[fresh, : got_ids.shape[1]] = got_scores
        positives = np.asarray((histories > 0).sum(axis=1)).ravel()
        for row, member_id in enumerate(member_ids):
            keep = ids[row] >= 0
            yield (int(member_id), [int(w) for w in bundle.webtoon_ids[ids[row][keep]]],
                   [float(s) for s in scores[row][keep]],
                   bundle.model.algorithm if positives[row] else "popularity")

    def write_similar(self, bundle: ModelBundle, n: int = SIMILAR_N) -> int:
        """``webtoon_similar_webtoon`` for every webtoon of the model, replaced per chunk
        of sources in one transaction each."""
        conn = self._conn()
        written = 0
        try:
            for start in range(0, len(bundle.webtoon_ids), SIMILAR_CHUNK):
                items = np.arange(start, min(start + SIMILAR_CHUNK, len(bundle.webtoon_ids)))
                similar, scores = bundle.model.similar_items(items, n=n)
                rows = []
                for row, item in enumerate(items):
                    rank = 0
                    for other, score in zip(similar[row], scores[row], strict=True):
                        if other < 0 or other == item or not np.isfinite(score):
                            continue
                        rank += 1
                        rows.append((int(bundle.webtoon_ids[item]),
                                     int(bundle.webtoon_ids[other]), float(score), rank,
                                     bundle.version))
                with conn.cursor() as cur:
                    replace_rows(cur, "webtoon_similar_webtoon", "source_webtoon_id",
                                 [int(bundle.webtoon_ids[i]) for i in items],
                                 ("source_webtoon_id", "similar_webtoon_id", "score", "`rank`",
                                  "model_version"), rows)
                conn.commit()
                written += len(rows)
        except Exception:
            conn.rollback()
            raise
        return written

    # -- real time -------------------------------------------------------------------

    def _history(self, conn: Any, bundle: ModelBundle, member_id: int) -> sp.csr_matrix:
        # member_history ends the read transaction it opens: no stale snapshot is kept.
        return member_history(conn, member_id, self.weights, bundle.index)

    def compute(self, member_id: int, bundle: ModelBundle | None = None,
                conn: Any = None, model: Any = None) -> tuple[list[int], list[float], str]:
        """A member's list now, from their current history, without a refit."""
        bundle = bundle or self.serving_bundle()
        history = self._history(conn or self._conn(), bundle, member_id)
        model = model or bundle.model
        ids, scores = model.recommend_history(history, n=self.top_n)
        keep = ids[0] >= 0
        source = model.algorithm if history.nnz and (history.data > 0).any() else "popularity"
        return ([int(w) for w in bundle.webtoon_ids[ids[0][keep]]],
                [float(s) for s in scores[0][keep]], source)

    def refresh_members(self, member_ids: Sequence[int]) -> dict[int, float]:
        """Recompute, store and cache these members' lists. Returns ms per member."""
        bundle = self.serving_bundle()
        timings: dict[int, float] = {}
        conn = self._conn()
        for member_id in member_ids:
            started = time.perf_counter()
            webtoon_ids, scores, source = self.compute(int(member_id), bundle, conn)
            write_top_n(conn, self.cache, [(int(member_id), webtoon_ids, scores, source)],
                        bundle.version)
            timings[int(member_id)] = (time.perf_counter() - started) * 1000
        return timings

    def serve(self, member_id: int, n: int | None = None) -> Served:
        """One member's list for a request (records A/B exposures when an experiment runs)."""
        n = min(n or self.top_n, self.top_n)
        conn = self._conn()
        running = experiments.running_experiments(conn)
        conn.commit()
        if running:
            experiment = running[0]
            variant = experiments.assign(experiment, member_id)
            bundle = self.serving_bundle()
            model = variant_model(bundle, variant.algorithm, variant.params)
            webtoon_ids, scores, source = self.compute(member_id, bundle, conn, model)
            webtoon_ids, scores = webtoon_ids[:n], scores[:n]
            experiments.record_exposures(conn, experiment, member_id, webtoon_ids)
            conn.commit()
            return Served(member_id, webtoon_ids, scores, source, bundle.version,
                          experiment.code, variant.name)
        cached = self.cache.get(member_id)
        # A list from another version (before a switch or rollback) is recomputed.
        if cached is not None and cached.get("version") == self.serving_bundle().version:
            items = cached["items"][:n]
            return Served(member_id, [w for w, _ in items], [s for _, s in items],
                          cached["source"], cached["version"], cached=True)
        self.refresh_members([member_id])
        cached = self.cache.get(member_id) or {"items": [], "source": "none", "version": None}
        items = cached["items"][:n]
        return Served(member_id, [w for w, _ in items], [s for _, s in items],
                      cached["source"], cached["version"])

    def rebuild_cache(self, progress: Progress | None = None) -> int:
        report = progress or (lambda percent, message: None)
        conn = self._conn()
        entries: dict[int, dict[str, Any]] = {}
        with conn.cursor() as cur:
            cur.execute(
                "SELECT member_id, webtoon_id, score, source, model_version,"
                " UNIX_TIMESTAMP(generated_at) FROM member_webtoon_recommendation"
                " ORDER BY member_id, `rank`")
            for member_id, webtoon_id, score, source, version, at in cur.fetchall():
                entry = entries.get(member_id)
                if entry is None:
                    entry = entries[member_id] = cache_value([], [], source, version, float(at))
                entry["items"].append([int(webtoon_id), round(float(score), 6)])
        # Not left open: a later read on this connection must see new lists.
        conn.commit()
        report(50, f"{len(entries)} members' lists read")
        count = self.cache.put_many(entries.items())
        report(100, f"{count} cache entries set")
        return count


def variant_model(bundle: ModelBundle, algorithm: str, params: Mapping[str, Any]) -> Any:
    """The model an experiment variant is served by, from the serving hybrid's parts."""
    model = bundle.model
    parts = {"hybrid": model, "als": getattr(model, "collaborative", None),
             "content": getattr(model, "content", None),
             "popularity": getattr(model, "popularity", None)}
    chosen = parts.get(algorithm)
    if chosen is None:
        raise ValueError(f"the serving model has no {algorithm!r} part")
    if params and algorithm == "hybrid":
        chosen = chosen.with_blend(**params)
    return chosen
