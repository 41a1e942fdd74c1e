"""A/B experiments on recommendations: variants, member assignment, exposures, results.

An experiment splits members between variants, each mapping to an algorithm and its
parameters (``als``, ``hybrid``, ``content``, ``popularity``). States:

- RUNNING from ``create_experiment``: members are assigned and exposures recorded;
- STOPPED after ``stop_experiment``: no more exposures; results stay readable.

(The schema also allows DRAFT for an experiment written by hand and not started yet.)

A member's variant is never stored: ``assign`` is a pure function of the experiment's
salt and the member id (sha256, so every process and Python run agrees), which is why
a variant's weights and order must not change once the experiment runs. Each experiment
has its own salt, so members are shuffled independently in each one.

What is stored are the exposures: ``record_exposures`` writes the webtoons a member was
shown, when recommendations are served. ``experiment_results`` then reads the members'
later activity from MariaDB (episode views = clicks, likes and bookmarks = conversions,
within a window after the exposure) and compares each variant with the control (the
first variant) at member level, the unit of randomisation.

Writes commit on the connection they are given; reads do not end the caller's
transaction (on a long-lived connection in REPEATABLE READ, commit before reading).
"""

from __future__ import annotations

import hashlib
import json
import math
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from numbers import Integral
from typing import Any

import pymysql
import pymysql.cursors
from scipy import stats

from shared.stores.mariadb import utc_naive

ALGORITHMS = ("als", "hybrid", "content", "popularity")
RUNNING = "RUNNING"
STOPPED = "STOPPED"
DEFAULT_WINDOW_DAYS = 7
DEFAULT_ALPHA = 0.05
# Below this expected count in any cell the chi-square approximation is unreliable
# (Cochran's rule), so the exact test is used.
MIN_EXPECTED_FOR_CHI2 = 5.0

_CODE_MAX = 64
_NAME_MAX = 64
_SALT_MAX = 64
_DESCRIPTION_MAX = 1000
_DUPLICATE_KEY = 1062


class InvalidExperiment(ValueError):
    """An experiment or variant definition that cannot run (the message says why)."""


class ExperimentExists(ValueError):
    """An experiment with this code already exists."""


class ExperimentNotFound(LookupError):
    """No experiment has this code."""


class ExperimentNotRunning(RuntimeError):
    """Exposures were recorded for an experiment that is not running."""


def _check_text(what: str, value: Any, max_length: int) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidExperiment(f"{what} must be a non-empty string, got {value!r}")
    if len(value) > max_length:
        raise InvalidExperiment(f"{what} is longer than {max_length} characters: {value!r}")
    return value


@dataclass(frozen=True)
class Variant:
    """One arm of an experiment: ``weight`` shares of the members get ``algorithm``."""

    name: str
    weight: int = 1
    algorithm: str = "als"
    params: Mapping[str, Any] = field(default_factory=dict)
    id: int | None = None

    def __post_init__(self) -> None:
        _check_text("variant name", self.name, _NAME_MAX)
        if isinstance(self.weight, bool) or not isinstance(self.weight, Integral):
            raise InvalidExperiment(
                f"variant {self.name!r}: weight must be an integer, got {self.weight!r}"
            )
        if self.weight <= 0:
            raise InvalidExperiment(
                f"variant {self.name!r}: weight must be positive, got {self.weight}"
            )
        if self.algorithm not in ALGORITHMS:
            raise InvalidExperiment(
                f"variant {self.name!r}: algorithm {self.algorithm!r} is not one of "
                f"{', '.join(ALGORITHMS)}"
            )
        if not isinstance(self.params, Mapping):
            raise InvalidExperiment(
                f"variant {self.name!r}: params must be a JSON object, "
                f"got {type(self.params).__name__}"
            )
        try:
            # Round-trip so what is kept is exactly what MariaDB will hand back.
            params = json.loads(json.dumps(dict(self.params), sort_keys=True, allow_nan=False))
        except (TypeError, ValueError) as exc:
            raise InvalidExperiment(
                f"variant {self.name!r}: params are not JSON-serialisable ({exc})"
            ) from exc
        object.__setattr__(self, "weight", int(self.weight))
        object.__setattr__(self, "params", params)


