from __future__ import annotations

import io
import json
import math
from collections import Counter
from typing import Any

import pytest
from PIL import Image

from crawler.simulator import Catalogue, SimulatorServer, serve
from crawler.simulator.kakao import PLACEMENTS

from .conftest import fetch, graphql

NAVER_ITEM_KEYS = {
    "titleId", "titleName", "author", "thumbnailUrl", "up", "rest", "bm", "adult", "finish",
    "new", "starScore", "viewCount", "writers", "painters", "novelOriginAuthors",
}
DAYS = ("MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY")


def good_id(server: SimulatorServer, platform: str, pick: Any = None) -> str:
    entries = server.catalogue.expected()["platforms"][platform]
    for title_id, entry in entries.items():
        if pick is None or pick(server.catalogue.title(platform, title_id), entry):
            return title_id
    raise AssertionError(f"no {platform} title matches")


# ---- general -------------------------------------------------------------------------


def test_robots_txt_disallows_only_the_control_endpoints(simulator: SimulatorServer) -> None:
    answer = fetch(f"{simulator.url}/robots.txt")
    assert answer.status == 200
    assert answer.body.decode() == "User-agent: *\nDisallow: /_sim/\n"


def test_unknown_paths_answer_404_json(simulator: SimulatorServer) -> None:
    answer = fetch(f"{simulator.url}/no/such/thing")
    assert answer.status == 404
    assert answer.json()["error"] == "not found"
    assert fetch(f"{simulator.url}/api/article/list/info?titleId=1").status == 404
    assert fetch(f"{simulator.url}/api/article/list/info?titleId=abc").status == 400


def test_same_seed_serves_the_same_bytes() -> None:
    paths = [
        "/api/webtoon/titlelist/weekday?order=user",
        "/section/v2/timetables/days?placement=timetable_tue",
        "/_sim/expected",
    ]
    bodies = []
    for _ in range(2):
        catalogue = Catalogue(seed=21, titles=60, malformed=1)
        with serve(catalogue, public_url="http://sim.test") as server:
            nid = good_id(server, "NAVER")
            answers = [fetch(server.url + p).body for p in paths]
            answers.append(fetch(f"{server.url}/api/article/list?titleId={nid}&page=1").body)
            answers.append(graphql(server.url, "staticLandingGenreSection",
                                   {"param": {"page": 1}}).body)
            bodies.append(answers)
    assert bodies[0] == bodies[1]
    assert b"http://sim.test/thumb/naver/" in bodies[0][0]


def test_image_urls_are_absolute_on_the_requested_host(simulator: SimulatorServer) -> None:
    host_url = simulator.url.replace("127.0.0.1", "localhost")
    items = fetch(f"{host_url}/api/webtoon/titlelist/weekday?order=user").json()["titleListMap"]
    urls = [i["thumbnailUrl"] for day in items.values() for i in day]
    assert urls and all(u.startswith(host_url + "/thumb/naver/") for u in urls)


# ---- Naver ---------------------------------------------------------------------------


def test_naver_weekday_list_shape_and_two_day_titles(simulator: SimulatorServer) -> None:
    payload = fetch(f"{simulator.url}/api/webtoon/titlelist/weekday?order=user").json()
    assert set(payload["titleListMap"]) == set(DAYS)
    items = [i for day in payload["titleListMap"].values() for i in day]
    assert items and all(set(i) >= NAVER_ITEM_KEYS for i in items)
    assert all(isinstance(i["titleId"], int) for i in items)
    times = Counter(i["titleId"] for i in items)
    expected = simulator.catalogue.expected()["platforms"]["NAVER"]
    two_day = [tid for tid, e in expected.items() if len(e["days"]) == 2]
    assert two_day, "the fixture catalogue should have a two-day Naver title"
    for tid in two_day:
        assert times[int(tid)] == 2
        for day in expected[tid]["days"]:
            assert int(tid) in {i["titleId"] for i in payload["titleListMap"][day]}
    assert any(" / " in i["author"] or "/" in i["author"] for i in items)


