"""KakaoPage: GraphQL requests and payload → items (no network, no Scrapy).

Everything is a ``POST {base}/graphql``. Shapes: the module docstring of
``crawler/simulator/kakaopage.py`` (the reference only sketches them). Flow:
``staticLandingGenreSection`` pages (running, then finished titles) until
``isEnd`` name series ids; ``contentHomeOverview`` gives a ``WebtoonItem``;
``contentHomeProductList`` gives episodes, paged by cursor.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import SplitResult

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
    iso_date,
    load_json,
    number,
    obj,
    split_names,
    stats_of,
    text,
    unique,
)
from shared.domain import AgeRating, AuthorRole, DayOfWeek, Platform, PricingType, WebtoonStatus

PLATFORM = Platform.KAKAOPAGE.value
HEADERS = {
    "Referer": "https://page.kakao.com",
    "Content-Type": "application/json",
    "Accept": "application/json",
}
WEBTOON_CATEGORY = 10
EPISODES_PER_PAGE = 100

LIST = "staticLandingGenreSection"
DETAIL = "contentHomeOverview"
EPISODES = "contentHomeProductList"
QUERIES = {
    LIST: (
        "query staticLandingGenreSection($sectionId: ID!, $param: StaticLandingGenreParamInput!)"
        " { staticLandingGenreSection(sectionId: $sectionId, param: $param) {"
        " id isEnd totalCount groups { id items { id seriesId title thumbnail ageGrade"
        " badgeList statusBadge } } } }"
    ),
    DETAIL: (
        "query contentHomeOverview($seriesId: Long!) { contentHomeOverview(seriesId: $seriesId)"
        " { id seriesId content { id seriesId title thumbnail category subcategory"
        " ageGrade onIssue authors description pubPeriod bm startSaleDt serviceProperty"
        " { viewCount readCount ratingCount ratingSum commentCount } } } }"
    ),
    EPISODES: (
        "query contentHomeProductList($after: String, $before: String, $first: Int,"
        " $last: Int, $seriesId: Long!, $boughtOnly: Boolean, $sortType: String) {"
        " contentHomeProductList(seriesId: $seriesId, after: $after, before: $before,"
        " first: $first, last: $last, boughtOnly: $boughtOnly, sortType: $sortType) {"
        " totalCount pageInfo { hasNextPage endCursor } edges { cursor node { id row1 row2"
        " single { productId title thumbnail isFree isWaitfreeBlocked lastReleasedDate } } } } }"
    ),
}

_STATUS = {"Ing": WebtoonStatus.ONGOING, "End": WebtoonStatus.COMPLETED}
_AGE = {
    "All": AgeRating.ALL,
    "Twelve": AgeRating.AGE_12,
    "Fifteen": AgeRating.AGE_15,
    "Eighteen": AgeRating.ADULT,
    "Nineteen": AgeRating.ADULT,
}
_DAY = dict(zip("월화수목금토일", (day.value for day in DayOfWeek), strict=True))


def _root(base: str) -> str:
    return base.rstrip("/")


def graphql_request(base: str, operation: str, variables: dict[str, Any]) -> tuple[str, str]:
    """The (url, JSON body) of one GraphQL POST."""
    if operation not in QUERIES:
        raise ValueError(f"operation must be one of {', '.join(QUERIES)}, not {operation!r}")
    body = {"operationName": operation, "query": QUERIES[operation], "variables": variables}
    return f"{_root(base)}/graphql", json.dumps(body, ensure_ascii=False, sort_keys=True)


def list_request(base: str, page: int, complete: bool) -> tuple[str, str]:
    """One page (1-based) of the webtoon landing list, running or finished titles."""
    state = "true" if complete else "false"
    variables = {
        "sectionId": f"static-landing-Genre-section-Layout-{WEBTOON_CATEGORY}-0-update-{state}",
        "param": {
            "categoryUid": WEBTOON_CATEGORY,
            "subcategoryUid": "0",
            "sortType": "update",
            "isComplete": complete,
            "page": page,
        },
    }
    return graphql_request(base, LIST, variables)


def detail_request(base: str, series_id: str | int) -> tuple[str, str]:
    return graphql_request(base, DETAIL, {"seriesId": int(series_id)})


def episodes_request(
    base: str,
    series_id: str | int,
    after: str | None = None,
    first: int = EPISODES_PER_PAGE,
    sort: str = "asc",
) -> tuple[str, str]:
    if sort not in ("asc", "desc"):
        raise ValueError(f"sort must be asc or desc, not {sort!r}")
    variables = {
        "seriesId": int(series_id),
        "after": after,
        "first": first,
        "sortType": sort,
        "boughtOnly": False,
    }
    return graphql_request(base, EPISODES, variables)


def title_page_url(base: str, series_id: str | int) -> str:
    return f"{_root(base)}/content/{series_id}"


def viewer_url(base: str, series_id: str | int, product_id: str | int) -> str:
    return f"{_root(base)}/content/{series_id}/viewer/{product_id}"


def series_id_from_argument(value: str) -> str:
    """A series id from ``50000123`` or ``https://page.kakao.com/content/50000123``."""
    def in_url(url: SplitResult) -> str | None:
        match = re.match(r"/content/(\d+)(/|$)", url.path)
        return match.group(1) if match else None

    return id_from_argument(value, in_url, "kakaopage title", "series id",
                            "https://page.kakao.com/content/50000123")


