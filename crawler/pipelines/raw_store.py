"""The platform payloads as crawled: one MongoDB document per title, its episodes inside it.

A ``webtoon_raw`` document is keyed by (platform, external_id). The title's payload
sits at the top (``raw``, ``content_hash``, ``first_seen``, ``last_seen``, ``history``),
each episode under ``episodes."{season}-{no}"`` with the same five fields. Episodes may
arrive before their title (another node, another batch): the document then holds only
episodes until the title's payload fills in its top-level fields.

A payload (title or episode) is *inserted* the first time its key is seen, then each
crawl finds it *unchanged* (same content hash: only its ``last_seen`` moves) or
*changed* (new hash: the payload is replaced and a ``history`` entry records the new
and old hash and, for titles, the old payload). History grows only on real changes.

A batch costs one write per document it touches, not one per item (SecantusDB's cost
is per operation; a full crawl is ~20 episodes per title). A document not there yet is
inserted (not upserted), so two nodes racing to create it cannot both do so: the loser
hits the unique index (E11000) and its items are re-read and re-applied. A document
that exists is updated without a condition on its content (a conditional filter makes
SecantusDB scan the collection), so two nodes adding the same payload at the same
instant may both append a history entry; ``first_seen`` keeps the earlier time. The
cluster's leases make that rare (one node crawls one title at a time).

One document holds a title's whole episode list; at ~1 KB per episode that stays far
below MongoDB's 16 MB document limit for any published webtoon.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pymongo import InsertOne, UpdateOne
from pymongo.errors import (
    AutoReconnect,
    BulkWriteError,
    ConnectionFailure,
    DocumentTooLarge,
    ExecutionTimeout,
    InvalidDocument,
    NetworkTimeout,
    WTimeoutError,
)
from scrapy.crawler import Crawler

from crawler.items import EpisodeItem, WebtoonItem
from crawler.pipelines.batching import BatchingPipeline, Outcome, Stored
from shared.schema.mongo import WEBTOON_RAW, ensure_indexes
from shared.stores.mongo import mongo_client, mongo_database

logger = logging.getLogger(__name__)

DUPLICATE_KEY = 11000
# A document contested by other nodes more often than this in one batch is a bug, not a race.
MAX_RACE_ROUNDS = 5
_ENCODE = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                           default=str).encode


def content_hash(payload: Any) -> str:
    """sha256 of the payload's canonical JSON (sorted keys, no spaces)."""
    return hashlib.sha256(_ENCODE(payload).encode("utf-8")).hexdigest()


def episode_field(season_no: int, episode_no: int) -> str:
    """The key of an episode inside its title's document: ``"{season}-{no}"``."""
    return f"{season_no}-{episode_no}"


def parse_episode_field(name: str) -> tuple[int, int]:
    """``"2-15"`` → (season 2, episode 15); the inverse of ``episode_field``."""
    season, _, number = name.partition("-")
    return int(season), int(number)


def _document_key(item: WebtoonItem | EpisodeItem) -> tuple[str, str]:
    if isinstance(item, WebtoonItem):
        return item.platform, item.external_id
    return item.platform, item.webtoon_external_id


def _item_key(item: WebtoonItem | EpisodeItem) -> tuple:
    if isinstance(item, WebtoonItem):
        return item.platform, item.external_id, None
    return item.platform, item.webtoon_external_id, item.season_no, item.episode_no


@dataclass
class _DocumentWrite:
    """Everything one round writes to one document, and the items it settles."""

    key: tuple[str, str]
    exists: bool
    members: list[tuple[int, Any, str]] = field(default_factory=list)  # (index, item, status)
    set_fields: dict[str, Any] = field(default_factory=dict)
    min_fields: dict[str, Any] = field(default_factory=dict)
    push_fields: dict[str, Any] = field(default_factory=dict)
    new_document: dict[str, Any] | None = None

    def operation(self) -> InsertOne | UpdateOne:
        filter_ = {"platform": self.key[0], "external_id": self.key[1]}
        if self.new_document is not None:
            return InsertOne({**filter_, **self.new_document})
        update: dict[str, Any] = {"$set": self.set_fields}
        if self.min_fields:
            update["$min"] = self.min_fields
        if self.push_fields:
            update["$push"] = self.push_fields
        return UpdateOne(filter_, update)