@dataclass(frozen=True)
class Experiment:
    """An experiment as stored; ``variants[0]`` is the control."""

    code: str
    salt: str
    variants: tuple[Variant, ...]
    description: str | None = None
    status: str = RUNNING
    id: int | None = None
    created_at: datetime | None = None
    started_at: datetime | None = None
    stopped_at: datetime | None = None

    def __post_init__(self) -> None:
        _check_text("experiment code", self.code, _CODE_MAX)
        _check_text("experiment salt", self.salt, _SALT_MAX)
        variants = tuple(_as_variant(v) for v in self.variants)
        if len(variants) < 2:
            raise InvalidExperiment(
                f"experiment {self.code!r} needs at least 2 variants, got {len(variants)}"
            )
        names = [v.name for v in variants]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise InvalidExperiment(
                f"experiment {self.code!r}: variant names must be unique, "
                f"repeated: {', '.join(duplicates)}"
            )
        object.__setattr__(self, "variants", variants)

    @property
    def control(self) -> Variant:
        return self.variants[0]

    @property
    def total_weight(self) -> int:
        return sum(v.weight for v in self.variants)

    def variant(self, name: str) -> Variant:
        for variant in self.variants:
            if variant.name == name:
                return variant
        raise KeyError(f"experiment {self.code!r} has no variant {name!r}")


def _as_variant(value: Variant | Mapping[str, Any]) -> Variant:
    if isinstance(value, Variant):
        return value
    if isinstance(value, Mapping):
        try:
            return Variant(**value)
        except TypeError as exc:
            raise InvalidExperiment(f"bad variant definition {dict(value)!r}: {exc}") from exc
    raise InvalidExperiment(f"a variant must be a Variant or a mapping, got {value!r}")


# -- assignment ----------------------------------------------------------------------


