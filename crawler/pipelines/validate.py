"""Validation and cleaning of items before any store sees them.

An item is either *passed* (cleaned in place: strings stripped with inner
whitespace collapsed, lists de-duplicated in order without empty strings) or
*dropped* with a reason: ``DropItem`` is raised, ``validate/dropped/<reason>`` is
counted and the first drop of each reason is logged as a warning (later ones
only count, so a broken platform page does not flood the log).
"""

from __future__ import annotations

import logging
import re
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from scrapy.crawler import Crawler
from scrapy.exceptions import DropItem

from crawler.items import EpisodeItem, WebtoonItem
from shared.domain import AgeRating, AuthorRole, DayOfWeek, Platform, PricingType, WebtoonStatus

logger = logging.getLogger(__name__)

_WHITESPACE = re.compile(r"\s+")
# Summaries keep their line breaks; only runs of spaces and tabs are collapsed.
_INLINE_SPACE = re.compile(r"[^\S\n]+")
_BLANK_LINES = re.compile(r"\n\s*\n+")


class InvalidItem(ValueError):
    """Raised by the checks; ``reason`` is the stats key."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def clean_text(value: Any, field: str, *, required: bool = False) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise InvalidItem(f"bad_{field}", f"{field} must be a string, got {type(value).__name__}")
    cleaned = _WHITESPACE.sub(" ", value).strip()
    if required and not cleaned:
        raise InvalidItem(f"missing_{field}", f"{field} is empty")
    return cleaned


def clean_summary(value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidItem("bad_summary", f"summary must be a string, got {type(value).__name__}")
    lines = _INLINE_SPACE.sub(" ", value.replace("\r\n", "\n")).strip()
    return "\n".join(line.strip() for line in _BLANK_LINES.sub("\n\n", lines).split("\n"))


def clean_enum(value: Any, enum: type[StrEnum], field: str) -> str:
    try:
        return enum(value).value
    except (ValueError, TypeError):
        raise InvalidItem(f"bad_{field}", f"{field}={value!r} is not one of "
                                          f"{', '.join(e.value for e in enum)}") from None


def clean_text_list(value: Any, field: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list | tuple):
        raise InvalidItem(f"bad_{field}", f"{field} must be a list, got {type(value).__name__}")
    seen: dict[str, None] = {}
    for element in value:
        text = clean_text(element, field)
        if text:
            seen.setdefault(text, None)
    return list(seen)


def clean_date(value: Any, field: str) -> str | None:
    """An ISO date (or datetime, reduced to its date) or None."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str):
        text = value.strip()
        try:
            return date.fromisoformat(text).isoformat()
        except ValueError:
            pass
        try:
            return datetime.fromisoformat(text.replace("Z", "+00:00")).date().isoformat()
        except ValueError:
            pass
    raise InvalidItem(f"bad_{field}", f"{field}={value!r} is not an ISO date")


def clean_positive_int(value: Any, field: str, minimum: int) -> int:
    # bool is an int subclass; a platform sending true for a number is malformed.
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidItem(f"bad_{field}", f"{field}={value!r} is not an integer")
    if value < minimum:
        raise InvalidItem(f"bad_{field}", f"{field}={value} is below {minimum}")
    return value


def clean_authors(value: Any) -> list[dict[str, str]]:
    if value is None:
        return []
    if not isinstance(value, list | tuple):
        raise InvalidItem("bad_authors", "authors must be a list")
    authors: dict[str, dict[str, str]] = {}
    for author in value:
        if not isinstance(author, dict):
            raise InvalidItem("bad_authors", f"author {author!r} is not a mapping")
        uid = clean_text(author.get("uid"), "author_uid", required=True)
        name = clean_text(author.get("name"), "author_name", required=True)
        role = clean_enum(author.get("role"), AuthorRole, "author_role")
        previous = authors.get(uid)
        if previous and previous["role"] != role:
            # One person credited twice (story and art) is the original's BOTH.
            previous["role"] = AuthorRole.BOTH.value
        elif not previous:
            authors[uid] = {"uid": uid, "name": name, "role": role}
    return list(authors.values())