def test_naver_daily_plus_and_finished_lists(simulator: SimulatorServer) -> None:
    daily = fetch(f"{simulator.url}/api/webtoon/titlelist/weekday?week=dailyPlus&order=user")
    assert set(daily.json()) == {"titleList"}
    cat = simulator.catalogue
    done = [t for t in cat.titles_of("NAVER") if t.status == "COMPLETED"]
    pages = math.ceil(len(done) / 30)
    seen: list[int] = []
    for page in range(1, pages + 1):
        payload = fetch(
            f"{simulator.url}/api/webtoon/titlelist/finished?page={page}&order=UPDATE"
        ).json()
        assert payload["pageInfo"]["totalPages"] == pages
        assert payload["pageInfo"]["page"] == page
        assert all(set(i) >= NAVER_ITEM_KEYS and i["finish"] for i in payload["titleList"])
        seen += [i["titleId"] for i in payload["titleList"]]
    assert sorted(seen) == sorted(t.numeric_id for t in done)
    past = fetch(f"{simulator.url}/api/webtoon/titlelist/finished?page={pages + 5}").json()
    assert past["pageInfo"]["page"] == pages


def test_naver_title_info_shape(simulator: SimulatorServer) -> None:
    tid = good_id(simulator, "NAVER", lambda t, e: len(t.authors) >= 2 and e["days"])
    info = fetch(f"{simulator.url}/api/article/list/info?titleId={tid}").json()
    entry = simulator.catalogue.expected()["platforms"]["NAVER"][tid]
    assert info["titleId"] == int(tid) and info["titleName"] == entry["title"]
    assert info["age"]["type"] in {"RATE_ALL", "RATE_12", "RATE_15", "RATE_18"}
    assert info["publishDayOfWeekList"] == entry["days"]
    assert [a["name"] for a in info["communityArtists"]] == entry["authors"]
    types = {t for a in info["communityArtists"] for t in a["artistTypeList"]}
    assert types <= {"ARTIST_WRITER", "ARTIST_PAINTER", "ARTIST_NOVEL_ORIGIN"}
    genres = [c for c in info["curationTagList"] if c["curationType"].startswith("GENRE_")]
    assert [g["tagName"] for g in genres] == entry["genres"]
    assert isinstance(info["favoriteCount"], int)
    assert info["thumbnailUrl"].startswith(simulator.url)
    assert info["rest"] is (entry["status"] == "HIATUS")
    assert info["finished"] is (entry["status"] == "COMPLETED")


def naver_episodes(url: str, tid: str, sort: str) -> tuple[list[Any], list[Any], int]:
    first = fetch(f"{url}/api/article/list?titleId={tid}&page=1&sort={sort}").json()
    pages = first["pageInfo"]["totalPages"]
    articles, charged = [], first["chargeFolderArticleList"]
    for page in range(1, pages + 1):
        payload = fetch(f"{url}/api/article/list?titleId={tid}&page={page}&sort={sort}").json()
        assert payload["pageInfo"]["page"] == page
        assert len(payload["articleList"]) <= 20
        articles += payload["articleList"]
    assert len(articles) == first["totalCount"]
    return articles, charged, pages


def test_naver_episode_paging_and_paid_previews() -> None:
    with serve(Catalogue(seed=4, titles=80, episodes=45)) as server:
        tid = good_id(server, "NAVER", lambda t, e: t.paid_previews() > 0)
        entry = server.catalogue.expected()["platforms"]["NAVER"][tid]
        articles, charged, pages = naver_episodes(server.url, tid, "ASC")
        assert pages >= 2
        numbers = [int(a["no"]) for a in articles] + [int(c["no"]) for c in charged]
        assert [[1, n] for n in numbers] == entry["episodes"]
        assert charged and all(p == "PAID" for p in entry["pricing"][-len(charged):])
        desc, _, _ = naver_episodes(server.url, tid, "DESC")
        assert [a["no"] for a in desc] == [a["no"] for a in reversed(articles)]
        last = fetch(f"{server.url}/api/article/list?titleId={tid}&page={pages}&sort=ASC")
        past = fetch(f"{server.url}/api/article/list?titleId={tid}&page={pages + 3}&sort=ASC")
        assert past.json()["articleList"] == last.json()["articleList"]
        assert past.json()["pageInfo"]["page"] == pages
        article = articles[0]
        assert set(article) >= {"no", "subtitle", "thumbnailUrl", "starScore",
                                "serviceDateDescription", "charge", "up", "volumeNo"}
        assert len(article["serviceDateDescription"]) == 8  # YY.MM.DD