def bucket(salt: str, member_id: int, buckets: int) -> int:
    """The member's bucket in ``[0, buckets)``: the first 64 bits of
    sha256(f"{salt}:{member_id}") modulo ``buckets`` (bias below 2**-40 for any weights
    a person would write)."""
    digest = hashlib.sha256(f"{salt}:{member_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % buckets


def assign(experiment: Experiment, member_id: int) -> Variant:
    """The member's variant: deterministic, the same in every process, nothing stored."""
    if isinstance(member_id, bool) or not isinstance(member_id, Integral):
        raise ValueError(f"member_id must be an integer, got {member_id!r}")
    point = bucket(experiment.salt, int(member_id), experiment.total_weight)
    for variant in experiment.variants:
        if point < variant.weight:
            return variant
        point -= variant.weight
    raise AssertionError("unreachable: the bucket is below the total weight")


# -- experiments in MariaDB -------------------------------------------------------------


def _dict_cursor(conn: pymysql.connections.Connection) -> pymysql.cursors.DictCursor:
    # Whatever cursor class the caller's connection defaults to, rows here are dicts.
    return conn.cursor(pymysql.cursors.DictCursor)


def create_experiment(
    conn: pymysql.connections.Connection,
    code: str,
    variants: Sequence[Variant | Mapping[str, Any]],
    description: str | None = None,
    salt: str | None = None,
) -> Experiment:
    """Create and start an experiment (status RUNNING); the first variant is the control.

    ``salt`` defaults to a random one: give one only to reproduce another system's split.
    Raises ``InvalidExperiment`` or ``ExperimentExists``.
    """
    if description is not None:
        _check_text("experiment description", description, _DESCRIPTION_MAX)
    if isinstance(variants, (str, bytes, Mapping)) or not isinstance(variants, Iterable):
        raise InvalidExperiment(f"variants must be a sequence of variants, got {variants!r}")
    draft = Experiment(
        code=code,
        salt=uuid.uuid4().hex if salt is None else salt,
        variants=tuple(variants),
        description=description,
    )
    started_at = utc_naive(datetime.now(UTC))
    try:
        with _dict_cursor(conn) as cur:
            cur.execute(
                "INSERT INTO recommendation_experiment "
                "(code, description, salt, status, created_at, started_at) "
                "VALUES (%s, %s, %s, %s, %s, %s)",
                (draft.code, draft.description, draft.salt, RUNNING, started_at, started_at),
            )
            experiment_id = cur.lastrowid
            cur.executemany(
                "INSERT INTO recommendation_experiment_variant "
                "(experiment_id, name, weight, algorithm, params) VALUES (%s, %s, %s, %s, %s)",
                [
                    (experiment_id, v.name, v.weight, v.algorithm,
                     json.dumps(v.params, sort_keys=True))
                    for v in draft.variants
                ],
            )
        conn.commit()
    except pymysql.err.IntegrityError as exc:
        conn.rollback()
        # Variant names were checked unique, so the only key left to clash is the code.
        if exc.args and exc.args[0] == _DUPLICATE_KEY:
            raise ExperimentExists(f"an experiment with code {code!r} already exists") from exc
        raise
    except BaseException:
        conn.rollback()
        raise
    return get_experiment(conn, code)


def _load(cur: Any, rows: list[dict[str, Any]]) -> list[Experiment]:
    if not rows:
        return []
    ids = [row["id"] for row in rows]
    cur.execute(
        "SELECT id, experiment_id, name, weight, algorithm, params "
        "FROM recommendation_experiment_variant "
        f"WHERE experiment_id IN ({', '.join(['%s'] * len(ids))}) ORDER BY id",
        ids,
    )
    variants: dict[int, list[Variant]] = {i: [] for i in ids}
    for v in cur.fetchall():
        params = v["params"]
        variants[v["experiment_id"]].append(
            Variant(
                name=v["name"],
                weight=v["weight"],
                algorithm=v["algorithm"],
                params=json.loads(params) if isinstance(params, (str, bytes)) else params,
                id=v["id"],
            )
        )
    return [
        Experiment(
            code=row["code"],
            salt=row["salt"],
            # Insertion order: the control was written first.
            variants=tuple(variants[row["id"]]),
            description=row["description"],
            status=row["status"],
            id=row["id"],
            created_at=row["created_at"],
            started_at=row["started_at"],
            stopped_at=row["stopped_at"],
        )
        for row in rows
    ]


_SELECT_EXPERIMENT = (
    "SELECT id, code, description, salt, status, created_at, started_at, stopped_at "
    "FROM recommendation_experiment "
)


def get_experiment(conn: pymysql.connections.Connection, code: str) -> Experiment:
    """The experiment with this code; raises ``ExperimentNotFound``."""
    with _dict_cursor(conn) as cur:
        cur.execute(_SELECT_EXPERIMENT + "WHERE code = %s", (code,))
        found = _load(cur, list(cur.fetchall()))
    if not found:
        raise ExperimentNotFound(f"no experiment with code {code!r}")
    return found[0]


def running_experiments(conn: pymysql.connections.Connection) -> list[Experiment]:
    """Every RUNNING experiment, oldest first."""
    with _dict_cursor(conn) as cur:
        cur.execute(_SELECT_EXPERIMENT + "WHERE status = %s ORDER BY id", (RUNNING,))
        return _load(cur, list(cur.fetchall()))


def stop_experiment(conn: pymysql.connections.Connection, code: str) -> Experiment:
    """Stop the experiment (idempotent: a stopped one keeps its first stop time)."""
    try:
        with _dict_cursor(conn) as cur:
            cur.execute(
                "UPDATE recommendation_experiment SET status = %s, stopped_at = UTC_TIMESTAMP(6) "
                "WHERE code = %s AND status <> %s",
                (STOPPED, code, STOPPED),
            )
        conn.commit()
    except BaseException:
        conn.rollback()
        raise
    return get_experiment(conn, code)


# -- exposures ------------------------------------------------------------------------


def record_exposures(
    conn: pymysql.connections.Connection,
    experiment: Experiment,
    member_id: int,
    webtoon_ids: Sequence[int],
    at: datetime | None = None,
) -> Variant:
    """Record that ``member_id`` was shown ``webtoon_ids`` (best first: ranks 1..n) at
    ``at`` (default now, UTC), under the member's variant, which is returned.

    Raises ``ExperimentNotRunning`` when ``experiment`` (as loaded) is not RUNNING.
    """
    if experiment.id is None or any(v.id is None for v in experiment.variants):
        raise ValueError(f"experiment {experiment.code!r} was not loaded from MariaDB")
    if experiment.status != RUNNING:
        raise ExperimentNotRunning(
            f"experiment {experiment.code!r} is {experiment.status}, not {RUNNING}"
        )
    variant = assign(experiment, member_id)
    ids = list(webtoon_ids)
    for webtoon_id in ids:
        if isinstance(webtoon_id, bool) or not isinstance(webtoon_id, Integral):
            raise ValueError(f"webtoon ids must be integers, got {webtoon_id!r}")
    if len(set(ids)) != len(ids):
        raise ValueError(f"webtoon ids shown to member {member_id} repeat: {ids}")
    if not ids:
        return variant
    exposed_at = utc_naive(at or datetime.now(UTC))
    rows = [
        (experiment.id, variant.id, int(member_id), int(webtoon_id), rank, exposed_at)
        for rank, webtoon_id in enumerate(ids, start=1)
    ]
    try:
        with conn.cursor() as cur:
            # pymysql turns an INSERT ... VALUES executemany into one multi-row statement.
            cur.executemany(
                "INSERT INTO recommendation_exposure "
                "(experiment_id, variant_id, member_id, webtoon_id, `rank`, exposed_at) "
                "VALUES (%s, %s, %s, %s, %s, %s)",
                rows,
            )
        conn.commit()
    except BaseException:
        conn.rollback()
        raise
    return variant


# -- results --------------------------------------------------------------------------

# Per exposure: was the webtoon clicked (an episode of it viewed) and converted (liked,
# or bookmarked: the interaction row's updated_at is the best bookmark time the schema
# keeps) after the exposure and within the window; then per member, then per variant,
# so no exposure row leaves the database.
_RESULTS_SQL = """
SELECT m.variant_id,
       COUNT(*) AS members,
       SUM(m.exposures) AS exposures,
       SUM(m.clicks) AS clicks,
       SUM(m.conversions) AS conversions,
       SUM(m.clicks > 0) AS clicked_members,
       SUM(m.conversions > 0) AS converted_members
FROM (
    SELECT x.variant_id, x.member_id,
           COUNT(*) AS exposures, SUM(x.clicked) AS clicks, SUM(x.converted) AS conversions
    FROM (
        SELECT e.variant_id, e.member_id,
               EXISTS (
                   SELECT 1
                   FROM webtoon_episode_view_history v
                   JOIN webtoon_episode ep ON ep.id = v.episode_id
                   WHERE v.member_id = e.member_id
                     AND ep.webtoon_id = e.webtoon_id
                     AND v.episode_viewed_at > e.exposed_at
                     AND v.episode_viewed_at <= e.exposed_at + INTERVAL %(window)s DAY
               ) AS clicked,
               EXISTS (
                   SELECT 1
                   FROM member_webtoon_interaction i
                   WHERE i.member_id = e.member_id
                     AND i.webtoon_id = e.webtoon_id
                     AND ((i.liked AND i.liked_at > e.exposed_at
                           AND i.liked_at <= e.exposed_at + INTERVAL %(window)s DAY)
                       OR (i.bookmarked AND i.updated_at > e.exposed_at
                           AND i.updated_at <= e.exposed_at + INTERVAL %(window)s DAY))
               ) AS converted
        FROM recommendation_exposure e
        WHERE e.experiment_id = %(experiment)s
    ) x
    GROUP BY x.variant_id, x.member_id
) m
GROUP BY m.variant_id
"""


def _rate(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def _wilson(successes: int, n: int, z: float) -> tuple[float, float]:
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z / denominator * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def compare_proportions(
    control_successes: int,
    control_n: int,
    variant_successes: int,
    variant_n: int,
    alpha: float = DEFAULT_ALPHA,
) -> dict[str, Any]:
    """Two-proportion test of a variant against the control.

    chi-square on the 2x2 table (Yates-corrected), or Fisher's exact test when an
    expected count is below 5; the confidence interval of the difference (variant minus
    control) is Newcombe's hybrid score interval, which stays inside [-1, 1] and behaves
    at rates near 0, where the Wald interval does not.
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    for name, successes, n in (
        ("control", control_successes, control_n),
        ("variant", variant_successes, variant_n),
    ):
        if n < 0 or not 0 <= successes <= n:
            raise ValueError(f"{name}: {successes} successes out of {n} is not a proportion")
    result: dict[str, Any] = {
        "control_rate": _rate(control_successes, control_n),
        "variant_rate": _rate(variant_successes, variant_n),
        "difference": None,
        "relative_lift": None,
        "ci_low": None,
        "ci_high": None,
        "confidence": 1 - alpha,
        "test": None,
        "p_value": None,
        "significant": False,
    }
    if control_n == 0 or variant_n == 0:
        return result
    p_control = control_successes / control_n
    p_variant = variant_successes / variant_n
    difference = p_variant - p_control
    z = float(stats.norm.ppf(1 - alpha / 2))
    low_c, high_c = _wilson(control_successes, control_n, z)
    low_v, high_v = _wilson(variant_successes, variant_n, z)
    result.update(
        difference=difference,
        relative_lift=difference / p_control if p_control else None,
        ci_low=difference - math.sqrt((p_variant - low_v) ** 2 + (high_c - p_control) ** 2),
        ci_high=difference + math.sqrt((high_v - p_variant) ** 2 + (p_control - low_c) ** 2),
    )
    table = [
        [control_successes, control_n - control_successes],
        [variant_successes, variant_n - variant_successes],
    ]
    total = control_n + variant_n
    successes = control_successes + variant_successes
    if successes == 0 or successes == total:
        # Every member of both groups behaved the same: nothing to tell apart.
        result.update(test="none", p_value=1.0)
        return result
    smallest_expected = min(control_n, variant_n) * min(successes, total - successes) / total
    if smallest_expected < MIN_EXPECTED_FOR_CHI2:
        _, p_value = stats.fisher_exact(table)
        result["test"] = "fisher_exact"
    else:
        _, p_value, _, _ = stats.chi2_contingency(table, correction=True)
        result["test"] = "chi2"
    result["p_value"] = float(p_value)
    result["significant"] = bool(p_value < alpha)
    return result


def experiment_results(
    conn: pymysql.connections.Connection,
    code: str,
    window_days: int = DEFAULT_WINDOW_DAYS,
    alpha: float = DEFAULT_ALPHA,
) -> dict[str, Any]:
    """Online metrics per variant and each variant's test against the control.

    Returns (JSON-able)::

        {"experiment": code, "status", "window_days", "alpha", "control": name,
         "variants": {name: {"algorithm", "weight", "params", "members", "exposures",
                             "clicks", "click_through_rate", "clicked_members",
                             "member_click_rate", "conversions", "converted_members",
                             "member_conversion_rate",
                             "vs_control": None for the control, else
                                 {"member_conversion": {...}, "member_click": {...}}}}}

    where each test is ``compare_proportions``'s dict (p_value, relative_lift,
    difference, ci_low, ci_high, significant, ...). Clicks and conversions count
    exposures; the tests count members, the unit of randomisation, so a member shown
    many lists does not weigh more than one shown a single list. Exposures younger than
    ``window_days`` are still collecting activity.
    """
    if isinstance(window_days, bool) or not isinstance(window_days, Integral) or window_days <= 0:
        raise ValueError(f"window_days must be a positive integer, got {window_days!r}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    experiment = get_experiment(conn, code)
    with _dict_cursor(conn) as cur:
        cur.execute(_RESULTS_SQL, {"window": int(window_days), "experiment": experiment.id})
        counts = {row["variant_id"]: row for row in cur.fetchall()}

    variants: dict[str, dict[str, Any]] = {}
    for variant in experiment.variants:
        row = counts.get(variant.id, {})
        members = int(row.get("members") or 0)
        exposures = int(row.get("exposures") or 0)
        clicks = int(row.get("clicks") or 0)
        conversions = int(row.get("conversions") or 0)
        clicked_members = int(row.get("clicked_members") or 0)
        converted_members = int(row.get("converted_members") or 0)
        variants[variant.name] = {
            "algorithm": variant.algorithm,
            "weight": variant.weight,
            "params": variant.params,
            "members": members,
            "exposures": exposures,
            "clicks": clicks,
            "click_through_rate": _rate(clicks, exposures),
            "clicked_members": clicked_members,
            "member_click_rate": _rate(clicked_members, members),
            "conversions": conversions,
            "converted_members": converted_members,
            "member_conversion_rate": _rate(converted_members, members),
            "vs_control": None,
        }

    control = variants[experiment.control.name]
    for variant in experiment.variants[1:]:
        entry = variants[variant.name]
        entry["vs_control"] = {
            "member_conversion": compare_proportions(
                control["converted_members"], control["members"],
                entry["converted_members"], entry["members"], alpha,
            ),
            "member_click": compare_proportions(
                control["clicked_members"], control["members"],
                entry["clicked_members"], entry["members"], alpha,
            ),
        }
    return {
        "experiment": experiment.code,
        "status": experiment.status,
        "window_days": int(window_days),
        "alpha": alpha,
        "control": experiment.control.name,
        "variants": variants,
    }
