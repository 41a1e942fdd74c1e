"""Validation and cleaning of items before any store sees them.

An item is either *passed* (cleaned in place: strings stripped with inner
whitespace collapsed, lists de-duplicated in order without empty strings) or
*dropped* with a reason: ``DropItem`` is raised, ``validate/dropped/<reason>`` is
counted and the first drop of each reason is logged as a warning (later ones
only count, so a broken platform page does not flood the log).

Every text field is also *fitted* to the MariaDB column it lands in
(``COLUMN_WIDTHS``), so the catalogue never refuses a batch over one long value
(DataError 1406) and loses the title with it. What happens to a value that does
not fit depends on what it is:

- text (titles, names, genres, tags, the summary) is *cut* at a character
  boundary and counted in ``validate/truncated/<field>``;
- a URL is *cleared* (a cut URL points nowhere), ``validate/cleared/<field>``, and
  so are the platform figures (``stats``) if their JSON would not fit;
- an author uid is *shortened* to a prefix and the sha1 of the whole uid, so two
  long uids cannot collide into one author (``validate/truncated/author_uid``);
- an external id drops the item (``validate/dropped/too_long_<field>``): cutting
  it would merge two titles or episodes, and no real platform sends such ids;
  so does an episode or season number past MariaDB's INT (``bad_episode_no``).

A title is never dropped over an optional field. The first fitting of each field
is logged as a warning; the platform's whole text stays in MongoDB's raw document.

Before any of that, a lone UTF-16 surrogate anywhere in the item, its raw payload
included, is *repaired* to U+FFFD (``validate/repaired/lone_surrogate``, counted
per item): JSON may carry one (``"\\ud83d"``, an emoji cut in half by a platform
shortening its text), and neither MariaDB nor MongoDB can encode it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any, Literal

from scrapy.crawler import Crawler
from scrapy.exceptions import DropItem

from crawler.items import EpisodeItem, WebtoonItem
from shared.catalogue import normalize_title
from shared.domain import AgeRating, AuthorRole, DayOfWeek, Platform, PricingType, WebtoonStatus

logger = logging.getLogger(__name__)

_WHITESPACE = re.compile(r"\s+")
# Summaries keep their line breaks; only runs of spaces and tabs are collapsed.
_INLINE_SPACE = re.compile(r"[^\S\n]+")
_BLANK_LINES = re.compile(r"\n\s*\n+")
# json.loads joins valid surrogate pairs, so any surrogate left in a str is a lone one.
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


class InvalidItem(ValueError):
    """Raised by the checks; ``reason`` is the stats key."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


# How much of a refused value a drop's log line quotes.
MAX_LOGGED_DETAIL = 300
# MariaDB's INT: episode and season numbers above it are refused (DataError 1264).
MAX_INT_COLUMN = 2_147_483_647


@dataclass(frozen=True)
class ColumnWidth:
    """How much of a field its column holds, and what to do with a value that does not fit.

    ``unit``: VARCHAR(n) in utf8mb4 counts characters (Python code points); the TEXT
    types count bytes of UTF-8. ``overflow``: ``cut`` | ``clear`` | ``digest`` | ``drop``.
    """

    limit: int
    unit: Literal["chars", "bytes"]
    overflow: Literal["cut", "clear", "digest", "drop"]
    column: str  # where the value lands, for the log and the reader

    def size(self, value: str) -> int:
        if self.unit == "chars":
            return len(value)
        # surrogatepass: measuring must not raise on a lone surrogate from the payload.
        return len(value.encode("utf-8", "surrogatepass"))

    def cut(self, value: str) -> str:
        if self.unit == "chars":
            return value[:self.limit].rstrip()
        # "ignore" only drops the tail of a character split by the byte limit.
        head = value.encode("utf-8", "surrogatepass")[:self.limit]
        return head.decode("utf-8", "ignore").rstrip()