def test_naver_string_numbers_for_some_titles() -> None:
    with serve(Catalogue(seed=4, titles=200)) as server:
        tid = good_id(server, "NAVER", lambda t, e: t.string_no)
        payload = fetch(f"{server.url}/api/article/list?titleId={tid}&page=1").json()
        assert all(isinstance(a["no"], str) and a["no"].isdigit() for a in payload["articleList"])


# ---- Kakao ---------------------------------------------------------------------------


def test_kakao_timetables_shape_and_days(simulator: SimulatorServer) -> None:
    expected = simulator.catalogue.expected()["platforms"]["KAKAO"]
    listed: dict[str, set[str]] = {}
    for placement, day in PLACEMENTS.items():
        payload = fetch(
            f"{simulator.url}/section/v2/timetables/days?placement={placement}"
        ).json()
        (section,) = payload["data"]
        assert section["placement"] == placement
        for card in section["cardGroups"][0]["cards"]:
            content = card["content"]
            assert set(content) >= {"id", "seoId", "title", "adult", "catchphraseTwoLines",
                                    "badges", "authors", "featuredCharacterImageA",
                                    "backgroundImage", "seoKeywords", "serialStartDateTime"}
            assert set(card["sorting"]) == {"popularity", "views"}
            assert "." not in content["featuredCharacterImageA"].rsplit("/", 1)[-1]
            types = {a["type"] for a in content["authors"]}
            assert types <= {"AUTHOR", "ILLUSTRATOR", "PUBLISHER", "ORIGINAL_STORY"}
            listed.setdefault(str(content["id"]), set()).add(day.value if day else "DONE")
    for tid, entry in expected.items():
        want = set(entry["days"]) if entry["status"] != "COMPLETED" else {"DONE"}
        assert listed[tid] == want
    assert any(len(days) == 2 for days in listed.values())
    assert fetch(f"{simulator.url}/section/v2/timetables/days?placement=nope").status == 400


def test_kakao_decorator_shape(simulator: SimulatorServer) -> None:
    tid = good_id(simulator, "KAKAO")
    data = fetch(f"{simulator.url}/decorator/v2/decorator/contents/{tid}").json()["data"]
    entry = simulator.catalogue.expected()["platforms"]["KAKAO"][tid]
    assert set(data) >= {"title", "seoId", "genre", "synopsis", "sharingThumbnailImage",
                         "backgroundImage", "status", "statistics", "authors"}
    assert data["title"] == entry["title"]
    assert data["status"] in {"EPISODES_PUBLISHING", "EPISODES_NOT_PUBLISHING", "COMPLETED"}
    creators = [a["name"] for a in data["authors"] if a["type"] != "PUBLISHER"]
    assert list(dict.fromkeys(creators)) == entry["authors"]
    assert set(data["statistics"]) == {"viewCount", "likeCount"}


def test_kakao_episodes_offset_paging() -> None:
    with serve(Catalogue(seed=8, titles=80, episodes=20)) as server:
        tid = good_id(server, "KAKAO", lambda t, e: len(e["episodes"]) >= 18)
        entry = server.catalogue.expected()["platforms"]["KAKAO"][tid]
        base = f"{server.url}/episode/v2/views/content-home/contents/{tid}/episodes"
        got: list[dict[str, Any]] = []
        offset = 0
        while True:
            payload = fetch(f"{base}?sort=NO&offset={offset}&limit=7").json()
            got += payload["data"]["episodes"]
            assert payload["meta"]["pagination"]["totalCount"] == len(entry["episodes"])
            if payload["meta"]["pagination"]["last"]:
                break
            offset += 7
        assert [[int(e["seasonNo"]), int(e["no"])] for e in got] == entry["episodes"]
        first = got[0]
        assert set(first) >= {"id", "contentId", "no", "seasonNo", "title", "adult",
                              "serialStartDateTime", "useType", "readable", "asset"}
        assert first["useType"] in {"FREE", "WAIT_FOR_FREE", "PAY"}
        newest = fetch(f"{base}?sort=-NO&offset=0&limit=3").json()["data"]["episodes"]
        assert [e["id"] for e in newest] == [e["id"] for e in reversed(got[-3:])]


def test_kakao_episode_numbers_are_strings_for_some_titles_and_numbers_for_others() -> None:
    with serve(Catalogue(seed=8, titles=120)) as server:
        kinds = set()
        for t in server.catalogue.titles_of("KAKAO")[:20]:
            url = f"{server.url}/episode/v2/views/content-home/contents/{t.external_id}/episodes"
            for e in fetch(url).json()["data"]["episodes"]:
                kinds.add(type(e["no"]))
        assert kinds == {str, int}


