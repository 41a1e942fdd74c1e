"""Members' activity in MariaDB turned into the members x webtoons confidence matrix.

Every model reads the same matrix (see ``recommender.models.base``): rows are ACTIVE
members (``member.status = 'ACTIVE'``, sorted by id; members without any activity are
empty rows, so they exist for cold-start answers), columns every webtoon of the catalogue
(sorted by id, or the order a caller passes; new webtoons are empty columns).

The confidence of a (member, webtoon) pair, with ``w`` a ``ConfidenceWeights``::

    c = w.view * log1p(distinct episodes of the webtoon the member viewed)
      + w.like       if member_webtoon_interaction.liked
      + w.bookmark   if member_webtoon_interaction.bookmarked
      + w.finished | w.watching | w.planned   by member_webtoon_interaction.status
                                               (NONE, or no interaction row: 0)
      + (rating - w.rating_center) * w.rating_scale   if the member reviewed it (1.0-5.0)

    c = w.dropped   instead, whatever the other signals, when the status is DROPPED

With the defaults a liked, bookmarked, finished webtoon with 20 episodes viewed scores
4 + 3 + 2 + log1p(20) = 12.04; a single review of 1.0 star scores (1 - 3) * 1.5 = -3.0;
a dropped webtoon -3.0. A pair whose signals sum to exactly 0 (say a lone 3.0-star
review) carries no information and is left out of the matrix. Views are counted as
distinct episodes, so reading one episode ten times is one episode: re-reads say little
about taste and would let a single binge dominate a member's row.

``since`` restricts the signals to a time window: interaction rows updated, reviews
updated and episodes viewed at or after it (rows and columns stay the same).

Reads on a connection the caller passes leave it as they found it: a transaction they
open is committed at the end (so every call sees fresh activity and holds no locks
afterwards); a transaction the caller had open stays open, and reads see its snapshot.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pymysql
import pymysql.cursors
import scipy.sparse as sp
from pymysql.constants import SERVER_STATUS

from shared.stores.mariadb import connect, utc_naive

ACTIVE_MEMBER_STATUS = "ACTIVE"
# member_webtoon_interaction.status values; the position (1-based) is the code SQL's
# FIELD() returns, 0 for NONE or anything unknown.
INTERACTION_STATUSES = ("WATCHING", "FINISHED", "DROPPED", "PLANNED")
ALL_INTERACTION_STATUSES = ("NONE", *INTERACTION_STATUSES)
_DROPPED_CODE = INTERACTION_STATUSES.index("DROPPED") + 1
# Rows fetched per round trip from an unbuffered cursor: bounds the Python tuples alive
# at once while the numpy arrays grow.
FETCH_ROWS = 50_000
# Ids per IN (...) list.
IN_CHUNK = 1_000

Connection = pymysql.connections.Connection


@dataclass(frozen=True)
class ConfidenceWeights:
    """How much each signal says about a member liking a webtoon (formula: module doc).

    view: per log1p(distinct episodes viewed); like, bookmark: flat bonuses;
    finished / watching / planned: by interaction status; rating_center: the neutral
    rating (below it a review counts against the webtoon); rating_scale: per star away
    from the centre; dropped: the confidence of a dropped webtoon (<= 0), overriding
    every other signal of that pair.
    """

    view: float = 1.0
    like: float = 4.0
    bookmark: float = 3.0
    finished: float = 2.0
    watching: float = 1.0
    planned: float = 0.5
    rating_center: float = 3.0
    rating_scale: float = 1.5
    dropped: float = -3.0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"confidence weight {f.name!r} must be a number, got {value!r}")
            if not math.isfinite(value):
                raise ValueError(f"confidence weight {f.name!r} must be finite, got {value!r}")
            object.__setattr__(self, f.name, float(value))
        for name in ("view", "like", "bookmark", "finished", "watching", "planned",
                     "rating_scale"):
            if getattr(self, name) < 0:
                raise ValueError(f"confidence weight {name!r} must be >= 0")
        if self.dropped > 0:
            raise ValueError("confidence weight 'dropped' must be <= 0 (a dropped webtoon "
                             "is evidence against it)")
        if not 1.0 <= self.rating_center <= 5.0:
            raise ValueError("confidence weight 'rating_center' must be within 1.0-5.0")

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None) -> ConfidenceWeights:
        """Defaults overridden by ``values`` (e.g. a JSON setting or task parameters).

        Unknown keys and non-numbers raise ValueError naming them.
        """
        if values is None:
            return cls()
        if not isinstance(values, Mapping):
            raise ValueError(f"confidence weights must be a mapping, got {type(values).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(str(k) for k in values if k not in known)
        if unknown:
            raise ValueError(f"unknown confidence weights {unknown}; known: {sorted(known)}")
        return cls(**dict(values))

    def as_dict(self) -> dict[str, float]:
        """JSON-able, the inverse of ``from_mapping`` (stored with model parameters)."""
        return asdict(self)

    # Vectorised terms, shared by the loader and the synthetic generator.
    def status_table(self) -> np.ndarray:
        """Confidence of (liked, bookmarked, status code) packed as liked + 2*bm + 4*code.

        Status codes: 0 NONE, then ``INTERACTION_STATUSES`` from 1. The DROPPED entries
        hold the sum like the others; ``dropped`` overrides them after all signals
        of a pair are summed.
        """
        status = np.array([0.0, self.watching, self.finished, 0.0, self.planned])
        codes = np.arange(4 * len(status))
        liked, bookmarked, state = codes & 1, (codes >> 1) & 1, codes >> 2
        return (liked * self.like + bookmarked * self.bookmark + status[state]).astype(
            np.float32)

    def view_values(self, distinct_episodes: np.ndarray) -> np.ndarray:
        return (self.view * np.log1p(np.asarray(distinct_episodes, dtype=np.float64))).astype(
            np.float32)

    def rating_values(self, ratings: np.ndarray) -> np.ndarray:
        ratings = np.asarray(ratings, dtype=np.float64)
        return ((ratings - self.rating_center) * self.rating_scale).astype(np.float32)

    def confidence(
        self,
        *,
        liked: bool = False,
        bookmarked: bool = False,
        status: str | None = None,
        episodes_viewed: int = 0,
        rating: float | None = None,
    ) -> float:
        """The confidence of one pair from its signals (the reference for the formula)."""
        if status is not None and status not in ALL_INTERACTION_STATUSES:
            raise ValueError(f"unknown interaction status {status!r}")
        if status == "DROPPED":
            return self.dropped
        value = self.view * math.log1p(max(0, episodes_viewed))
        value += self.like * bool(liked) + self.bookmark * bool(bookmarked)
        value += {"WATCHING": self.watching, "FINISHED": self.finished,
                  "PLANNED": self.planned}.get(status or "NONE", 0.0)
        if rating is not None:
            value += (float(rating) - self.rating_center) * self.rating_scale
        return value


@dataclass
class ActivityMatrix:
    """The confidence matrix with the database ids of its rows and columns.

    ``member_ids[i]`` is row i's ``member.id``, ``webtoon_ids[j]`` column j's
    ``webtoon.id``; ``user_items`` is float32 CSR (canonical: sorted, no duplicates,
    no explicit zeros). ``since`` is the activity window it was loaded with.
    """

    member_ids: np.ndarray
    webtoon_ids: np.ndarray
    user_items: sp.csr_matrix
    since: datetime | None = None
    _member_order: np.ndarray = field(init=False, repr=False)
    _webtoon_order: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.member_ids = _id_array(self.member_ids, "member_ids")
        self.webtoon_ids = _id_array(self.webtoon_ids, "webtoon_ids")
        shape = (len(self.member_ids), len(self.webtoon_ids))
        if self.user_items.shape != shape:
            raise ValueError(f"user_items is {self.user_items.shape}, ids say {shape}")
        self._member_order = np.argsort(self.member_ids, kind="stable")
        self._webtoon_order = np.argsort(self.webtoon_ids, kind="stable")

    @property
    def n_members(self) -> int:
        return len(self.member_ids)

    @property
    def n_webtoons(self) -> int:
        return len(self.webtoon_ids)

    @property
    def n_interactions(self) -> int:
        return int(self.user_items.nnz)

    def member_indices(self, member_ids: Sequence[int] | np.ndarray) -> np.ndarray:
        """Row index of each member id, -1 for ids the matrix does not hold."""
        return _lookup(self.member_ids, self._member_order, member_ids)

    def webtoon_indices(self, webtoon_ids: Sequence[int] | np.ndarray) -> np.ndarray:
        """Column index of each webtoon id, -1 for ids the matrix does not hold."""
        return _lookup(self.webtoon_ids, self._webtoon_order, webtoon_ids)

    def member_index(self, member_id: int) -> int:
        index = int(self.member_indices([member_id])[0])
        if index < 0:
            raise KeyError(f"member {member_id} is not a row of this activity matrix")
        return index

    def webtoon_index(self, webtoon_id: int) -> int:
        index = int(self.webtoon_indices([webtoon_id])[0])
        if index < 0:
            raise KeyError(f"webtoon {webtoon_id} is not a column of this activity matrix")
        return index

    def row(self, member_id: int) -> sp.csr_matrix:
        """The member's row (1 x n_webtoons CSR)."""
        index = self.member_index(member_id)
        return self.user_items[index:index + 1]


