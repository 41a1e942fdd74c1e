"""KakaoPage GraphQL payloads served by the simulator (``POST /graphql``).

The shapes follow the queries public crawlers send to ``page.kakao.com/graphql``
(korea-webtoon-api's ``kakaoPageApi.ts``, several Python/TS scrapers that page
``contentHomeProductList``). Only the fields listed here are served; a client
may ask for more in its query text, the simulator does not evaluate selections.

Request
-------
``POST /graphql`` with ``Content-Type: application/json`` and a body
``{"operationName": str | null, "query": str, "variables": {...}}``. The
simulator dispatches on ``operationName``; when it is absent or unknown it uses
the first root field named in ``query`` (``staticLandingGenreSection``,
``contentHomeOverview`` or ``contentHomeProductList``). Anything else answers
200 with ``{"data": null, "errors": [{"message": "..."}]}`` (GraphQL style).
A body that is not JSON answers 400 with the same ``errors`` shape.

1. List — ``staticLandingGenreSection``::

    {"operationName": "staticLandingGenreSection",
     "query": "query staticLandingGenreSection($sectionId: ID!,
                 $param: StaticLandingGenreParamInput!) {
                 staticLandingGenreSection(sectionId: $sectionId, param: $param) { ... } }",
     "variables": {"sectionId": "static-landing-Genre-section-Layout-10-0-update-false",
                   "param": {"categoryUid": 10, "subcategoryUid": "0", "sortType": "update",
                             "isComplete": false, "page": 1}}}

   ``param.page`` is 1-based (0 is read as 1); 24 items a page.
   ``param.isComplete`` false lists the titles still running, true the finished
   ones (as on the real site, a full crawl asks both). A page past the end
   answers an empty ``items`` list with ``isEnd: true``. Response::

    {"data": {"staticLandingGenreSection": {
       "id": "static-landing-Genre-section-Layout-10-0-update-false", "type": "Landing",
       "isEnd": false, "totalCount": 37,
       "param": {"categoryUid": 10, "subcategoryUid": "0", "sortType": "update",
                 "isComplete": false, "page": 1},
       "groups": [{"id": "...", "type": "Normal", "dataKey": "...", "items": [
         {"id": "series-50000123", "type": "PosterViewItem", "seriesId": 50000123,
          "title": "달빛 검객", "thumbnail": "http://127.0.0.1:8123/kakaopage/download/resource/50000123/thumbnail",
          "scheme": "kakaopage://open/content?series_id=50000123",
          "badgeList": ["BadgeWaitfreeStatic"], "statusBadge": "BadgeUpStatic",
          "ageGrade": "All", "ageGradeBadge": null, "subtitleList": ["12.3만명"],
          "rank": null, "selfCensorship": false}]}]}}}

   ``statusBadge`` is ``"BadgeUpStatic"`` when an episode came out today, else null.
   ``badgeList`` holds ``BadgeWaitfreeStatic`` for wait-free titles, ``BadgeFreeStatic``
   for free ones, nothing for pay-only ones.

2. Detail — ``contentHomeOverview``::

    {"operationName": "contentHomeOverview",
     "query": "query contentHomeOverview($seriesId: Long!) {
                 contentHomeOverview(seriesId: $seriesId) { id seriesId content { ... } } }",
     "variables": {"seriesId": 50000123}}

   ``seriesId`` may be sent as a number or a numeric string. Response::

    {"data": {"contentHomeOverview": {
       "id": "content-home-overview-50000123", "seriesId": 50000123,
       "content": {
         "id": "series-50000123", "seriesId": 50000123, "title": "달빛 검객",
         "thumbnail": "http://127.0.0.1:8123/kakaopage/download/resource/50000123/thumbnail",
         "categoryUid": 10, "category": "웹툰", "categoryType": "Webtoon",
         "subcategoryUid": "115", "subcategory": "무협",
         "badge": "BadgeWaitfreeStatic", "isAllFree": false, "isWaitfree": true,
         "ageGrade": "Fifteen", "state": "Normal", "onIssue": "Ing",
         "authors": "홍길동,김화백", "description": "…",
         "pubPeriod": "월, 목", "freeSlideCount": 3,
         "lastSlideAddedDate": "2026-11-02T00:00:00+09:00",
         "waitfreeBlockCount": 1, "waitfreePeriodByMinute": 1440,
         "bm": "PayWaitfree", "saleState": "On",
         "startSaleDt": "2025-03-03T00:00:00+09:00",
         "serviceProperty": {"viewCount": 123456, "readCount": 98765,
                             "ratingCount": 321, "ratingSum": 3050, "commentCount": 77}}}}}

   - ``bm``: ``FreePreview`` | ``PayWaitfree`` | ``Pay``.
   - ``ageGrade``: ``All`` | ``Fifteen`` | ``Nineteen`` (the only grades KakaoPage uses).
   - ``onIssue``: ``Ing`` (running) | ``End`` (finished). KakaoPage has no hiatus
     flag in these payloads, so simulated KakaoPage titles are never on hiatus.
   - ``pubPeriod``: days joined with ``", "`` from 월 화 수 목 금 토 일; null for
     finished titles.
   - ``authors``: names joined with ``","`` (no roles on KakaoPage).
   - ``subcategory`` is the genre (Korean name, e.g. 판타지, 로맨스, 무협).
   - Unknown ``seriesId``: ``{"data": {"contentHomeOverview": null}, "errors": [...]}``.

3. Episodes — ``contentHomeProductList``::

    {"operationName": "contentHomeProductList",
     "query": "query contentHomeProductList($after: String, $before: String, $first: Int,
                 $last: Int, $seriesId: Long!, $boughtOnly: Boolean, $sortType: String) {
                 contentHomeProductList(seriesId: $seriesId, after: $after, before: $before,
                   first: $first, last: $last, boughtOnly: $boughtOnly, sortType: $sortType)
                 { totalCount pageInfo { ... } edges { cursor node { ... } } } }",
     "variables": {"seriesId": 50000123, "after": null, "first": 25, "sortType": "asc",
                   "boughtOnly": false}}

   ``sortType`` ``"asc"`` (oldest first) or ``"desc"`` (newest first, the default);
   ``first`` defaults to 25, capped at 100; ``after`` is the ``endCursor`` of the
   previous page (an opaque string; null or absent = from the start). Response::

    {"data": {"contentHomeProductList": {
       "totalCount": 12,
       "pageInfo": {"hasNextPage": true, "endCursor": "YXJyYXk6MjQ=",
                    "hasPreviousPage": false, "startCursor": "YXJyYXk6MA=="},
       "selectedSortOption": {"id": "asc", "name": "첫화부터", "param": "asc"},
       "sortOptionList": [{"id": "desc", "name": "최신순", "param": "desc"},
                          {"id": "asc", "name": "첫화부터", "param": "asc"}],
       "edges": [{"cursor": "YXJyYXk6MA==", "node": {
         "id": "single-5000012300001", "type": "SingleListViewItem",
         "thumbnail": "http://127.0.0.1:8123/kakaopage/download/resource/50000123/1/thumbnail",
         "scheme": "kakaopage://open/viewer?series_id=50000123&product_id=5000012300001",
         "row1": "달빛 검객 1화", "row2": ["25.03.03"],
         "row3": {"badgeList": ["BadgeFreeSmall"], "text": null, "priceList": []},
         "isViewed": false, "isCheckMode": false, "isChecked": false,
         "single": {"id": "single-5000012300001", "productId": 5000012300001,
                    "title": "달빛 검객 1화", "thumbnail": "http://…/thumbnail",
                    "ageGrade": "Fifteen", "isFree": true, "isWaitfreeBlocked": false,
                    "slideType": "Comic", "lastReleasedDate": "2025-03-03T00:00:00+09:00",
                    "state": "Normal", "saleState": "On",
                    "operatorProperty": {"isTextViewer": false}}}}]}}}

   - The episode number is NOT a field: it is the trailing ``"<n>화"`` of
     ``single.title`` (``row1`` is the same text). KakaoPage has no seasons: season 1.
   - Release date: ``single.lastReleasedDate`` (ISO, +09:00) and ``row2[0]`` (``YY.MM.DD``).
   - Pricing: ``isFree`` true → FREE; ``isFree`` false and ``isWaitfreeBlocked``
     false → WAIT_FREE (readable with the wait-free ticket); ``isWaitfreeBlocked``
     true → PAID. Badges in ``row3.badgeList``: ``BadgeFreeSmall``,
     ``BadgeWaitfreeSmall``, ``BadgePaySmall``.
   - ``productId`` is a number (a Long); it identifies the episode on the site
     (``https://page.kakao.com/content/{seriesId}/viewer/{productId}``).
   - Unknown ``seriesId``: ``{"data": {"contentHomeProductList": null}, "errors": [...]}``.

Faults (catalogue ``malformed=K``): a broken title answers its
``contentHomeOverview`` with a body that is not JSON, or ``content`` without
``title``, or ``content.seriesId`` as an object / ``content.title`` as a list.
A broken episode has a ``single.title`` (and ``row1``) with no ``"<n>화"`` number
(e.g. ``"달빛 검객 특별편"``) or a ``single`` without ``productId``; the rest of
its page is fine. Image URLs carry no extension; the simulator serves them
bare and with ``.png`` / ``.jpg`` / ``.webp`` appended.

Long fields (catalogue ``oversized=K``): an oversized title's ``description`` and
one author name in ``authors`` are served whole, and one episode's
``single.title`` / ``row1`` is a long prefix, then ``"<title> <n>화"`` as usual.
"""

