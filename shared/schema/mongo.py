"""MongoDB collections of the raw store and their indexes, created idempotently.

``webtoon_raw``: one document per (platform, external_id), holding the title's payload
and, under ``episodes."{season}-{no}"``, each of its episodes' payloads (see
``crawler.pipelines.raw_store``). The unique index is what makes concurrent writes from
several crawl nodes land on one document instead of two.
"""

from __future__ import annotations

from pymongo import ASCENDING, IndexModel
from pymongo.database import Database

WEBTOON_RAW = "webtoon_raw"

INDEXES: dict[str, list[IndexModel]] = {
    WEBTOON_RAW: [
        IndexModel(
            [("platform", ASCENDING), ("external_id", ASCENDING)],
            unique=True, name="uk_platform_external_id",
        ),
    ],
}


def ensure_indexes(db: Database) -> None:
    """Create every index above (a no-op for those that exist)."""
    for collection, indexes in INDEXES.items():
        db[collection].create_indexes(indexes)