def _id_array(ids: Any, what: str) -> np.ndarray:
    array = np.asarray(ids)
    if array.ndim != 1:
        raise ValueError(f"{what} must be one-dimensional, got shape {array.shape}")
    if array.size and not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"{what} must be integer ids, got dtype {array.dtype}")
    array = array.astype(np.int64, copy=False)
    if array.size and np.unique(array).size != array.size:
        raise ValueError(f"{what} holds duplicate ids")
    return array


def _lookup(ids: np.ndarray, order: np.ndarray, wanted: Any) -> np.ndarray:
    wanted = np.asarray(wanted, dtype=np.int64).reshape(-1)
    if not len(ids):
        return np.full(wanted.shape, -1, dtype=np.int64)
    sorted_ids = ids[order]
    pos = np.clip(np.searchsorted(sorted_ids, wanted), 0, len(ids) - 1)
    return np.where(sorted_ids[pos] == wanted, order[pos], -1).astype(np.int64)


@contextmanager
def connection(conn_or_url: Connection | str) -> Iterator[Connection]:
    """The connection given, or one opened on the URL and closed afterwards."""
    if isinstance(conn_or_url, str):
        conn = connect(conn_or_url)
        try:
            yield conn
        finally:
            conn.close()
    else:
        yield conn_or_url


