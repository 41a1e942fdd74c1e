"""Naver Webtoon: request URLs and payload → items (no network, no Scrapy).

Shapes: /work/shared/reference/platform-apis.md, "Naver Webtoon". Flow: the
weekday/dailyPlus/finished lists name titles; the title info gives a
``WebtoonItem``; the episode list pages (``articleList`` plus the paid
``chargeFolderArticleList``) give ``EpisodeItem``s.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlencode

from crawler.parsing.common import (
    EpisodeItem,
    EpisodePage,
    ParseError,
    TitleListPage,
    TitleRef,
    WebtoonItem,
    array,
    author,
    dotted_date,
    entry_drop,
    flag,
    id_from_argument,
    identifier,
    integer,
    load_json,
    merge_roles,
    number,
    obj,
    split_names,
    stats_of,
    text,
    unique,
)
from shared.domain import AgeRating, AuthorRole, DayOfWeek, Platform, PricingType, WebtoonStatus

PLATFORM = Platform.NAVER.value
HEADERS = {"Referer": "https://comic.naver.com/webtoon/", "Accept": "application/json"}
WEEKDAYS = tuple(day.value for day in DayOfWeek)

_AGE = {
    "RATE_ALL": AgeRating.ALL,
    "RATE_12": AgeRating.AGE_12,
    "RATE_15": AgeRating.AGE_15,
    "RATE_18": AgeRating.ADULT,
    "RATE_19": AgeRating.ADULT,
}
_ARTIST_ROLE = {
    "ARTIST_WRITER": AuthorRole.WRITER,
    "ARTIST_PAINTER": AuthorRole.ARTIST,
    "ARTIST_NOVEL_ORIGIN": AuthorRole.ORIGINAL,
}
_CARD_ROLE = {
    "writers": AuthorRole.WRITER,
    "painters": AuthorRole.ARTIST,
    "novelOriginAuthors": AuthorRole.ORIGINAL,
}


def _root(base: str) -> str:
    return base.rstrip("/")


def weekday_list_url(base: str) -> str:
    return f"{_root(base)}/api/webtoon/titlelist/weekday?order=user"


def daily_plus_url(base: str) -> str:
    return f"{_root(base)}/api/webtoon/titlelist/weekday?week=dailyPlus&order=user"


def finished_list_url(base: str, page: int) -> str:
    return f"{_root(base)}/api/webtoon/titlelist/finished?page={page}&order=UPDATE"


def title_info_url(base: str, title_id: str | int) -> str:
    return f"{_root(base)}/api/article/list/info?titleId={title_id}"


def episode_list_url(base: str, title_id: str | int, page: int, sort: str = "ASC") -> str:
    if sort not in ("ASC", "DESC"):
        raise ValueError(f"sort must be ASC or DESC, not {sort!r}")
    query = urlencode({"titleId": title_id, "page": page, "sort": sort})
    return f"{_root(base)}/api/article/list?{query}"


def title_page_url(base: str, title_id: str | int) -> str:
    return f"{_root(base)}/webtoon/list?titleId={title_id}"


def viewer_url(base: str, title_id: str | int, no: int) -> str:
    return f"{_root(base)}/webtoon/detail?titleId={title_id}&no={no}"


def title_id_from_argument(value: str) -> str:
    """A title id from ``183559`` or a title/viewer URL carrying ``titleId=``."""
    return id_from_argument(
        value, lambda url: next(iter(parse_qs(url.query).get("titleId", [])), None),
        "naver title", "title id", "https://comic.naver.com/webtoon/list?titleId=183559")


def _title_refs(entries: list[Any], day: str | None, page: TitleListPage) -> None:
    """Add the list entries to ``page``, merging a title listed under several days."""
    by_id = {ref.external_id: ref for ref in page.titles}
    for index, entry in enumerate(entries):
        try:
            if not isinstance(entry, dict):
                raise ParseError("wrong_type:title", f"entry is {type(entry).__name__}")
            title_id = identifier(entry, "titleId")
        except ParseError as exc:
            page.drops.append(entry_drop(exc, f"{day or 'list'}[{index}]"))
            continue
        ref = by_id.get(title_id)
        if ref is None:
            ref = by_id[title_id] = TitleRef(external_id=title_id, card=entry)
            page.titles.append(ref)
        if day and day not in ref.days:
            ref.days.append(day)


def parse_title_list(payload: bytes | str | dict[str, Any]) -> TitleListPage:
    """A weekday list (``titleListMap``), dailyPlus or finished page (``titleList``)."""
    data = load_json(payload)
    page = TitleListPage()
    if "titleListMap" in data:
        by_day = obj(data, "titleListMap")
        for day, entries in by_day.items():
            if not isinstance(entries, list):
                page.drops.append((f"wrong_type:{day}", "day entry is not a list"))
                continue
            _title_refs(entries, day if day in WEEKDAYS else None, page)
    elif "titleList" in data:
        _title_refs(array(data, "titleList"), None, page)
    else:
        raise ParseError("unknown_shape", "neither titleListMap nor titleList")
    info = obj(data, "pageInfo", required=False)
    page.page = integer(info, "page", default=1)
    page.total_pages = max(integer(info, "totalPages", default=1), 1)
    page.is_last = page.page >= page.total_pages
    return page


def _authors(info: dict[str, Any], card: dict[str, Any]) -> list[dict[str, str]]:
    """Artists with ids from the title info, else from the list card, else its names."""
    roles: dict[tuple[str, str], set[str]] = {}
    for artist in array(info, "communityArtists"):
        if not isinstance(artist, dict) or not text(artist, "name"):
            continue
        key = (str(artist.get("artistId") or ""), text(artist, "name"))
        types = artist.get("artistTypeList")
        types = types if isinstance(types, list) else []
        held = roles.setdefault(key, set())
        held.update(_ARTIST_ROLE[t].value for t in types if t in _ARTIST_ROLE)
    if not roles:
        for field_name, role in _CARD_ROLE.items():
            people = card.get(field_name)
            for person in people if isinstance(people, list) else []:
                if isinstance(person, dict) and text(person, "name"):
                    key = (str(person.get("id") or ""), text(person, "name"))
                    roles.setdefault(key, set()).add(role.value)
    if roles:
        return [
            author(PLATFORM, name, merge_roles(held), artist_id or None)
            for (artist_id, name), held in roles.items()
        ]
    # Only the display string "A / B" is left: by Naver's convention the story
    # author comes first and the artist second; a single name drew and wrote it.
    names = split_names(text(card, "author"))
    if len(names) == 1:
        return [author(PLATFORM, names[0], AuthorRole.BOTH.value)]
    return [
        author(PLATFORM, name, (AuthorRole.WRITER if i == 0 else AuthorRole.ARTIST).value)
        for i, name in enumerate(names)
    ]


def _days(info: dict[str, Any], card_days: list[str]) -> list[str]:
    listed = info.get("publishDayOfWeekList")
    if not isinstance(listed, list):
        listed = obj(info, "gfpAdCustomParam", required=False).get("weekdays")
    days = [d for d in listed if d in WEEKDAYS] if isinstance(listed, list) else []
    return unique(days or card_days)


def parse_title_info(
    payload: bytes | str | dict[str, Any],
    base: str,
    card: dict[str, Any] | None = None,
    card_days: list[str] | None = None,
) -> WebtoonItem:
    """The title info payload (``/api/article/list/info``) as a ``WebtoonItem``.

    ``card`` is the title's entry from a list page when there was one: it adds
    the star score and, when the info has no ``communityArtists``, the authors.
    """
    info = load_json(payload)
    card = card or {}
    title_id = identifier(info, "titleId")
    title = text(info, "titleName", required=True)

    if flag(info, "finished"):
        status = WebtoonStatus.COMPLETED
    elif flag(info, "rest"):
        status = WebtoonStatus.HIATUS
    else:
        status = WebtoonStatus.ONGOING

    age = info.get("age")
    age_type = age.get("type") if isinstance(age, dict) else None
    if flag(info, "adult") or flag(card, "adult"):
        age_rating = AgeRating.ADULT
    else:
        age_rating = _AGE.get(age_type, AgeRating.ALL)

    genres: list[str] = []
    tags: list[str] = []
    for tag in array(info, "curationTagList"):
        if not isinstance(tag, dict) or not text(tag, "tagName"):
            continue
        kind = str(tag.get("curationType") or "")
        (genres if kind.startswith("GENRE_") else tags).append(text(tag, "tagName"))
    if not genres:
        extra = obj(info, "gfpAdCustomParam", required=False).get("genreTypes")
        genres = [g for g in extra if isinstance(g, str)] if isinstance(extra, list) else []

    thumbnail = text(info, "thumbnailUrl") or text(card, "thumbnailUrl") or None
    return WebtoonItem(
        platform=PLATFORM,
        external_id=title_id,
        title=title,
        authors=_authors(info, card),
        status=status.value,
        age_rating=age_rating.value,
        days_of_week=_days(info, card_days or []),
        genres=unique(genres),
        tags=unique(tags),
        summary=text(info, "synopsis"),
        link=title_page_url(base, title_id),
        thumbnail_url=thumbnail,
        publish_start_date=None,
        stats=stats_of(
            favorite_count=number(info, "favoriteCount"),
            star_score=number(card, "starScore"),
            view_count=number(card, "viewCount") or None,
        ),
        raw=info,
        image_urls=[thumbnail] if thumbnail else [],
    )


def _episode(entry: Any, base: str, title_id: str, in_charge_folder: bool) -> EpisodeItem:
    if not isinstance(entry, dict):
        raise ParseError("wrong_type:article", f"entry is {type(entry).__name__}")
    no = integer(entry, "no")
    if no <= 0:
        raise ParseError("wrong_type:no", f"episode number {no}")
    title = text(entry, "subtitle", required=True)
    paid = in_charge_folder or flag(entry, "charge")
    return EpisodeItem(
        platform=PLATFORM,
        webtoon_external_id=title_id,
        episode_no=no,
        title=title,
        season_no=1,
        external_id=None,  # Naver has no episode id besides the number
        pricing_type=(PricingType.PAID if paid else PricingType.FREE).value,
        url=viewer_url(base, title_id, no),
        published_at=dotted_date(entry.get("serviceDateDescription")),
        thumbnail_url=text(entry, "thumbnailUrl") or None,
        raw=entry,
    )


def parse_episode_page(
    payload: bytes | str | dict[str, Any], base: str, title_id: str
) -> EpisodePage:
    """One page of ``/api/article/list``: free and charge-folder episodes."""
    data = load_json(payload)
    if "articleList" not in data and "chargeFolderArticleList" not in data:
        raise ParseError("unknown_shape", "no articleList")
    if data.get("titleId") is not None and str(data.get("titleId")) != str(title_id):
        raise ParseError("unknown_shape", f"titleId {data.get('titleId')!r} != {title_id}")
    page = EpisodePage()
    seen: set[int] = set()
    for list_name, paid in (("chargeFolderArticleList", True), ("articleList", False)):
        for index, entry in enumerate(array(data, list_name)):
            try:
                item = _episode(entry, base, title_id, paid)
            except ParseError as exc:
                page.drops.append(entry_drop(exc, f"{title_id} {list_name}[{index}]"))
                continue
            if item.episode_no not in seen:
                seen.add(item.episode_no)
                page.items.append(item)
    page.items.sort(key=lambda item: item.episode_no)
    info = obj(data, "pageInfo", required=False)
    page.page = integer(info, "page", default=1)
    page.total_pages = max(integer(info, "totalPages", default=1), 1)
    page.is_last = page.page >= page.total_pages
    count = data.get("totalCount")
    page.total_count = count if isinstance(count, int) and not isinstance(count, bool) else None
    return page
