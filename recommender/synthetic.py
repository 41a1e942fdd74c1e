"""Seeded synthetic members and activity, for the demo, tests and benchmarks.

Nothing writes members' activity in this repository yet, so this module makes activity
that looks like a webtoon platform's: webtoon popularity follows a power law (a few hits
hold most of the readers), members' activity counts are long-tailed (most read a few
titles, some read hundreds), and every member has 1-3 favourite genres that bias what
they read, like, finish, drop and rate. Tastes are finer than a genre, as real readers'
are (they follow authors, sub-genres, art styles): every webtoon has a latent *style*
within its genre, and every member prefers 1-4 styles within their favourite genres, so
titles of a style are co-read. That is the signal a collaborative model finds beyond
"popular in my genres"; popularity still dominates (the hits are read by most members).

- ``synthetic_activity`` / ``synthetic_matrix``: an in-memory confidence matrix (no
  database), vectorised for benchmark sizes (5M interactions in seconds).
- ``seed_catalogue``: a small catalogue in MariaDB when no crawl ran.
- ``seed_members``: members and their activity over the catalogue in MariaDB, in the
  tables the platform's API server writes (interactions, episode views, reviews).
- ``add_interaction``: one member "just did X", for tests and the demo.

Everything is a function of the seed: the same seed gives the same rows, and seeding a
seed again skips what is already there (members are keyed by a user_name derived from the
seed and their index, webtoons by their identity key), so it never duplicates.
Timestamps are relative to a ``now`` parameter.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import pymysql.cursors
import scipy.sparse as sp

from recommender.activity import (
    ALL_INTERACTION_STATUSES,
    INTERACTION_STATUSES,
    ConfidenceWeights,
    Connection,
    connection,
)
from shared.catalogue import identity_key, normalize_title
from shared.domain import AgeRating, AuthorRole, DayOfWeek, GenreType, Platform, WebtoonStatus
from shared.stores.mariadb import utc_naive

# Status codes as activity.py packs them: 0 NONE, then INTERACTION_STATUSES from 1.
NONE, WATCHING, FINISHED, DROPPED, PLANNED = (
    0, *(INTERACTION_STATUSES.index(s) + 1 for s in ("WATCHING", "FINISHED", "DROPPED",
                                                     "PLANNED")))
_STATUS_NAMES = np.array(ALL_INTERACTION_STATUSES, dtype=object)

GENRES = ("판타지", "로맨스", "액션", "드라마", "일상", "개그", "스릴러", "무협", "스포츠", "감성",
          "학원", "공포")
# Tags lean on a genre (three favourite tags per genre), as real tagging does.
TAGS = ("명작", "먼치킨", "회귀", "힐링", "복수", "성장물", "사이다", "로판", "학원물", "짝사랑",
        "헌터", "빙의", "육아", "오피스", "게임", "요리", "아이돌", "좀비", "추리", "환생")
_TITLE_WORDS = (
    ("달빛", "검은", "푸른", "마지막", "이상한", "나의", "전지적", "악녀의", "귀환한", "천재",
     "은밀한", "잃어버린", "붉은", "하얀", "작은", "거대한", "조용한", "빛나는", "위험한",
     "완벽한"),
    ("검객", "기사", "마법사", "정원", "학교", "연애", "탑", "던전", "왕자", "계약", "신부",
     "황녀", "헌터", "요리사", "탐정", "소년", "소녀", "도시", "전쟁", "일기", "편지", "약속"),
)
_SURNAMES = ("김", "이", "박", "최", "정", "강", "조", "윤", "장", "임", "한", "오", "서", "신")
_GIVEN = ("하늘", "민준", "서연", "지우", "도윤", "하은", "시우", "수아", "예준", "지호", "유나",
          "건우", "채원", "현우", "소율", "다은")
_SEED_PLATFORMS = (Platform.NAVER, Platform.KAKAO, Platform.KAKAOPAGE)
# A fixed calendar for the catalogue, so its rows do not depend on the day it is seeded.
CATALOGUE_TODAY = date(2025, 1, 1)
# A member prefers 1..MAX_STYLES styles within their favourite genres.
MAX_STYLES = 4
# A genre gets at most one style per this many webtoons, so no style is a single title.
WEBTOONS_PER_STYLE = 3
# Members (and their activity) inserted per transaction.
MEMBER_CHUNK = 250
WEBTOON_CHUNK = 500


# --- signals shared by the in-memory matrix and the MariaDB seeding --------------------
@dataclass
class _Signals:
    status: np.ndarray  # int codes (NONE..PLANNED)
    episodes: np.ndarray  # episodes the member wants to read (before capping)
    liked: np.ndarray
    bookmarked: np.ndarray
    reviewed: np.ndarray
    rating: np.ndarray  # 1.0-5.0 in 0.5 steps (meaningful where reviewed)


def _draw_signals(rng: np.random.Generator, in_taste: np.ndarray) -> _Signals:
    """Per interaction, what the member did; taste shifts every signal the right way."""
    n = len(in_taste)
    dropped = rng.random(n) < np.where(in_taste, 0.03, 0.15)
    r = rng.random(n)
    finish = np.where(in_taste, 0.35, 0.12)
    status = np.where(r < 0.08, NONE, np.where(r < 0.18, PLANNED,
                      np.where(r < 0.18 + finish, FINISHED, WATCHING)))
    status[dropped] = DROPPED
    episodes = rng.geometric(np.where(in_taste, 0.08, 0.25))
    episodes[status == PLANNED] = 0
    episodes[dropped] = 1 + (rng.random(int(dropped.sum())) < 0.5)
    liked = (rng.random(n) < np.where(in_taste, 0.45, 0.08)) & ~dropped
    bookmarked = (rng.random(n) < np.where(in_taste, 0.25, 0.05)) & ~dropped
    reviewed = rng.random(n) < 0.15
    mood = 3.0 + 1.2 * in_taste - 1.5 * dropped + 0.6 * liked + rng.normal(0.0, 0.8, n)
    rating = np.clip(np.round(mood * 2.0) / 2.0, 1.0, 5.0)
    return _Signals(status.astype(np.int64), episodes.astype(np.int64), liked, bookmarked,
                    reviewed, rating)


def _signal_confidences(signals: _Signals, episodes: np.ndarray,
                        weights: ConfidenceWeights) -> np.ndarray:
    code = signals.liked + 2 * signals.bookmarked + 4 * signals.status
    values = weights.status_table()[code] + weights.view_values(episodes)
    values += np.where(signals.reviewed, weights.rating_values(signals.rating), 0.0).astype(
        np.float32)
    values[signals.status == DROPPED] = weights.dropped
    # An interaction that exists is never "unknown": an exact zero (possible only with
    # custom weights) becomes the weakest positive evidence.
    values[values == 0] = np.float32(1e-3)
    return values.astype(np.float32)


# --- in-memory matrix ------------------------------------------------------------------
@dataclass(frozen=True)
class SyntheticActivity:
    """A synthetic confidence matrix and the latent structure it was drawn from."""

    user_items: sp.csr_matrix  # members x webtoons, float32 confidences, canonical CSR
    webtoon_genres: np.ndarray  # (n_webtoons,) genre index of each webtoon
    member_genres: np.ndarray  # (n_members, 3) favourite genres, -1 padded
    popularity: np.ndarray  # (n_webtoons,) sampling probability before tastes
    # (n_webtoons,) latent style of each webtoon, numbered across genres (genre g owns a
    # contiguous range), and (n_members, MAX_STYLES) each member's favourites, -1 padded.
    webtoon_styles: np.ndarray
    member_styles: np.ndarray


def _positive_int(value: Any, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _share(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ValueError(f"{name} must be a number within [0, 1], got {value!r}")
    return float(value)


def _zipf(rng: np.random.Generator, n: int, exponent: float) -> np.ndarray:
    """Power-law weights over a random order of ``n`` items (rank r gets r^-exponent)."""
    ranks = rng.permutation(n)
    weights = (ranks + 1.0) ** -exponent
    return weights / weights.sum()


def _alias_table(weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Walker/Vose alias table: draw slot i uniformly, keep it with prob[i], else alias[i]."""
    n = len(weights)
    scaled = (np.asarray(weights, dtype=np.float64) * (n / weights.sum())).tolist()
    prob, alias = [1.0] * n, list(range(n))
    small = [i for i, s in enumerate(scaled) if s < 1.0]
    large = [i for i, s in enumerate(scaled) if s >= 1.0]
    while small and large:
        less, more = small.pop(), large.pop()
        prob[less], alias[less] = scaled[less], more
        scaled[more] -= 1.0 - scaled[less]
        (small if scaled[more] < 1.0 else large).append(more)
    return np.array(prob), np.array(alias, dtype=np.int64)