@contextmanager
def _reading(conn_or_url: Connection | str) -> Iterator[Connection]:
    """A connection for reads that leaves it as it found it.

    Reads on a connection without autocommit open a transaction; left open, it pins an
    old snapshot (a later fold-in would miss new activity) and holds metadata locks (a
    DROP or ALTER would wait forever). So a transaction our reads opened is ended here;
    one the caller had open is theirs and stays.
    """
    with connection(conn_or_url) as conn:
        was_open = bool(conn.server_status & SERVER_STATUS.SERVER_STATUS_IN_TRANS)
        try:
            yield conn
        finally:
            if not was_open and conn.open and (
                    conn.server_status & SERVER_STATUS.SERVER_STATUS_IN_TRANS):
                conn.commit()


def _stream(conn: Connection, sql: str, args: Sequence[Any], width: int) -> np.ndarray:
    """An integer query result as an (n, width) int64 array, fetched in chunks."""
    chunks: list[np.ndarray] = []
    with conn.cursor(pymysql.cursors.SSCursor) as cur:
        cur.execute(sql, tuple(args) or None)
        while rows := cur.fetchmany(FETCH_ROWS):
            chunks.append(np.array(rows, dtype=np.int64).reshape(-1, width))
    if not chunks:
        return np.empty((0, width), dtype=np.int64)
    return np.concatenate(chunks)


