"""Naver Webtoon payloads (``comic.naver.com`` shapes, see platform-apis.md).

Lists: ongoing and hiatus titles appear in ``titleListMap`` under each of their
publish days (twice for a two-day title), daily-plus titles in the dailyPlus
list, completed titles in the paged finished list (30 a page).

Episodes: ``articleList`` holds the free episodes, 20 a page in the asked order;
``chargeFolderArticleList`` holds the paid previews (the newest 1-3 episodes of
some ongoing titles), on page 1 only; ``totalCount`` / ``pageInfo`` count the
free ones. A page past the end answers the last page again, as Naver does.
Titles flagged ``string_no`` serve ``no`` as a string. An oversized title
(catalogue ``oversized=K``) serves its long synopsis and author name as they are,
and one episode's ``subtitle`` is its long prefix followed by ``"<n>화"``.

Every function returns ``(http status, payload)``; a ``str`` payload is sent as
an HTML body (the "not JSON" fault).
"""

from __future__ import annotations

import math
from typing import Any

from shared.domain import AgeRating, AuthorRole, DayOfWeek, PricingType, WebtoonStatus

from .catalogue import GENRES, Catalogue, Episode, Title

LIST_PAGE = 30
ARTICLE_PAGE = 20

_AGE = {
    AgeRating.ALL: ("RATE_ALL", "전체연령가"),
    AgeRating.AGE_12: ("RATE_12", "12세 이용가"),
    AgeRating.AGE_15: ("RATE_15", "15세 이용가"),
    AgeRating.ADULT: ("RATE_18", "18세 이용가"),
}
_ARTIST_TYPES = {
    AuthorRole.WRITER: ["ARTIST_WRITER"],
    AuthorRole.ARTIST: ["ARTIST_PAINTER"],
    AuthorRole.BOTH: ["ARTIST_WRITER", "ARTIST_PAINTER"],
    AuthorRole.ORIGINAL: ["ARTIST_NOVEL_ORIGIN"],
}
_KOREAN_DAY = dict(zip(DayOfWeek, "월화수목금토일", strict=True))
_GENRE_CODE = {name: code for name, code, _ in GENRES}
_GENRE_TAG_ID = {name: i + 1 for i, (name, _, _) in enumerate(GENRES)}
_TAG_ID_BASE = 300


def thumbnail_url(base: str, title: Title) -> str:
    return f"{base}/thumb/naver/{title.external_id}/thumbnail_IMAG21_x.jpg"


def _episode_thumbnail(base: str, title: Title, episode: Episode) -> str:
    return f"{base}/thumb/naver/{title.external_id}/{episode.seq}/thumbnail_202x120_x.jpg"


def _no(title: Title, episode: Episode) -> int | str:
    return str(episode.no) if title.string_no else episode.no


def list_item(cat: Catalogue, base: str, title: Title) -> dict[str, Any]:
    def people(*roles: AuthorRole) -> list[dict[str, Any]]:
        return [{"id": a.artist_id, "name": a.name} for a in title.authors if a.role in roles]

    names: list[str] = []
    for a in title.authors:
        if a.name not in names:
            names.append(a.name)
    return {
        "titleId": title.numeric_id,
        "titleName": title.name,
        "author": title.slash_join.join(names),
        "thumbnailUrl": thumbnail_url(base, title),
        "up": title.is_up(cat.today),
        "rest": title.status == WebtoonStatus.HIATUS,
        "bm": False,
        "adult": title.age == AgeRating.ADULT,
        "finish": title.status == WebtoonStatus.COMPLETED,
        "new": (cat.today - title.start_date).days < 30,
        "starScore": title.star_score,
        "viewCount": 0,
        "writers": people(AuthorRole.WRITER, AuthorRole.BOTH),
        "painters": people(AuthorRole.ARTIST, AuthorRole.BOTH),
        "novelOriginAuthors": people(AuthorRole.ORIGINAL),
    }


def _naver_titles(cat: Catalogue) -> list[Title]:
    return cat.titles_of("NAVER")


def weekday_list(cat: Catalogue, base: str) -> tuple[int, dict[str, Any]]:
    days: dict[str, list[dict[str, Any]]] = {d.value: [] for d in DayOfWeek}
    for title in _naver_titles(cat):
        if title.status == WebtoonStatus.COMPLETED or title.daily_plus:
            continue
        item = list_item(cat, base, title)
        for day in title.served_days:
            days[day.value].append(item)
    return 200, {"titleListMap": days, "dayOfWeek": _today_name(cat)}


def daily_plus_list(cat: Catalogue, base: str) -> tuple[int, dict[str, Any]]:
    items = [
        list_item(cat, base, t)
        for t in _naver_titles(cat)
        if t.daily_plus and t.status != WebtoonStatus.COMPLETED
    ]
    return 200, {"titleList": items}


def finished_list(cat: Catalogue, base: str, page: int) -> tuple[int, dict[str, Any]]:
    done = sorted(
        (t for t in _naver_titles(cat) if t.status == WebtoonStatus.COMPLETED),
        key=lambda t: (-t.last_date.toordinal(), t.numeric_id),
    )
    total_pages = max(1, math.ceil(len(done) / LIST_PAGE))
    page = min(max(page, 1), total_pages)
    chunk = done[(page - 1) * LIST_PAGE : page * LIST_PAGE]
    return 200, {
        "titleList": [list_item(cat, base, t) for t in chunk],
        "pageInfo": {"totalRows": len(done), "pageSize": LIST_PAGE,
                     "totalPages": total_pages, "page": page},
    }


