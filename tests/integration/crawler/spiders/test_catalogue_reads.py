"""The spiders' catalogue reads (new / episodes modes) against a real migrated MariaDB."""

from __future__ import annotations

import pytest

from crawler.spiders.naver import NaverSpider
from shared.stores.mariadb import connect
from tests.unit.crawler.spiders.replies import build_spider

pytestmark = pytest.mark.integration


def _seed(url: str) -> None:
    conn = connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT id FROM platform WHERE name = 'NAVER'")
            (naver,) = cur.fetchone()
            for key, external_id, status, day in (
                ("a" * 40, "758037", "ONGOING", "MONDAY"),
                ("b" * 40, "20853", "COMPLETED", "MONDAY"),
            ):
                cur.execute(
                    "INSERT INTO webtoon (title, normalized_title, external_id, identity_key,"
                    " day_of_week, status, age_rating) VALUES (%s, %s, %s, %s, %s, %s, 'ALL')",
                    (external_id, external_id, external_id, key, day, status),
                )
                webtoon_id = cur.lastrowid
                cur.execute("INSERT INTO webtoon_publish_day VALUES (%s, %s)", (webtoon_id, day))
                cur.execute(
                    "INSERT INTO webtoon_platform (webtoon_id, platform_id, external_id, status,"
                    " publish_days) VALUES (%s, %s, %s, %s, %s)",
                    (webtoon_id, naver, external_id, status, day),
                )
                cur.execute("INSERT INTO webtoon_season (webtoon_id) VALUES (%s)", (webtoon_id,))
                season_id = cur.lastrowid
                for no in (4, 5):
                    cur.execute(
                        "INSERT INTO webtoon_episode (webtoon_id, season_id, episode_no, title,"
                        " pricing_type) VALUES (%s, %s, %s, %s, 'FREE')",
                        (webtoon_id, season_id, no, f"{no}화"),
                    )
                    cur.execute(
                        "INSERT INTO webtoon_episode_link (episode_id, platform_id)"
                        " VALUES (%s, %s)", (cur.lastrowid, naver),
                    )
        conn.commit()
    finally:
        conn.close()


def test_new_and_episodes_modes_read_the_catalogue(mariadb_url):
    _seed(mariadb_url)
    settings = {"TOONPICK_MARIADB_URL": mariadb_url}
    new = build_spider(NaverSpider, settings, mode="new")
    assert new.known_external_ids() == {"758037", "20853"}
    assert not new.wanted("758037") and new.wanted("183559")

    # 2026-11-02 is a Monday: the ongoing Monday title is due, the completed one is not.
    due = build_spider(NaverSpider, settings, mode="episodes", today="2026-11-02")
    assert due.titles_due() == {"758037": 5}
    (entry,) = due.start_entries()
    assert entry["cb_kwargs"] == {"since": 5}
    assert entry["url"].endswith("/api/article/list/info?titleId=758037")