# The three signal queries. Each returns one row per member: (member_id, pairs, text)
# where text is "webtoon value webtoon value ..." for that member's ``pairs`` webtoons.
# Packing a member's pairs into one string is what makes 5M pairs cheap: PyMySQL parses
# every field in Python (about 3.4 s per million 3-int rows on the dev machine), while a
# few long strings split in bulk cost about 0.5 s per million pairs.
_PAIRS = "COUNT(*), GROUP_CONCAT({webtoon}, ' ', {value} SEPARATOR ' ')"
_INTERACTIONS_SQL = (
    "SELECT member_id, " + _PAIRS.format(
        webtoon="webtoon_id",
        value="(liked <> 0) + 2 * (bookmarked <> 0) + 4 * FIELD(status, {statuses})")
    + " FROM member_webtoon_interaction{where} GROUP BY member_id"
).replace("{statuses}", ", ".join(f"'{s}'" for s in INTERACTION_STATUSES))
_REVIEWS_SQL = (
    "SELECT member_id, " + _PAIRS.format(webtoon="webtoon_id",
                                        value="CAST(ROUND(rating * 2) AS SIGNED)")
    + " FROM webtoon_review{where} GROUP BY member_id"
)
_VIEWS_SQL = (
    "SELECT member_id, " + _PAIRS.format(webtoon="webtoon_id", value="episodes")
    + " FROM (SELECT h.member_id, e.webtoon_id, COUNT(DISTINCT h.episode_id) AS episodes "
    "FROM webtoon_episode_view_history h JOIN webtoon_episode e ON e.id = h.episode_id"
    "{where} GROUP BY h.member_id, e.webtoon_id) AS viewed GROUP BY member_id"
)
# Longest "webtoon value ..." text of one member: 1 GB, far beyond any real member.
_GROUP_CONCAT_MAX = 1 << 30


