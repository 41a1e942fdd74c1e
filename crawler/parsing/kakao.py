"""Kakao Webtoon: request URLs and payload → items (no network, no Scrapy).

Shapes: /work/shared/reference/platform-apis.md, "Kakao Webtoon". Flow: the day
timetables (mon..sun, completed) list content cards — the only place the
authors and the publish days appear; the detail adds genre, synopsis, status
and statistics; episodes come in offset/limit pages until ``pagination.last``.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import SplitResult, quote, urlencode

from crawler.parsing.common import (
    EpisodeItem,
    EpisodePage,
    ParseError,
    TitleListPage,
    TitleRef,
    WebtoonItem,
    array,
    author,
    entry_drop,
    flag,
    id_from_argument,
    identifier,
    integer,
    iso_date,
    load_json,
    merge_roles,
    number,
    obj,
    stats_of,
    text,
    unique,
    with_image_extension,
)
from shared.domain import AgeRating, AuthorRole, DayOfWeek, Platform, PricingType, WebtoonStatus

PLATFORM = Platform.KAKAO.value
# The public web site (title pages, viewer links, Referer): the API host differs.
WEB_URL = "https://webtoon.kakao.com"
HEADERS = {"Accept-Language": "ko", "Referer": f"{WEB_URL}/", "Accept": "application/json"}
PLACEMENTS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun", "completed")
PLACEMENT_DAY = dict(zip(PLACEMENTS[:7], (day.value for day in DayOfWeek), strict=True))

_STATUS = {
    "EPISODES_PUBLISHING": WebtoonStatus.ONGOING,
    "EPISODES_NOT_PUBLISHING": WebtoonStatus.HIATUS,
    "END_OF_SEASON": WebtoonStatus.HIATUS,
    "SEASON_COMPLETED": WebtoonStatus.COMPLETED,
    "COMPLETED": WebtoonStatus.COMPLETED,
}
_ROLE = {
    "AUTHOR": AuthorRole.WRITER,
    "WRITER": AuthorRole.WRITER,
    "ILLUSTRATOR": AuthorRole.ARTIST,
    "ARTIST": AuthorRole.ARTIST,
    "ORIGINAL_STORY": AuthorRole.ORIGINAL,
}
_AGE_LIMIT = {0: AgeRating.ALL, 12: AgeRating.AGE_12, 15: AgeRating.AGE_15}


def _root(base: str) -> str:
    return base.rstrip("/")


def timetable_url(base: str, placement: str) -> str:
    """``placement`` is one of mon..sun or completed."""
    if placement not in PLACEMENTS:
        raise ValueError(f"placement must be one of {', '.join(PLACEMENTS)}, not {placement!r}")
    return f"{_root(base)}/section/v2/timetables/days?placement=timetable_{placement}"


def detail_url(base: str, content_id: str | int) -> str:
    return f"{_root(base)}/decorator/v2/decorator/contents/{content_id}"


def episodes_url(
    base: str, content_id: str | int, offset: int = 0, limit: int = 30, sort: str = "-NO"
) -> str:
    query = urlencode({"sort": sort, "offset": offset, "limit": limit})
    return f"{_root(base)}/episode/v2/views/content-home/contents/{content_id}/episodes?{query}"


def title_page_url(content_id: str | int, seo_id: str = "", web: str = WEB_URL) -> str:
    slug = quote(seo_id or str(content_id), safe="")
    return f"{_root(web)}/content/{slug}/{content_id}"


def viewer_url(episode_id: str | int, seo_id: str = "", web: str = WEB_URL) -> str:
    slug = quote(seo_id or str(episode_id), safe="")
    return f"{_root(web)}/viewer/{slug}/{episode_id}"


def content_id_from_argument(value: str) -> str:
    """A content id from ``2507`` or ``https://webtoon.kakao.com/content/{seoId}/{id}``."""
    def in_url(url: SplitResult) -> str | None:
        match = re.fullmatch(r"/content/[^/]+/(\d+)/?", url.path)
        return match.group(1) if match else None

    return id_from_argument(value, in_url, "kakao title", "content id",
                            "https://webtoon.kakao.com/content/내일도-출근/2507")


