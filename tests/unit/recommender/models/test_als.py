"""ALS: planted structure recovered, seen filtering, fold-in, persistence, bad input."""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from recommender.models import als
from recommender.models.als import AlternatingLeastSquares
from recommender.models.base import NotFittedError, Recommender, top_n, top_n_by_blocks


def planted(members: int = 60, webtoons: int = 40, groups: int = 2, keep: float = 0.7,
            seed: int = 0) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray]:
    """Members of group g read (a random `keep` share of) the webtoons of group g."""
    rng = np.random.default_rng(seed)
    member_group = np.arange(members) % groups
    webtoon_group = np.arange(webtoons) % groups
    dense = (member_group[:, None] == webtoon_group[None, :]) & (
        rng.random((members, webtoons)) < keep)
    return sp.csr_matrix(dense.astype(np.float32) * 4), member_group, webtoon_group


def fitted(solver: str = "cg", threads: int = 1, **options) -> tuple:
    matrix, member_group, webtoon_group = planted()
    model = AlternatingLeastSquares(factors=4, regularization=1.0, iterations=15,
                                    random_state=1, num_threads=threads, solver=solver,
                                    **options)
    return model.fit(matrix), matrix, member_group, webtoon_group


@pytest.mark.parametrize("solver", ["cg", "exact"])
def test_recovers_planted_blocks(solver):
    model, matrix, member_group, webtoon_group = fitted(solver)
    ids, scores = model.recommend(np.arange(matrix.shape[0]), matrix, n=5)
    unread_in_group = ((webtoon_group[None, :] == member_group[:, None])
                       & (matrix.toarray() == 0)).sum(axis=1)
    for member, row in enumerate(ids):
        top = row[:min(5, unread_in_group[member])]
        assert (webtoon_group[top] == member_group[member]).all()
    assert (np.diff(scores, axis=1) <= 0).all()
    assert model.user_factors.dtype == np.float32 and model.item_factors.shape == (40, 4)


