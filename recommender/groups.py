"""The original's recommend groups (``webtoon_recommend_group`` / ``_item``), filled.

Groups, each a ranked list of webtoons the same for every member:

- ``WEEKLY_BEST``: most read this week: distinct members who viewed an episode in the
  last 7 days, plus twice the members who liked it in those days (a like is rarer and
  says more than a view).
- ``POPULAR_COMPLETED``: completed titles by the number of members engaged with them
  (an interaction that is not DROPPED, or a review of 3.0 or more).
- ``GENRE_<name>``: per genre, the same popularity within the genre.
- ``FOR_YOU``: the serving model's answer for a member with no history yet (its
  cold-start blend). Each member's own "for you" list is per member, in
  ``member_webtoon_recommendation`` and the Redis cache (``recommender.serving``).

Each group is replaced in one transaction (upsert the group, delete its items, insert
the new ones), so readers see the old or the new list. A group with nothing to show
is kept but set inactive; genre groups whose genre has left the catalogue too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from recommender.serving import replace_rows
from shared.stores.mariadb import connect, utc_naive

GROUP_SIZE = 20
GENRE_GROUP_SIZE = 10
GENRE_PREFIX = "GENRE_"


@dataclass(frozen=True)
class Group:
    code: str
    title: str
    description: str
    webtoon_ids: Sequence[int]
    tagline: str | None = None


_POPULARITY = (
    "SELECT w.id, COUNT(DISTINCT e.member_id) AS engaged FROM webtoon w"
    " JOIN (SELECT member_id, webtoon_id FROM member_webtoon_interaction"
    "       WHERE status <> 'DROPPED'"
    "       UNION SELECT member_id, webtoon_id FROM webtoon_review WHERE rating >= 3.0) e"
    "   ON e.webtoon_id = w.id"
)


def weekly_best(conn, now: datetime, size: int = GROUP_SIZE) -> list[int]:
    since = now - timedelta(days=7)
    with conn.cursor() as cur:
        cur.execute(
            "SELECT webtoon_id, SUM(score) AS s FROM ("
            "  SELECT ep.webtoon_id, COUNT(DISTINCT v.member_id) AS score"
            "  FROM webtoon_episode_view_history v JOIN webtoon_episode ep ON ep.id = v.episode_id"
            "  WHERE v.episode_viewed_at >= %s AND v.episode_viewed_at < %s GROUP BY ep.webtoon_id"
            "  UNION ALL"
            "  SELECT webtoon_id, 2 * COUNT(*) FROM member_webtoon_interaction"
            "  WHERE liked AND liked_at >= %s AND liked_at < %s GROUP BY webtoon_id"
            ") t GROUP BY webtoon_id ORDER BY s DESC, webtoon_id LIMIT %s",
            (since, now, since, now, size),
        )
        return [int(row[0]) for row in cur.fetchall()]


def popular_completed(conn, size: int = GROUP_SIZE) -> list[int]:
    with conn.cursor() as cur:
        cur.execute(
            _POPULARITY + " WHERE w.status = 'COMPLETED'"
            " GROUP BY w.id ORDER BY engaged DESC, w.id LIMIT %s", (size,))
        return [int(row[0]) for row in cur.fetchall()]


def by_genre(conn, size: int = GENRE_GROUP_SIZE) -> dict[str, list[int]]:
    """Genre name -> its most engaged webtoons (window function: one query for all)."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT name, id FROM ("
            "  SELECT g.name, p.id, ROW_NUMBER() OVER"
            "    (PARTITION BY g.id ORDER BY p.engaged DESC, p.id) AS pos"
            f"  FROM ({_POPULARITY} GROUP BY w.id) p"
            "  JOIN webtoon_genre wg ON wg.webtoon_id = p.id JOIN genre g ON g.id = wg.genre_id"
            ") ranked WHERE pos <= %s ORDER BY name, pos",
            (size,),
        )
        groups: dict[str, list[int]] = {}
        for name, webtoon_id in cur.fetchall():
            groups.setdefault(name, []).append(int(webtoon_id))
        return groups


def build_groups(mariadb_url: str, for_you: Sequence[int],
                 now: datetime | None = None) -> list[Group]:
    now = utc_naive(now or datetime.now(UTC))
    conn = connect(mariadb_url)
    try:
        groups = [
            Group("WEEKLY_BEST", "이번 주 베스트", "최근 7일 동안 가장 많이 본 웹툰",
                  weekly_best(conn, now)),
            Group("POPULAR_COMPLETED", "인기 완결작", "완결된 작품 중 가장 많은 독자가 본 웹툰",
                  popular_completed(conn)),
            Group("FOR_YOU", "당신을 위한 추천", "취향을 아직 모를 때의 추천 (회원별 추천은 따로)",
                  list(for_you)[:GROUP_SIZE]),
        ]
        for name, ids in sorted(by_genre(conn).items()):
            groups.append(Group(f"{GENRE_PREFIX}{name}"[:64], f"{name} 인기 웹툰",
                                f"{name} 장르에서 가장 많은 독자가 본 웹툰", ids))
        return groups
    finally:
        conn.close()


def write_groups(mariadb_url: str, groups: Sequence[Group]) -> dict[str, int]:
    """Replace each group's items; deactivate genre groups not in ``groups``.
    Returns items written per group code."""
    conn = connect(mariadb_url)
    written: dict[str, int] = {}
    try:
        for group in groups:
            with conn.cursor() as cur:
                cur.execute(
                    "INSERT INTO webtoon_recommend_group (code, title, description, is_active)"
                    " VALUES (%s, %s, %s, %s) ON DUPLICATE KEY UPDATE title = VALUES(title),"
                    " description = VALUES(description), is_active = VALUES(is_active)",
                    (group.code, group.title, group.description, bool(group.webtoon_ids)),
                )
                cur.execute("SELECT id FROM webtoon_recommend_group WHERE code = %s",
                            (group.code,))
                group_id = cur.fetchone()[0]
                replace_rows(cur, "webtoon_recommend_item", "webtoon_recommend_group_id",
                             [group_id],
                             ("webtoon_recommend_group_id", "webtoon_id", "`rank`", "tagline"),
                             [(group_id, int(w), rank, group.tagline)
                              for rank, w in enumerate(group.webtoon_ids, 1)])
            conn.commit()
            written[group.code] = len(group.webtoon_ids)
        codes = [g.code for g in groups if g.code.startswith(GENRE_PREFIX)]
        with conn.cursor() as cur:
            cur.execute(
                "UPDATE webtoon_recommend_group SET is_active = FALSE WHERE code LIKE %s"
                + (" AND code NOT IN (" + ",".join(["%s"] * len(codes)) + ")" if codes else ""),
                [GENRE_PREFIX.replace("_", "\\_") + "%", *codes],
            )
        conn.commit()
    except Exception:
        conn.rollback()
        raise
    finally:
        conn.close()
    return written


def read_group(mariadb_url: str, code: str) -> tuple[bool, list[int]] | None:
    """(is_active, webtoon ids by rank) of a group, or None."""
    conn = connect(mariadb_url)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT id, is_active FROM webtoon_recommend_group WHERE code = %s",
                        (code,))
            row = cur.fetchone()
            if row is None:
                return None
            cur.execute("SELECT webtoon_id FROM webtoon_recommend_item"
                        " WHERE webtoon_recommend_group_id = %s ORDER BY `rank`", (row[0],))
            return bool(row[1]), [int(r[0]) for r in cur.fetchall()]
    finally:
        conn.close()