def parse_timetable(
    payload: bytes | str | dict[str, Any], placement: str | None = None
) -> TitleListPage:
    """One timetable: the content cards with the day they are listed under."""
    data = load_json(payload)
    sections = array(data, "data", required=True)
    page = TitleListPage()
    by_id: dict[str, TitleRef] = {}
    for s_index, section in enumerate(sections):
        if not isinstance(section, dict):
            page.drops.append(("wrong_type:section", f"data[{s_index}]"))
            continue
        named = str(section.get("placement") or f"timetable_{placement or ''}")
        day = PLACEMENT_DAY.get(named.removeprefix("timetable_"))
        for g_index, group in enumerate(array(section, "cardGroups")):
            cards = group.get("cards") if isinstance(group, dict) else None
            if not isinstance(cards, list):
                page.drops.append(("wrong_type:cards", f"data[{s_index}].cardGroups[{g_index}]"))
                continue
            for c_index, card in enumerate(cards):
                where = f"{named}[{g_index}][{c_index}]"
                try:
                    content = obj(card, "content") if isinstance(card, dict) else None
                    if content is None:
                        raise ParseError("wrong_type:card", f"card is {type(card).__name__}")
                    content_id = identifier(content, "id")
                except ParseError as exc:
                    page.drops.append(entry_drop(exc, where))
                    continue
                ref = by_id.get(content_id)
                if ref is None:
                    sorting = card.get("sorting")
                    kept = dict(content)
                    if isinstance(sorting, dict):
                        kept["sorting"] = sorting
                    ref = by_id[content_id] = TitleRef(external_id=content_id, card=kept)
                    page.titles.append(ref)
                if day and day not in ref.days:
                    ref.days.append(day)
    return page


def _authors(people: list[Any]) -> list[dict[str, str]]:
    """Kakao names authors without ids; one person as writer and artist is BOTH."""
    roles: dict[str, set[str]] = {}
    for person in people:
        if not isinstance(person, dict) or not text(person, "name"):
            continue
        role = _ROLE.get(str(person.get("type") or "").upper())
        if role is None:  # PUBLISHER and unknown kinds are not authors
            continue
        roles.setdefault(text(person, "name"), set()).add(role.value)
    return [author(PLATFORM, name, merge_roles(held)) for name, held in roles.items()]


def _age_rating(detail: dict[str, Any], card: dict[str, Any]) -> str:
    if flag(detail, "adult") or flag(card, "adult"):
        return AgeRating.ADULT.value
    for source in (detail, card):
        limit = number(source, "ageLimit")
        if limit is not None:
            if limit >= 18:
                return AgeRating.ADULT.value
            return _AGE_LIMIT.get(int(limit), AgeRating.ALL).value
    return AgeRating.ALL.value


def _genres(detail: dict[str, Any], card: dict[str, Any]) -> tuple[list[str], list[str]]:
    """Genres from the detail's ``genre``; the card's ``#keywords`` are tags (and the
    genre when the detail names none)."""
    genre = detail.get("genre")
    if isinstance(genre, str):
        genres = [part.strip() for part in genre.split(",")]
    elif isinstance(genre, list):
        genres = [g.strip() for g in genre if isinstance(g, str)]
    else:
        genres = []
    keywords = detail.get("seoKeywords") or card.get("seoKeywords")
    tags = (
        [k.strip().lstrip("#").strip() for k in keywords if isinstance(k, str)]
        if isinstance(keywords, list)
        else []
    )
    return unique(genres or tags[:1]), unique(tags)