# ---- KakaoPage -----------------------------------------------------------------------


def test_kakaopage_list_pages_until_is_end() -> None:
    with serve(Catalogue(seed=2, titles=300)) as server:
        ids: list[int] = []
        for complete in (False, True):
            page = 1
            while True:
                payload = graphql(server.url, "staticLandingGenreSection", {
                    "sectionId": "static-landing-Genre-section-Layout-10-0-update-false",
                    "param": {"categoryUid": 10, "subcategoryUid": "0", "sortType": "update",
                              "isComplete": complete, "page": page},
                }).json()
                section = payload["data"]["staticLandingGenreSection"]
                items = [i for g in section["groups"] for i in g["items"]]
                assert len(items) <= 24
                assert all({"seriesId", "title", "thumbnail", "ageGrade"} <= set(i)
                           for i in items)
                ids += [i["seriesId"] for i in items]
                if section["isEnd"]:
                    break
                page += 1
            assert page >= 2 or complete
        assert sorted(ids) == sorted(t.numeric_id for t in server.catalogue.titles_of("KAKAOPAGE"))


def test_kakaopage_overview_shape(simulator: SimulatorServer) -> None:
    sid = good_id(simulator, "KAKAOPAGE", lambda t, e: e["days"])
    entry = simulator.catalogue.expected()["platforms"]["KAKAOPAGE"][sid]
    payload = graphql(simulator.url, "contentHomeOverview", {"seriesId": int(sid)}).json()
    content = payload["data"]["contentHomeOverview"]["content"]
    assert content["seriesId"] == int(sid) and content["title"] == entry["title"]
    assert content["bm"] in {"FreePreview", "PayWaitfree", "Pay"}
    assert content["ageGrade"] in {"All", "Fifteen", "Nineteen"}
    assert content["onIssue"] == "Ing"
    assert content["authors"].split(",") == entry["authors"]
    korean = dict(zip(DAYS, "월화수목금토일", strict=True))
    assert content["pubPeriod"] == ", ".join(korean[d] for d in entry["days"])
    assert content["subcategory"] == entry["genres"][0]
    # The operation is also found from the query text alone, and a string id works.
    bare = fetch(f"{simulator.url}/graphql", {
        "query": "query q($seriesId: Long!) { contentHomeOverview(seriesId: $seriesId) { id } }",
        "variables": {"seriesId": sid},
    }).json()
    assert bare == payload


def test_kakaopage_products_page_by_cursor() -> None:
    with serve(Catalogue(seed=2, titles=120, episodes=30)) as server:
        sid = good_id(server, "KAKAOPAGE", lambda t, e: len(e["episodes"]) > 25)
        entry = server.catalogue.expected()["platforms"]["KAKAOPAGE"][sid]
        after, singles, pages = None, [], 0
        while True:
            payload = graphql(server.url, "contentHomeProductList", {
                "seriesId": int(sid), "after": after, "first": 10, "sortType": "asc",
                "boughtOnly": False,
            }).json()["data"]["contentHomeProductList"]
            pages += 1
            assert payload["totalCount"] == len(entry["episodes"])
            singles += [edge["node"]["single"] for edge in payload["edges"]]
            if not payload["pageInfo"]["hasNextPage"]:
                break
            after = payload["pageInfo"]["endCursor"]
        assert pages == math.ceil(len(entry["episodes"]) / 10)
        numbers = [int(s["title"].rsplit(" ", 1)[1].removesuffix("화")) for s in singles]
        assert [[1, n] for n in numbers] == entry["episodes"]
        assert all({"productId", "title", "isFree", "isWaitfreeBlocked", "lastReleasedDate",
                    "slideType"} <= set(s) for s in singles)
        pricing = ["FREE" if s["isFree"] else "PAID" if s["isWaitfreeBlocked"] else "WAIT_FREE"
                   for s in singles]
        assert pricing == entry["pricing"]
        newest = graphql(server.url, "contentHomeProductList",
                         {"seriesId": sid, "first": 1}).json()
        edge = newest["data"]["contentHomeProductList"]["edges"][0]
        assert edge["node"]["single"]["productId"] == singles[-1]["productId"]