def _allocate(rng: np.random.Generator, total: int, weights: np.ndarray, cap: int) -> np.ndarray:
    """``total`` draws over members by ``weights``, none above ``cap`` (surplus redrawn)."""
    counts = rng.multinomial(total, weights / weights.sum())
    while (over := counts > cap).any():
        surplus = int((counts[over] - cap).sum())
        counts[over] = cap
        room = np.where(counts < cap, weights, 0.0)
        counts += rng.multinomial(surplus, room / room.sum())
    return counts


@dataclass(frozen=True)
class _GroupedAlias:
    """Alias tables per group (genre or style) over its webtoons, laid out in ``order``.

    Group g owns slots ``start[g]:start[g] + size[g]`` of ``order``; a draw in group g
    picks a slot there uniformly, keeps it with ``prob``, else takes ``alias``.
    """

    order: np.ndarray
    size: np.ndarray
    start: np.ndarray
    prob: np.ndarray
    alias: np.ndarray

    @classmethod
    def build(cls, groups: np.ndarray, n_groups: int, weights: np.ndarray) -> _GroupedAlias:
        order = np.argsort(groups, kind="stable")
        size = np.bincount(groups, minlength=n_groups)
        start = np.concatenate(([0], np.cumsum(size)[:-1]))
        prob = np.empty(len(groups))
        alias = np.empty(len(groups), dtype=np.int64)
        for g in np.flatnonzero(size):
            part = slice(start[g], start[g] + size[g])
            prob[part], alias[part] = _alias_table(weights[order[part]])
            alias[part] += start[g]
        return cls(order, size, start, prob, alias)

    def draw(self, rng: np.random.Generator, groups: np.ndarray) -> np.ndarray:
        slots = self.start[groups] + (rng.random(len(groups)) * self.size[groups]).astype(
            np.int64)
        return self.order[np.where(rng.random(len(groups)) < self.prob[slots], slots,
                                   self.alias[slots])]


