"""What the spiders yield: one ``WebtoonItem`` per title, one ``EpisodeItem`` per episode.

Both are plain dataclasses (itemadapter handles them) holding values already
normalised to ``shared.domain`` enums (as their string values) and JSON-able
types only, so an item can be logged, hashed, queued or stored as it is.
``raw`` keeps the platform payload the item was built from, for the raw store.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class AuthorRef:
    """An author as a platform names them; ``uid`` is unique across platforms."""

    uid: str  # "<PLATFORM>:<platform artist id>", or "<PLATFORM>:name:<name>" when none
    name: str
    role: str  # AuthorRole


@dataclass
class WebtoonItem:
    platform: str  # Platform
    external_id: str  # the platform's title id, as a string
    title: str
    authors: list[dict[str, str]] = field(default_factory=list)  # AuthorRef as dicts
    status: str = "ONGOING"  # WebtoonStatus
    age_rating: str = "ALL"  # AgeRating
    days_of_week: list[str] = field(default_factory=list)  # DayOfWeek, all publish days
    genres: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    summary: str = ""
    link: str = ""  # the title's page on the platform
    thumbnail_url: str | None = None
    publish_start_date: str | None = None  # ISO date
    # Platform-side popularity figures (favorite/like/view counts, star score).
    stats: dict[str, float] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)
    # Scrapy's ImagesPipeline reads image_urls and fills images.
    image_urls: list[str] = field(default_factory=list)
    images: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class EpisodeItem:
    platform: str  # Platform
    webtoon_external_id: str
    episode_no: int
    title: str
    season_no: int = 1
    external_id: str | None = None  # the platform's episode id, where it has one
    pricing_type: str = "FREE"  # PricingType
    url: str = ""  # web viewer link
    published_at: str | None = None  # ISO date
    thumbnail_url: str | None = None
    raw: dict[str, Any] = field(default_factory=dict)