def test_helper_processes_give_the_same_factors_as_one_process():
    one, *_ = fitted(threads=1)
    two, *_ = fitted(threads=2)
    np.testing.assert_allclose(one.user_factors, two.user_factors, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(one.item_factors, two.item_factors, rtol=1e-4, atol=1e-6)


def test_seen_items_filtered_by_default_and_on_request_only():
    model, matrix, *_ = fitted()
    users = np.arange(matrix.shape[0])
    ids, _ = model.recommend(users, matrix, n=10)
    assert not any(matrix[u, i] for u, row in zip(users, ids, strict=True) for i in row)
    ids, _ = model.recommend(users, matrix, n=10, filter_seen=False)
    assert sum(matrix[u, i] > 0 for u, row in zip(users, ids, strict=True) for i in row) > 0


def test_fold_in_of_own_row_matches_fitted_factors():
    matrix, *_ = planted()
    # The fit ends on a webtoon half-step, so the members' factors match a fold-in
    # against the final webtoon factors only once converged.
    model = AlternatingLeastSquares(factors=8, regularization=0.1, iterations=100,
                                    random_state=1, num_threads=1, solver="exact")
    model.fit(matrix)
    rows = model.fold_in(matrix[:5])
    np.testing.assert_allclose(rows, model.user_factors[:5], atol=5e-3)
    one = model.fold_in(matrix[3])
    np.testing.assert_allclose(one[0], rows[3], rtol=1e-3, atol=1e-5)


def test_recommend_history_single_row_matches_batch_path():
    model, matrix, *_ = fitted()
    single_ids, single_scores = model.recommend_history(matrix[7], n=6)
    batch_ids, batch_scores = model.recommend_history(matrix[6:9], n=6)
    np.testing.assert_array_equal(single_ids[0], batch_ids[1])
    np.testing.assert_allclose(single_scores[0], batch_scores[1], rtol=1e-4)


def test_new_member_history_gets_their_group():
    model, _, _, webtoon_group = fitted()
    history = sp.csr_matrix((np.full(3, 4.0), ([0, 0, 0], [1, 3, 5])), shape=(1, 40))
    ids, _ = model.recommend_history(history, n=5)
    assert (webtoon_group[ids[0]] == 1).all()
    assert not set(ids[0]) & {1, 3, 5}


def test_negative_confidence_pushes_the_webtoon_down():
    matrix, *_ = planted()
    target = 2  # a group-0 webtoon member 0 did not read
    matrix = matrix.tolil()
    matrix[0, target] = 0
    plain = AlternatingLeastSquares(factors=8, regularization=0.1, random_state=1,
                                    num_threads=1).fit(matrix.tocsr())
    matrix[0, target] = -20
    dropped = AlternatingLeastSquares(factors=8, regularization=0.1, random_state=1,
                                      num_threads=1).fit(matrix.tocsr())
    before = plain.user_factors[0] @ plain.item_factors[target]
    after = dropped.user_factors[0] @ dropped.item_factors[target]
    assert after < before - 0.1


def test_round_trip_through_arrays_gives_identical_answers():
    model, matrix, *_ = fitted()
    copy = AlternatingLeastSquares.from_arrays(model.params(), model.to_arrays())
    users = np.arange(10)
    for answer, again in [
        (model.recommend(users, matrix[:10]), copy.recommend(users, matrix[:10])),
        (model.recommend_history(matrix[:10]), copy.recommend_history(matrix[:10])),
        (model.similar_items(np.arange(5)), copy.similar_items(np.arange(5))),
    ]:
        np.testing.assert_array_equal(answer[0], again[0])
        np.testing.assert_array_equal(answer[1], again[1])


def test_similar_items_are_cosine_neighbours_without_themselves():
    model, _, _, webtoon_group = fitted()
    ids, scores = model.similar_items(np.array([0, 1]), n=5)
    assert 0 not in ids[0] and 1 not in ids[1]
    assert (webtoon_group[ids] == np.array([[0], [1]])).all()
    assert (scores <= 1.0001).all() and (scores > 0.5).all()


def test_recommend_all_threads_match_the_base_behaviour():
    model, matrix, *_ = fitted()
    model.num_threads = 2
    users = np.arange(matrix.shape[0])
    threaded = model.recommend(users, matrix, n=7, batch_rows=8)
    model.num_threads = 1
    plain = model.recommend(users, matrix, n=7, batch_rows=8)
    np.testing.assert_array_equal(threaded[0], plain[0])
    np.testing.assert_array_equal(threaded[1], plain[1])
    for filter_seen in (True, False):  # and the base class's loop gives the same answers
        ours = model.recommend(users, matrix, n=7, filter_seen=filter_seen)
        base = Recommender._ranked(model, users, matrix, 7, filter_seen, 16)
        np.testing.assert_array_equal(ours[0], base[0])
        np.testing.assert_allclose(ours[1], base[1], rtol=1e-6)


@pytest.mark.parametrize("options", [
    {"factors": 0}, {"regularization": -1.0}, {"alpha": 0}, {"iterations": -1},
    {"num_threads": -2}, {"solver": "sgd"}, {"cg_steps": 0}, {"factors": 2.5},
])
def test_bad_parameters_are_rejected(options):
    with pytest.raises(ValueError):
        AlternatingLeastSquares(**options)


def test_bad_input_errors():
    model = AlternatingLeastSquares(factors=4, iterations=2, num_threads=1)
    with pytest.raises(NotFittedError):
        model.recommend(np.array([0]), sp.csr_matrix((1, 3)))
    with pytest.raises(ValueError, match="empty"):
        model.fit(sp.csr_matrix((0, 3)))
    with pytest.raises(ValueError, match="NaN"):
        model.fit(sp.csr_matrix(np.array([[1.0, np.nan]])))
    matrix, *_ = planted()
    model.fit(matrix)
    with pytest.raises(ValueError, match="columns"):
        model.recommend_history(sp.csr_matrix((1, 41)))
    with pytest.raises(ValueError, match="user ids"):
        model.recommend(np.array([60]), matrix[:1])
    with pytest.raises(ValueError, match="item ids"):
        model.similar_items(np.array([40]))
    with pytest.raises(ValueError, match="item_factors"):
        AlternatingLeastSquares.from_arrays(model.params(), {"user_factors": np.ones((2, 4))})


def test_block_top_n_matches_top_n():
    rng = np.random.default_rng(5)
    scores = rng.standard_normal((50, 3000)).astype(np.float32)
    scores[3, :] = -np.inf
    scores[3, [7, 9]] = [1.0, 2.0]  # fewer finite scores than n: the fallback path
    scores[4, 100:] = -np.inf
    expected = top_n(scores, 10)
    got = top_n_by_blocks(scores, 10)
    np.testing.assert_array_equal(got[0], expected[0])
    np.testing.assert_array_equal(got[1], expected[1])
    for row in (0, 3, 4, 49):  # the single-row path (fold-in + top-n)
        ids, best = top_n_by_blocks(scores[row:row + 1], 10)
        np.testing.assert_array_equal(ids[0], expected[0][row])
        np.testing.assert_array_equal(best[0], expected[1][row])


@pytest.mark.parametrize(("solver", "alpha"), [("cg", 1.0), ("exact", 1.0), ("cg", 0.1)])
def test_long_rows_through_their_gram_matrix_match_the_gathered_path(
        monkeypatch, solver, alpha):
    # alpha 0.1: confidences 0.4 < 1, so negative weights (the general product path).
    plain, *_ = fitted(solver, alpha=alpha)
    monkeypatch.setattr(als, "LONG_ROW", 8)  # every planted row (~14 entries) is "long"
    long, *_ = fitted(solver, alpha=alpha)
    # The long path accumulates in float64, the gathered one in float32: the 3-step CG
    # amplifies that rounding a little (factors are of order 1).
    np.testing.assert_allclose(long.user_factors, plain.user_factors, atol=1e-3)
    np.testing.assert_allclose(long.item_factors, plain.item_factors, atol=1e-3)


def child_pids() -> set[int]:
    pid = os.getpid()
    return {int(child) for task in Path(f"/proc/{pid}/task").iterdir()
            for child in (task / "children").read_text().split()}


needs_fork = pytest.mark.skipif(not Path("/proc/self/task").exists() or not hasattr(os, "fork"),
                                reason="Linux only (fork, /proc)")


@needs_fork
def test_a_failing_helper_raises_in_the_parent_and_is_reaped(monkeypatch):
    # Like an RQ worker's heartbeat: another thread logging (holding logging's locks on
    # and off) while fit forks; the helper must not need them to report its failure.
    logger = logging.getLogger("heartbeat")
    logger.addHandler(logging.NullHandler())
    beating = threading.Event()

    def heartbeat() -> None:
        while not beating.is_set():
            logger.warning("alive")

    parent = os.getpid()
    solve = als._solve_cg

    def failing_in_helper(*args, **kwargs):
        if os.getpid() != parent:
            raise FloatingPointError("boom in the helper")
        return solve(*args, **kwargs)

    monkeypatch.setattr(als, "_solve_cg", failing_in_helper)
    before = child_pids()
    outcome: list[BaseException] = []

    def fit() -> None:
        try:
            fitted(threads=2)
        except BaseException as exc:  # noqa: BLE001 - checked below
            outcome.append(exc)

    beat = threading.Thread(target=heartbeat)
    beat.start()
    try:
        worker = threading.Thread(target=fit)
        worker.start()
        worker.join(timeout=30)
        assert not worker.is_alive(), "fit hung: the helper deadlocked or was not reaped"
    finally:
        beating.set()
        beat.join()
    assert len(outcome) == 1 and isinstance(outcome[0], RuntimeError)
    assert "FloatingPointError: boom in the helper" in str(outcome[0])
    assert child_pids() == before  # no helper left, not even a zombie


@needs_fork
def test_an_exception_in_the_parent_kills_and_reaps_the_helper():
    matrix, *_ = planted()
    model = AlternatingLeastSquares(factors=4, iterations=5, num_threads=2, random_state=1)
    before = child_pids()

    def interrupt(iteration: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        model.fit(matrix, callback=interrupt)
    assert child_pids() == before
    assert model.fit(matrix).user_factors.shape == (60, 4)  # and it fits again


def test_confidence_codes_give_the_same_factors_as_float_confidences(monkeypatch):
    matrix, *_ = planted()
    matrix = matrix.copy()
    matrix.data[::3] = 2.5  # values 4.0 and 2.5: coded as uint8 into a 3-entry table
    matrix.data[5] = -3.0
    options = dict(factors=4, regularization=1.0, iterations=5, random_state=1,
                   num_threads=1)
    coded = AlternatingLeastSquares(**options).fit(matrix)
    monkeypatch.setattr(als, "_confidence_table", lambda values: None)
    plain = AlternatingLeastSquares(**options).fit(matrix)
    # A table that misses -3.0: the chunks holding it keep float32 confidences.
    monkeypatch.setattr(als, "_confidence_table",
                        lambda values: np.array([-1.0, 2.5, 4.0], dtype=np.float32))
    mixed = AlternatingLeastSquares(**options).fit(matrix)
    for model in (coded, mixed):
        np.testing.assert_array_equal(model.user_factors, plain.user_factors)
        np.testing.assert_array_equal(model.item_factors, plain.item_factors)


def test_confidence_table_only_for_few_distinct_values():
    assert list(als._confidence_table(np.array([4.0, 1.0, 4.0], np.float32))) == [-1, 1, 4]
    assert als._confidence_table(np.arange(300, dtype=np.float32)) is None
