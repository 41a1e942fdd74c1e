"""MongoDB collections of the raw store and their indexes, created idempotently.

``webtoon_raw``: one document per (platform, external_id).
``episode_raw``: one per (platform, webtoon_external_id, season_no, episode_no).
The unique indexes are what make concurrent upserts from several crawl nodes
land on one document instead of two.
"""

from __future__ import annotations

from pymongo import ASCENDING, IndexModel
from pymongo.database import Database

WEBTOON_RAW = "webtoon_raw"
EPISODE_RAW = "episode_raw"

INDEXES: dict[str, list[IndexModel]] = {
    WEBTOON_RAW: [
        IndexModel(
            [("platform", ASCENDING), ("external_id", ASCENDING)],
            unique=True, name="uk_platform_external_id",
        ),
    ],
    EPISODE_RAW: [
        IndexModel(
            [
                ("platform", ASCENDING),
                ("webtoon_external_id", ASCENDING),
                ("season_no", ASCENDING),
                ("episode_no", ASCENDING),
            ],
            unique=True, name="uk_platform_webtoon_season_episode",
        ),
    ],
}


def ensure_indexes(db: Database) -> None:
    """Create every index above (a no-op for those that exist)."""
    for collection, indexes in INDEXES.items():
        db[collection].create_indexes(indexes)