# Every text field's column (shared/schema/migrations/*.sql, written by
# crawler/pipelines/catalogue.py), keyed by the name its stats use.
COLUMN_WIDTHS: dict[str, ColumnWidth] = {
    # WebtoonItem
    "external_id": ColumnWidth(64, "chars", "drop",
                               "webtoon.external_id, webtoon_platform.external_id VARCHAR(64)"),
    "title": ColumnWidth(255, "chars", "cut",
                         "webtoon.title, webtoon.normalized_title VARCHAR(255)"),
    # MEDIUMTEXT holds 16 MiB (0006_long_fields.sql), but the UPDATE carrying it must fit
    # max_allowed_packet (16 MiB by default) with the row and the escaping of line breaks;
    # a packet too large reads as a lost connection and would be retried forever.
    "summary": ColumnWidth(4 * 1024 * 1024, "bytes", "cut", "webtoon.summary MEDIUMTEXT"),
    "link": ColumnWidth(1024, "chars", "clear", "webtoon_platform.link VARCHAR(1024)"),
    "thumbnail_url": ColumnWidth(1024, "chars", "clear", "webtoon.thumbnail_url VARCHAR(1024)"),
    "stats": ColumnWidth(65_535, "bytes", "clear", "webtoon_platform.stats TEXT (as JSON)"),
    "author_uid": ColumnWidth(191, "chars", "digest", "author.uid VARCHAR(191)"),
    "author_name": ColumnWidth(255, "chars", "cut", "author.name VARCHAR(255)"),
    "genres": ColumnWidth(64, "chars", "cut", "genre.name VARCHAR(64)"),
    "tags": ColumnWidth(64, "chars", "cut", "tag.name VARCHAR(64)"),
    # EpisodeItem
    "webtoon_external_id": ColumnWidth(64, "chars", "drop",
                                       "webtoon_platform.external_id VARCHAR(64)"),
    "episode_title": ColumnWidth(512, "chars", "cut", "webtoon_episode.title VARCHAR(512)"),
    "episode_external_id": ColumnWidth(64, "chars", "drop",
                                       "webtoon_episode_link.external_id VARCHAR(64)"),
    "episode_url": ColumnWidth(1024, "chars", "clear", "webtoon_episode_link.url VARCHAR(1024)"),
    "episode_thumbnail_url": ColumnWidth(1024, "chars", "clear",
                                         "webtoon_episode.thumbnail_url VARCHAR(1024)"),
}


@dataclass(frozen=True)
class Fitted:
    """One value changed to fit its column: ``action`` is ``truncated`` or ``cleared``."""

    field: str
    action: str
    size: int  # the value's size before, in the column's unit


def fit(value: str, field: str, fitted: list[Fitted]) -> str:
    """``value`` as its column holds it; a change is appended to ``fitted``.

    An id too long for its column raises ``InvalidItem("too_long_<field>")``.
    """
    width = COLUMN_WIDTHS[field]
    size = width.size(value)
    if size <= width.limit:
        return value
    if width.overflow == "drop":
        raise InvalidItem(f"too_long_{field}",
                          f"{field} is {size} {width.unit}, {width.column} holds {width.limit}")
    if width.overflow == "clear":
        fitted.append(Fitted(field, "cleared", size))
        return ""
    fitted.append(Fitted(field, "truncated", size))
    if width.overflow == "digest":
        digest = hashlib.sha1(value.encode("utf-8", "surrogatepass")).hexdigest()
        return f"{value[:width.limit - len(digest) - 1]}#{digest}"
    return width.cut(value)


def fit_title(value: str, fitted: list[Fitted]) -> str:
    """The title cut to its column; normalize_title's form (NFC, no spaces) must fit too."""
    title = fit(value, "title", fitted)
    limit = COLUMN_WIDTHS["title"].limit
    # NFC can expand a few code points; removing the spaces almost always shrinks it.
    while len(normalize_title(title)) > limit:
        if not fitted or fitted[-1].field != "title":
            fitted.append(Fitted("title", "truncated", len(value)))
        title = title[:-1].rstrip()
    return title


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


def clean_text_list(value: Any, field: str, fitted: list[Fitted] | None = None) -> list[str]:
    """Cleaned, de-duplicated texts; with ``fitted``, each is fitted to ``field``'s column
    first (two names equal in their first 64 characters become one)."""
    if value is None:
        return []
    if not isinstance(value, list | tuple):
        raise InvalidItem(f"bad_{field}", f"{field} must be a list, got {type(value).__name__}")
    seen: dict[str, None] = {}
    for element in value:
        text = clean_text(element, field)
        if text and fitted is not None:
            text = fit(text, field, fitted)
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


def clean_positive_int(value: Any, field: str, minimum: int,
                       maximum: int = MAX_INT_COLUMN) -> int:
    # bool is an int subclass; a platform sending true for a number is malformed.
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidItem(f"bad_{field}", f"{field}={value!r} is not an integer")
    if value < minimum:
        raise InvalidItem(f"bad_{field}", f"{field}={value} is below {minimum}")
    if value > maximum:
        raise InvalidItem(f"bad_{field}", f"{field}={value} is above {maximum}")
    return value


