"""The platform payloads as crawled, one MongoDB document per title and per episode.

A document is *inserted* the first time its key is seen, then each crawl finds
it *unchanged* (same content hash: only ``last_seen`` moves) or *changed* (new
hash: the payload is replaced and a ``history`` entry records the old hash and,
for titles, the old payload). History therefore grows only on real changes.

A new document is inserted (not upserted), so two nodes racing to create it
cannot both do so: the loser hits the unique index (E11000) and its item is
re-read and re-applied as unchanged or changed. Two nodes recording the same
change at the same instant may both append a history entry; the cluster's
leases make that rare (one node crawls one title at a time).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from pymongo import InsertOne, UpdateMany, UpdateOne
from pymongo.errors import AutoReconnect, BulkWriteError, ConnectionFailure, NetworkTimeout
from scrapy.crawler import Crawler

from crawler.items import EpisodeItem, WebtoonItem
from crawler.pipelines.batching import BatchingPipeline, Outcome, Stored
from shared.schema.mongo import EPISODE_RAW, WEBTOON_RAW, ensure_indexes
from shared.stores.mongo import mongo_client, mongo_database

logger = logging.getLogger(__name__)

DUPLICATE_KEY = 11000
# A document contested by other nodes more often than this in one batch is a bug, not a race.
MAX_RACE_ROUNDS = 5
# SecantusDB's UpdateMany slows down sharply with long $in lists; 20 was fastest here.
TOUCH_CHUNK = 20


def content_hash(payload: Any) -> str:
    """sha256 of the payload's canonical JSON (sorted keys, no spaces)."""
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"),
                           ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _webtoon_key(item: WebtoonItem) -> dict[str, Any]:
    return {"platform": item.platform, "external_id": item.external_id}


def _episode_key(item: EpisodeItem) -> dict[str, Any]:
    return {"platform": item.platform, "webtoon_external_id": item.webtoon_external_id,
            "season_no": item.season_no, "episode_no": item.episode_no}


def _frozen(key: dict[str, Any]) -> tuple:
    return tuple(key.values())


