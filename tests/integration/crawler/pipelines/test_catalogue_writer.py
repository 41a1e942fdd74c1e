"""CatalogueWriter against a real, freshly migrated MariaDB."""

from __future__ import annotations

import copy

import pytest

from crawler.items import EpisodeItem, WebtoonItem
from crawler.pipelines.batching import Pending, Stored
from crawler.pipelines.catalogue import CatalogueWriter
from shared.catalogue import catalogue_counts
from shared.stores.mariadb import connect

pytestmark = pytest.mark.integration


def webtoon(platform="NAVER", external_id="100", title="전지적 독자 시점", **kw) -> WebtoonItem:
    defaults = dict(
        authors=[{"uid": f"{platform}:1", "name": "싱숑", "role": "WRITER"},
                 {"uid": f"{platform}:2", "name": "슬리피-C", "role": "ARTIST"}],
        status="ONGOING", age_rating="AGE_15", days_of_week=["MONDAY", "THURSDAY"],
        genres=["판타지", "액션"], tags=["회귀", "먼치킨"], summary="세계의 멸망",
        link=f"https://{platform.lower()}.example/{external_id}",
        thumbnail_url=f"https://img.example/{platform}/{external_id}.jpg",
        publish_start_date="2020-05-14", stats={"favorites": 10.0},
        raw={"titleId": external_id},
    )
    defaults.update(kw)
    return WebtoonItem(platform=platform, external_id=external_id, title=title, **defaults)


def episode(no, platform="NAVER", webtoon_id="100", published="2024-01-01", **kw) -> EpisodeItem:
    return EpisodeItem(platform=platform, webtoon_external_id=webtoon_id, episode_no=no,
                       title=f"{no}화", url=f"https://{platform.lower()}.example/v/{no}",
                       published_at=published, **kw)


def statuses(outcomes):
    return [o.status if isinstance(o, Stored) else o for o in outcomes]


@pytest.fixture
def writer(mariadb_url):
    conn = connect(mariadb_url)
    yield CatalogueWriter(conn, images_store="s3://thumbs/prefix/")
    conn.close()


def snapshot(mariadb_url):
    conn = connect(mariadb_url)
    try:
        with conn.cursor() as cur:
            tables = {}
            for table in ("webtoon", "webtoon_platform", "webtoon_episode", "webtoon_statistics",
                          "author", "webtoon_author", "webtoon_genre", "webtoon_tag",
                          "webtoon_publish_day", "webtoon_episode_link", "webtoon_season"):
                cur.execute(f"SELECT * FROM {table} ORDER BY 1, 2")
                tables[table] = cur.fetchall()
            return tables
    finally:
        conn.close()


def query(mariadb_url, sql, args=()):
    conn = connect(mariadb_url, dict_cursor=True)
    try:
        with conn.cursor() as cur:
            cur.execute(sql, args)
            return cur.fetchall()
    finally:
        conn.close()


def test_second_write_of_identical_data_changes_nothing(mariadb_url, writer):
    items = [webtoon(), webtoon(external_id="200", title="다른 웹툰",
                                images=[{"path": "webtoons/NAVER/200/thumbnail.jpg"}])]
    episodes = [episode(n, published=f"2024-01-0{n}") for n in range(1, 6)]
    assert statuses(writer.write(items + episodes)) == (
        ["webtoon/inserted"] * 2 + ["episode/inserted"] * 5)
    before = snapshot(mariadb_url)

    again = writer.write(copy.deepcopy(items + episodes))

    assert statuses(again) == ["webtoon/unchanged"] * 2 + ["episode/unchanged"] * 5
    assert snapshot(mariadb_url) == before  # includes updated_at of every row
    counts = catalogue_counts(mariadb_url)
    assert counts["webtoons"] == 2 and counts["episodes"] == 5 and counts["episode_links"] == 5
    assert counts["authors"] == 2 and counts["genres"] == 2 and counts["tags"] == 2
    row = query(mariadb_url, "SELECT * FROM webtoon WHERE external_id = '200'")[0]
    assert row["thumbnail_path"] == "s3://thumbs/prefix/webtoons/NAVER/200/thumbnail.jpg"
    assert row["day_of_week"] == "MONDAY"
    days = query(mariadb_url, "SELECT day_of_week FROM webtoon_publish_day "
                              "WHERE webtoon_id = %s ORDER BY 1", (row["id"],))
    assert [d["day_of_week"] for d in days] == ["MONDAY", "THURSDAY"]


def test_changes_are_updates_and_sets_are_replaced(mariadb_url, writer):
    writer.write([webtoon()])
    changed = webtoon(status="COMPLETED", genres=["액션", "무협"], days_of_week=["FRIDAY"])

    assert statuses(writer.write([changed])) == ["webtoon/updated"]

    row = query(mariadb_url, "SELECT * FROM webtoon")[0]
    assert row["status"] == "COMPLETED" and row["day_of_week"] == "FRIDAY"
    genres = query(mariadb_url, "SELECT g.name FROM webtoon_genre wg JOIN genre g "
                                "ON g.id = wg.genre_id ORDER BY g.name")
    assert [g["name"] for g in genres] == ["무협", "액션"]
    genre_types = query(mariadb_url, "SELECT DISTINCT type FROM genre")
    assert genre_types == [{"type": "MAIN"}]