def clean_authors(value: Any, fitted: list[Fitted] | None = None) -> list[dict[str, str]]:
    if fitted is None:
        fitted = []
    if value is None:
        return []
    if not isinstance(value, list | tuple):
        raise InvalidItem("bad_authors", "authors must be a list")
    authors: dict[str, dict[str, str]] = {}
    for author in value:
        if not isinstance(author, dict):
            raise InvalidItem("bad_authors", f"author {author!r} is not a mapping")
        uid = fit(clean_text(author.get("uid"), "author_uid", required=True), "author_uid",
                  fitted)
        name = fit(clean_text(author.get("name"), "author_name", required=True), "author_name",
                   fitted)
        role = clean_enum(author.get("role"), AuthorRole, "author_role")
        previous = authors.get(uid)
        if previous and previous["role"] != role:
            # One person credited twice (story and art) is the original's BOTH.
            previous["role"] = AuthorRole.BOTH.value
        elif not previous:
            authors[uid] = {"uid": uid, "name": name, "role": role}
    return list(authors.values())


def has_lone_surrogate(value: Any) -> bool:
    """Whether any string in ``value`` (keys included) holds a lone surrogate.

    The common case, so it is cheap: no recursion, ASCII strings skipped in C.
    """
    stack = [value]
    while stack:
        current = stack.pop()
        if isinstance(current, str):
            if not current.isascii() and _LONE_SURROGATE.search(current):
                return True
        elif isinstance(current, dict):
            stack.extend(current)
            stack.extend(current.values())
        elif isinstance(current, list | tuple):
            stack.extend(current)
    return False


def repair_surrogates(value: Any) -> tuple[Any, int]:
    """``value`` with every lone surrogate replaced by U+FFFD, and how many were.

    Mappings and lists are repaired in place (a raw payload can be large); a string
    is returned new.
    """
    if isinstance(value, str):
        return _LONE_SURROGATE.subn("\ufffd", value)
    count = 0
    if isinstance(value, dict):
        for key in list(value):
            nested, found = repair_surrogates(value[key])
            if found:
                value[key] = nested
                count += found
            if isinstance(key, str) and _LONE_SURROGATE.search(key):
                fixed, found = repair_surrogates(key)
                value[fixed] = value.pop(key)
                count += found
    elif isinstance(value, list):
        for index, element in enumerate(value):
            nested, found = repair_surrogates(element)
            if found:
                value[index] = nested
                count += found
    elif isinstance(value, tuple):
        repaired = [repair_surrogates(element) for element in value]
        count = sum(found for _, found in repaired)
        if count:
            value = tuple(element for element, _ in repaired)
    return value, count


def repair_item(item: WebtoonItem | EpisodeItem) -> int:
    """Repair every field of ``item`` in place; returns the characters replaced."""
    if not has_lone_surrogate(vars(item)):
        return 0
    count = 0
    for name, value in vars(item).items():
        fixed, found = repair_surrogates(value)
        if found:
            setattr(item, name, fixed)
            count += found
    return count


def clean_webtoon(item: WebtoonItem, fitted: list[Fitted] | None = None) -> WebtoonItem:
    """Check and clean ``item`` in place; values changed to fit are appended to ``fitted``."""
    if fitted is None:
        fitted = []
    item.platform = clean_enum(item.platform, Platform, "platform")
    item.external_id = fit(clean_text(item.external_id, "external_id", required=True),
                           "external_id", fitted)
    item.title = fit_title(clean_text(item.title, "title", required=True), fitted)
    item.authors = clean_authors(item.authors, fitted)
    item.status = clean_enum(item.status, WebtoonStatus, "status")
    item.age_rating = clean_enum(item.age_rating, AgeRating, "age_rating")
    days = clean_text_list(item.days_of_week, "days_of_week")
    item.days_of_week = [clean_enum(d, DayOfWeek, "days_of_week") for d in days]
    item.genres = clean_text_list(item.genres, "genres", fitted)
    item.tags = clean_text_list(item.tags, "tags", fitted)
    item.summary = fit(clean_summary(item.summary), "summary", fitted)
    item.link = fit(clean_text(item.link, "link"), "link", fitted)
    item.thumbnail_url = fit(clean_text(item.thumbnail_url, "thumbnail_url"), "thumbnail_url",
                             fitted) or None
    item.publish_start_date = clean_date(item.publish_start_date, "publish_start_date")
    if not isinstance(item.stats, dict) or not all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in item.stats.values()
    ):
        raise InvalidItem("bad_stats", f"stats must map names to numbers, got {item.stats!r}")
    # The catalogue stores the figures as canonical JSON; they are optional, so a set
    # too large for its column is left out rather than cut into invalid JSON.
    if item.stats and not fit(json.dumps(item.stats, sort_keys=True), "stats", fitted):
        item.stats = {}
    if not isinstance(item.raw, dict):
        raise InvalidItem("bad_raw", "raw must be the platform payload as a mapping")
    item.image_urls = clean_text_list(item.image_urls, "image_urls")
    return item


