"""Member assignment, experiment validation and the two-proportion comparison."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from recommender.experiments import (
    Experiment,
    InvalidExperiment,
    Variant,
    assign,
    compare_proportions,
)

ROOT = Path(__file__).resolve().parents[3]


def experiment(salt="salt-1", weights=(1, 1), code="exp"):
    names = "ABCDEFGH"
    return Experiment(
        code=code,
        salt=salt,
        variants=tuple(
            Variant(name=names[i], weight=w, algorithm="als", params={"factors": 64})
            for i, w in enumerate(weights)
        ),
    )


# -- assignment ---------------------------------------------------------------------


def test_a_member_keeps_its_variant_across_calls_and_experiment_objects():
    rows = dict(code="exp", salt="s3cr3t", variants=(
        {"name": "control", "weight": 1, "algorithm": "als", "params": {}, "id": 10},
        {"name": "hybrid", "weight": 1, "algorithm": "hybrid", "params": {"k": 5}, "id": 11},
    ))
    first, second = Experiment(**rows), Experiment(**rows)
    members = range(1, 5001)
    once = [assign(first, m).name for m in members]
    assert once == [assign(first, m).name for m in members]
    assert once == [assign(second, m).name for m in members]
    assert set(once) == {"control", "hybrid"}


def test_assignment_is_pinned_and_the_same_in_another_python_process():
    exp = experiment(salt="golden")
    here = [assign(exp, m).name for m in range(1, 41)]
    # Pinned: a change of the hash or of the bucket walk would reshuffle every
    # running experiment's members.
    assert "".join(here) == "AAABBABAABBBBAAABAAABAAABABBAABABBBBBAAB"
    script = (
        "import json; from recommender.experiments import Experiment, Variant, assign; "
        "e = Experiment(code='exp', salt='golden', variants=(Variant('A', 1, 'als', "
        "{'factors': 64}), Variant('B', 1, 'als', {'factors': 64}))); "
        "print(json.dumps([assign(e, m).name for m in range(1, 41)]))"
    )
    # Another interpreter with a different string-hash seed: hash() would disagree.
    other = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True,
        env={**os.environ, "PYTHONHASHSEED": "12345"},
    )
    assert json.loads(other.stdout) == here


def test_weights_are_respected_over_100k_members():
    exp = experiment(weights=(1, 2, 7))
    counts = Counter(assign(exp, m).name for m in range(100_000))
    # Binomial sd at n=100k is under 0.0015; 0.005 is more than 3 sd.
    assert counts["A"] / 100_000 == pytest.approx(0.1, abs=0.005)
    assert counts["B"] / 100_000 == pytest.approx(0.2, abs=0.005)
    assert counts["C"] / 100_000 == pytest.approx(0.7, abs=0.005)


def test_different_salts_shuffle_members_independently():
    first = experiment(salt="exp-one")
    second = experiment(salt="exp-two")
    n = 100_000
    cells = Counter((assign(first, m).name, assign(second, m).name) for m in range(n))
    # Independent 50/50 splits: each of the four pairs holds a quarter of the members.
    for pair in (("A", "A"), ("A", "B"), ("B", "A"), ("B", "B")):
        assert cells[pair] / n == pytest.approx(0.25, abs=0.006)


def test_assign_rejects_a_non_integer_member_id():
    exp = experiment()
    for bad in ("12", 1.5, None, True):
        with pytest.raises(ValueError, match="member_id"):
            assign(exp, bad)


# -- validation ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "variants, message",
    [
        ((Variant("A"),), "at least 2 variants"),
        ((), "at least 2 variants"),
        ((Variant("A"), Variant("A")), "unique"),
        (({"name": "A"}, {"name": "B", "colour": "red"}), "bad variant definition"),
        (("A", "B"), "must be a Variant or a mapping"),
    ],
)
def test_experiment_validation(variants, message):
    with pytest.raises(InvalidExperiment, match=message):
        Experiment(code="exp", salt="s", variants=variants)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(name=""), "non-empty"),
        (dict(name="x" * 65), "longer than 64"),
        (dict(name="A", weight=0), "positive"),
        (dict(name="A", weight=-2), "positive"),
        (dict(name="A", weight=1.5), "integer"),
        (dict(name="A", weight=True), "integer"),
        (dict(name="A", algorithm="svd"), "not one of als, hybrid, content, popularity"),
        (dict(name="A", params=[1, 2]), "JSON object"),
        (dict(name="A", params={"a": {1, 2}}), "JSON-serialisable"),
        (dict(name="A", params={"a": float("nan")}), "JSON-serialisable"),
    ],
)
def test_variant_validation(kwargs, message):
    with pytest.raises(InvalidExperiment, match=message):
        Variant(**kwargs)


def test_invalid_experiment_is_a_value_error_and_code_and_salt_are_checked():
    assert issubclass(InvalidExperiment, ValueError)
    with pytest.raises(InvalidExperiment, match="code"):
        Experiment(code="", salt="s", variants=(Variant("A"), Variant("B")))
    with pytest.raises(InvalidExperiment, match="salt"):
        Experiment(code="exp", salt="", variants=(Variant("A"), Variant("B")))


def test_variant_params_are_kept_as_json_would_return_them():
    variant = Variant("A", params={"factors": 64, "weights": (1, 2)})
    assert variant.params == {"factors": 64, "weights": [1, 2]}


# -- comparison -----------------------------------------------------------------------


def test_newcombe_interval_matches_the_published_example():
    # Newcombe (1998), Stat Med 17:873, method 10: 56/70 vs 48/80 -> 0.0524 to 0.3339.
    result = compare_proportions(48, 80, 56, 70)
    assert result["difference"] == pytest.approx(0.2)
    assert result["ci_low"] == pytest.approx(0.0524, abs=1e-4)
    assert result["ci_high"] == pytest.approx(0.3339, abs=1e-4)
    assert result["relative_lift"] == pytest.approx(0.2 / 0.6)
    assert result["test"] == "chi2"


def test_a_clear_difference_is_significant_and_equal_rates_are_not():
    better = compare_proportions(100, 1000, 200, 1000)
    assert better["significant"] and better["p_value"] < 1e-6
    assert better["relative_lift"] == pytest.approx(1.0)
    assert 0 < better["ci_low"] < 0.1 < better["ci_high"]
    same = compare_proportions(100, 1000, 100, 1000)
    assert not same["significant"] and same["p_value"] > 0.5
    assert same["ci_low"] < 0 < same["ci_high"]


def test_small_counts_use_the_exact_test_and_degenerate_tables_do_not_crash():
    small = compare_proportions(0, 10, 4, 10)
    assert small["test"] == "fisher_exact"
    assert small["relative_lift"] is None  # no lift over a zero control rate
    assert small["p_value"] == pytest.approx(0.0867, abs=1e-3)
    nothing = compare_proportions(0, 500, 0, 500)
    assert nothing["p_value"] == 1.0 and not nothing["significant"]
    empty = compare_proportions(0, 0, 3, 10)
    assert empty["p_value"] is None and not empty["significant"]
    with pytest.raises(ValueError, match="not a proportion"):
        compare_proportions(5, 4, 1, 10)
    with pytest.raises(ValueError, match="alpha"):
        compare_proportions(1, 10, 1, 10, alpha=1.5)


def test_a_a_comparisons_are_significant_about_alpha_of_the_time_or_less():
    rng = np.random.default_rng(42)
    control = rng.binomial(1000, 0.1, size=2000)
    variant = rng.binomial(1000, 0.1, size=2000)
    false_positives = sum(
        compare_proportions(int(c), 1000, int(v), 1000)["significant"]
        for c, v in zip(control, variant, strict=True)
    )
    # Yates' correction makes the test conservative: at most alpha, not far below.
    assert 0.02 < false_positives / 2000 <= 0.06