def _styles_per_genre(genre_size: np.ndarray, styles_per_genre: int) -> np.ndarray:
    return np.clip(genre_size // WEBTOONS_PER_STYLE, 1, styles_per_genre)


def synthetic_activity(
    n_members: int,
    n_webtoons: int,
    n_interactions: int,
    seed: int,
    *,
    n_genres: int = 12,
    popularity_exponent: float = 1.0,
    activity_sigma: float = 1.0,
    taste_share: float = 0.8,
    style_share: float = 0.6,
    styles_per_genre: int = 10,
    cold_start_share: float = 0.05,
    weights: ConfidenceWeights | None = None,
) -> SyntheticActivity:
    """Exactly ``n_interactions`` distinct (member, webtoon) confidences, drawn from a seed.

    Webtoon popularity is Zipf-like (``popularity_exponent``); members' activity counts
    are lognormal (``activity_sigma``), ``cold_start_share`` of members have none, and
    no member holds more than half the catalogue. Each genre is split into up to
    ``styles_per_genre`` latent styles (at least ``WEBTOONS_PER_STYLE`` webtoons each on
    average), each webtoon in one. Each member has 1-3 favourite genres and 1-4
    favourite styles within them. A share ``taste_share`` of each member's titles come
    from their favourite genres, of which a share ``style_share`` from their favourite
    styles (popular ones first within a genre or style), the rest from the global
    popularity: a webtoon's chance is its popularity times a genre boost times a style
    boost. Values follow ``weights`` (``ConfidenceWeights``).
    """
    n_members = _positive_int(n_members, "n_members")
    n_webtoons = _positive_int(n_webtoons, "n_webtoons")
    n_interactions = _positive_int(n_interactions, "n_interactions", 0)
    n_genres = _positive_int(n_genres, "n_genres")
    styles_per_genre = _positive_int(styles_per_genre, "styles_per_genre")
    taste_share = _share(taste_share, "taste_share")
    style_share = _share(style_share, "style_share")
    cold_start_share = _share(cold_start_share, "cold_start_share")
    if not popularity_exponent >= 0 or not activity_sigma >= 0:
        raise ValueError("popularity_exponent and activity_sigma must be >= 0")
    weights = weights or ConfidenceWeights()
    rng = np.random.default_rng(seed)

    genre_share = 1.0 / (np.arange(n_genres) + 1.0) ** 0.6
    webtoon_genres = rng.choice(n_genres, n_webtoons, p=genre_share / genre_share.sum())
    popularity = _zipf(rng, n_webtoons, popularity_exponent)

    # Walker alias tables (O(1) per draw; a searchsorted per draw was the bottleneck):
    # one over the catalogue, one per genre and one per style.
    global_prob, global_alias = _alias_table(popularity)
    by_genre = _GroupedAlias.build(webtoon_genres, n_genres, popularity)
    genre_size = by_genre.size
    genre_styles = _styles_per_genre(genre_size, styles_per_genre)
    style_start = np.concatenate(([0], np.cumsum(genre_styles)[:-1]))
    # Dealt round-robin within each genre (webtoon indices are in no particular order),
    # so every style holds a webtoon.
    sorted_genres = webtoon_genres[by_genre.order]
    webtoon_styles = np.empty(n_webtoons, dtype=np.int64)
    webtoon_styles[by_genre.order] = style_start[sorted_genres] + (
        np.arange(n_webtoons) - by_genre.start[sorted_genres]) % genre_styles[sorted_genres]
    by_style = _GroupedAlias.build(webtoon_styles, int(genre_styles.sum()), popularity)
    genre_mass = np.bincount(webtoon_genres, weights=popularity, minlength=n_genres)

    present = np.flatnonzero(genre_mass > 0)
    n_tastes = rng.integers(1, 4, n_members)
    member_genres = rng.choice(present, (n_members, 3), p=genre_mass[present] / genre_mass[
        present].sum())
    member_genres[np.arange(3) >= n_tastes[:, None]] = -1
    # Favourite styles, each in one of the member's genres (a repeat just means fewer
    # distinct favourites).
    n_styles = rng.integers(1, MAX_STYLES + 1, n_members)
    style_genres = member_genres[np.arange(n_members)[:, None],
                                 (rng.random((n_members, MAX_STYLES)) * n_tastes[:, None]
                                  ).astype(np.int64)]
    member_styles = style_start[style_genres] + (
        rng.random((n_members, MAX_STYLES)) * genre_styles[style_genres]).astype(np.int64)
    member_styles[np.arange(MAX_STYLES) >= n_styles[:, None]] = -1

    cap = max(1, n_webtoons // 2)
    activity = rng.lognormal(0.0, activity_sigma, n_members)
    activity[rng.random(n_members) < cold_start_share] = 0.0
    if n_interactions > cap * int((activity > 0).sum()):
        raise ValueError(
            f"{n_interactions} interactions do not fit {n_members} members x {n_webtoons} "
            f"webtoons (at most {cap} per member, {int((activity > 0).sum())} active members)")
    deficit = (_allocate(rng, n_interactions, activity, cap) if n_interactions
               else np.zeros(n_members, dtype=np.int64))

    have = np.empty(0, dtype=np.int64)
    for round_no in range(100):
        if not deficit.any():
            break
        members = np.repeat(np.arange(n_members, dtype=np.int64), deficit)
        if round_no < 8:
            slots = rng.integers(0, n_webtoons, len(members))
            items = np.where(rng.random(len(members)) < global_prob[slots], slots,
                             global_alias[slots])
            kind = rng.random(len(members))
            taste = kind < taste_share * (1.0 - style_share)
            picks = (rng.random(int(taste.sum())) * n_tastes[members[taste]]).astype(np.int64)
            items[taste] = by_genre.draw(rng, member_genres[members[taste], picks])
            styled = (kind >= taste_share * (1.0 - style_share)) & (kind < taste_share)
            picks = (rng.random(int(styled.sum())) * n_styles[members[styled]]).astype(
                np.int64)
            items[styled] = by_style.draw(rng, member_styles[members[styled], picks])
        else:
            # Heavy members whose favourites are exhausted: fill uniformly, which converges.
            items = rng.integers(0, n_webtoons, len(members))
        keys = members * n_webtoons + np.minimum(items, n_webtoons - 1)
        keys.sort()
        keys = keys[np.r_[True, keys[1:] != keys[:-1]]]
        if len(have):
            pos = np.clip(np.searchsorted(have, keys), 0, len(have) - 1)
            keys = keys[have[pos] != keys]
        deficit -= np.bincount(keys // n_webtoons, minlength=n_members)
        # Two sorted runs: the stable sort (timsort) merges them in linear time.
        have = np.concatenate((have, keys))
        have.sort(kind="stable")
    else:  # pragma: no cover - the uniform rounds always converge at these densities
        raise RuntimeError("could not place every interaction")

    members, items = have // n_webtoons, have % n_webtoons
    in_taste = (member_genres[members] == webtoon_genres[items][:, None]).any(axis=1)
    signals = _draw_signals(rng, in_taste)
    values = _signal_confidences(signals, signals.episodes, weights)
    indptr = np.concatenate(([0], np.cumsum(np.bincount(members, minlength=n_members))))
    user_items = sp.csr_matrix((values, items.astype(np.int32), indptr),
                               shape=(n_members, n_webtoons), dtype=np.float32)
    return SyntheticActivity(user_items, webtoon_genres, member_genres, popularity,
                             webtoon_styles, member_styles)


def synthetic_matrix(
    n_members: int, n_webtoons: int, n_interactions: int, seed: int, **options: Any
) -> sp.csr_matrix:
    """The confidence matrix of ``synthetic_activity`` alone (same options)."""
    return synthetic_activity(n_members, n_webtoons, n_interactions, seed, **options).user_items


# --- MariaDB: catalogue ----------------------------------------------------------------
def _ids_by(cur, table: str, column: str, values: Sequence[Any]) -> dict[Any, int]:
    found: dict[Any, int] = {}
    for start in range(0, len(values), 1000):
        chunk = list(values[start:start + 1000])
        marks = ", ".join(["%s"] * len(chunk))
        cur.execute(f"SELECT {column}, id FROM {table} WHERE {column} IN ({marks})", chunk)
        found.update(cur.fetchall())
    return found


def seed_catalogue(
    conn_or_url: Connection | str,
    n_webtoons: int,
    seed: int,
    *,
    min_episodes: int = 3,
    max_episodes: int = 12,
) -> list[int]:
    """Insert ``n_webtoons`` synthetic webtoons; returns their ids in index order.

    Each has one platform link, one season, ``min_episodes``-``max_episodes`` episodes,
    1-2 genres, 0-3 tags leaning on its genre and 1-2 authors from a pool where a few
    authors write many titles (so genres, tags and authors all carry content signal).
    Seeding a seed again inserts nothing new and returns the same ids.
    """
    n_webtoons = _positive_int(n_webtoons, "n_webtoons")
    min_episodes = _positive_int(min_episodes, "min_episodes", 0)
    max_episodes = _positive_int(max_episodes, "max_episodes", min_episodes)
    rng = np.random.default_rng([seed, 0xCA7])
    n_authors = max(2, n_webtoons // 2)
    authors = [
        {"uid": f"synthetic:{seed}:{k}",
         "name": f"{_SURNAMES[rng.integers(len(_SURNAMES))]}{_GIVEN[rng.integers(len(_GIVEN))]}"
                 f" {k + 1}",
         "role": AuthorRole.BOTH.value}
        for k in range(n_authors)
    ]
    author_weights = _zipf(rng, n_authors, 0.8)
    genre_tags = {g: rng.choice(len(TAGS), 3, replace=False) for g in range(len(GENRES))}
    genre_share = 1.0 / (np.arange(len(GENRES)) + 1.0) ** 0.6
    genre_share /= genre_share.sum()
    days = list(DayOfWeek)

    webtoons, seen_titles = [], set()
    for i in range(n_webtoons):
        title = f"{_TITLE_WORDS[0][rng.integers(20)]} {_TITLE_WORDS[1][rng.integers(22)]}"
        if title in seen_titles:
            title = f"{title} {i + 1}"
        seen_titles.add(title)
        n_auth = 1 + int(rng.random() < 0.4)
        picked = rng.choice(n_authors, n_auth, replace=False, p=author_weights)
        genres = [int(rng.choice(len(GENRES), p=genre_share))]
        if rng.random() < 0.25:
            genres.append(int(rng.integers(len(GENRES))))
        own = genre_tags[genres[0]]
        tags = {int(own[t]) if rng.random() < 0.75 else int(rng.integers(len(TAGS)))
                for t in rng.integers(0, 3, rng.integers(0, 4))}
        r = rng.random()
        status = (WebtoonStatus.ONGOING if r < 0.6 else
                  WebtoonStatus.COMPLETED if r < 0.9 else WebtoonStatus.HIATUS).value
        platform = _SEED_PLATFORMS[rng.integers(len(_SEED_PLATFORMS))]
        started = CATALOGUE_TODAY - timedelta(days=int(rng.integers(30, 2000)))
        webtoons.append({
            "title": title,
            "external_id": f"syn{seed}-{i:06d}",
            "authors": [authors[int(a)] for a in picked],
            "genres": sorted({GENRES[g] for g in genres}),
            "tags": sorted(TAGS[t] for t in tags),
            "status": status,
            "age_rating": list(AgeRating)[int(rng.choice(4, p=[0.5, 0.25, 0.2, 0.05]))].value,
            "day": None if status == "COMPLETED" else days[int(rng.integers(7))].value,
            "platform": platform.value,
            "started": started,
            "episodes": int(rng.integers(min_episodes, max_episodes + 1)),
        })

    ids: list[int] = []
    with connection(conn_or_url) as conn, conn.cursor(pymysql.cursors.Cursor) as cur:
        cur.executemany("INSERT IGNORE INTO genre (name, type) VALUES (%s, %s)",
                        [(g, GenreType.MAIN.value) for g in GENRES])
        cur.executemany("INSERT IGNORE INTO tag (name) VALUES (%s)", [(t,) for t in TAGS])
        cur.executemany("INSERT IGNORE INTO author (uid, name, role) VALUES (%s, %s, %s)",
                        [(a["uid"], a["name"], a["role"]) for a in authors])
        conn.commit()
        genre_ids = _ids_by(cur, "genre", "name", GENRES)
        tag_ids = _ids_by(cur, "tag", "name", TAGS)
        author_ids = _ids_by(cur, "author", "uid", [a["uid"] for a in authors])
        platform_ids = _ids_by(cur, "platform", "name", [p.value for p in _SEED_PLATFORMS])
        for start in range(0, n_webtoons, WEBTOON_CHUNK):
            chunk = webtoons[start:start + WEBTOON_CHUNK]
            ids.extend(_insert_webtoons(cur, chunk, genre_ids, tag_ids, author_ids,
                                        platform_ids))
            conn.commit()
    return ids


def _insert_webtoons(cur, chunk: list[dict], genre_ids, tag_ids, author_ids,
                     platform_ids) -> list[int]:
    for w in chunk:
        w["identity_key"] = identity_key(w["title"], [a["name"] for a in w["authors"]])
    cur.executemany(
        "INSERT IGNORE INTO webtoon (title, normalized_title, external_id, identity_key, "
        "day_of_week, status, age_rating, summary, publish_start_date, last_update_date) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        [(w["title"], normalize_title(w["title"]), w["external_id"], w["identity_key"],
          w["day"], w["status"], w["age_rating"], f"{w['title']}: {', '.join(w['genres'])}",
          w["started"], CATALOGUE_TODAY) for w in chunk])
    by_key = _ids_by(cur, "webtoon", "identity_key", [w["identity_key"] for w in chunk])
    wids = [by_key[w["identity_key"]] for w in chunk]
    pairs = list(zip(wids, chunk, strict=True))
    cur.executemany(
        "INSERT IGNORE INTO webtoon_platform (webtoon_id, platform_id, external_id, link, "
        "status, publish_days, last_update_date) VALUES (%s, %s, %s, %s, %s, %s, %s)",
        [(wid, platform_ids[w["platform"]], w["external_id"],
          f"https://{w['platform'].lower()}.example.invalid/webtoon/{w['external_id']}",
          w["status"], w["day"] or "", CATALOGUE_TODAY) for wid, w in pairs])
    cur.executemany("INSERT IGNORE INTO webtoon_publish_day (webtoon_id, day_of_week) "
                    "VALUES (%s, %s)", [(wid, w["day"]) for wid, w in pairs if w["day"]])
    cur.executemany("INSERT IGNORE INTO webtoon_genre (webtoon_id, genre_id) VALUES (%s, %s)",
                    [(wid, genre_ids[g]) for wid, w in pairs for g in w["genres"]])
    tags = [(wid, tag_ids[t]) for wid, w in pairs for t in w["tags"]]
    if tags:
        cur.executemany("INSERT IGNORE INTO webtoon_tag (webtoon_id, tag_id) VALUES (%s, %s)",
                        tags)
    cur.executemany("INSERT IGNORE INTO webtoon_author (webtoon_id, author_id, role) "
                    "VALUES (%s, %s, %s)",
                    [(wid, author_ids[a["uid"]], a["role"]) for wid, w in pairs
                     for a in w["authors"]])
    cur.executemany("INSERT IGNORE INTO webtoon_season (webtoon_id, season_no) VALUES (%s, 1)",
                    [(wid,) for wid in wids])
    season_of = _ids_by(cur, "webtoon_season", "webtoon_id", wids)
    episodes = [(wid, season_of[wid], n, f"{n}화", "FREE", w["started"] + timedelta(weeks=n - 1))
                for wid, w in pairs for n in range(1, w["episodes"] + 1)]
    if episodes:
        cur.executemany("INSERT IGNORE INTO webtoon_episode (webtoon_id, season_id, episode_no, "
                        "title, pricing_type, published_at) VALUES (%s, %s, %s, %s, %s, %s)",
                        episodes)
    cur.executemany("INSERT IGNORE INTO webtoon_statistics (webtoon_id, episode_count) "
                    "VALUES (%s, %s)", [(wid, w["episodes"]) for wid, w in pairs])
    return wids


# --- MariaDB: members and their activity -----------------------------------------------
@dataclass
class SeedSummary:
    """What ``seed_members`` did; ``member_ids`` are every member of the seed, by index."""

    member_ids: list[int] = field(default_factory=list)
    inserted: int = 0
    skipped: int = 0
    interactions: int = 0
    views: int = 0
    reviews: int = 0
    likes: int = 0
    bookmarks: int = 0
    dropped: int = 0
    cold_start: int = 0  # inserted members with fewer than 3 interactions
    seconds: float = 0.0


@dataclass
class _Catalogue:
    webtoon_ids: np.ndarray
    genres: np.ndarray  # genre id of each webtoon's first genre, -1 if none
    styles: np.ndarray  # latent style (numbered across genres), -1 where no genre
    popularity: np.ndarray
    episodes: list[np.ndarray]  # per webtoon, (episode id, episode_no) rows in reading order


def _mix(seed: int, salt: int, values: np.ndarray) -> np.ndarray:
    """A deterministic 64-bit hash of each value (splitmix64), keyed by seed and salt."""
    x = (np.asarray(values, dtype=np.int64).astype(np.uint64)
         + np.uint64((seed * 0x9E3779B97F4A7C15 + salt) & 0xFFFFFFFFFFFFFFFF))
    for shift, factor in ((30, 0xBF58476D1CE4E5B9), (27, 0x94D049BB133111EB)):
        x = (x ^ (x >> np.uint64(shift))) * np.uint64(factor)
    return x ^ (x >> np.uint64(31))


def _catalogue_styles(seed: int, webtoon_ids: np.ndarray, genres: np.ndarray,
                      tags: np.ndarray, authors: np.ndarray,
                      styles_per_genre: int) -> np.ndarray:
    """Each webtoon's latent style within its genre, from what the catalogue shows.

    A style is mostly visible: titles sharing a tag (or, untagged, an author) fall in
    the same pair of neighbouring styles of their genre, so the content model sees part
    of the signal; which of the two is hidden (a hash of the webtoon), as is the style
    of a title with neither. ``tags`` / ``authors`` hold -1 where a webtoon has none.
    """
    styles = np.full(len(webtoon_ids), -1, dtype=np.int64)
    known = genres >= 0
    if not known.any():
        return styles
    genre_values, genre_index = np.unique(genres[known], return_inverse=True)
    per_genre = _styles_per_genre(np.bincount(genre_index), styles_per_genre)
    first = np.concatenate(([0], np.cumsum(per_genre)[:-1]))
    k = per_genre[genre_index].astype(np.uint64)
    hidden = _mix(seed, 0x41D, webtoon_ids[known])
    key = np.where(tags[known] >= 0, 2 * tags[known], 2 * authors[known] + 1)
    visible = _mix(seed, 0x57E, key * 1_000_003 + genre_values[genre_index])
    offset = np.where(key >= 0, visible + hidden % np.uint64(2), hidden) % k
    styles[known] = first[genre_index] + offset.astype(np.int64)
    return styles


def _read_catalogue(conn: Connection, seed: int, webtoon_ids: Sequence[int] | None,
                    popularity_exponent: float, styles_per_genre: int) -> _Catalogue:
    with conn.cursor(pymysql.cursors.Cursor) as cur:
        cur.execute("SELECT w.id, (SELECT MIN(genre_id) FROM webtoon_genre "
                    "WHERE webtoon_id = w.id), (SELECT MIN(tag_id) FROM webtoon_tag "
                    "WHERE webtoon_id = w.id), (SELECT MIN(author_id) FROM webtoon_author "
                    "WHERE webtoon_id = w.id) FROM webtoon w ORDER BY w.id")
        rows = cur.fetchall()
        cur.execute("SELECT e.webtoon_id, e.id, e.episode_no FROM webtoon_episode e "
                    "JOIN webtoon_season s ON s.id = e.season_id "
                    "ORDER BY e.webtoon_id, s.season_no, e.episode_no")
        episode_rows = cur.fetchall()
    features = {int(w): tuple(-1 if v is None else int(v) for v in rest)
                for w, *rest in rows}
    if webtoon_ids is None:
        ids = np.array(sorted(features), dtype=np.int64)
    else:
        ids = np.array(sorted({int(w) for w in webtoon_ids}), dtype=np.int64)
        missing = [int(w) for w in ids if int(w) not in features]
        if missing:
            raise ValueError(f"webtoons {missing[:10]} are not in the catalogue")
    if not len(ids):
        raise ValueError("the catalogue has no webtoons: run seed_catalogue (or a crawl) first")
    per_webtoon: dict[int, list[tuple[int, int]]] = {}
    for wid, eid, no in episode_rows:
        per_webtoon.setdefault(int(wid), []).append((int(eid), int(no)))
    genres, tags, authors = np.array([features[int(w)] for w in ids],
                                     dtype=np.int64).reshape(-1, 3).T
    # Which titles are hits is a property of the seed, not of each member.
    popularity = _zipf(np.random.default_rng([seed, 0x9090]), len(ids), popularity_exponent)
    return _Catalogue(
        webtoon_ids=ids,
        genres=genres,
        styles=_catalogue_styles(seed, ids, genres, tags, authors, styles_per_genre),
        popularity=popularity,
        episodes=[np.array(per_webtoon.get(int(w), []), dtype=np.int64).reshape(-1, 2)
                  for w in ids],
    )


@dataclass
class _MemberPlan:
    member: tuple
    interactions: list[tuple] = field(default_factory=list)  # without member_id
    views: list[tuple] = field(default_factory=list)
    reviews: list[tuple] = field(default_factory=list)
    likes: int = 0
    bookmarks: int = 0
    dropped: int = 0
    # The member's latent tastes: favourite genre ids and styles (as in _Catalogue).
    genres: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    styles: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))


