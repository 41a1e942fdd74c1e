"""``toonpick``: the worker's command line.

    toonpick demo [--titles N ...]     services must answer; simulator + crawl + summary,
                                       then seeded members, training, recommendations
    toonpick crawl naver [--new]       join the open run (or start one), wait, report
    toonpick db migrate                apply MariaDB migrations
    toonpick simulator --port 8800     the offline platform simulator
    toonpick config [--markdown]       resolved settings / the README table
    toonpick worker [--queue Q] [--burst]          a task worker (RQ), reconciling at start-up
    toonpick scheduler [--once [--now ISO] [--since ISO]]  enqueue schedule slots
    toonpick task run TYPE --params JSON [--force] | show ID | list | stop ID
    toonpick crawl dead-letters list|replay RUN_ID --spider S [--crawl]   (or toonpick dead-letters)
    toonpick recommender seed | train | update | versions | show ID | evaluate FILE ...

Subcommands import their packages lazily so ``toonpick config`` works in any
process kind's environment.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, NoReturn


def _cmd_config(args: argparse.Namespace) -> int:
    from shared.config import load_config, markdown_table, redacted_config

    if args.markdown:
        print(markdown_table())
        return 0
    for name, value in redacted_config(load_config()).items():
        print(f"{name} = {value}")
    return 0


def _cmd_migrate(args: argparse.Namespace) -> int:
    from shared.config import load_config
    from shared.schema.migrate import migrate

    url = args.url or load_config().mariadb_url
    applied = migrate(url)
    print(f"applied {len(applied)} migration(s): {', '.join(applied) or 'none, up to date'}")
    return 0


def _cmd_simulator(rest: Sequence[str]) -> int:
    from crawler.simulator.__main__ import main as simulator_main

    return simulator_main(list(rest))


def _cmd_crawl(args: argparse.Namespace) -> int:
    from dataclasses import replace
    from pathlib import Path

    from crawler.demo import (
        RunChoiceError,
        choose_run,
        crawl_and_report,
        run_stats,
        single_process_run,
    )
    from crawler.launcher import CrawlRequest, LaunchError
    from crawler.run_report import format_run, run_problems
    from shared.config import load_config

    try:
        request = CrawlRequest(args.spider, mode=args.mode, title=args.title,
                               today=args.today, **({"run_id": args.run_id} if args.run_id else {}))
    except LaunchError as exc:
        print(f"toonpick crawl: {exc}", file=sys.stderr)
        return 2
    if args.new and args.run_id:
        print("toonpick crawl: --new and --run-id exclude each other", file=sys.stderr)
        return 2
    redis_url = load_config().redis_url
    if redis_url:
        try:
            choice = choose_run(redis_url, request, args.run_id, args.new)
        except RunChoiceError as exc:
            print(f"toonpick crawl: {exc}", file=sys.stderr)
            return 2
        print(f"toonpick crawl {request.spider}: {choice.message}", flush=True)
        if choice.how == "done":
            run = run_stats(redis_url, request.spider, choice.run_id)
            print(format_run(run))
            return 1 if run_problems(run) else 0
        request = replace(request, run_id=choice.run_id)
    try:
        report = crawl_and_report(request, nodes=args.nodes, timeout=args.timeout)
    except LaunchError as exc:
        print(f"toonpick crawl: {exc}", file=sys.stderr)
        return 2
    if redis_url:
        report["run_choice"] = choice.how
        print(format_run(run_stats(redis_url, request.spider, request.run_id)))
    else:
        print(f"single-process crawl (no REDIS_URL): {request.spider}, "
              f"exit codes {report['exit_codes']}")
        print(format_run(single_process_run(request, Path(report["stats_file"]))))
    for path in report["logs"]:
        print(f"node log: {path}")
    print(json.dumps(report, indent=2, ensure_ascii=False, default=str))
    return 0 if report.get("ok") else 1


def _cmd_demo(args: argparse.Namespace) -> int:
    from crawler.demo import LOCAL_REDIS, run_demo
    from crawler.launcher import REPO_ROOT
    from shared.config import load_config

    code = run_demo(titles=args.titles, episodes=args.episodes, seed=args.seed,
                    nodes=args.nodes, fresh=not args.keep_stores)
    if args.members <= 0:
        return code
    from recommender.demo import run_recommender_demo

    ok = run_recommender_demo(load_config().redis_url or LOCAL_REDIS, REPO_ROOT / ".run" / "logs",
                              members=args.members, seed=args.seed, fresh=not args.keep_stores)
    return code if ok else 1


def _moment(text: str, timezone: str) -> datetime:
    """An ISO date-time; one without an offset is read in ``timezone`` (the platforms')."""
    from zoneinfo import ZoneInfo

    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO date-time (e.g. 2025-03-01T02:00+09:00)") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=ZoneInfo(timezone))


def _logging(level: str) -> None:
    import logging

    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def _reach_stores(mariadb_url: str, redis_url: str) -> None:
    """Open and close one connection to each store a task process needs, so a wrong
    password or a server that is down ends the command (main() says it in one line)
    instead of being retried and logged by a process that then reports success."""
    from shared.stores.mariadb import connect
    from shared.stores.redis import redis_client

    connect(mariadb_url).close()
    client = redis_client(redis_url)
    try:
        client.ping()
    finally:
        client.close()


def _cmd_worker(args: argparse.Namespace) -> int:
    from shared.config import load_config
    from shared.tasks.worker import run_worker

    config = load_config()
    _logging(config.log_level)
    if not config.redis_url:
        print("toonpick worker: set REDIS_URL (jobs are queued in Redis)", file=sys.stderr)
        return 2
    _reach_stores(config.mariadb_url, config.redis_url)
    run_worker(args.queues or None, burst=args.burst, name=args.name,
               logging_level=config.log_level)
    return 0


def _cmd_scheduler(args: argparse.Namespace) -> int:
    from shared.config import load_config
    from shared.tasks.scheduler_process import run_scheduler, tick_once

    config = load_config()
    _logging(config.log_level)
    if not config.redis_url:
        print("toonpick scheduler: set REDIS_URL (jobs are queued in Redis)", file=sys.stderr)
        return 2
    _reach_stores(config.mariadb_url, config.redis_url)
    if not args.once:
        if args.now or args.since:
            print("toonpick scheduler: --now and --since go with --once", file=sys.stderr)
            return 2
        run_scheduler(config)
        return 0
    try:
        now = _moment(args.now, config.timezone) if args.now else datetime.now(UTC)
        since = _moment(args.since, config.timezone) if args.since else None
    except argparse.ArgumentTypeError as exc:
        print(f"toonpick scheduler: {exc}", file=sys.stderr)
        return 2
    if since is not None and since >= now:
        print("toonpick scheduler: --since must be before --now", file=sys.stderr)
        return 2
    outcomes = tick_once(now, since, config)
    print(json.dumps([{"schedule": o.schedule_name, "slot": o.slot_at.isoformat(),
                       "status": o.status.value, "execution_id": o.execution_id,
                       "late": o.late, "error": o.error} for o in outcomes], indent=2))
    return 0


def _cmd_task(args: argparse.Namespace) -> int:
    from shared.config import load_config
    from shared.tasks import TaskError, TaskRepository
    from shared.tasks.types import (
        InvalidParams,
        UnknownTaskType,
        import_task_modules,
        parse_module_list,
    )

    config = load_config()
    if args.task_command == "run":
        from shared.tasks.runner import enqueue_task

        try:
            params = json.loads(args.params)
        except json.JSONDecodeError as exc:
            print(f"toonpick task run: --params is not JSON: {exc}", file=sys.stderr)
            return 2
        if not config.redis_url:
            print("toonpick task run: set REDIS_URL (jobs are queued in Redis)", file=sys.stderr)
            return 2
        import_task_modules(parse_module_list(config.task_modules))
        try:
            execution_id = enqueue_task(config.mariadb_url, config.redis_url, args.task_type,
                                        params, "api", force=args.force)
        except (InvalidParams, UnknownTaskType) as exc:
            # Refused before anything was recorded: the request itself is wrong.
            print(f"toonpick task run: {exc}", file=sys.stderr)
            return 2
        except TaskError as exc:
            print(f"toonpick task run: {exc}", file=sys.stderr)
            return 1
        print(json.dumps({"execution_id": execution_id}))
        return 0
    repository = TaskRepository(config.mariadb_url)
    try:
        if args.task_command == "list":
            try:
                executions = repository.list_executions(task_type=args.type,
                                                        status=args.status, limit=args.limit)
            except ValueError as exc:
                print(f"toonpick task list: {exc}", file=sys.stderr)
                return 2
            for e in executions:
                print(f"{e.id:>6} {e.task_type:<28} {e.status:<10} {e.trigger:<8} "
                      f"{e.progress:>3}% {e.created_at:%Y-%m-%d %H:%M:%S} "
                      f"{e.progress_message or ''}")
            return 0
        try:
            if args.task_command == "stop":
                print(json.dumps({"execution_id": args.execution_id,
                                  "status": str(repository.request_stop(args.execution_id))}))
                return 0
            execution = repository.get(args.execution_id)
        except TaskError as exc:
            print(f"toonpick task {args.task_command}: {exc}", file=sys.stderr)
            return 1
        view = execution.as_dict()
        view["checkpoint"] = repository.load_checkpoint(execution.id)
        print(json.dumps(view, indent=2, ensure_ascii=False, default=str))
        return 0
    finally:
        repository.close()


def _cmd_dead_letters(args: argparse.Namespace) -> int:
    import redis

    from crawler.cluster import dead_letters, runs
    from crawler.launcher import REPO_ROOT, CrawlRequest, start_nodes, wait_all
    from shared.config import load_config
    from shared.stores.redis import redis_client

    prog = f"toonpick dead-letters {args.dead_command}"
    config = load_config()
    if not config.redis_url:
        print(f"{prog}: set REDIS_URL (crawl runs live in Redis)", file=sys.stderr)
        return 2
    server = redis_client(config.redis_url)
    try:
        if args.dead_command == "list":
            letters = dead_letters.list_dead_letters(server, args.spider, args.run_id)
            print(json.dumps(letters, indent=2, ensure_ascii=False))
            return 0
        replayed = dead_letters.replay(server, args.spider, args.run_id)
        run = runs.get_run(server, args.spider, args.run_id) or {}
        report = {"spider": args.spider, "run_id": args.run_id, "replayed": replayed,
                  "status": run.get("status")}
        if not args.crawl or run.get("status") == runs.DONE:
            report["next"] = (f"toonpick crawl {args.spider} --run-id {args.run_id} "
                              f"(or any spider node given -a run_id={args.run_id})")
            print(json.dumps(report, indent=2))
            return 0
        nodes = start_nodes(CrawlRequest(args.spider, run_id=args.run_id), nodes=args.nodes,
                            log_dir=REPO_ROOT / ".run" / "logs" / "dead-letters")
        report["exit_codes"] = wait_all(nodes, timeout=args.timeout)
        run = runs.get_run(server, args.spider, args.run_id) or {}
        report.update(status=run.get("status"),
                      dead_letters=run.get("queue", {}).get("dead"),
                      logs=str(REPO_ROOT / ".run" / "logs" / "dead-letters"))
        print(json.dumps(report, indent=2))
        ok = run.get("status") == runs.DONE and not any(report["exit_codes"])
        return 0 if ok else 1
    except (LookupError, runs.RunStateError, TimeoutError) as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 1
    except redis.RedisError as exc:
        print(f"{prog}: Redis failed: {exc}", file=sys.stderr)
        return 1
    finally:
        server.close()


def _add_dead_letters_parser(sub: argparse._SubParsersAction) -> None:
    from crawler.launcher import SPIDERS

    dead = sub.add_parser("dead-letters", help="a crawl run's dead letters: list, replay "
                                               "(also as `toonpick crawl dead-letters`)")
    deadsub = dead.add_subparsers(dest="dead_command", required=True)
    for name, text in (("list", "the run's dead letters as JSON: url, callback, reason"),
                       ("replay", "put every dead letter back in the run's queue")):
        p = deadsub.add_parser(name, help=text)
        p.add_argument("run_id")
        p.add_argument("--spider", required=True, choices=SPIDERS)
        p.set_defaults(func=_cmd_dead_letters)
        if name == "replay":
            p.add_argument("--crawl", action="store_true",
                           help="then run spider node(s) on the run until it is done")
            p.add_argument("--nodes", type=_at_least(1), default=1,
                           help="spider processes with --crawl")
            p.add_argument("--timeout", type=_positive_seconds, default=3600.0,
                           help="seconds before the nodes are killed (with --crawl)")


class _Parser(argparse.ArgumentParser):
    """argparse's, with a bad argument said in one line (its usage is in --help)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def _at_least(minimum: int | float, kind: type = int) -> Callable[[str], Any]:
    """An argparse type: a ``kind`` number no smaller than ``minimum``."""
    def convert(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not value >= minimum or (kind is float and not math.isfinite(value)):
            raise argparse.ArgumentTypeError(f"{text} must be at least {minimum:g}")
        return value
    return convert


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"{text} must be a number of seconds > 0")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="toonpick", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("config", help="print resolved settings")
    p.add_argument("--markdown", action="store_true", help="print the README's settings table")
    p.set_defaults(func=_cmd_config)

    db = sub.add_parser("db", help="database commands")
    dbsub = db.add_subparsers(dest="db_command", required=True)
    p = dbsub.add_parser("migrate", help="apply pending MariaDB migrations")
    p.add_argument("--url", help="MariaDB URL (default TOONPICK_MARIADB_URL)")
    p.set_defaults(func=_cmd_migrate)

    # Arguments go to the simulator's own parser (handled in main()); listed here for --help.
    sub.add_parser("simulator", help="run the offline platform simulator", add_help=False)
    sub.add_parser("spider-node", add_help=False,
                   help="a standby spider node: crawls every new run of one spider")

    p = sub.add_parser(
        "crawl", help="crawl one platform with N spider nodes",
        description="Crawl one platform. With REDIS_URL the nodes join the spider's open "
                    "run (still running) if there is one, else start a new run; it prints "
                    "which, then the run's summary and JSON report; each node's log is in "
                    "logs/.",
        epilog="exit codes: 0 the run is done with nothing lost (drops for data reasons "
               "are reported, not failures); 1 the run is not done, has dead letters or "
               "counted */failed items (a store lost them), or the nodes timed out; "
               "2 bad arguments, or the open run was stopped (resume it with --run-id or "
               "start another with --new).")
    p.add_argument("spider", help="naver, kakao or kakaopage")
    p.add_argument("--new", action="store_true",
                   help="start a new run even if the spider has an open one")
    p.add_argument("--mode", default="all", help="all, new, episodes or title")
    p.add_argument("--title", help="platform title id or URL (mode title)")
    p.add_argument("--nodes", type=_at_least(1), default=1,
                   help="spider processes (more than 1 needs REDIS_URL)")
    p.add_argument("--run-id", help="join or name this run")
    p.add_argument("--today", help="YYYY-MM-DD for the episode-update rule")
    p.add_argument("--timeout", type=_positive_seconds, default=3600.0,
                   help="seconds before nodes are killed")
    p.set_defaults(func=_cmd_crawl)

    p = sub.add_parser("demo", help="simulator + crawl of all platforms + summary")
    p.add_argument("--titles", type=_at_least(1), default=300,
                   help="simulated titles, all platforms")
    p.add_argument("--episodes", type=_at_least(1), default=12, help="episodes per title")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--nodes", type=_at_least(1), default=2, help="spider processes per platform")
    p.add_argument("--members", type=_at_least(0), default=2000,
                   help="seeded members for the recommender part (0: crawl only)")
    p.add_argument("--keep-stores", action="store_true",
                   help="keep what the dev stores hold (by default the demo empties them "
                        "first, so its counts compare with this simulator alone)")
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("worker", help="run a task worker (RQ) until stopped")
    p.add_argument("--queue", action="append", dest="queues",
                   help="queue to work on (repeatable; default: every queue of the "
                        "registered task types)")
    p.add_argument("--burst", action="store_true", help="exit when the queues are empty")
    p.add_argument("--name", help="worker name (default: RQ's)")
    p.set_defaults(func=_cmd_worker)

    p = sub.add_parser("scheduler", help="enqueue schedule slots as task executions")
    p.add_argument("--once", action="store_true", help="tick once and exit")
    p.add_argument("--now", help="with --once: the tick's time (ISO; no offset: TOONPICK_TIMEZONE)")
    p.add_argument("--since", help="with --once: tick at this time first (schedules first "
                                   "seen then, so slots up to --now are due)")
    p.set_defaults(func=_cmd_scheduler)

    task = sub.add_parser("task", help="task executions: run, show, list, stop")
    tasksub = task.add_subparsers(dest="task_command", required=True)
    p = tasksub.add_parser("run", help="enqueue a task (trigger api)")
    p.add_argument("task_type", help="e.g. WEBTOON_ALL_CRAWL")
    p.add_argument("--params", default="{}", help='JSON object, e.g. {"platforms": ["NAVER"]}')
    p.add_argument("--force", action="store_true", help="run a completed instance again")
    p.set_defaults(func=_cmd_task)
    p = tasksub.add_parser("show", help="one execution as JSON, with its checkpoint")
    p.add_argument("execution_id", type=int)
    p.set_defaults(func=_cmd_task)
    p = tasksub.add_parser("stop", help="ask a running execution to stop")
    p.add_argument("execution_id", type=int)
    p.set_defaults(func=_cmd_task)
    p = tasksub.add_parser("list", help="recent executions, newest first")
    p.add_argument("--type", help="only this task type")
    p.add_argument("--status", help="only this status")
    p.add_argument("--limit", type=_at_least(1), default=20)
    p.set_defaults(func=_cmd_task)

    _add_dead_letters_parser(sub)

    from recommender.cli import add_parser as add_recommender_parser

    add_recommender_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run a command (errors as ``run_command`` says)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    prog = "toonpick" + (f" {argv[0]}" if argv and not argv[0].startswith("-") else "")
    return run_command(prog, lambda: _dispatch(argv))


def run_command(prog: str, command: Callable[[], int]) -> int:
    """``command()``'s exit code; a bad setting is one line on stderr and exit 2, a store
    that cannot be reached or refuses us one line and exit 1: never a traceback. For every
    process entry point (``toonpick``, ``python -m shared.tasks.messages``)."""
    from shared.config import ConfigError, mask_url

    try:
        return command()
    except ConfigError as exc:
        print(f"{prog}: {_one_line(exc)}", file=sys.stderr)
        return 2
    except Exception as exc:
        failure = _store_failure(exc)
        if failure is None:
            raise
        print(f"{prog}: {mask_url(failure)}", file=sys.stderr)
        return 1


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


_REDIS_CONNECT = re.compile(r"connecting to (\S+?)\.? (\S.*?)\.?$")


def _store_failure(exc: BaseException) -> str | None:
    """One line for an error of a store's client (itself or what caused it), else None.
    Read from the class's module so the clients are not imported to be told apart."""
    seen: set[int] = set()
    error: BaseException | None = exc
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        module = type(error).__module__.partition(".")[0]
        text = _one_line(error)
        if type(error).__name__ == "RedisUnavailable":
            # shared.stores.redis already says where Redis is and which timeout ran out.
            return text
        if module == "redis":
            match = _REDIS_CONNECT.search(text)
            if match and "onnection" in type(error).__name__:
                return f"cannot connect to Redis at {match[1]}: {match[2]}"
            return f"Redis failed ({type(error).__name__}): {text}"
        if module == "pymysql":
            code, _, message = (error.args[0], None, error.args[1]) if len(error.args) == 2 \
                else (None, None, text)
            if code in (2003, 2006, 2013):
                return f"cannot connect to MariaDB: {message}"
            if code == 1045:
                return f"MariaDB refused the login: {message}"
            return f"MariaDB failed ({code}): {message}"
        if module == "pymongo":
            # pymongo appends the whole topology description: the first part says it.
            return f"cannot reach MongoDB: {text.partition(', Timeout:')[0]}" \
                if type(error).__name__ == "ServerSelectionTimeoutError" \
                else f"MongoDB failed ({type(error).__name__}): {text}"
        if module in ("botocore", "boto3"):
            return f"S3/SQS failed ({type(error).__name__}): {text}"
        error = error.__cause__ or error.__context__
    return None


def _dispatch(argv: list[str]) -> int:
    parser = build_parser()
    if argv and argv[0] == "spider-node":
        from crawler.cluster.standby import main as standby_main

        return standby_main(argv[1:])
    if argv and argv[0] == "simulator":
        return _cmd_simulator(argv[1:])
    if argv[:2] == ["crawl", "dead-letters"]:
        argv = argv[1:]  # `crawl` takes a spider positional: the group is top-level too
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