def clean_webtoon(item: WebtoonItem) -> WebtoonItem:
    item.platform = clean_enum(item.platform, Platform, "platform")
    item.external_id = clean_text(item.external_id, "external_id", required=True)
    item.title = clean_text(item.title, "title", required=True)
    item.authors = clean_authors(item.authors)
    item.status = clean_enum(item.status, WebtoonStatus, "status")
    item.age_rating = clean_enum(item.age_rating, AgeRating, "age_rating")
    days = clean_text_list(item.days_of_week, "days_of_week")
    item.days_of_week = [clean_enum(d, DayOfWeek, "days_of_week") for d in days]
    item.genres = clean_text_list(item.genres, "genres")
    item.tags = clean_text_list(item.tags, "tags")
    item.summary = clean_summary(item.summary)
    item.link = clean_text(item.link, "link")
    item.thumbnail_url = clean_text(item.thumbnail_url, "thumbnail_url") or None
    item.publish_start_date = clean_date(item.publish_start_date, "publish_start_date")
    if not isinstance(item.stats, dict) or not all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in item.stats.values()
    ):
        raise InvalidItem("bad_stats", f"stats must map names to numbers, got {item.stats!r}")
    if not isinstance(item.raw, dict):
        raise InvalidItem("bad_raw", "raw must be the platform payload as a mapping")
    item.image_urls = clean_text_list(item.image_urls, "image_urls")
    return item


def clean_episode(item: EpisodeItem) -> EpisodeItem:
    item.platform = clean_enum(item.platform, Platform, "platform")
    item.webtoon_external_id = clean_text(
        item.webtoon_external_id, "webtoon_external_id", required=True)
    item.episode_no = clean_positive_int(item.episode_no, "episode_no", 1)
    item.season_no = clean_positive_int(item.season_no, "season_no", 1)
    item.title = clean_text(item.title, "title", required=True)
    if item.external_id is not None:
        item.external_id = clean_text(item.external_id, "external_id") or None
    item.pricing_type = clean_enum(item.pricing_type, PricingType, "pricing_type")
    item.url = clean_text(item.url, "url")
    item.published_at = clean_date(item.published_at, "published_at")
    item.thumbnail_url = clean_text(item.thumbnail_url, "thumbnail_url") or None
    if not isinstance(item.raw, dict):
        raise InvalidItem("bad_raw", "raw must be the platform payload as a mapping")
    return item


class ValidationPipeline:
    stats_prefix = "validate"

    def __init__(self, crawler: Crawler | None = None, stats: Any = None):
        self.crawler = crawler
        self.stats = stats if stats is not None else (crawler.stats if crawler else None)
        self._logged_reasons: set[str] = set()

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ValidationPipeline:
        return cls(crawler)

    def open_spider(self) -> None:
        self._logged_reasons.clear()

    def process_item(self, item: Any) -> Any:
        try:
            if isinstance(item, WebtoonItem):
                clean_webtoon(item)
            elif isinstance(item, EpisodeItem):
                clean_episode(item)
            else:
                raise InvalidItem("unknown_item_type",
                                  f"{type(item).__name__} is neither WebtoonItem nor EpisodeItem")
        except InvalidItem as exc:
            self._inc(f"dropped/{exc.reason}")
            if exc.reason not in self._logged_reasons:
                self._logged_reasons.add(exc.reason)
                logger.warning("dropping invalid %s (%s); further drops for this reason "
                               "are only counted in validate/dropped/%s",
                               type(item).__name__, exc, exc.reason)
            # Scrapy would log every drop at WARNING; ours is logged once per reason above.
            raise DropItem(f"invalid item: {exc}", log_level="DEBUG") from None
        self._inc(f"passed/{type(item).__name__}")
        return item

    def _inc(self, key: str) -> None:
        if self.stats is not None:
            self.stats.inc_value(f"{self.stats_prefix}/{key}")