def _user_name(seed: int, index: int) -> str:
    return f"seed{seed}_{index:07d}"


def _plan_member(seed: int, index: int, catalogue: _Catalogue, now: datetime, days: float,
                 mean_interactions: float, cold_start_share: float,
                 taste_boost: float, style_boost: float) -> _MemberPlan:
    # One generator per member: a member's rows do not depend on which others exist.
    rng = np.random.default_rng([seed, 0x3E3, index])
    user_name = _user_name(seed, index)
    uid = str(uuid.UUID(bytes=rng.bytes(16), version=4))
    joined = now - timedelta(days=days + float(rng.random()) * 365)
    birthday = date(1975, 1, 1) + timedelta(days=int(rng.integers(0, 365 * 33)))
    gender = ("MALE", "FEMALE", "NONE")[int(rng.choice(3, p=[0.45, 0.45, 0.1]))]
    nick = f"{_TITLE_WORDS[0][rng.integers(20)]}{_TITLE_WORDS[1][rng.integers(22)]}{index}"
    last_login = now - timedelta(days=float(rng.random()) * days)
    plan = _MemberPlan(member=(uid, user_name, f"{user_name}@toonpick.invalid", nick[:64],
                               birthday, gender, last_login, joined, joined))

    n = len(catalogue.webtoon_ids)
    if rng.random() < cold_start_share:
        count = int(rng.integers(0, 3))
    else:
        sigma = 1.0
        count = max(1, round(rng.lognormal(math.log(mean_interactions) - sigma**2 / 2, sigma)))
    count = min(count, n)
    genres = np.unique(catalogue.genres[catalogue.genres >= 0])
    if len(genres):
        tastes = rng.choice(genres, min(len(genres), int(rng.integers(1, 4))), replace=False)
    else:
        tastes = np.empty(0, dtype=np.int64)
    in_taste_all = np.isin(catalogue.genres, tastes)
    candidates = np.unique(catalogue.styles[in_taste_all])
    plan.genres = tastes
    plan.styles = rng.choice(candidates, min(len(candidates), int(rng.integers(
        1, MAX_STYLES + 1))), replace=False) if len(candidates) else candidates
    if count == 0:
        return plan
    p = catalogue.popularity * np.where(in_taste_all, taste_boost, 1.0) * np.where(
        np.isin(catalogue.styles, plan.styles), style_boost, 1.0)
    chosen = rng.choice(n, count, replace=False, p=p / p.sum())
    signals = _draw_signals(rng, in_taste_all[chosen])
    span = days * 86400.0
    for k, w in enumerate(chosen):
        wid = int(catalogue.webtoon_ids[w])
        status = int(signals.status[k])
        episodes = catalogue.episodes[w]
        read = len(episodes) if status == FINISHED else min(int(signals.episodes[k]),
                                                            len(episodes))
        # Activity on this title runs from `start` to `end`, both within the last `days`.
        start = float(rng.random()) * span
        end = start * float(rng.random())
        times = np.sort(rng.random(read + 2))[::-1] * (start - end) + end
        at = [now - timedelta(seconds=float(s)) for s in times]
        first, last = now - timedelta(seconds=start), now - timedelta(seconds=end)
        for j in range(read):
            plan.views.append((int(episodes[j, 0]), at[j + 1]))
        liked, bookmarked = bool(signals.liked[k]), bool(signals.bookmarked[k])
        plan.likes += liked
        plan.bookmarks += bookmarked
        plan.dropped += status == DROPPED
        plan.interactions.append((
            wid, liked, at[-1] if liked else None, bookmarked, str(_STATUS_NAMES[status]),
            int(episodes[read - 1, 1]) if read else None, at[read] if read else None,
            first, last))
        if signals.reviewed[k]:
            plan.reviews.append((wid, f"{signals.rating[k]:.1f}", last, last))
    return plan