def _operation_data(payload: bytes | str | dict[str, Any], operation: str) -> dict[str, Any]:
    """``data.<operation>``, or a ParseError naming the GraphQL error."""
    data = load_json(payload)
    errors = data.get("errors")
    message = ""
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        message = str(errors[0].get("message") or "")[:200]
    body = data.get("data")
    if body is None:
        raise ParseError("unknown_shape", f"no data: {message}" if message else "no data")
    if not isinstance(body, dict):
        raise ParseError("wrong_type:data", f"expected object, got {type(body).__name__}")
    if body.get(operation) is None:
        raise ParseError(f"missing_field:{operation}", message)
    return obj(body, operation)


def parse_list_page(payload: bytes | str | dict[str, Any]) -> TitleListPage:
    """A landing list page: series ids in order, ``is_last`` from ``isEnd``."""
    section = _operation_data(payload, LIST)
    page = TitleListPage()
    seen: set[str] = set()
    for g_index, group in enumerate(array(section, "groups")):
        items = group.get("items") if isinstance(group, dict) else None
        if not isinstance(items, list):
            page.drops.append(("wrong_type:items", f"groups[{g_index}]"))
            continue
        for i_index, item in enumerate(items):
            try:
                if not isinstance(item, dict):
                    raise ParseError("wrong_type:item", f"item is {type(item).__name__}")
                series_id = identifier(item, "seriesId")
            except ParseError as exc:
                page.drops.append(entry_drop(exc, f"groups[{g_index}].items[{i_index}]"))
                continue
            if series_id not in seen:
                seen.add(series_id)
                page.titles.append(TitleRef(external_id=series_id, card=item))
    param = obj(section, "param", required=False)
    page_no = number(param, "page")
    page.page = int(page_no) if page_no and page_no > 0 else 1
    # Missing isEnd with an empty page still ends the listing, never loops.
    page.is_last = flag(section, "isEnd") if "isEnd" in section else not page.titles
    return page


def _authors(names: str) -> list[dict[str, str]]:
    """KakaoPage gives names only ("a,b"): by convention the story author comes first."""
    people = split_names(names)
    if len(people) == 1:
        return [author(PLATFORM, people[0], AuthorRole.BOTH.value)]
    return [
        author(PLATFORM, name, (AuthorRole.WRITER if i == 0 else AuthorRole.ARTIST).value)
        for i, name in enumerate(people)
    ]


def days_of(pub_period: Any) -> list[str]:
    """"월, 목" → [MONDAY, THURSDAY]; unknown parts are ignored."""
    if not isinstance(pub_period, str):
        return []
    return unique(_DAY.get(part.strip()[:1], "") for part in re.split(r"[,\s/]+", pub_period))


