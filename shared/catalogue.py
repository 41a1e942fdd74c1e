"""Reads of the MariaDB catalogue shared by the spiders, jobs and the demo.

Also the catalogue's identity rule, so every writer and reader agrees on it:
the same normalised title and the same set of author names is the same webtoon,
whichever platform it came from (the original system's dedup rule).
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta

from shared.domain import DayOfWeek, Platform, WebtoonStatus
from shared.stores.mariadb import connect

# A title not updated for this long is due again (the original's rule).
UPDATE_AGE_DAYS = 2
DUE_STATUSES = (WebtoonStatus.ONGOING.value, WebtoonStatus.HIATUS.value)


def normalize_title(title: str) -> str:
    """The original's ``normalized_title``: the title without any whitespace (NFC)."""
    return "".join(unicodedata.normalize("NFC", title).split())


def identity_key(title: str, author_names: Iterable[str]) -> str:
    """sha1 of the normalised title and the sorted, de-duplicated normalised author names."""
    names = sorted({normalize_title(n).casefold() for n in author_names if n and n.strip()})
    material = normalize_title(title).casefold() + "\x1f" + "\x1e".join(names)
    return hashlib.sha1(material.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class DueTitle:
    external_id: str
    last_episode_no: int | None
    webtoon_id: int


def _platform(platform: Platform | str) -> str:
    return Platform(platform).value


def known_external_ids(mariadb_url: str, platform: Platform | str) -> set[str]:
    """Every title id of ``platform`` the catalogue already links."""
    conn = connect(mariadb_url)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT wp.external_id FROM webtoon_platform wp "
                "JOIN platform p ON p.id = wp.platform_id WHERE p.name = %s",
                (_platform(platform),),
            )
            return {row[0] for row in cur.fetchall()}
    finally:
        conn.close()


def titles_due_for_update(
    mariadb_url: str, platform: Platform | str, today: date
) -> list[DueTitle]:
    """Titles of ``platform`` due for an episode update on ``today``.

    Due: status ONGOING or HIATUS, published today or tomorrow (any of its
    publish days), and ``last_update_date`` older than today - 2 days, or unknown.
    The rule reads the platform link's own status, days and latest episode date:
    a webtoon on two platforms can run on different schedules on each.
    """
    days = (
        DayOfWeek.from_weekday(today.weekday()).value,
        DayOfWeek.from_weekday(today.weekday() + 1).value,
    )
    cutoff = today - timedelta(days=UPDATE_AGE_DAYS)
    conn = connect(mariadb_url)
    try:
        with conn.cursor() as cur:
            cur.execute(
                """
                SELECT wp.external_id, w.id,
                       (SELECT MAX(e.episode_no)
                          FROM webtoon_episode e
                          JOIN webtoon_episode_link l ON l.episode_id = e.id
                         WHERE e.webtoon_id = w.id AND l.platform_id = wp.platform_id)
                FROM webtoon_platform wp
                JOIN platform p ON p.id = wp.platform_id
                JOIN webtoon w ON w.id = wp.webtoon_id
                WHERE p.name = %s
                  AND wp.status IN (%s, %s)
                  AND (wp.last_update_date IS NULL OR wp.last_update_date < %s)
                  AND (FIND_IN_SET(%s, wp.publish_days) OR FIND_IN_SET(%s, wp.publish_days))
                ORDER BY wp.external_id
                """,
                (_platform(platform), *DUE_STATUSES, cutoff, *days),
            )
            return [
                DueTitle(external_id=ext, webtoon_id=wid,
                         last_episode_no=None if last is None else int(last))
                for ext, wid, last in cur.fetchall()
            ]
    finally:
        conn.close()


def catalogue_counts(mariadb_url: str) -> dict:
    """Row counts for summaries and tests.

    Keys: webtoons, authors, genres, tags, seasons, episodes, episode_links,
    platform_links ({platform: n}), episode_links_by_platform ({platform: n}).
    """
    conn = connect(mariadb_url)
    try:
        with conn.cursor() as cur:
            counts: dict = {}
            for key, table in (
                ("webtoons", "webtoon"), ("authors", "author"), ("genres", "genre"),
                ("tags", "tag"), ("seasons", "webtoon_season"),
                ("episodes", "webtoon_episode"), ("episode_links", "webtoon_episode_link"),
            ):
                cur.execute(f"SELECT COUNT(*) FROM {table}")
                counts[key] = cur.fetchone()[0]
            cur.execute(
                "SELECT p.name, COUNT(wp.id) FROM platform p "
                "LEFT JOIN webtoon_platform wp ON wp.platform_id = p.id GROUP BY p.name"
            )
            counts["platform_links"] = {name: n for name, n in cur.fetchall() if n}
            cur.execute(
                "SELECT p.name, COUNT(l.id) FROM platform p "
                "LEFT JOIN webtoon_episode_link l ON l.platform_id = p.id GROUP BY p.name"
            )
            counts["episode_links_by_platform"] = {name: n for name, n in cur.fetchall() if n}
            return counts
    finally:
        conn.close()