def test_kakaopage_bad_requests_answer_graphql_errors(simulator: SimulatorServer) -> None:
    unknown = graphql(simulator.url, "somethingElse", {})
    assert unknown.status == 200 and unknown.json()["errors"]
    missing = graphql(simulator.url, "contentHomeOverview", {"seriesId": 1})
    assert missing.json()["data"] == {"contentHomeOverview": None}
    broken = fetch(f"{simulator.url}/graphql", b"{not json")
    assert broken.status == 400 and broken.json()["errors"]
    cursor = graphql(simulator.url, "contentHomeProductList",
                     {"seriesId": good_id(simulator, "KAKAOPAGE"), "after": "%%%"})
    assert cursor.json()["errors"]


# ---- faults, throttling, images, control ---------------------------------------------


def _naver_info(server: SimulatorServer, tid: str) -> Any:
    return fetch(f"{server.url}/api/article/list/info?titleId={tid}")


def _kakao_detail(server: SimulatorServer, tid: str) -> Any:
    return fetch(f"{server.url}/decorator/v2/decorator/contents/{tid}")


def _kakaopage_detail(server: SimulatorServer, tid: str) -> Any:
    return graphql(server.url, "contentHomeOverview", {"seriesId": int(tid)})


def _title_of(platform: str, body: Any) -> Any:
    if platform == "NAVER":
        return body
    if platform == "KAKAO":
        return body["data"]
    return body["data"]["contentHomeOverview"]["content"]


@pytest.mark.parametrize(("platform", "detail", "name_key"), [
    ("NAVER", _naver_info, "titleName"),
    ("KAKAO", _kakao_detail, "title"),
    ("KAKAOPAGE", _kakaopage_detail, "title"),
])
def test_malformed_titles_are_broken_on_the_wire(
    simulator: SimulatorServer, platform: str, detail: Any, name_key: str
) -> None:
    bad = simulator.catalogue.expected()["malformed"]["titles"][platform]
    seen = set()
    for tid in bad:
        answer = detail(simulator, tid)
        kind = simulator.catalogue.title(platform, tid).malformed
        seen.add(kind)
        if kind == "not_json":
            assert answer.status == 200
            with pytest.raises(json.JSONDecodeError):
                json.loads(answer.body)
            continue
        title = _title_of(platform, answer.json())
        if kind == "missing_title":
            assert name_key not in title
        else:
            assert isinstance(title[name_key], list)
    assert seen == {"not_json", "missing_title", "wrong_type"}


def test_malformed_episodes_lack_a_usable_number(simulator: SimulatorServer) -> None:
    broken = simulator.catalogue.expected()["malformed"]["episodes"]
    for tid in broken["NAVER"]:
        articles, charged, _ = naver_episodes(simulator.url, tid, "ASC")
        odd = [a for a in articles if not str(a.get("no", "")).isdigit()]
        assert len(odd) == len(broken["NAVER"][tid])
        assert len(articles) + len(charged) - len(odd) == len(
            simulator.catalogue.expected()["platforms"]["NAVER"][tid]["episodes"])
    for tid in broken["KAKAO"]:
        url = f"{simulator.url}/episode/v2/views/content-home/contents/{tid}/episodes?limit=100"
        episodes = fetch(url).json()["data"]["episodes"]
        odd = [e for e in episodes if not str(e.get("no", "")).isdigit()]
        assert len(odd) == len(broken["KAKAO"][tid])
    for tid in broken["KAKAOPAGE"]:
        payload = graphql(simulator.url, "contentHomeProductList",
                          {"seriesId": int(tid), "first": 100}).json()
        singles = [e["node"]["single"] for e in payload["data"]["contentHomeProductList"]["edges"]]
        odd = [s for s in singles if "productId" not in s or not s["title"].endswith("화")]
        assert len(odd) == len(broken["KAKAOPAGE"][tid])


def test_throttle_answers_429_and_503_with_retry_after() -> None:
    with serve(Catalogue(titles=30), throttle_every=3) as server:
        url = f"{server.url}/api/webtoon/titlelist/weekday?order=user"
        statuses = [fetch(url) for _ in range(12)]
        refused = [a for a in statuses if a.status != 200]
        assert [a.status for a in refused] == [429, 503, 429, 503]
        assert all(a.headers["Retry-After"] == "1" for a in refused)
        assert [a.status for a in statuses][2::3] == [429, 503, 429, 503]
        # Images and control endpoints are never refused.
        assert all(fetch(f"{server.url}/thumb/naver/1/x.jpg").status == 200 for _ in range(4))
        counters = fetch(f"{server.url}/_sim/requests").json()
        assert counters["throttled"] == 4 and counters["lists"] == 8