def _stream_pairs(conn: Connection, sql: str, args: Sequence[Any]) -> np.ndarray:
    """(member, webtoon, value) int64 rows from a per-member GROUP_CONCAT query."""
    chunks: list[np.ndarray] = []
    with conn.cursor(pymysql.cursors.Cursor) as cur:
        cur.execute(f"SET SESSION group_concat_max_len = {_GROUP_CONCAT_MAX}")
    with conn.cursor(pymysql.cursors.SSCursor) as cur:
        cur.execute(sql, tuple(args) or None)
        while rows := cur.fetchmany(FETCH_ROWS // 50):
            members = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
            counts = np.fromiter((r[1] for r in rows), dtype=np.int64, count=len(rows))
            text = " ".join(r[2] for r in rows)
            pairs = np.array(text.split(), dtype=np.int64).reshape(-1, 2)
            if len(pairs) != counts.sum():
                raise RuntimeError("a member's activity text was cut short; raise "
                                   "max_allowed_packet / group_concat_max_len")
            chunk = np.empty((len(pairs), 3), dtype=np.int64)
            chunk[:, 0] = np.repeat(members, counts)
            chunk[:, 1:] = pairs
            chunks.append(chunk)
    if not chunks:
        return np.empty((0, 3), dtype=np.int64)
    return np.concatenate(chunks)


def _signals(
    conn: Connection, member_id: int | None, since: datetime | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(member, webtoon, value) int64 rows of interactions, reviews and views."""
    out = []
    for sql, member_col, time_col in (
        (_INTERACTIONS_SQL, "member_id", "updated_at"),
        (_REVIEWS_SQL, "member_id", "updated_at"),
        (_VIEWS_SQL, "h.member_id", "h.episode_viewed_at"),
    ):
        clauses, args = [], []
        if member_id is not None:
            clauses.append(f"{member_col} = %s")
            args.append(int(member_id))
        if since is not None:
            clauses.append(f"{time_col} >= %s")
            args.append(since)
        where = " WHERE " + " AND ".join(clauses) if clauses else ""
        out.append(_stream_pairs(conn, sql.replace("{where}", where), args))
    return out[0], out[1], out[2]


def _confidences(
    member_ids: np.ndarray,
    webtoon_ids: np.ndarray,
    webtoon_order: np.ndarray,
    signals: tuple[np.ndarray, np.ndarray, np.ndarray],
    weights: ConfidenceWeights,
) -> sp.csr_matrix:
    """The confidence matrix from the raw signal rows (rows of unknown ids are dropped)."""
    n_rows, n_cols = len(member_ids), len(webtoon_ids)
    member_order = np.argsort(member_ids, kind="stable")
    interactions, reviews, views = signals
    values = (
        weights.status_table()[np.clip(interactions[:, 2], 0, 19)],
        weights.rating_values(reviews[:, 2] / 2.0),
        weights.view_values(views[:, 2]),
    )
    rows, cols, data = [], [], []
    for raw, value in zip((interactions, reviews, views), values, strict=True):
        r = _lookup(member_ids, member_order, raw[:, 0])
        c = _lookup(webtoon_ids, webtoon_order, raw[:, 1])
        keep = (r >= 0) & (c >= 0)
        rows.append(r[keep].astype(np.int32))
        cols.append(c[keep].astype(np.int32))
        data.append(value[keep])
    matrix = sp.coo_matrix(
        (np.concatenate(data), (np.concatenate(rows), np.concatenate(cols))),
        shape=(n_rows, n_cols), dtype=np.float32,
    ).tocsr()
    matrix.sum_duplicates()

    # DROPPED overrides the sum: find each dropped pair's slot in the canonical CSR,
    # whose (row, col) keys are sorted.
    dropped = (interactions[:, 2] >> 2) == _DROPPED_CODE
    if dropped.any():
        r = _lookup(member_ids, member_order, interactions[dropped, 0])
        c = _lookup(webtoon_ids, webtoon_order, interactions[dropped, 1])
        keep = (r >= 0) & (c >= 0)
        wanted = r[keep] * np.int64(n_cols) + c[keep]
        row_of_slot = np.repeat(np.arange(n_rows, dtype=np.int64), np.diff(matrix.indptr))
        keys = row_of_slot * np.int64(n_cols) + matrix.indices
        matrix.data[np.searchsorted(keys, wanted)] = np.float32(weights.dropped)
    matrix.eliminate_zeros()
    return matrix


def _catalogue_ids(conn: Connection) -> np.ndarray:
    return _stream(conn, "SELECT id FROM webtoon ORDER BY id", (), 1)[:, 0]


def load_activity(
    conn_or_url: Connection | str,
    weights: ConfidenceWeights | None = None,
    webtoon_ids: Sequence[int] | np.ndarray | None = None,
    since: datetime | None = None,
) -> ActivityMatrix:
    """Every ACTIVE member's activity as an ``ActivityMatrix``.

    ``webtoon_ids`` fixes the columns (and their order), e.g. to a fitted model's
    webtoons; by default every webtoon of the catalogue, sorted by id. Activity on
    webtoons outside the columns, or by members who are not ACTIVE, is left out.
    """
    weights = weights or ConfidenceWeights()
    since = None if since is None else utc_naive(since)
    with _reading(conn_or_url) as conn:
        if webtoon_ids is None:
            columns = _catalogue_ids(conn)
        else:
            columns = _id_array(webtoon_ids, "webtoon_ids")
        members = _stream(conn, "SELECT id FROM member WHERE status = %s ORDER BY id",
                          (ACTIVE_MEMBER_STATUS,), 1)[:, 0]
        signals = _signals(conn, None, since)
    matrix = _confidences(members, columns, np.argsort(columns, kind="stable"), signals,
                          weights)
    return ActivityMatrix(members, columns, matrix, since=since)


def member_history(
    conn_or_url: Connection | str,
    member_id: int,
    weights: ConfidenceWeights | None,
    activity: ActivityMatrix,
) -> sp.csr_matrix:
    """One member's current row straight from the tables (1 x n CSR, float32).

    Aligned to ``activity.webtoon_ids`` and its ``since`` window; the member need not be
    a row of ``activity`` (a new member's history is read the same way). Used to fold
    a member in right after their activity changed, without reloading everything.
    """
    weights = weights or ConfidenceWeights()
    with _reading(conn_or_url) as conn:
        signals = _signals(conn, int(member_id), activity.since)
    return _confidences(np.array([member_id], dtype=np.int64), activity.webtoon_ids,
                        activity._webtoon_order, signals, weights)


FEATURE_KINDS = ("genre", "tag", "author")
_FEATURE_SQL = {
    "genre": "SELECT wg.webtoon_id, g.name FROM webtoon_genre wg "
             "JOIN genre g ON g.id = wg.genre_id WHERE wg.webtoon_id IN ({ids})",
    "tag": "SELECT wt.webtoon_id, t.name FROM webtoon_tag wt "
           "JOIN tag t ON t.id = wt.tag_id WHERE wt.webtoon_id IN ({ids})",
    # The name, not the uid: the same person on two platforms has two uids but one name
    # (the catalogue's identity rule reads names too).
    "author": "SELECT wa.webtoon_id, a.name FROM webtoon_author wa "
              "JOIN author a ON a.id = wa.author_id WHERE wa.webtoon_id IN ({ids})",
}


def item_feature_triples(
    conn_or_url: Connection | str, webtoon_ids: Sequence[int] | np.ndarray
) -> list[tuple[int, str, str]]:
    """(column index in ``webtoon_ids``, kind, value) for every genre, tag and author.

    Kinds are ``FEATURE_KINDS``; sorted by index, kind, value so the content model
    sees the same features in the same order on every load.
    """
    ids = _id_array(webtoon_ids, "webtoon_ids")
    index = {int(w): i for i, w in enumerate(ids)}
    triples: list[tuple[int, str, str]] = []
    with _reading(conn_or_url) as conn, conn.cursor(pymysql.cursors.Cursor) as cur:
        for start in range(0, len(ids), IN_CHUNK):
            chunk = [int(w) for w in ids[start:start + IN_CHUNK]]
            marks = ", ".join(["%s"] * len(chunk))
            for kind in FEATURE_KINDS:
                cur.execute(_FEATURE_SQL[kind].replace("{ids}", marks), chunk)
                triples.extend((index[wid], kind, name) for wid, name in cur.fetchall())
    kind_order = {k: n for n, k in enumerate(FEATURE_KINDS)}
    triples.sort(key=lambda t: (t[0], kind_order[t[1]], t[2]))
    return triples


def interaction_ages(
    conn_or_url: Connection | str,
    activity: ActivityMatrix,
    now: datetime | None = None,
) -> sp.csr_matrix:
    """Days since each (member, webtoon) pair was last touched, aligned to ``activity``.

    "Touched" is the latest of the interaction row's ``updated_at`` (it moves on every
    like, bookmark, status change or episode read the platform records) and the
    review's ``updated_at``. Pairs ``activity`` does not hold are left out; a pair
    touched now is an explicit 0. Feeds the popularity model's trending decay.
    """
    now = utc_naive(now or datetime.now(UTC))
    with _reading(conn_or_url) as conn:
        pairs = _stream(
            conn,
            "SELECT member_id, webtoon_id, MIN(age) FROM ("
            " SELECT member_id, webtoon_id, TIMESTAMPDIFF(SECOND, updated_at, %s) AS age"
            " FROM member_webtoon_interaction"
            " UNION ALL SELECT member_id, webtoon_id, TIMESTAMPDIFF(SECOND, updated_at, %s)"
            " FROM webtoon_review) t GROUP BY member_id, webtoon_id",
            (now, now), 3)
    rows = activity.member_indices(pairs[:, 0])
    cols = activity.webtoon_indices(pairs[:, 1])
    keep = (rows >= 0) & (cols >= 0)
    ages = np.maximum(pairs[keep, 2], 0).astype(np.float32) / 86400.0
    matrix = sp.csr_matrix((ages, (rows[keep], cols[keep])), shape=activity.user_items.shape)
    # Only where the confidence matrix has an entry (a lone 3.0 review carries none).
    return matrix.multiply(activity.user_items != 0).tocsr()