def seed_members(
    conn_or_url: Connection | str,
    n_members: int,
    seed: int,
    webtoon_ids: Sequence[int] | None = None,
    *,
    now: datetime | None = None,
    days: float = 90.0,
    mean_interactions: float = 15.0,
    cold_start_share: float = 0.1,
    taste_boost: float = 8.0,
    style_boost: float = 12.0,
    styles_per_genre: int = 10,
    popularity_exponent: float = 1.0,
) -> SeedSummary:
    """Insert members ``0..n_members-1`` of ``seed`` and their activity over the catalogue.

    Per member: 1-3 favourite genres and 1-4 favourite styles within them; a lognormal
    number of titles (mean ``mean_interactions``), drawn by power-law popularity with
    titles of favourite genres ``taste_boost`` times likelier and titles of favourite
    styles ``style_boost`` times more again; ``cold_start_share`` of members get 0-2.
    Each genre of the catalogue has up to ``styles_per_genre`` latent styles, derived
    from the seed and each webtoon's tags (else authors) plus a hidden part, so
    collaborative models find co-read titles beyond "popular in my genres" and the
    content model part of them.
    Per title: an interaction row (status NONE/WATCHING/FINISHED/DROPPED/PLANNED, like,
    bookmark, last read episode), the episodes read in order in the view history, and
    sometimes a review (1.0-5.0 by 0.5, higher for favourite genres). Timestamps fall
    within the ``days`` before ``now`` (default: the current UTC time).

    Members already present (same seed and index, by user_name) are skipped with their
    activity: members and their activity go in together, one transaction per chunk.
    """
    started = time.perf_counter()
    n_members = _positive_int(n_members, "n_members", 0)
    cold_start_share = _share(cold_start_share, "cold_start_share")
    styles_per_genre = _positive_int(styles_per_genre, "styles_per_genre")
    if not days > 0 or not mean_interactions >= 1 or not taste_boost >= 1 or not (
            style_boost >= 1):
        raise ValueError("days must be > 0, mean_interactions >= 1, taste_boost >= 1 and "
                         "style_boost >= 1")
    now = utc_naive(now or datetime.now(UTC))
    summary = SeedSummary()
    with connection(conn_or_url) as conn, conn.cursor(pymysql.cursors.Cursor) as cur:
        catalogue = _read_catalogue(conn, seed, webtoon_ids, popularity_exponent,
                                    styles_per_genre)
        for start in range(0, n_members, MEMBER_CHUNK):
            indices = range(start, min(n_members, start + MEMBER_CHUNK))
            names = [_user_name(seed, i) for i in indices]
            existing = _ids_by(cur, "member", "user_name", names)
            plans = [_plan_member(seed, i, catalogue, now, days, mean_interactions,
                                  cold_start_share, taste_boost, style_boost)
                     for i, name in zip(indices, names, strict=True) if name not in existing]
            summary.skipped += len(names) - len(plans)
            if plans:
                cur.executemany(
                    "INSERT IGNORE INTO member (uid, user_name, email, nick_name, birthday, "
                    "gender, last_login_at, created_at, updated_at) "
                    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)", [p.member for p in plans])
                ids = _ids_by(cur, "member", "user_name", [p.member[1] for p in plans])
                _insert_activity(cur, plans, ids, summary)
                conn.commit()
                existing = {**existing, **ids}
            summary.member_ids.extend(existing[name] for name in names)
    summary.seconds = time.perf_counter() - started
    return summary