class RawStore:
    """The raw collections over one database; usable outside Scrapy."""

    def __init__(self, db: Any):
        self.db = db

    def ensure_indexes(self) -> None:
        ensure_indexes(self.db)

    def write(self, items: Sequence[Any]) -> list[Outcome]:
        outcomes: list[Outcome | None] = [None] * len(items)
        for item in items:
            if not isinstance(item, WebtoonItem | EpisodeItem):
                raise TypeError(f"the raw store takes WebtoonItem/EpisodeItem, got {type(item)}")
        webtoons = [(i, it) for i, it in enumerate(items) if isinstance(it, WebtoonItem)]
        episodes = [(i, it) for i, it in enumerate(items) if isinstance(it, EpisodeItem)]
        self._write_kind(self.db[WEBTOON_RAW], "webtoon", webtoons, _webtoon_key, True, outcomes)
        self._write_kind(self.db[EPISODE_RAW], "episode", episodes, _episode_key, False, outcomes)
        return outcomes  # type: ignore[return-value]

    def _write_kind(self, collection, kind, indexed, key_of, keep_previous, outcomes) -> None:
        todo, races = indexed, 0
        while todo:
            # Items repeating a key within the batch wait for the next round, so each
            # round has one operation per document and its outcome is exact.
            round_items, later, seen = [], [], set()
            for index, item in todo:
                key = _frozen(key_of(item))
                (later if key in seen else round_items).append((index, item))
                seen.add(key)
            lost = self._write_round(collection, kind, round_items, key_of, keep_previous,
                                     outcomes)
            if lost:
                races += 1
                if races > MAX_RACE_ROUNDS:
                    raise RuntimeError(
                        f"{kind} raw documents kept changing under this batch: {len(lost)} "
                        f"items not written after {MAX_RACE_ROUNDS} retries")
            todo = lost + later

    def _existing(self, collection, items, key_of, keep_previous) -> dict[tuple, dict]:
        # Only the index prefix (platform, title id) is queried: an $or of exact keys makes
        # SecantusDB scan. For episodes this reads every episode of the batch's titles, a
        # small superset filtered here.
        wanted = {_frozen(key_of(item)) for _, item in items}
        names = list(key_of(items[0][1]))
        by_first: dict[Any, set] = defaultdict(set)
        for key in wanted:
            by_first[key[0]].add(key[1])
        projection = {name: 1 for name in names} | {"content_hash": 1, "_id": 0}
        if keep_previous:
            projection["raw"] = 1
        found: dict[tuple, dict] = {}
        for first, seconds in by_first.items():
            query = {names[0]: first, names[1]: {"$in": sorted(seconds)}}
            for doc in collection.find(query, projection):
                key = tuple(doc.get(n) for n in names)
                if key in wanted:
                    found[key] = doc
        return found

    def _write_round(self, collection, kind, items, key_of, keep_previous, outcomes):
        existing = self._existing(collection, items, key_of, keep_previous)
        now = datetime.now(UTC)
        ops, statuses = [], []
        # Unchanged documents only get last_seen: one UpdateMany per key prefix instead
        # of one UpdateOne each (a full re-crawl is mostly unchanged documents).
        unchanged: dict[tuple, list] = defaultdict(list)
        names: list[str] = list(key_of(items[0][1]))
        for _, item in items:
            key = key_of(item)
            digest = content_hash(item.raw)
            doc = existing.get(_frozen(key))
            if doc is None:
                statuses.append("inserted")
                # An insert, not an upsert: a node that lost the race gets E11000 and
                # re-applies its item against the winner's document.
                ops.append(InsertOne({
                    **key, "raw": item.raw, "content_hash": digest, "first_seen": now,
                    "last_seen": now, "history": [{"hash": digest, "seen_at": now}]}))
            elif doc.get("content_hash") == digest:
                statuses.append("unchanged")
                unchanged[tuple(list(key.values())[:-1])].append(list(key.values())[-1])
            else:
                statuses.append("changed")
                entry = {"hash": digest, "seen_at": now, "previous_hash": doc.get("content_hash")}
                if keep_previous:
                    entry["previous"] = doc.get("raw")
                # Filtering on the old hash too would make the write conditional, but
                # SecantusDB then scans instead of using the unique index (~10x slower).
                ops.append(UpdateOne(
                    key,
                    {"$set": {"raw": item.raw, "content_hash": digest, "last_seen": now},
                     "$push": {"history": entry}}))
        touches = [
            UpdateMany({**dict(zip(names[:-1], prefix, strict=True)),
                        names[-1]: {"$in": last[start:start + TOUCH_CHUNK]}},
                       {"$set": {"last_seen": now}})
            for prefix, last in unchanged.items()
            for start in range(0, len(last), TOUCH_CHUNK)
        ]
        lost_positions: set[int] = set()
        try:
            if ops or touches:
                # The touches come last so a write error's index still points into ops.
                collection.bulk_write(ops + touches, ordered=False)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            others = [e for e in errors if e.get("code") != DUPLICATE_KEY]
            if others:
                raise
            lost_positions = {e["index"] for e in errors}
        lost = []
        positions = iter(range(len(ops)))
        for (index, item), status in zip(items, statuses, strict=True):
            position = None if status == "unchanged" else next(positions)
            if position in lost_positions:
                lost.append((index, item))
            else:
                outcomes[index] = Stored(f"{kind}/{status}")
        return lost


class MongoRawPipeline(BatchingPipeline):
    stats_prefix = "raw"
    transient_errors = (AutoReconnect, ConnectionFailure, NetworkTimeout)

    def __init__(self, crawler: Crawler | None = None, *, mongo_url: str, **kwargs: Any):
        super().__init__(crawler, **kwargs)
        if not mongo_url:
            raise ValueError("MongoRawPipeline needs TOONPICK_MONGO_URL")
        self.mongo_url = mongo_url
        self._client = None
        self.store: RawStore | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> MongoRawPipeline:
        return cls(crawler, mongo_url=crawler.settings.get("TOONPICK_MONGO_URL"),
                   **cls.batching_settings(crawler))

    def accepts(self, item: Any) -> bool:
        return isinstance(item, WebtoonItem | EpisodeItem)

    def open_store(self) -> None:
        self._client = mongo_client(self.mongo_url)
        self.store = RawStore(mongo_database(self.mongo_url, self._client))
        self.store.ensure_indexes()

    def reconnect(self) -> None:
        # pymongo reconnects by itself; a fresh client also drops a wedged pool.
        self.close_store()
        self.open_store()

    def close_store(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def write_batch(self, items: Sequence[Any], final: bool = False) -> list[Outcome]:
        assert self.store is not None, "open_store() was not called"
        return self.store.write(items)
