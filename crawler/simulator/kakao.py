"""Kakao Webtoon payloads (``gateway-kw.kakao.com`` shapes, see platform-apis.md).

Timetables: ``timetable_{mon..sun}`` list the ongoing and hiatus titles
published that day (a two-day title under both); ``timetable_completed`` the
completed ones. Days come only from these lists: the decorator has none.

Decorator status: ONGOING → ``EPISODES_PUBLISHING``, HIATUS →
``EPISODES_NOT_PUBLISHING``, COMPLETED → ``COMPLETED``.

Authors carry ``AUTHOR`` (writer), ``ILLUSTRATOR`` (artist; a single author
appears as both), ``ORIGINAL_STORY`` and, for some titles, a ``PUBLISHER``
entry, which is a studio and not one of the title's authors.

Episodes: ``sort=-NO`` newest first (default) or ``NO``; ``offset`` / ``limit``
(default 30, at most 100). ``no`` and ``seasonNo`` are strings for titles
flagged ``string_no``, numbers for the others; a few titles run a second season
numbered from 1 again. ``useType``: FREE, WAIT_FOR_FREE, PAY (paid previews and
older episodes of pay titles).

Image URLs carry no extension; the server answers them bare and with
``.png`` / ``.jpg`` / ``.webp`` appended.

``catchphraseTwoLines`` (cards and decorator) is the synopsis' first two lines.
An oversized title (catalogue ``oversized=K``) serves its long synopsis and author
name as they are, and one episode's ``title`` is its long prefix and ``"<n>화"``.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from shared.domain import AgeRating, AuthorRole, DayOfWeek, PricingType, WebtoonStatus

from .catalogue import Catalogue, Title

PLACEMENTS: dict[str, DayOfWeek | None] = {
    f"timetable_{d.value[:3].lower()}": d for d in DayOfWeek
} | {"timetable_completed": None}
_KOREAN_DAY = dict(zip(DayOfWeek, "월화수목금토일", strict=True))

DEFAULT_LIMIT = 30
MAX_LIMIT = 100

_STATUS = {
    WebtoonStatus.ONGOING: "EPISODES_PUBLISHING",
    WebtoonStatus.HIATUS: "EPISODES_NOT_PUBLISHING",
    WebtoonStatus.COMPLETED: "COMPLETED",
}
_AUTHOR_TYPES = {
    AuthorRole.WRITER: ["AUTHOR"],
    AuthorRole.ARTIST: ["ILLUSTRATOR"],
    AuthorRole.BOTH: ["AUTHOR", "ILLUSTRATOR"],
    AuthorRole.ORIGINAL: ["ORIGINAL_STORY"],
}
_AGE_LIMIT = {AgeRating.ALL: 0, AgeRating.AGE_12: 12, AgeRating.AGE_15: 15, AgeRating.ADULT: 19}
_USE_TYPE = {
    PricingType.FREE: "FREE",
    PricingType.WAIT_FREE: "WAIT_FOR_FREE",
    PricingType.PAID: "PAY",
}
_PUBLISHERS = ("카카오엔터테인먼트", "스튜디오 미르", "레드아이스 스튜디오")


def _iso(day: date) -> str:
    return f"{day.isoformat()}T00:00:00+09:00"


def image_url(base: str, title: Title, kind: str) -> str:
    return f"{base}/kakao-img/c/{title.external_id}/{kind}"


def seo_id(title: Title) -> str:
    return title.name.replace(" ", "-")


def authors(title: Title) -> list[dict[str, str]]:
    out = [
        {"name": a.name, "type": kind} for a in title.authors for kind in _AUTHOR_TYPES[a.role]
    ]
    if title.numeric_id % 3 == 0:
        out.append({"name": _PUBLISHERS[title.numeric_id % len(_PUBLISHERS)], "type": "PUBLISHER"})
    return out


def _badges(cat: Catalogue, title: Title) -> list[dict[str, str]]:
    badges = []
    if title.model == "WAIT_FREE":
        badges.append({"title": "WAIT_FOR_FREE", "type": "INFO"})
    elif title.model == "FREE":
        badges.append({"title": "FREE_PUBLISHING", "type": "INFO"})
    if title.is_up(cat.today):
        badges.append({"title": "up", "type": "UP"})
    return badges


def _card(cat: Catalogue, base: str, title: Title) -> dict[str, Any]:
    return {
        "id": title.numeric_id,
        "content": {
            "id": title.numeric_id,
            "seoId": seo_id(title),
            "title": title.name,
            "adult": title.age == AgeRating.ADULT,
            "catchphraseTwoLines": title.catchphrase,
            "badges": _badges(cat, title),
            "authors": authors(title),
            "featuredCharacterImageA": image_url(base, title, "character"),
            "backgroundImage": image_url(base, title, "background"),
            "seoKeywords": [f"#{title.genre}"] + [f"#{t}" for t in title.tags],
            "serialStartDateTime": _iso(title.start_date),
        },
        "sorting": {"popularity": title.view_count // 1000, "views": title.view_count // 1300},
    }


def timetable(cat: Catalogue, base: str, placement: str) -> tuple[int, dict[str, Any]]:
    if placement not in PLACEMENTS:
        return 400, {"error": {"code": "INVALID_PLACEMENT", "message": placement}}
    day = PLACEMENTS[placement]
    if day is None:
        chosen = [t for t in cat.titles_of("KAKAO") if t.status == WebtoonStatus.COMPLETED]
        label = "완결"
    else:
        chosen = [t for t in cat.titles_of("KAKAO") if day in t.served_days]
        label = _KOREAN_DAY[day]
    return 200, {"data": [{
        "id": placement,
        "title": label,
        "placement": placement,
        "cardGroups": [{
            "title": "",
            "type": "GENERAL",
            "cards": [_card(cat, base, t) for t in chosen],
        }],
    }]}


def decorator(cat: Catalogue, base: str, content_id: str) -> tuple[int, Any]:
    title = cat.title("KAKAO", content_id)
    if title is None:
        return 404, {"error": {"code": "CONTENT_NOT_FOUND", "message": content_id}}
    if title.malformed == "not_json":
        return 200, "<html><body><h1>일시적인 오류입니다</h1></body></html>"
    data: dict[str, Any] = {
        "id": title.numeric_id,
        "title": title.name,
        "seoId": seo_id(title),
        "genre": title.genre,
        "synopsis": title.synopsis,
        "catchphraseTwoLines": title.catchphrase,
        "sharingThumbnailImage": image_url(base, title, "sharing"),
        "featuredCharacterImageA": image_url(base, title, "character"),
        "backgroundImage": image_url(base, title, "background"),
        "status": _STATUS[title.status],
        "statistics": {"viewCount": title.view_count, "likeCount": title.favorite_count},
        "authors": authors(title),
        "adult": title.age == AgeRating.ADULT,
        "ageLimit": _AGE_LIMIT[title.age],
        "badges": _badges(cat, title),
        "seoKeywords": [f"#{title.genre}"] + [f"#{t}" for t in title.tags],
        "serialStartDateTime": _iso(title.start_date),
    }
    if title.malformed == "missing_title":
        del data["title"]
    elif title.malformed == "wrong_type":
        data["id"] = {"id": title.numeric_id}
        data["title"] = [title.name]
    return 200, {"data": data}


def _episode(title: Title, base: str, index: int) -> dict[str, Any]:
    episode = title.episodes[index]
    pricing = title.pricing(index)
    episode_id = title.numeric_id * 10_000 + episode.seq
    number: int | str = str(episode.no) if title.string_no else episode.no
    season: int | str = str(episode.season) if title.string_no else episode.season
    name = f"{episode.no}화" if episode.season == 1 else f"시즌{episode.season} {episode.no}화"
    name = episode.subtitle_prefix + name
    entry: dict[str, Any] = {
        "id": episode_id,
        "contentId": title.numeric_id,
        "no": number,
        "seasonNo": season,
        "title": name,
        "adult": title.age == AgeRating.ADULT,
        "serialStartDateTime": _iso(episode.released),
        "useType": _USE_TYPE[pricing],
        "readable": pricing == PricingType.FREE,
        "asset": {"thumbnailImage": f"{base}/kakao-img/e/{episode_id}/thumbnail"},
    }
    if episode.malformed == "missing_no":
        del entry["no"]
        entry["title"] = "외전"
    elif episode.malformed == "bad_no":
        entry["no"] = "외전"
        entry["title"] = "외전"
    return entry


def episodes(
    cat: Catalogue, base: str, content_id: str, sort: str, offset: int, limit: int
) -> tuple[int, dict[str, Any]]:
    title = cat.title("KAKAO", content_id)
    if title is None:
        return 404, {"error": {"code": "CONTENT_NOT_FOUND", "message": content_id}}
    order = list(range(len(title.episodes)))
    if sort != "NO":
        order.reverse()
    offset = max(offset, 0)
    limit = min(max(limit, 1), MAX_LIMIT)
    chunk = order[offset : offset + limit]
    return 200, {
        "data": {"episodes": [_episode(title, base, i) for i in chunk]},
        "meta": {"pagination": {
            "last": offset + limit >= len(order),
            "totalCount": len(order),
            "offset": offset,
            "limit": limit,
        }},
    }