from __future__ import annotations

import base64
import json
import re
from datetime import date
from typing import Any

from shared.domain import AgeRating, DayOfWeek, PricingType, WebtoonStatus

from .catalogue import GENRES, Catalogue, Title

LIST_PAGE = 24
DEFAULT_SECTION = "static-landing-Genre-section-Layout-10-0-update-false"
DEFAULT_FIRST = 25
MAX_FIRST = 100
OPERATIONS = ("staticLandingGenreSection", "contentHomeOverview", "contentHomeProductList")

_KOREAN_DAY = dict(zip(DayOfWeek, "월화수목금토일", strict=True))
_AGE = {AgeRating.ALL: "All", AgeRating.AGE_15: "Fifteen", AgeRating.ADULT: "Nineteen",
        AgeRating.AGE_12: "Fifteen"}
_BM = {"FREE": "FreePreview", "WAIT_FREE": "PayWaitfree", "PAY": "Pay"}
_LIST_BADGE = {"FREE": ["BadgeFreeStatic"], "WAIT_FREE": ["BadgeWaitfreeStatic"], "PAY": []}
_PRODUCT_BADGE = {
    PricingType.FREE: "BadgeFreeSmall",
    PricingType.WAIT_FREE: "BadgeWaitfreeSmall",
    PricingType.PAID: "BadgePaySmall",
}
_SUBCATEGORY_UID = {name: uid for name, _, uid in GENRES}
_SORT_OPTIONS = [
    {"id": "desc", "name": "최신순", "param": "desc"},
    {"id": "asc", "name": "첫화부터", "param": "asc"},
]
_ROOT_FIELD = re.compile(r"\{\s*(\w+)")