class RawStore:
    """The raw collection over one database; usable outside Scrapy."""

    def __init__(self, db: Any):
        self.db = db

    @property
    def collection(self) -> Any:
        return self.db[WEBTOON_RAW]

    def ensure_indexes(self) -> None:
        ensure_indexes(self.db)

    def write(self, items: Sequence[Any]) -> list[Outcome]:
        outcomes: list[Outcome | None] = [None] * len(items)
        for item in items:
            if not isinstance(item, WebtoonItem | EpisodeItem):
                raise TypeError(f"the raw store takes WebtoonItem/EpisodeItem, got {type(item)}")
        # A payload's hash does not change between rounds: compute it once per item.
        digests = [content_hash(item.raw) for item in items]
        todo, races = list(enumerate(items)), 0
        while todo:
            # Items repeating a key within the batch wait for the next round, so each
            # round applies each payload once and its outcome is exact.
            round_items, later, seen = [], [], set()
            for index, item in todo:
                key = _item_key(item)
                (later if key in seen else round_items).append((index, item))
                seen.add(key)
            lost = self._write_round(round_items, digests, outcomes)
            if lost:
                races += 1
                if races > MAX_RACE_ROUNDS:
                    raise RuntimeError(
                        f"raw documents kept changing under this batch: {len(lost)} "
                        f"items not written after {MAX_RACE_ROUNDS} retries")
            todo = sorted(lost + later, key=lambda pair: pair[0])
        return outcomes  # type: ignore[return-value]

    def _existing(self, items: list[tuple[int, Any]]) -> dict[tuple[str, str], dict]:
        """The batch's documents, with only the hashes (and title payloads) it compares."""
        by_platform: dict[str, set[str]] = {}
        projection: dict[str, int] = {"_id": 0, "platform": 1, "external_id": 1,
                                      "content_hash": 1}
        for _, item in items:
            platform, external_id = _document_key(item)
            by_platform.setdefault(platform, set()).add(external_id)
            if isinstance(item, WebtoonItem):
                projection["raw"] = 1
            else:
                name = episode_field(item.season_no, item.episode_no)
                projection[f"episodes.{name}.content_hash"] = 1
        found: dict[tuple[str, str], dict] = {}
        for platform, external_ids in by_platform.items():
            query = {"platform": platform, "external_id": {"$in": sorted(external_ids)}}
            for doc in self.collection.find(query, projection):
                found[(doc["platform"], doc["external_id"])] = doc
        return found

    def _write_round(self, items: list[tuple[int, Any]], digests: list[str],
                     outcomes: list[Outcome | None]) -> list[tuple[int, Any]]:
        existing = self._existing(items)
        now = datetime.now(UTC)
        writes: dict[tuple[str, str], _DocumentWrite] = {}
        for index, item in items:
            key = _document_key(item)
            write = writes.get(key)
            if write is None:
                doc = existing.get(key)
                write = writes[key] = _DocumentWrite(key, exists=doc is not None)
                if doc is None:
                    write.new_document = {}
            doc = existing.get(key) or {}
            digest = digests[index]
            if isinstance(item, WebtoonItem):
                status = self._apply(write, "", doc, item.raw, digest, now, keep_previous=True)
                write.members.append((index, item, f"webtoon/{status}"))
            else:
                name = episode_field(item.season_no, item.episode_no)
                current = doc.get("episodes", {}).get(name, {})
                status = self._apply(write, f"episodes.{name}.", current, item.raw, digest, now,
                                     keep_previous=False)
                write.members.append((index, item, f"episode/{status}"))
        ordered = list(writes.values())
        lost_positions: set[int] = set()
        try:
            if ordered:
                self.collection.bulk_write([w.operation() for w in ordered], ordered=False)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if any(e.get("code") != DUPLICATE_KEY for e in errors):
                raise
            lost_positions = {e["index"] for e in errors}
        lost = []
        for position, write in enumerate(ordered):
            for index, item, status in write.members:
                if position in lost_positions:
                    lost.append((index, item))
                else:
                    outcomes[index] = Stored(status)
        return lost

    @staticmethod
    def _apply(write: _DocumentWrite, prefix: str, current: dict, raw: dict, digest: str,
               now: datetime, keep_previous: bool) -> str:
        """Add one payload's change to the document's write; returns its status."""
        if write.new_document is not None:
            # The whole document is inserted: nest the payload under its prefix.
            target = write.new_document
            for part in prefix.rstrip(".").split(".") if prefix else ():
                target = target.setdefault(part, {})
            target.update({"raw": raw, "content_hash": digest, "first_seen": now,
                           "last_seen": now, "history": [{"hash": digest, "seen_at": now}]})
            return "inserted"
        previous_hash = current.get("content_hash")
        if previous_hash == digest:
            write.set_fields[f"{prefix}last_seen"] = now
            return "unchanged"
        entry: dict[str, Any] = {"hash": digest, "seen_at": now}
        status = "inserted"
        if previous_hash is not None:
            status = "changed"
            entry["previous_hash"] = previous_hash
            if keep_previous:
                entry["previous"] = current.get("raw")
        write.set_fields.update({f"{prefix}raw": raw, f"{prefix}content_hash": digest,
                                 f"{prefix}last_seen": now})
        # $min: a node that added the same payload a moment earlier keeps its first_seen.
        write.min_fields[f"{prefix}first_seen"] = now
        write.push_fields[f"{prefix}history"] = entry
        return status


class MongoRawPipeline(BatchingPipeline):
    stats_prefix = "raw"
    # Unreachable, timed out (server selection, socket, operation), primary stepping
    # down (AutoReconnect's NotPrimaryError): retried until the server answers.
    transient_errors = (AutoReconnect, ConnectionFailure, NetworkTimeout, ExecutionTimeout,
                        WTimeoutError)
    data_errors = (DocumentTooLarge, InvalidDocument)

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
        client = mongo_client(self.mongo_url)
        try:
            store = RawStore(mongo_database(self.mongo_url, client))
            store.ensure_indexes()
        except BaseException:
            client.close()
            raise
        self._client, self.store = client, store

    def reconnect(self) -> None:
        # pymongo reconnects by itself; a fresh client also drops a wedged pool.
        self.close_store()
        self.open_store()

    def close_store(self) -> None:
        self.store = None
        if self._client is not None:
            self._client.close()
            self._client = None

    def is_open(self) -> bool:
        return self.store is not None

    def write_batch(self, items: Sequence[Any], final: bool = False) -> list[Outcome]:
        if self.store is None:
            raise AutoReconnect("the raw store's client is not open")
        return self.store.write(items)