def test_same_title_and_authors_on_two_platforms_is_one_webtoon(mariadb_url, writer):
    naver = webtoon()
    kakao = webtoon(platform="KAKAO", external_id="k-9", title="전지적 독자시점",  # spacing
                    authors=[{"uid": "KAKAO:77", "name": "슬리피-C", "role": "ARTIST"},
                             {"uid": "KAKAO:78", "name": "싱숑", "role": "WRITER"}],
                    status="COMPLETED")

    assert statuses(writer.write([naver, kakao])) == ["webtoon/inserted", "webtoon/linked"]
    assert statuses(writer.write([kakao, naver])) == ["webtoon/unchanged"] * 2

    counts = catalogue_counts(mariadb_url)
    assert counts["webtoons"] == 1
    assert counts["platform_links"] == {"NAVER": 1, "KAKAO": 1}
    # The first platform owns the columns: Kakao's status does not flip the row.
    assert query(mariadb_url, "SELECT status FROM webtoon")[0]["status"] == "ONGOING"

    # Both platforms' episodes land on the same episode rows, one link each.
    writer.write([episode(1), episode(1, platform="KAKAO", webtoon_id="k-9")])
    counts = catalogue_counts(mariadb_url)
    assert counts["episodes"] == 1
    assert counts["episode_links_by_platform"] == {"NAVER": 1, "KAKAO": 1}


def test_episode_of_unknown_title_is_pending_until_the_title_arrives(mariadb_url, writer):
    assert writer.write([episode(1), episode(2)]) == [Pending("unknown_webtoon")] * 2
    assert catalogue_counts(mariadb_url)["episodes"] == 0

    outcomes = writer.write([episode(1), episode(2), webtoon()])

    assert statuses(outcomes) == ["episode/inserted", "episode/inserted", "webtoon/inserted"]


def test_last_update_date_and_episode_count_follow_the_episodes(mariadb_url, writer):
    writer.write([webtoon(), episode(1, published="2024-03-01"),
                  episode(2, published="2024-03-08")])
    row = query(mariadb_url, "SELECT w.last_update_date, s.episode_count FROM webtoon w "
                             "JOIN webtoon_statistics s ON s.webtoon_id = w.id")[0]
    assert str(row["last_update_date"]) == "2024-03-08" and row["episode_count"] == 2

    writer.write([episode(3, published="2024-03-15"), episode(2, published="2024-03-08")])

    row = query(mariadb_url, "SELECT w.last_update_date, s.episode_count FROM webtoon w "
                             "JOIN webtoon_statistics s ON s.webtoon_id = w.id")[0]
    assert str(row["last_update_date"]) == "2024-03-15" and row["episode_count"] == 3


def test_seasons_keep_episode_numbers_apart(mariadb_url, writer):
    writer.write([webtoon(), episode(1), episode(1, season_no=2)])
    counts = catalogue_counts(mariadb_url)
    assert counts["seasons"] == 2 and counts["episodes"] == 2


def test_duplicate_items_in_one_batch_are_written_once(mariadb_url, writer):
    outcomes = writer.write([webtoon(), webtoon(), episode(1), episode(1)])
    assert statuses(outcomes) == ["webtoon/inserted", "webtoon/unchanged",
                                  "episode/inserted", "episode/unchanged"]
    counts = catalogue_counts(mariadb_url)
    assert counts["webtoons"] == 1 and counts["episodes"] == 1


def test_a_failed_download_keeps_the_stored_thumbnail_path(mariadb_url, writer):
    writer.write([webtoon(images=[{"path": "webtoons/NAVER/100/thumbnail.jpg"}])])
    assert statuses(writer.write([webtoon(images=[])])) == ["webtoon/unchanged"]
    path = query(mariadb_url, "SELECT thumbnail_path FROM webtoon")[0]["thumbnail_path"]
    assert path == "s3://thumbs/prefix/webtoons/NAVER/100/thumbnail.jpg"


def test_names_another_node_inserted_after_this_transaction_began_are_found(mariadb_url):
    # Node A's transaction has already read (its snapshot is taken) when node B stores a
    # title with a new tag and commits; A then stores another title with the same tag.
    conn_a, conn_b = connect(mariadb_url), connect(mariadb_url)
    node_a, node_b = CatalogueWriter(conn_a), CatalogueWriter(conn_b)
    with conn_a.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM tag")
    node_b.write([webtoon(external_id="1", title="첫째 웹툰", tags=["새로운태그"],
                          genres=["새장르"])])
    outcomes = node_a.write([webtoon(external_id="2", title="둘째 웹툰", tags=["새로운태그"],
                                     genres=["새장르"])])
    assert outcomes == [Stored("webtoon/inserted")]
    with conn_a.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM tag WHERE name = '새로운태그'")
        assert cur.fetchone()[0] == 1
        cur.execute("SELECT COUNT(*) FROM webtoon_tag")
        assert cur.fetchone()[0] == 2
    conn_a.close()
    conn_b.close()


def test_a_webtoon_another_node_creates_meanwhile_is_linked_not_lost(mariadb_url):
    conn_a, conn_b = connect(mariadb_url), connect(mariadb_url)
    node_b = CatalogueWriter(conn_b)

    class RacedWriter(CatalogueWriter):
        raced = False

        def _ids_by_name(self, cur, table, column, names):
            found = super()._ids_by_name(cur, table, column, names)
            if table == "webtoon" and not self.raced:
                # Right after this node looked the title up and missed it, the other
                # node stores the same webtoon from another platform and commits.
                self.raced = True
                assert node_b.write([webtoon(platform="KAKAO", external_id="k1")]) == [
                    Stored("webtoon/inserted")]
            return found

    outcomes = RacedWriter(conn_a).write([webtoon(platform="NAVER", external_id="n1")])

    assert outcomes == [Stored("webtoon/linked")]
    counts = catalogue_counts(mariadb_url)
    assert counts["webtoons"] == 1
    assert counts["platform_links"] == {"NAVER": 1, "KAKAO": 1}
    conn_a.close()
    conn_b.close()
