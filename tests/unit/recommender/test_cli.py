"""``toonpick recommender evaluate`` on RecBole .inter files, and its bad input."""

from __future__ import annotations

import json

import numpy as np

from shared.cli import main


def _write_inter(path, rng) -> int:
    """Two taste groups of 30 members over two groups of 15 items, plus noise."""
    lines = ["user_id:token\titem_id:token\trating:float\ttimestamp:float"]
    for user in range(60):
        group = user % 2
        items = rng.choice(15, size=8, replace=False) + 15 * group
        for item in items:
            lines.append(f"u{user}\ti{item}\t{rng.integers(1, 6)}\t{rng.integers(10**9)}")
    path.write_text("\n".join(lines) + "\n")
    return len(lines) - 1


def test_evaluate_prints_the_metrics_of_a_model_on_an_inter_file(tmp_path, capsys):
    path = tmp_path / "toy.inter"
    rows = _write_inter(path, np.random.default_rng(1))
    assert main(["recommender", "evaluate", str(path), "--factors", "4", "--iterations", "8",
                 "--regularization", "0.1", "--k", "5"]) == 0
    als = json.loads(capsys.readouterr().out)
    assert als["members"] == 60 and als["webtoons"] == 30 and als["interactions"] == rows
    assert als["train_interactions"] + als["test_interactions"] == rows
    assert set(als) >= {"precision", "map", "ndcg", "recall", "coverage", "fit_seconds"}

    assert main(["recommender", "evaluate", str(path), "--algorithm", "popularity",
                 "--k", "5"]) == 0
    popularity = json.loads(capsys.readouterr().out)
    # The groups are invisible to popularity and plain to ALS.
    assert als["ndcg"] > popularity["ndcg"] + 0.2


def test_evaluate_rejects_bad_files_and_arguments_with_exit_2(tmp_path, capsys):
    assert main(["recommender", "evaluate", str(tmp_path / "missing.inter")]) == 2
    assert "missing.inter" in capsys.readouterr().err
    bad = tmp_path / "bad.inter"
    bad.write_text("user_id:token\titem_id:token\nu1\ti1\nu2\n")
    assert main(["recommender", "evaluate", str(bad)]) == 2
    assert "line 3" in capsys.readouterr().err
    good = tmp_path / "good.inter"
    _write_inter(good, np.random.default_rng(2))
    assert main(["recommender", "evaluate", str(good), "--params", "[1]"]) == 2
    assert "JSON object" in capsys.readouterr().err
    assert main(["recommender", "evaluate", str(good), "--params", '{"factorz": 3}']) == 2
    assert "factorz" in capsys.readouterr().err