def _insert_activity(cur, plans: list[_MemberPlan], ids: dict[str, int],
                     summary: SeedSummary) -> None:
    interactions, views, reviews = [], [], []
    for plan in plans:
        mid = ids[plan.member[1]]
        interactions.extend((mid, *row) for row in plan.interactions)
        views.extend((mid, *row) for row in plan.views)
        reviews.extend((mid, *row) for row in plan.reviews)
        summary.inserted += 1
        summary.likes += plan.likes
        summary.bookmarks += plan.bookmarks
        summary.dropped += plan.dropped
        summary.cold_start += len(plan.interactions) < 3
    if interactions:
        cur.executemany(
            "INSERT IGNORE INTO member_webtoon_interaction (member_id, webtoon_id, liked, "
            "liked_at, bookmarked, status, last_read_episode, last_read_at, created_at, "
            "updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)", interactions)
    if views:
        cur.executemany("INSERT INTO webtoon_episode_view_history (member_id, episode_id, "
                        "episode_viewed_at) VALUES (%s, %s, %s)", views)
    if reviews:
        cur.executemany("INSERT IGNORE INTO webtoon_review (member_id, webtoon_id, rating, "
                        "created_at, updated_at) VALUES (%s, %s, %s, %s, %s)", reviews)
    summary.interactions += len(interactions)
    summary.views += len(views)
    summary.reviews += len(reviews)