def parse_detail(payload: bytes | str | dict[str, Any], base: str) -> WebtoonItem:
    """``contentHomeOverview`` as a ``WebtoonItem``."""
    overview = _operation_data(payload, DETAIL)
    content = obj(overview, "content")
    series_id = identifier(content, "seriesId")
    title = text(content, "title", required=True)
    status = _STATUS.get(str(content.get("onIssue") or ""), WebtoonStatus.ONGOING)
    age = _AGE.get(str(content.get("ageGrade") or ""), AgeRating.ALL)
    genre = text(content, "subcategory") or text(content, "category")
    thumbnail = text(content, "thumbnail") or None
    service = obj(content, "serviceProperty", required=False)
    rating_count = number(service, "ratingCount")
    rating_sum = number(service, "ratingSum")
    return WebtoonItem(
        platform=PLATFORM,
        external_id=series_id,
        title=title,
        authors=_authors(text(content, "authors")),
        status=status.value,
        age_rating=age.value,
        days_of_week=days_of(content.get("pubPeriod")),
        genres=[genre] if genre else [],
        tags=[],
        summary=text(content, "description"),
        link=title_page_url(base, series_id),
        thumbnail_url=thumbnail,
        publish_start_date=iso_date(content.get("startSaleDt")),
        stats=stats_of(
            view_count=number(service, "viewCount"),
            read_count=number(service, "readCount"),
            rating_count=rating_count,
            star_score=(rating_sum / rating_count) if rating_count and rating_sum else None,
            comment_count=number(service, "commentCount"),
        ),
        raw=overview,
        image_urls=[thumbnail] if thumbnail else [],
    )


def episode_no_of(title: str) -> int | None:
    """The trailing "<n>화" of an episode title: KakaoPage has no number field."""
    match = re.search(r"(\d+)\s*화\s*$", title)
    return int(match.group(1)) if match else None


def pricing_of(single: dict[str, Any]) -> str:
    if flag(single, "isFree"):
        return PricingType.FREE.value
    if flag(single, "isWaitfreeBlocked"):
        return PricingType.PAID.value
    return PricingType.WAIT_FREE.value


def _episode(edge: Any, base: str, series_id: str) -> EpisodeItem:
    if not isinstance(edge, dict):
        raise ParseError("wrong_type:edge", f"edge is {type(edge).__name__}")
    node = obj(edge, "node")
    single = obj(node, "single")
    product_id = identifier(single, "productId")
    title = text(single, "title") or text(node, "row1")
    if not title:
        raise ParseError("missing_field:title")
    no = episode_no_of(title)
    if no is None or no <= 0:
        raise ParseError("missing_field:episode_no", f"no '<n>화' in {title[:50]!r}")
    row2 = node.get("row2")
    published = iso_date(single.get("lastReleasedDate"))
    if published is None and isinstance(row2, list) and row2:
        published = dotted_date(row2[0])
    return EpisodeItem(
        platform=PLATFORM,
        webtoon_external_id=series_id,
        episode_no=no,
        title=title,
        season_no=1,
        external_id=product_id,
        pricing_type=pricing_of(single),
        url=viewer_url(base, series_id, product_id),
        published_at=published,
        thumbnail_url=text(single, "thumbnail") or text(node, "thumbnail") or None,
        raw=edge,
    )


def parse_episode_page(
    payload: bytes | str | dict[str, Any], base: str, series_id: str
) -> EpisodePage:
    """One cursor page of ``contentHomeProductList``."""
    products = _operation_data(payload, EPISODES)
    edges = array(products, "edges", required=True)
    page = EpisodePage()
    for index, edge in enumerate(edges):
        try:
            page.items.append(_episode(edge, base, series_id))
        except ParseError as exc:
            page.drops.append(entry_drop(exc, f"{series_id} edges[{index}]"))
    info = obj(products, "pageInfo", required=False)
    cursor = info.get("endCursor")
    page.end_cursor = cursor if isinstance(cursor, str) and cursor else None
    # No cursor to follow means no next page, whatever hasNextPage says.
    page.is_last = not (flag(info, "hasNextPage") and page.end_cursor and edges)
    total = number(products, "totalCount")
    page.total_count = int(total) if total is not None else None
    return page
