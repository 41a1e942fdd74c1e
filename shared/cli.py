"""``toonpick``: the worker's command line.

    toonpick demo [--titles N ...]     services must answer; simulator + crawl + summary
    toonpick crawl naver --mode all    run spider node(s) and wait for the run
    toonpick db migrate                apply MariaDB migrations
    toonpick simulator --port 8800     the offline platform simulator
    toonpick config [--markdown]       resolved settings / the README table

Subcommands import their packages lazily so ``toonpick config`` works in any
process kind's environment.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence


def _cmd_config(args: argparse.Namespace) -> int:
    from shared.config import load_config, markdown_table

    if args.markdown:
        print(markdown_table())
        return 0
    config = load_config()
    for name, value in config.items():
        if "secret" in name or "password" in name:
            value = "***" if value else value
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
    from crawler.demo import crawl_and_report
    from crawler.launcher import CrawlRequest, LaunchError

    try:
        request = CrawlRequest(args.spider, mode=args.mode, title=args.title,
                               today=args.today, **({"run_id": args.run_id} if args.run_id else {}))
    except LaunchError as exc:
        print(f"toonpick crawl: {exc}", file=sys.stderr)
        return 2
    report = crawl_and_report(request, nodes=args.nodes, timeout=args.timeout)
    print(json.dumps(report, indent=2, ensure_ascii=False, default=str))
    return 0 if report.get("ok") else 1


def _cmd_demo(args: argparse.Namespace) -> int:
    from crawler.demo import run_demo

    return run_demo(titles=args.titles, episodes=args.episodes, seed=args.seed,
                    nodes=args.nodes, fresh=args.fresh)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="toonpick", description=__doc__.split("\n")[0])
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

    p = sub.add_parser("crawl", help="crawl one platform with N spider nodes")
    p.add_argument("spider", help="naver, kakao or kakaopage")
    p.add_argument("--mode", default="all", help="all, new, episodes or title")
    p.add_argument("--title", help="platform title id or URL (mode title)")
    p.add_argument("--nodes", type=int, default=1,
                   help="spider processes (more than 1 needs REDIS_URL)")
    p.add_argument("--run-id", help="join or name this run")
    p.add_argument("--today", help="YYYY-MM-DD for the episode-update rule")
    p.add_argument("--timeout", type=float, default=3600.0, help="seconds before nodes are killed")
    p.set_defaults(func=_cmd_crawl)

    p = sub.add_parser("demo", help="simulator + crawl of all platforms + summary")
    p.add_argument("--titles", type=int, default=300, help="simulated titles, all platforms")
    p.add_argument("--episodes", type=int, default=12, help="episodes per title")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--nodes", type=int, default=2, help="spider processes per platform")
    p.add_argument("--fresh", action="store_true", help="empty the dev stores first")
    p.set_defaults(func=_cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if argv and argv[0] == "simulator":
        return _cmd_simulator(argv[1:])
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