def add_interaction(
    conn_or_url: Connection | str,
    member_id: int,
    webtoon_id: int,
    *,
    liked: bool | None = None,
    bookmarked: bool | None = None,
    status: str | None = None,
    viewed_episodes: int = 0,
    rating: float | None = None,
    at: datetime | None = None,
) -> int:
    """Record that a member just did something with a webtoon; commits; returns views added.

    ``None`` leaves a signal as it is (a new interaction row starts unliked,
    unbookmarked, WATCHING, as the schema's defaults). ``viewed_episodes`` views the
    member's next unread episodes in reading order; ``rating`` upserts their review.
    """
    if status is not None and status not in ALL_INTERACTION_STATUSES:
        raise ValueError(f"status must be one of {ALL_INTERACTION_STATUSES}, got {status!r}")
    viewed_episodes = _positive_int(viewed_episodes, "viewed_episodes", 0)
    if rating is not None:
        if isinstance(rating, bool) or not isinstance(rating, (int, float)) or not (
                1.0 <= rating <= 5.0 and float(rating) * 2 == int(float(rating) * 2)):
            raise ValueError(f"rating must be 1.0-5.0 in steps of 0.5, got {rating!r}")
    at = utc_naive(at or datetime.now(UTC))
    touches_interaction = (liked is not None or bookmarked is not None or status is not None
                           or viewed_episodes > 0)
    with connection(conn_or_url) as conn, conn.cursor(pymysql.cursors.Cursor) as cur:
        cur.execute("SELECT (SELECT COUNT(*) FROM member WHERE id = %s), "
                    "(SELECT COUNT(*) FROM webtoon WHERE id = %s)", (member_id, webtoon_id))
        has_member, has_webtoon = cur.fetchone()
        if not has_member or not has_webtoon:
            raise ValueError(f"no {'member' if not has_member else 'webtoon'} "
                             f"{member_id if not has_member else webtoon_id}")
        read: list[tuple[int, int]] = []
        if viewed_episodes:
            cur.execute(
                "SELECT e.id, e.episode_no FROM webtoon_episode e "
                "JOIN webtoon_season s ON s.id = e.season_id "
                "WHERE e.webtoon_id = %s AND e.id NOT IN (SELECT episode_id FROM "
                "webtoon_episode_view_history WHERE member_id = %s) "
                "ORDER BY s.season_no, e.episode_no LIMIT %s",
                (webtoon_id, member_id, viewed_episodes))
            read = list(cur.fetchall())
            if read:
                cur.executemany("INSERT INTO webtoon_episode_view_history (member_id, "
                                "episode_id, episode_viewed_at) VALUES (%s, %s, %s)",
                                [(member_id, eid, at) for eid, _ in read])
        if touches_interaction:
            values = {"m": member_id, "w": webtoon_id, "liked": liked, "bm": bookmarked,
                      "status": status, "at": at,
                      "ep": read[-1][1] if read else None, "read_at": at if read else None}
            # liked_at is assigned before liked: the update's assignments see earlier ones.
            cur.execute(
                "INSERT INTO member_webtoon_interaction (member_id, webtoon_id, liked, "
                "liked_at, bookmarked, status, last_read_episode, last_read_at, created_at, "
                "updated_at) VALUES (%(m)s, %(w)s, COALESCE(%(liked)s, FALSE), "
                "IF(%(liked)s, %(at)s, NULL), COALESCE(%(bm)s, FALSE), "
                "COALESCE(%(status)s, 'WATCHING'), %(ep)s, %(read_at)s, %(at)s, %(at)s) "
                "ON DUPLICATE KEY UPDATE "
                "liked_at = CASE WHEN %(liked)s IS NULL THEN liked_at "
                "WHEN %(liked)s AND NOT liked THEN %(at)s WHEN %(liked)s THEN liked_at "
                "ELSE NULL END, "
                "liked = COALESCE(%(liked)s, liked), "
                "bookmarked = COALESCE(%(bm)s, bookmarked), "
                "status = COALESCE(%(status)s, status), "
                "last_read_episode = COALESCE(GREATEST(COALESCE(last_read_episode, 0), %(ep)s), "
                "last_read_episode), "
                "last_read_at = COALESCE(%(read_at)s, last_read_at), "
                "updated_at = %(at)s",
                values)
        if rating is not None:
            cur.execute(
                "INSERT INTO webtoon_review (member_id, webtoon_id, rating, created_at, "
                "updated_at) VALUES (%s, %s, %s, %s, %s) ON DUPLICATE KEY UPDATE "
                "rating = VALUES(rating), updated_at = VALUES(updated_at)",
                (member_id, webtoon_id, f"{float(rating):.1f}", at, at))
        conn.commit()
    return len(read)