class GraphQLError(Exception):
    """A request the GraphQL endpoint answers with an ``errors`` list."""


def _iso(day: date) -> str:
    return f"{day.isoformat()}T00:00:00+09:00"


def thumbnail_url(base: str, title: Title) -> str:
    return f"{base}/kakaopage/download/resource/{title.external_id}/thumbnail"


def _errors(message: str, data: Any = None) -> dict[str, Any]:
    return {"data": data, "errors": [{"message": message, "extensions": {"code": "BAD_REQUEST"}}]}


def operation_of(body: dict[str, Any]) -> str:
    """The operation a request asks for: its name, else the first root field in its query."""
    name = body.get("operationName")
    if isinstance(name, str) and name in OPERATIONS:
        return name
    query = body.get("query")
    if isinstance(query, str):
        for found in _ROOT_FIELD.findall(query):
            if found in OPERATIONS:
                return found
    raise GraphQLError(f"unknown operation {name!r}")


def series_id_of(variables: dict[str, Any]) -> str:
    raw = variables.get("seriesId")
    if isinstance(raw, bool) or not isinstance(raw, int | str) or not str(raw).isdigit():
        raise GraphQLError(f"Variable '$seriesId' got invalid value {raw!r}")
    return str(int(raw))


def landing_section(cat: Catalogue, base: str, variables: dict[str, Any]) -> dict[str, Any]:
    param = variables.get("param") if isinstance(variables.get("param"), dict) else {}
    page = param.get("page", 1)
    if not isinstance(page, int) or isinstance(page, bool):
        raise GraphQLError("param.page must be an Int")
    page = max(page, 1)
    complete = bool(param.get("isComplete", False))
    section_id = str(variables.get("sectionId") or DEFAULT_SECTION)
    chosen = [
        t for t in cat.titles_of("KAKAOPAGE")
        if (t.status == WebtoonStatus.COMPLETED) == complete
    ]
    chunk = chosen[(page - 1) * LIST_PAGE : page * LIST_PAGE]
    items = [{
        "id": f"series-{t.external_id}",
        "type": "PosterViewItem",
        "seriesId": t.numeric_id,
        "title": t.name,
        "thumbnail": thumbnail_url(base, t),
        "scheme": f"kakaopage://open/content?series_id={t.external_id}",
        "badgeList": list(_LIST_BADGE[t.model]),
        "statusBadge": "BadgeUpStatic" if t.is_up(cat.today) else None,
        "ageGrade": _AGE[t.age],
        "ageGradeBadge": None,
        "subtitleList": [f"{t.view_count / 10_000:.1f}만명"],
        "rank": None,
        "selfCensorship": False,
    } for t in chunk]
    return {"data": {"staticLandingGenreSection": {
        "id": section_id,
        "uid": section_id,
        "type": "Landing",
        "title": "",
        "isEnd": page * LIST_PAGE >= len(chosen),
        "totalCount": len(chosen),
        "param": {
            "categoryUid": param.get("categoryUid", 10),
            "subcategoryUid": param.get("subcategoryUid", "0"),
            "sortType": param.get("sortType", "update"),
            "isComplete": complete,
            "page": page,
        },
        "groups": [{
            "id": f"{section_id}-{page}",
            "type": "Normal",
            "dataKey": section_id,
            "items": items,
        }],
    }}}