def test_images_decode_in_every_served_format(simulator: SimulatorServer) -> None:
    naver_item = fetch(
        f"{simulator.url}/api/webtoon/titlelist/weekday?order=user"
    ).json()["titleListMap"]
    thumb = next(i for day in naver_item.values() for i in day)["thumbnailUrl"]
    card = fetch(
        f"{simulator.url}/section/v2/timetables/days?placement=timetable_mon"
    ).json()["data"][0]["cardGroups"][0]["cards"][0]["content"]
    character = card["featuredCharacterImageA"]
    formats = {thumb: "JPEG", character + ".png": "PNG", character + ".jpg": "JPEG",
               character + ".webp": "WEBP"}
    bodies = set()
    for url, fmt in formats.items():
        answer = fetch(url)
        assert answer.status == 200 and len(answer.body) < 2000
        image = Image.open(io.BytesIO(answer.body))
        image.load()
        assert image.format == fmt
        bodies.add(answer.body)
    assert len(bodies) == 4
    assert fetch(thumb).body == fetch(thumb).body


def test_control_endpoints_track_requests_and_move_the_clock() -> None:
    with serve(Catalogue(seed=3, titles=60)) as server:
        nid = good_id(server, "NAVER")
        kid = good_id(server, "KAKAO")
        sid = good_id(server, "KAKAOPAGE")
        fetch(f"{server.url}/api/article/list/info?titleId={nid}")
        fetch(f"{server.url}/api/article/list/info?titleId={nid}")
        fetch(f"{server.url}/api/article/list?titleId={nid}&page=1")
        fetch(f"{server.url}/decorator/v2/decorator/contents/{kid}")
        fetch(f"{server.url}/episode/v2/views/content-home/contents/{kid}/episodes")
        graphql(server.url, "contentHomeOverview", {"seriesId": int(sid)})
        graphql(server.url, "contentHomeProductList", {"seriesId": int(sid)})
        graphql(server.url, "staticLandingGenreSection", {"param": {"page": 1}})
        counters = fetch(f"{server.url}/_sim/requests").json()
        assert counters["naver_info"] == {nid: 2}
        assert counters["naver_episodes"] == {nid: 1}
        assert counters["kakao_detail"] == {kid: 1} and counters["kakao_episodes"] == {kid: 1}
        assert counters["kakaopage_detail"] == {sid: 1}
        assert counters["kakaopage_episodes"] == {sid: 1}
        assert counters["lists"] == 1
        reset = fetch(f"{server.url}/_sim/requests/reset", b"", method="POST").json()
        assert reset["naver_info"] == {} and reset["lists"] == 0

        before = fetch(f"{server.url}/_sim/expected").json()
        assert fetch(f"{server.url}/_sim/clock").json() == {"today": "2026-11-02"}
        moved = fetch(f"{server.url}/_sim/advance?days=7", b"", method="POST").json()
        assert moved == {"today": "2026-11-09"}
        after = fetch(f"{server.url}/_sim/expected").json()
        assert after["today"] == "2026-11-09"
        grown = [tid for tid, e in after["platforms"]["NAVER"].items()
                 if len(e["episodes"]) > len(before["platforms"]["NAVER"][tid]["episodes"])]
        assert grown
        # Served payloads follow the clock (the cache is dropped on advance).
        articles, charged, _ = naver_episodes(server.url, grown[0], "ASC")
        want = after["platforms"]["NAVER"][grown[0]]["episodes"]
        assert len(articles) + len(charged) == len(want)
        assert fetch(f"{server.url}/_sim/advance?days=-1", b"", method="POST").status == 400


def test_keep_alive_connection_serves_several_requests(simulator: SimulatorServer) -> None:
    import http.client

    host, port = simulator.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=5)
    try:
        for _ in range(3):
            connection.request("GET", "/robots.txt")
            response = connection.getresponse()
            assert response.status == 200 and response.read()
            assert response.getheader("Content-Length")
    finally:
        connection.close()
