"""The catalogue reads the spiders use, on crafted rows."""

from __future__ import annotations

from datetime import date

import pytest

from crawler.items import EpisodeItem, WebtoonItem
from crawler.pipelines.catalogue import CatalogueWriter
from shared.catalogue import known_external_ids, titles_due_for_update
from shared.stores.mariadb import connect

pytestmark = pytest.mark.integration

# 2024-06-03 is a Monday.
MONDAY = date(2024, 6, 3)


def title(external_id, days, status="ONGOING", platform="NAVER"):
    return WebtoonItem(platform=platform, external_id=external_id, title=f"title {external_id}",
                       status=status, days_of_week=days,
                       authors=[{"uid": f"{platform}:{external_id}",
                                 "name": f"author {external_id}", "role": "BOTH"}])


def episodes(external_id, last_published, count=3):
    return [EpisodeItem(platform="NAVER", webtoon_external_id=external_id, episode_no=n,
                        title=f"{n}", published_at=last_published if n == count else "2020-01-01")
            for n in range(1, count + 1)]


@pytest.fixture
def catalogue(mariadb_url):
    conn = connect(mariadb_url)
    writer = CatalogueWriter(conn)
    writer.write([
        title("mon-old", ["MONDAY"]),
        title("tue-old", ["TUESDAY"]),
        title("wed-old", ["WEDNESDAY"]),
        title("sat-and-mon", ["SATURDAY", "MONDAY"]),
        title("mon-recent", ["MONDAY"]),
        title("mon-hiatus", ["MONDAY"], status="HIATUS"),
        title("mon-completed", ["MONDAY"], status="COMPLETED"),
        title("mon-new", ["MONDAY"]),  # no episodes yet: last_update_date NULL
        title("kakao-mon", ["MONDAY"], platform="KAKAO"),
        *episodes("mon-old", "2024-05-20"),
        *episodes("tue-old", "2024-05-31"),
        *episodes("wed-old", "2024-05-20"),
        *episodes("sat-and-mon", "2024-05-25", count=5),
        *episodes("mon-recent", "2024-06-02"),
        *episodes("mon-hiatus", "2024-04-01"),
        *episodes("mon-completed", "2024-04-01"),
    ])
    conn.close()
    return mariadb_url


def due(url, today):
    return {t.external_id: t.last_episode_no for t in titles_due_for_update(url, "NAVER", today)}


def test_due_on_a_monday(catalogue):
    assert due(catalogue, MONDAY) == {
        "mon-old": 3, "tue-old": 3, "sat-and-mon": 5, "mon-hiatus": 3, "mon-new": None}


def test_due_on_a_sunday_includes_mondays_titles(catalogue):
    # Tomorrow is Monday; the cutoff is 2024-05-31, so recent ones stay out.
    assert set(due(catalogue, date(2024, 6, 2))) == {
        "mon-old", "sat-and-mon", "mon-hiatus", "mon-new"}


def test_due_on_a_tuesday(catalogue):
    # tue-old's last episode (05-31) is older than 06-04 - 2 days; Wednesday is tomorrow.
    assert set(due(catalogue, date(2024, 6, 4))) == {"tue-old", "wed-old"}


def test_titles_updated_within_two_days_are_not_due(catalogue):
    # A Tuesday: tue-old (05-31 later) and wed-old (05-20 not older than 05-19) both fresh.
    assert due(catalogue, date(2024, 5, 21)) == {}


def test_known_external_ids_per_platform(catalogue):
    assert known_external_ids(catalogue, "KAKAO") == {"kakao-mon"}
    assert len(known_external_ids(catalogue, "NAVER")) == 8


def test_a_webtoon_on_two_platforms_is_due_on_each_by_its_own_schedule(mariadb_url):
    # One webtoon (same title and author), run on Mondays on Naver and on Fridays on Kakao.
    def shared(platform, external_id, days, status="ONGOING"):
        return WebtoonItem(platform=platform, external_id=external_id, title="같은 웹툰",
                           status=status, days_of_week=days,
                           authors=[{"uid": f"{platform}:a", "name": "작가", "role": "BOTH"}])

    def episode(platform, external_id, no, published):
        return EpisodeItem(platform=platform, webtoon_external_id=external_id, episode_no=no,
                           title=f"{no}화", published_at=published)

    conn = connect(mariadb_url)
    writer = CatalogueWriter(conn)
    writer.write([shared("NAVER", "n1", ["MONDAY"]), shared("KAKAO", "k1", ["FRIDAY"])])
    writer.write([episode("NAVER", "n1", 1, "2024-05-27"), episode("NAVER", "n1", 2, "2024-06-03"),
                  episode("KAKAO", "k1", 1, "2024-05-24")])
    with conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM webtoon")
        assert cur.fetchone()[0] == 1
    conn.close()

    # Thursday 2024-06-06: Kakao's Friday title is due (last episode 05-24); Naver's is not
    # (Monday title, not today or tomorrow) even though the webtoon row is Naver's.
    thursday = date(2024, 6, 6)
    assert {t.external_id for t in titles_due_for_update(mariadb_url, "KAKAO", thursday)} == {"k1"}
    assert titles_due_for_update(mariadb_url, "NAVER", thursday) == []
    # Sunday 2024-06-09: Naver's Monday title is due again; Kakao's is not.
    sunday = date(2024, 6, 9)
    assert {t.external_id for t in titles_due_for_update(mariadb_url, "NAVER", sunday)} == {"n1"}
    assert titles_due_for_update(mariadb_url, "KAKAO", sunday) == []