def overview(cat: Catalogue, base: str, variables: dict[str, Any]) -> Any:
    series_id = series_id_of(variables)
    title = cat.title("KAKAOPAGE", series_id)
    if title is None:
        return _errors(f"series {series_id} not found", {"contentHomeOverview": None})
    if title.malformed == "not_json":
        return "<html><body>잠시 후 다시 시도해 주세요</body></html>"
    completed = title.status == WebtoonStatus.COMPLETED
    names: list[str] = []
    for a in title.authors:
        if a.name not in names:
            names.append(a.name)
    views = title.view_count
    content: dict[str, Any] = {
        "id": f"series-{title.external_id}",
        "seriesId": title.numeric_id,
        "title": title.name,
        "thumbnail": thumbnail_url(base, title),
        "categoryUid": 10,
        "category": "웹툰",
        "categoryType": "Webtoon",
        "subcategoryUid": _SUBCATEGORY_UID[title.genre],
        "subcategory": title.genre,
        "badge": (_LIST_BADGE[title.model] or [None])[0],
        "isAllFree": title.model == "FREE" and title.paid_previews() == 0,
        "isWaitfree": title.model == "WAIT_FREE",
        "ageGrade": _AGE[title.age],
        "state": "Normal",
        "onIssue": "End" if completed else "Ing",
        "authors": ",".join(names),
        "description": title.synopsis,
        "pubPeriod": None if completed else ", ".join(_KOREAN_DAY[d] for d in title.served_days),
        "freeSlideCount": title.free_first,
        "lastSlideAddedDate": _iso(title.last_date),
        "waitfreeBlockCount": 1 if title.model == "WAIT_FREE" else 0,
        "waitfreePeriodByMinute": 1440 if title.model == "WAIT_FREE" else 0,
        "bm": _BM[title.model],
        "saleState": "On",
        "startSaleDt": _iso(title.start_date),
        "serviceProperty": {
            "viewCount": views,
            "readCount": views * 4 // 5,
            "ratingCount": title.favorite_count // 100 + 1,
            "ratingSum": round(title.star_score * (title.favorite_count // 100 + 1)),
            "commentCount": title.favorite_count // 50,
        },
    }
    if title.malformed == "missing_title":
        del content["title"]
    elif title.malformed == "wrong_type":
        content["seriesId"] = {"id": title.numeric_id}
        content["title"] = [title.name]
    return {"data": {"contentHomeOverview": {
        "id": f"content-home-overview-{title.external_id}",
        "seriesId": title.numeric_id,
        "content": content,
    }}}


def _cursor(position: int) -> str:
    return base64.b64encode(f"array:{position}".encode()).decode()


def _position(cursor: Any) -> int:
    """The position after ``cursor``; -1 for no cursor (start from the beginning)."""
    if cursor is None or cursor == "":
        return -1
    try:
        text = base64.b64decode(str(cursor), validate=True).decode()
        prefix, number = text.split(":")
        if prefix != "array":
            raise ValueError(prefix)
        return int(number)
    except (ValueError, UnicodeDecodeError) as exc:
        raise GraphQLError(f"invalid cursor {cursor!r}") from exc


def _product(cat: Catalogue, base: str, title: Title, index: int) -> dict[str, Any]:
    episode = title.episodes[index]
    pricing = title.pricing(index)
    product_id = title.numeric_id * 100_000 + episode.seq
    # The number stays last: KakaoPage has no number field, clients read the "<n>화".
    label = f"{episode.subtitle_prefix}{title.name} {episode.no}화"
    if episode.malformed == "bad_no":
        label = f"{title.name} 특별편"
    thumb = f"{base}/kakaopage/download/resource/{title.external_id}/{episode.seq}/thumbnail"
    single: dict[str, Any] = {
        "id": f"single-{product_id}",
        "productId": product_id,
        "title": label,
        "thumbnail": thumb,
        "ageGrade": _AGE[title.age],
        "isFree": pricing == PricingType.FREE,
        "isWaitfreeBlocked": pricing == PricingType.PAID,
        "slideType": "Comic",
        "lastReleasedDate": _iso(episode.released),
        "state": "Normal",
        "saleState": "On",
        "operatorProperty": {"isTextViewer": False},
    }
    if episode.malformed == "missing_no":
        del single["productId"]
    return {
        "id": f"single-{product_id}",
        "type": "SingleListViewItem",
        "thumbnail": thumb,
        "scheme": f"kakaopage://open/viewer?series_id={title.external_id}&product_id={product_id}",
        "row1": label,
        "row2": [episode.released.strftime("%y.%m.%d")],
        "row3": {"badgeList": [_PRODUCT_BADGE[pricing]], "text": None, "priceList": []},
        "isViewed": False,
        "isCheckMode": False,
        "isChecked": False,
        "single": single,
    }


def product_list(cat: Catalogue, base: str, variables: dict[str, Any]) -> dict[str, Any]:
    series_id = series_id_of(variables)
    title = cat.title("KAKAOPAGE", series_id)
    if title is None:
        return _errors(f"series {series_id} not found", {"contentHomeProductList": None})
    sort = "asc" if str(variables.get("sortType") or "desc").lower() == "asc" else "desc"
    first = variables.get("first")
    if first is None:
        first = DEFAULT_FIRST
    if not isinstance(first, int) or isinstance(first, bool) or first < 1:
        raise GraphQLError("first must be a positive Int")
    first = min(first, MAX_FIRST)
    order = list(range(len(title.episodes)))
    if sort == "desc":
        order.reverse()
    start = _position(variables.get("after")) + 1
    positions = range(start, min(start + first, len(order)))
    edges = [
        {"cursor": _cursor(p), "node": _product(cat, base, title, order[p])} for p in positions
    ]
    return {"data": {"contentHomeProductList": {
        "totalCount": len(order),
        "pageInfo": {
            "hasNextPage": start + first < len(order),
            "endCursor": _cursor(positions[-1]) if edges else None,
            "hasPreviousPage": start > 0,
            "startCursor": _cursor(positions[0]) if edges else None,
        },
        "selectedSortOption": next(o for o in _SORT_OPTIONS if o["id"] == sort),
        "sortOptionList": [dict(o) for o in _SORT_OPTIONS],
        "edges": edges,
    }}}


def answer(cat: Catalogue, base: str, raw_body: bytes) -> tuple[str, str | None, int, Any]:
    """(operation, seriesId or None, http status, payload) for one ``POST /graphql`` body."""
    try:
        body = json.loads(raw_body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return "invalid", None, 400, _errors("request body is not JSON")
    if not isinstance(body, dict):
        return "invalid", None, 400, _errors("request body must be a JSON object")
    variables = body.get("variables") if isinstance(body.get("variables"), dict) else {}
    try:
        operation = operation_of(body)
        if operation == "staticLandingGenreSection":
            return operation, None, 200, landing_section(cat, base, variables)
        series_id = series_id_of(variables)
        if operation == "contentHomeOverview":
            return operation, series_id, 200, overview(cat, base, variables)
        return operation, series_id, 200, product_list(cat, base, variables)
    except GraphQLError as exc:
        return "invalid", None, 200, _errors(str(exc))