def title_info(cat: Catalogue, base: str, title_id: str) -> tuple[int, Any]:
    title = cat.title("NAVER", title_id)
    if title is None:
        return 404, {"error": "title not found", "titleId": title_id}
    if title.malformed == "not_json":
        return 200, "<html><head><title>네이버 웹툰</title></head><body>점검 중</body></html>"
    days = title.served_days
    if title.daily_plus:
        publish = "매일+"
    elif title.status == WebtoonStatus.COMPLETED:
        publish = "완결웹툰"
    else:
        publish = ", ".join(_KOREAN_DAY[d] for d in days) + "요웹툰"
    age_type, age_text = _AGE[title.age]
    tags = [{
        "id": _GENRE_TAG_ID[title.genre],
        "tagName": title.genre,
        "curationType": f"GENRE_{_GENRE_CODE[title.genre]}",
    }] + [
        {"id": _TAG_ID_BASE + i, "tagName": tag, "curationType": "CUSTOM_TAG"}
        for i, tag in enumerate(title.tags)
    ]
    artists: list[dict[str, Any]] = []
    for a in title.authors:
        artists.append({
            "artistId": a.artist_id,
            "name": a.name,
            "artistTypeList": list(_ARTIST_TYPES[a.role]),
            "profileImageUrl": None,
        })
    payload: dict[str, Any] = {
        "titleId": title.numeric_id,
        "titleName": title.name,
        "webtoonLevelCode": "WEBTOON",
        "thumbnailUrl": thumbnail_url(base, title),
        "sharedThumbnailUrl": f"{base}/thumb/naver/{title.external_id}/shared_thumbnail.jpg",
        "posterThumbnailUrl": f"{base}/thumb/naver/{title.external_id}/poster_thumbnail.jpg",
        "communityArtists": artists,
        "age": {"type": age_type, "description": age_text},
        "publishDescription": publish,
        "synopsis": title.synopsis,
        "favoriteCount": title.favorite_count,
        "rest": title.status == WebtoonStatus.HIATUS,
        "finished": title.status == WebtoonStatus.COMPLETED,
        "dailyPass": False,
        "publishDayOfWeekList": [d.value for d in days],
        "curationTagList": tags,
        "gfpAdCustomParam": {
            "genreTypes": [_GENRE_CODE[title.genre]],
            "tags": list(title.tags),
            "weekdays": [d.value for d in days],
        },
    }
    if title.malformed == "missing_title":
        del payload["titleName"]
    elif title.malformed == "wrong_type":
        payload["titleId"] = {"id": title.numeric_id}
        payload["titleName"] = [title.name]
    return 200, payload


def _article(cat: Catalogue, base: str, title: Title, index: int) -> dict[str, Any]:
    episode = title.episodes[index]
    entry: dict[str, Any] = {
        "no": _no(title, episode),
        "subtitle": f"{episode.subtitle_prefix}{episode.no}화",
        "thumbnailUrl": _episode_thumbnail(base, title, episode),
        "starScore": round(min(9.99, title.star_score + (episode.seq % 5) * 0.01), 2),
        "serviceDateDescription": episode.released.strftime("%y.%m.%d"),
        "charge": title.pricing(index) == PricingType.PAID,
        "up": episode.released == cat.today,
        "volumeNo": episode.no,
    }
    if episode.malformed == "missing_no":
        del entry["no"], entry["volumeNo"]
        entry["subtitle"] = "번외편"
    elif episode.malformed == "bad_no":
        entry["no"] = "번외"
        del entry["volumeNo"]
        entry["subtitle"] = "번외편"
    return entry


def article_list(
    cat: Catalogue, base: str, title_id: str, page: int, sort: str
) -> tuple[int, dict[str, Any]]:
    title = cat.title("NAVER", title_id)
    if title is None:
        return 404, {"error": "title not found", "titleId": title_id}
    paid = title.paid_previews()
    free = list(range(len(title.episodes) - paid))
    if sort.upper() == "DESC":
        free.reverse()
    total_pages = max(1, math.ceil(len(free) / ARTICLE_PAGE))
    page = min(max(page, 1), total_pages)
    chunk = free[(page - 1) * ARTICLE_PAGE : page * ARTICLE_PAGE]
    previews = []
    if page == 1:
        previews = [
            _article(cat, base, title, i)
            for i in range(len(title.episodes) - paid, len(title.episodes))
        ]
    return 200, {
        "titleId": title.numeric_id,
        "articleList": [_article(cat, base, title, i) for i in chunk],
        "chargeFolderArticleList": previews,
        "chargeFolderUp": bool(previews),
        "pageInfo": {"totalRows": len(free), "pageSize": ARTICLE_PAGE,
                     "totalPages": total_pages, "page": page},
        "totalCount": len(free),
        "finished": title.status == WebtoonStatus.COMPLETED,
        "sort": "DESC" if sort.upper() == "DESC" else "ASC",
    }


def _today_name(cat: Catalogue) -> str:
    return DayOfWeek.from_weekday(cat.today.weekday()).value