def parse_detail(
    payload: bytes | str | dict[str, Any],
    content_id: str,
    card: dict[str, Any] | None = None,
    days: list[str] | None = None,
    completed_listed: bool = False,
) -> WebtoonItem:
    """The detail payload (plus the timetable card, when there is one) as a ``WebtoonItem``.

    ``completed_listed``: the title was on the completed timetable, which says
    COMPLETED when the detail carries no status.
    """
    data = load_json(payload)
    detail = obj(data, "data")
    card = card or {}
    # The detail is the title's own record: without its title it is broken, even
    # though the card still names one.
    title = text(detail, "title", required=True)
    if detail.get("id") is not None and identifier(detail, "id") != str(content_id):
        raise ParseError("unknown_shape", f"asked {content_id}, got {detail.get('id')!r}")
    seo_id = text(detail, "seoId") or text(card, "seoId")

    raw_status = str(detail.get("status") or "")
    if raw_status in _STATUS:
        status = _STATUS[raw_status]
    elif completed_listed:
        status = WebtoonStatus.COMPLETED
    else:
        status = WebtoonStatus.ONGOING

    people = detail.get("authors")
    if not isinstance(people, list) or not people:
        people = card.get("authors") if isinstance(card.get("authors"), list) else []
    genres, tags = _genres(detail, card)
    thumbnail = with_image_extension(
        text(detail, "sharingThumbnailImage")
        or text(card, "featuredCharacterImageA")
        or text(detail, "backgroundImage")
        or text(card, "backgroundImage")
        or None
    )
    statistics = obj(detail, "statistics", required=False)
    sorting = card.get("sorting") if isinstance(card.get("sorting"), dict) else {}
    return WebtoonItem(
        platform=PLATFORM,
        external_id=content_id,
        title=title,
        authors=_authors(people),
        status=status.value,
        age_rating=_age_rating(detail, card),
        days_of_week=unique(d for d in (days or []) if d in PLACEMENT_DAY.values()),
        genres=genres,
        tags=tags,
        summary=text(detail, "synopsis") or text(card, "catchphraseTwoLines"),
        link=title_page_url(content_id, seo_id),
        thumbnail_url=thumbnail,
        publish_start_date=iso_date(
            detail.get("serialStartDateTime") or card.get("serialStartDateTime")
        ),
        stats=stats_of(
            view_count=number(statistics, "viewCount"),
            like_count=number(statistics, "likeCount"),
            popularity=number(sorting, "popularity"),
        ),
        raw={"content": card, "detail": detail},
        image_urls=[thumbnail] if thumbnail else [],
    )


def pricing_of(use_type: Any) -> str:
    kind = str(use_type or "").upper()
    if kind == "FREE":
        return PricingType.FREE.value
    if kind.startswith("WAIT_FOR_FREE"):
        return PricingType.WAIT_FREE.value
    return PricingType.PAID.value


def _episode(entry: Any, content_id: str, seo_id: str) -> EpisodeItem:
    if not isinstance(entry, dict):
        raise ParseError("wrong_type:episode", f"entry is {type(entry).__name__}")
    episode_id = identifier(entry, "id")
    no = integer(entry, "no")
    if no <= 0:
        raise ParseError("wrong_type:no", f"episode number {no}")
    title = text(entry, "title", required=True)
    asset = obj(entry, "asset", required=False)
    return EpisodeItem(
        platform=PLATFORM,
        webtoon_external_id=content_id,
        episode_no=no,
        title=title,
        season_no=integer(entry, "seasonNo", default=1),
        external_id=episode_id,
        pricing_type=pricing_of(entry.get("useType")),
        url=viewer_url(episode_id, seo_id),
        published_at=iso_date(entry.get("serialStartDateTime")),
        thumbnail_url=with_image_extension(text(asset, "thumbnailImage") or None),
        raw=entry,
    )


def parse_episode_page(
    payload: bytes | str | dict[str, Any], content_id: str, seo_id: str = ""
) -> EpisodePage:
    """One offset/limit page of episodes; ``is_last`` from ``meta.pagination.last``."""
    data = load_json(payload)
    body = obj(data, "data")
    entries = array(body, "episodes", required=True)
    page = EpisodePage()
    for index, entry in enumerate(entries):
        try:
            if isinstance(entry, dict) and entry.get("contentId") not in (None, ""):
                if str(entry["contentId"]) != str(content_id):
                    raise ParseError("unknown_shape", f"contentId {entry['contentId']!r}")
            page.items.append(_episode(entry, content_id, seo_id))
        except ParseError as exc:
            page.drops.append(entry_drop(exc, f"{content_id} episodes[{index}]"))
    pagination = obj(obj(data, "meta", required=False), "pagination", required=False)
    # Without pagination info, an empty page is the only safe end signal.
    page.is_last = flag(pagination, "last") if "last" in pagination else not entries
    total = number(pagination, "totalCount")
    page.total_count = int(total) if total is not None else None
    return page
