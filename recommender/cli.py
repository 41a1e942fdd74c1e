"""``toonpick recommender ...``: the operator's commands for the recommender.

    toonpick recommender seed --members 2000 [--seed 7]     seeded members and activity
    toonpick recommender train [--params JSON] [--no-serve]  train, evaluate, store, serve
    toonpick recommender update                               top-N, similar, groups
    toonpick recommender versions | switch VERSION | rollback
    toonpick recommender show MEMBER_ID [-n 10]              a member's list (as served)
    toonpick recommender evaluate FILE.inter [--algorithm als --factors 64 ...]
    toonpick recommender experiment create CODE NAME:ALGORITHM[:WEIGHT] ... | results CODE

Training and updates run here in the foreground; ``toonpick task run
RECOMMENDATION_UPDATE`` queues the same work for a worker.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def _dump(value: Any) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False, default=str))


class CommandError(ValueError):
    """Bad arguments: printed, exit status 2."""


def _params(text: str | None) -> dict[str, Any]:
    from recommender.training import TrainingError, parse_json_object

    try:
        return parse_json_object(text or "", "--params")
    except TrainingError as exc:
        raise CommandError(str(exc)) from None


def _seed(args: argparse.Namespace, config) -> int:
    from dataclasses import asdict

    from recommender.synthetic import seed_members

    try:
        summary = seed_members(config["mariadb_url"], args.members, seed=args.seed)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    view = asdict(summary)
    view["member_ids"] = len(view["member_ids"])
    _dump(view)
    return 0


def _train(args: argparse.Namespace, config) -> int:
    from recommender.training import TrainingError, train_model

    try:
        result = train_model(config, {**_params(args.params), "serve": not args.no_serve},
                             progress=lambda p, m: print(f"[{p:5.1f}%] {m}", file=sys.stderr))
    except TrainingError as exc:
        print(f"toonpick recommender train: {exc}", file=sys.stderr)
        return 2
    _dump({"version": result.version.version, "serving": result.serving,
           "fit_seconds": round(result.version.fit_seconds, 3), "metrics": result.metrics})
    return 0


def _service(config):
    from recommender.service import RecommendationService

    if not config["redis_url"]:
        raise CommandError("set REDIS_URL (the recommendation cache)")
    return RecommendationService(config)


def _update(args: argparse.Namespace, config) -> int:
    service = _service(config)
    try:
        _dump(service.update_all(lambda p, m: print(f"[{p:5.1f}%] {m}", file=sys.stderr)))
    finally:
        service.close()
    return 0


def _versions(args: argparse.Namespace, config) -> int:
    from recommender.serving import ModelNotFound, ModelStore

    store = ModelStore.from_config(config)
    try:
        if args.rec_command == "switch":
            store.switch(args.version, reason="operator")
        elif args.rec_command == "rollback":
            store.rollback(reason="operator")
    except ModelNotFound as exc:
        print(f"toonpick recommender {args.rec_command}: {exc}", file=sys.stderr)
        return 1
    serving = store.serving_version()
    for v in store.versions():
        ndcg = ((v.metrics or {}).get("hybrid") or {}).get("ndcg")
        print(f"{'*' if v.version == serving else ' '} {v.version} {v.algorithm:<8} "
              f"members {v.n_members:>7} webtoons {v.n_webtoons:>6} "
              f"interactions {v.n_interactions:>9} fit {v.fit_seconds:7.2f}s "
              f"ndcg@10 {'-' if ndcg is None else f'{ndcg:.4f}'}")
    return 0


def _show(args: argparse.Namespace, config) -> int:
    from dataclasses import asdict

    from recommender.serving import ModelNotFound

    service = _service(config)
    try:
        _dump(asdict(service.serve(args.member_id, args.n)))
    except ModelNotFound as exc:
        print(f"toonpick recommender show: {exc}", file=sys.stderr)
        return 1
    finally:
        service.close()
    return 0


def _evaluate(args: argparse.Namespace, config) -> int:
    from recommender.evaluation import evaluate_inter_file
    from recommender.models import model_class

    try:
        cls = model_class(args.algorithm)
        options = _params(args.params)
        if args.algorithm == "als":
            options = {"factors": args.factors, "iterations": args.iterations,
                       "regularization": args.regularization, "random_state": args.seed,
                       **options}
        model = cls(**options)
        metrics = evaluate_inter_file(args.file, model, seed=args.seed, k=args.k,
                                      confidence=args.confidence)
    except (ValueError, OSError, TypeError) as exc:
        print(f"toonpick recommender evaluate: {exc}", file=sys.stderr)
        return 2
    _dump(metrics)
    return 0


def _experiment(args: argparse.Namespace, config) -> int:
    from recommender import experiments
    from shared.stores.mariadb import connect

    conn = connect(config["mariadb_url"])
    try:
        if args.exp_command == "create":
            variants = []
            for spec in args.variants:
                parts = spec.split(":")
                if len(parts) not in (2, 3) or not all(parts):
                    print(f"toonpick recommender experiment create: {spec!r}: expected "
                          "NAME:ALGORITHM[:WEIGHT]", file=sys.stderr)
                    return 2
                weight = int(parts[2]) if len(parts) == 3 and parts[2].isdigit() else 1
                variants.append(experiments.Variant(parts[0], weight, parts[1], {}))
            try:
                experiment = experiments.create_experiment(conn, args.code, variants,
                                                           description=args.description)
            except ValueError as exc:
                print(f"toonpick recommender experiment create: {exc}", file=sys.stderr)
                return 2
            from dataclasses import asdict

            _dump(asdict(experiment))
        elif args.exp_command == "stop":
            experiments.stop_experiment(conn, args.code)
        else:
            _dump(experiments.experiment_results(conn, args.code, window_days=args.window_days))
    except LookupError as exc:
        print(f"toonpick recommender experiment {args.exp_command}: {exc}", file=sys.stderr)
        return 1
    finally:
        conn.close()
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    rec = sub.add_parser("recommender", help="train, serve and evaluate recommendations")
    rsub = rec.add_subparsers(dest="rec_command", required=True)

    p = rsub.add_parser("seed", help="seeded members and activity over the catalogue")
    p.add_argument("--members", type=int, default=2000)
    p.add_argument("--seed", type=int, default=7)
    p.set_defaults(rec_func=_seed)

    p = rsub.add_parser("train", help="train, evaluate and store a model version")
    p.add_argument("--params", help="JSON object of training parameters")
    p.add_argument("--no-serve", action="store_true", help="store the version, don't serve it")
    p.set_defaults(rec_func=_train)

    p = rsub.add_parser("update", help="every member's top-N, similar webtoons and groups")
    p.set_defaults(rec_func=_update)

    p = rsub.add_parser("versions", help="model versions, * = serving")
    p.set_defaults(rec_func=_versions)
    p = rsub.add_parser("switch", help="serve this model version")
    p.add_argument("version")
    p.set_defaults(rec_func=_versions)
    p = rsub.add_parser("rollback", help="serve the version that served before")
    p.set_defaults(rec_func=_versions)

    p = rsub.add_parser("show", help="a member's recommendations, as served")
    p.add_argument("member_id", type=int)
    p.add_argument("-n", type=int, default=10)
    p.set_defaults(rec_func=_show)

    p = rsub.add_parser("evaluate", help="offline metrics of a model on a RecBole .inter file")
    p.add_argument("file")
    # content and hybrid need the catalogue's features, which a .inter file lacks.
    p.add_argument("--algorithm", default="als", choices=("als", "popularity"))
    p.add_argument("--factors", type=int, default=64)
    p.add_argument("--iterations", type=int, default=15)
    p.add_argument("--regularization", type=float, default=0.01)
    p.add_argument("--confidence", type=float, default=2.0,
                   help="value of every interaction (binary data)")
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--params", help="JSON object of other model parameters")
    p.set_defaults(rec_func=_evaluate)

    exp = rsub.add_parser("experiment", help="A/B experiments: create, stop, results")
    p = exp.add_subparsers(dest="exp_command", required=True)
    c = p.add_parser("create")
    c.add_argument("code")
    c.add_argument("variants", nargs="+", help="NAME:ALGORITHM[:WEIGHT]; the first is control")
    c.add_argument("--description")
    s = p.add_parser("stop")
    s.add_argument("code")
    r = p.add_parser("results")
    r.add_argument("code")
    r.add_argument("--window-days", type=int, default=7)
    exp.set_defaults(rec_func=_experiment)
    rec.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from shared.config import load_config
    from shared.stores.redis import RedisUnavailable

    try:
        return args.rec_func(args, load_config())
    except CommandError as exc:
        print(f"toonpick recommender {args.rec_command}: {exc}", file=sys.stderr)
        return 2
    except RedisUnavailable as exc:  # the cache: its own line names where and which timeout
        print(f"toonpick recommender {args.rec_command}: {exc}", file=sys.stderr)
        return 1