def clean_episode(item: EpisodeItem, fitted: list[Fitted] | None = None) -> EpisodeItem:
    """Check and clean ``item`` in place; values changed to fit are appended to ``fitted``."""
    if fitted is None:
        fitted = []
    item.platform = clean_enum(item.platform, Platform, "platform")
    item.webtoon_external_id = fit(clean_text(
        item.webtoon_external_id, "webtoon_external_id", required=True),
        "webtoon_external_id", fitted)
    item.episode_no = clean_positive_int(item.episode_no, "episode_no", 1)
    item.season_no = clean_positive_int(item.season_no, "season_no", 1)
    item.title = fit(clean_text(item.title, "title", required=True), "episode_title", fitted)
    if item.external_id is not None:
        item.external_id = fit(clean_text(item.external_id, "external_id"),
                               "episode_external_id", fitted) or None
    item.pricing_type = clean_enum(item.pricing_type, PricingType, "pricing_type")
    item.url = fit(clean_text(item.url, "url"), "episode_url", fitted)
    item.published_at = clean_date(item.published_at, "published_at")
    item.thumbnail_url = fit(clean_text(item.thumbnail_url, "thumbnail_url"),
                             "episode_thumbnail_url", fitted) or None
    if not isinstance(item.raw, dict):
        raise InvalidItem("bad_raw", "raw must be the platform payload as a mapping")
    return item


class ValidationPipeline:
    stats_prefix = "validate"

    def __init__(self, crawler: Crawler | None = None, stats: Any = None):
        self.crawler = crawler
        self.stats = stats if stats is not None else (crawler.stats if crawler else None)
        self._logged_reasons: set[str] = set()
        self._logged_fits: set[str] = set()

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ValidationPipeline:
        return cls(crawler)

    def open_spider(self) -> None:
        self._logged_reasons.clear()
        self._logged_fits.clear()

    def process_item(self, item: Any) -> Any:
        fitted: list[Fitted] = []
        repaired = 0
        try:
            if isinstance(item, WebtoonItem):
                repaired = repair_item(item)
                clean_webtoon(item, fitted)
            elif isinstance(item, EpisodeItem):
                repaired = repair_item(item)
                clean_episode(item, fitted)
            else:
                raise InvalidItem("unknown_item_type",
                                  f"{type(item).__name__} is neither WebtoonItem nor EpisodeItem")
        except InvalidItem as exc:
            self._inc(f"dropped/{exc.reason}")
            # The detail quotes the bad value, which may be 500 KB long: one line is enough.
            detail = str(exc) if len(str(exc)) <= MAX_LOGGED_DETAIL else \
                str(exc)[:MAX_LOGGED_DETAIL] + "…"
            if exc.reason not in self._logged_reasons:
                self._logged_reasons.add(exc.reason)
                logger.warning("dropping invalid %s (%s); further drops for this reason "
                               "are only counted in validate/dropped/%s",
                               type(item).__name__, detail, exc.reason)
            # Scrapy would log every drop at WARNING; ours is logged once per reason above.
            raise DropItem(f"invalid item: {detail}", log_level="DEBUG") from None
        # Counted only for items that pass: a dropped item's values reach no store.
        if repaired:
            self._report_repair(item, repaired)
        for change in fitted:
            self._report_fit(item, change)
        self._inc(f"passed/{type(item).__name__}")
        return item

    def _report_repair(self, item: WebtoonItem | EpisodeItem, characters: int) -> None:
        key = "repaired/lone_surrogate"
        self._inc(key)
        if key not in self._logged_fits:
            self._logged_fits.add(key)
            logger.warning("%s %s %s: %d lone surrogate(s) replaced by U+FFFD; further ones "
                           "are only counted in %s/%s", item.platform, type(item).__name__,
                           _where(item), characters, self.stats_prefix, key)

    def _report_fit(self, item: WebtoonItem | EpisodeItem, change: Fitted) -> None:
        key = f"{change.action}/{change.field}"
        self._inc(key)
        if key in self._logged_fits:
            return
        self._logged_fits.add(key)
        width = COLUMN_WIDTHS[change.field]
        logger.warning("%s %s %s: %s of %d %s does not fit %s (%d); %s, further ones are only "
                       "counted in %s/%s", item.platform, type(item).__name__, _where(item),
                       change.field, change.size, width.unit, width.column, width.limit,
                       change.action, self.stats_prefix, key)

    def _inc(self, key: str) -> None:
        if self.stats is not None:
            self.stats.inc_value(f"{self.stats_prefix}/{key}")


def _where(item: WebtoonItem | EpisodeItem) -> str:
    """The item's identity for a log line (its values may be long)."""
    if isinstance(item, WebtoonItem):
        return str(item.external_id)[:80]
    return f"{str(item.webtoon_external_id)[:80]} episode {item.season_no}-{item.episode_no}"
