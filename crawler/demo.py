"""The main job end to end, offline: simulator → crawl cluster → three stores → summary.

``run_demo`` starts the platform simulator in this process, crawls the three
platforms with N spider processes each (sharing one run per platform through
Redis), then reads every store back and prints what landed: counts per
platform and store, thumbnails stored, run time, and whether the stores hold
exactly what the simulator serves.

``toonpick crawl`` runs one platform's crawl through ``choose_run`` (join the spider's
open run, or start one) and ``crawl_and_report`` (nodes, their logs in ``logs/``, the
run's summary and whether it is complete).
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from crawler.launcher import LOGS_DIR, REPO_ROOT, CrawlRequest, start_nodes, wait_all
from crawler.run_report import run_problems, run_summary
from shared.config import Config, load_config, mask_url
from shared.domain import Platform
from shared.stores.s3 import ensure_bucket, parse_s3_url, s3_client_from_config

SPIDER_PLATFORM = {"naver": Platform.NAVER, "kakao": Platform.KAKAO,
                   "kakaopage": Platform.KAKAOPAGE}
LOCAL_REDIS = "redis://127.0.0.1:6379/0"


def crawl_env(config: Config, simulator_url: str | None, redis_url: str) -> dict[str, str]:
    """Environment for spider nodes: the simulator as every platform, the given Redis."""
    env = {"REDIS_URL": redis_url, "TOONPICK_PROFILE": config.profile}
    if simulator_url:
        env.update({
            "TOONPICK_NAVER_BASE_URL": simulator_url,
            "TOONPICK_KAKAO_BASE_URL": simulator_url,
            "TOONPICK_KAKAOPAGE_BASE_URL": simulator_url,
            # The simulator is ours and local: no politeness delay needed.
            "TOONPICK_CRAWL_HOST_RATE": os.environ.get("TOONPICK_CRAWL_HOST_RATE", "0"),
        })
    return env


def run_stats(redis_url: str, spider: str, run_id: str) -> dict[str, Any]:
    from crawler.cluster.runs import get_run
    from shared.stores.redis import redis_client

    client = redis_client(redis_url)
    try:
        return get_run(client, spider, run_id) or {}
    finally:
        client.close()


class RunChoiceError(ValueError):
    """``toonpick crawl`` cannot decide on a run without the operator (a stopped run)."""


@dataclass(frozen=True)
class RunChoice:
    """Which run ``toonpick crawl`` crawls and how it came to it."""

    run_id: str
    # "joined" (an open run), "resumed" (a stopped run named by --run-id: its stop is
    # lifted), "restarted" (an interrupted run named by --run-id, re-seeded), "new" (no
    # open run, or --new), "named" (--run-id of a run not yet existing), "done" (--run-id
    # of a finished run: nothing to crawl, only its report).
    how: str
    message: str


def choose_run(redis_url: str, request: CrawlRequest, run_id: str | None,
               new: bool) -> RunChoice:
    """Join the spider's open run (the current one, else the newest still running) unless
    ``new``; ``run_id`` names the run instead. Raises ``RunChoiceError`` when the open run
    was stopped (a stop is an operator's or a task's decision: --run-id lifts it)."""
    from crawler.cluster import runs
    from crawler.tasks import make_current
    from shared.stores.redis import redis_client

    spider = request.spider
    client = redis_client(redis_url)
    try:
        if run_id:
            run = runs.get_run(client, spider, run_id)
            if run is None:
                return RunChoice(run_id, "named", f"new run {run_id} (named by --run-id)")
            if run["status"] == runs.DONE:
                return RunChoice(run_id, "done", f"run {run_id} is already done")
            if run["status"] == runs.INTERRUPTED:
                from crawler.tasks import start_entries
                from shared.domain import CrawlMode

                how = runs.open_requested_run(client, spider, run_id, lambda: start_entries(
                    spider, CrawlMode(request.mode), request.today))
                return RunChoice(run_id, "restarted" if how == "restarted" else "joined",
                                 f"run {run_id} was interrupted (Redis lost it): {how} it "
                                 f"with the start entries of mode {request.mode}")
            if run["stop_requested"]:
                runs.clear_stop(client, spider, run_id)
                make_current(client, spider, run_id)
                return RunChoice(run_id, "resumed",
                                 f"resuming stopped run {run_id} (its stop flag lifted)")
            return RunChoice(run_id, "joined", f"joining run {run_id} ({run['status']})")
        if new:
            return RunChoice(request.run_id, "new", f"new run {request.run_id} (--new)")
        current = runs.current_run(client, spider)
        candidates = ([current] if current else []) + [
            r for r in runs.list_runs(client, spider) if r != current]
        for candidate in candidates:
            run = runs.get_run(client, spider, candidate)
            if run is None or run["status"] != runs.RUNNING:
                continue
            started = (datetime.fromtimestamp(run["started_at"]).isoformat(timespec="seconds")
                       if run.get("started_at") else "?")
            if run["stop_requested"]:
                raise RunChoiceError(
                    f"{spider} run {candidate} (started {started}) is open but was stopped; "
                    f"resume it with --run-id {candidate}, or start another with --new")
            return RunChoice(candidate, "joined",
                             f"joining open run {candidate} (started {started}, "
                             f"{len([n for n in run['nodes'] if n['active']])} node(s) on it); "
                             "--new starts another")
        return RunChoice(request.run_id, "new", f"new run {request.run_id} (no open run)")
    finally:
        client.close()


def crawl_and_report(request: CrawlRequest, nodes: int = 1, timeout: float = 3600.0,
                     env: Mapping[str, str] | None = None,
                     log_dir: Path | None = LOGS_DIR) -> dict[str, Any]:
    """Run ``request``'s crawl with ``nodes`` processes; returns the report: node exit
    codes and logs, the run's summary (``crawler.run_report``), its problems and ``ok``
    (the run is complete: ``run_report.run_problems`` finds nothing; drops allowed).

    SIGTERM while waiting is passed on to the nodes (Scrapy's graceful close) and the
    report is still made. Without REDIS_URL the crawl is one process and its record
    comes from the node's stats file.
    """
    started = time.monotonic()
    env = dict(env or {})
    redis_url = env.get("REDIS_URL", os.environ.get("REDIS_URL", ""))
    settings: dict[str, str] = {}
    stats_file = None
    if not redis_url:
        name = f"{request.spider}-{request.run_id}.stats.json"
        stats_file = (log_dir or REPO_ROOT / ".run") / name
        settings["TOONPICK_STATS_FILE"] = str(stats_file)
    procs = start_nodes(request, nodes=nodes, env=env, log_dir=log_dir, settings=settings)
    report: dict[str, Any] = {"spider": request.spider, "run_id": request.run_id,
                              "mode": request.mode,
                              "logs": [str(p.log_path) for p in procs if p.log_path]}

    def pass_on(signum: int, _frame: Any) -> None:
        for proc in procs:
            if proc.process.poll() is None:
                proc.process.send_signal(signum)

    previous = signal.signal(signal.SIGTERM, pass_on)
    try:
        codes = wait_all(procs, timeout=timeout)
    except TimeoutError as exc:
        codes = [p.process.returncode for p in procs]
        report["timeout"] = str(exc)
    finally:
        signal.signal(signal.SIGTERM, previous)
    report["exit_codes"] = codes
    report["seconds"] = round(time.monotonic() - started, 2)
    if redis_url:
        run = run_stats(redis_url, request.spider, request.run_id)
    else:
        report["stats_file"] = str(stats_file)
        run = single_process_run(request, stats_file)
    report["summary"] = run_summary(run)
    report["problems"] = run_problems(run)
    report["ok"] = not report["problems"] and "timeout" not in report
    return report


def single_process_run(request: CrawlRequest, stats_file: Path | None) -> dict[str, Any]:
    """A run record for a crawl without Redis, from its node's stats file."""
    try:
        stats = json.loads(stats_file.read_text()) if stats_file else {}
    except (OSError, ValueError):
        stats = {}
    reason = stats.get("finish_reason")
    return {"run_id": request.run_id, "status": "done" if reason == "finished" else
            (reason or "not started"), "stats": stats, "queue": {}, "single_process": True}


def store_counts(config: Config, platform: Platform) -> dict[str, int]:
    """What the three stores hold for one platform."""
    from shared.stores.mariadb import connect
    from shared.stores.mongo import mongo_database

    counts: dict[str, int] = {}
    db = mongo_database(config.mongo_url)
    # A title's episodes live inside its document; one created by episodes alone has no
    # title payload yet.
    counts["mongo_titles"] = db.webtoon_raw.count_documents(
        {"platform": platform.value, "content_hash": {"$exists": True}})
    counts["mongo_episodes"] = sum(
        len(doc.get("episodes", {}))
        for doc in db.webtoon_raw.find({"platform": platform.value}, {"episodes": 1}))
    db.client.close()
    conn = connect(config.mariadb_url)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT COUNT(*) FROM webtoon_platform wp JOIN platform p ON p.id = wp.platform_id"
                " WHERE p.name = %s", (platform.value,))
            counts["mariadb_titles"] = _first(cur.fetchone())
            cur.execute(
                "SELECT COUNT(*) FROM webtoon_episode_link l"
                " JOIN platform p ON p.id = l.platform_id WHERE p.name = %s", (platform.value,))
            counts["mariadb_episodes"] = _first(cur.fetchone())
            cur.execute(
                "SELECT COUNT(*) FROM webtoon w JOIN webtoon_platform wp ON wp.webtoon_id = w.id"
                " JOIN platform p ON p.id = wp.platform_id"
                " WHERE p.name = %s AND w.thumbnail_path IS NOT NULL", (platform.value,))
            counts["mariadb_thumbnail_paths"] = _first(cur.fetchone())
    finally:
        conn.close()
    counts["images_stored"] = count_images(config, platform)
    return counts


def _first(row: Any) -> int:
    if isinstance(row, dict):
        return int(next(iter(row.values())))
    return int(row[0])


def _s3(config: Config) -> Any:
    return s3_client_from_config(config)


def ensure_images_bucket(config: Config) -> None:
    if config.images_store.startswith("s3://"):
        ensure_bucket(_s3(config), parse_s3_url(config.images_store)[0], config.aws_region)


def count_images(config: Config, platform: Platform) -> int:
    """Thumbnails stored under ``webtoons/<PLATFORM>/`` in the images store."""
    store = config.images_store
    if store.startswith("s3://"):
        bucket, prefix = parse_s3_url(store)
        client = _s3(config)
        paginator = client.get_paginator("list_objects_v2")
        total = 0
        for page in paginator.paginate(Bucket=bucket, Prefix=f"{prefix}webtoons/{platform.value}/"):
            total += page.get("KeyCount", 0)
        return total
    root = Path(store)
    if not root.is_absolute():
        root = REPO_ROOT / root
    return sum(1 for _ in (root / "webtoons" / platform.value).glob("*/thumbnail.jpg"))


def reset_dev_stores(config: Config) -> None:
    """Empty the catalogue, raw documents and images of the dev profile (unless
    ``--keep-stores``)."""
    from shared.schema.migrate import migrate
    from shared.stores.mariadb import drop_database
    from shared.stores.mongo import mongo_database

    if config.profile == "prod":
        raise RuntimeError("refusing to reset stores in the prod profile")
    drop_database(config.mariadb_url)
    migrate(config.mariadb_url)
    db = mongo_database(config.mongo_url)
    db.client.drop_database(db.name)
    db.client.close()
    if config.images_store.startswith("s3://"):
        bucket, prefix = parse_s3_url(config.images_store)
        client = _s3(config)
        paginator = client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
            keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
            if keys:
                client.delete_objects(Bucket=bucket, Delete={"Objects": keys})


# The demo's scheduler tick fires only the hourly episode update (the other default
# schedules stay as configured for real schedulers).
DEMO_SCHEDULES = ("daily_collection=off;daily_recommendations=off;weekly_analysis=off;"
                  "monthly_report=off")


def scheduled_episode_update(config: Config, redis_url: str, simulator_url: str,
                             platform_today: str, log_dir: Path) -> dict[str, Any] | None:
    """One scheduler tick at this hour's slot, then a worker runs what it enqueued.

    Returns the recorded execution. The slot is the real current hour in the
    platforms' time zone, so a second demo within the hour finds the slot taken
    (exactly once) and shows the execution recorded the first time.
    """
    from shared.stores.mariadb import connect
    from shared.tasks.repository import TaskRepository
    from shared.tasks.scheduler_process import tick_once
    from shared.tasks.schedules import schedules_from_setting
    from shared.tasks.worker import run_burst_worker

    environ = {**os.environ, "REDIS_URL": redis_url, "TOONPICK_SCHEDULES": DEMO_SCHEDULES}
    tick_config = load_config(environ=environ)
    zone = ZoneInfo(config.timezone)
    (hourly,) = schedules_from_setting(DEMO_SCHEDULES, timezone=config.timezone)
    slot = hourly.latest_slot(datetime.now(zone))
    outcomes = tick_once(slot + timedelta(seconds=20), since=slot - timedelta(minutes=1),
                         config=tick_config)
    conn = connect(config.mariadb_url)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT status, execution_id FROM task_schedule_slot"
                        " WHERE schedule_name = %s AND slot_at = %s",
                        (hourly.name, slot.astimezone(ZoneInfo("UTC")).replace(tzinfo=None)))
            row = cur.fetchone()
    finally:
        conn.close()
    if row is None or row[1] is None:
        print(f"[demo] scheduler: slot {slot.isoformat()} of {hourly.name} was not enqueued "
              f"({row[0] if row else 'no record'})")
        return None
    status, execution_id = row
    fresh = any(o.schedule_name == hourly.name for o in outcomes)
    print(f"[demo] scheduler: {hourly.name} ({hourly.cron}, {config.timezone}) slot "
          f"{slot.astimezone(zone).isoformat()} -> {status}, execution #{execution_id}"
          + ("" if fresh else " (claimed by an earlier run: a slot is enqueued once)"))
    worker_env = {**environ, **crawl_env(config, simulator_url, redis_url),
                  "TOONPICK_CRAWL_TODAY": platform_today}
    run_burst_worker(worker_env, log_dir / "demo-worker.log", timeout=1200)
    repository = TaskRepository(config.mariadb_url)
    try:
        return repository.get(int(execution_id)).as_dict()
    finally:
        repository.close()


def print_execution(view: dict[str, Any]) -> None:
    print(f"[demo] execution #{view['id']} {view['task_type']}: {view['status']}, trigger "
          f"{view['trigger']}, progress {view['progress']}%, started {view['started_at']}, "
          f"ended {view['ended_at']}, node {view['node']}")
    for platform, summary in ((view.get("result") or {}).get("platforms") or {}).items():
        print(f"         {platform:<10} run {summary.get('run_id')}: "
              f"{summary.get('episodes_new', 0)} new episodes, "
              f"{summary.get('titles_stored', 0)} titles touched, "
              f"{summary.get('requests', 0)} requests, {summary.get('dropped_total', 0)} dropped")


def run_demo(titles: int = 300, episodes: int = 12, seed: int = 7, nodes: int = 2,
             fresh: bool = True) -> int:
    from crawler.simulator.catalogue import Catalogue
    from crawler.simulator.server import serve
    from shared.schema.migrate import migrate

    config = load_config()
    redis_url = config.redis_url or LOCAL_REDIS
    print(f"[demo] profile {config.profile}; MariaDB {mask_url(config.mariadb_url)}, "
          f"MongoDB {mask_url(config.mongo_url)}, Redis {mask_url(redis_url)}, "
          f"images {mask_url(config.images_store)}")
    if fresh:
        reset_dev_stores(config)
    applied = migrate(config.mariadb_url)
    print(f"[demo] migrations applied: {', '.join(applied) or 'none (up to date)'}")
    ensure_images_bucket(config)

    catalogue = Catalogue(seed=seed, titles=titles, episodes=episodes)
    expected = catalogue.expected()
    started = time.monotonic()
    log_dir = REPO_ROOT / ".run" / "logs"
    with serve(catalogue) as simulator:
        print(f"[demo] simulator on {simulator.url}: {titles} titles, {episodes} episodes each, "
              f"seed {seed}")
        env = crawl_env(config, simulator.url, redis_url)
        runs = []
        for spider in SPIDER_PLATFORM:
            request = CrawlRequest(spider)
            runs.append((request, start_nodes(request, nodes=nodes, env=env, log_dir=log_dir)))
            print(f"[demo] {spider}: run {request.run_id} on {nodes} node(s)")
        failed = False
        for request, procs in runs:
            codes = wait_all(procs, timeout=1800)
            if any(codes):
                failed = True
                print(f"[demo] {request.spider}: node exit codes {codes}; logs in {log_dir}")
        elapsed = time.monotonic() - started
        complete = print_summary(config, redis_url, runs, expected, elapsed, nodes)

        # Time passes on the platforms; the hourly schedule picks up the new episodes.
        before = sum(len(t["episodes"]) for p in expected["platforms"].values()
                     for t in p.values())
        catalogue.advance(7)
        after = catalogue.expected()
        added = sum(len(t["episodes"]) for p in after["platforms"].values()
                    for t in p.values()) - before
        print(f"\n[demo] a week passes on the platforms ({after['today']}): {added} new episodes;"
              " the hourly update takes those of titles due today or tomorrow")
        execution = scheduled_episode_update(config, redis_url, simulator.url, after["today"],
                                             log_dir)
    if execution is None or execution["status"] != "COMPLETED":
        failed = True
    if execution is not None:
        print_execution(execution)
    if failed or not complete:
        return 1
    return 0


def print_summary(config: Config, redis_url: str, runs: list, expected: dict[str, Any],
                  elapsed: float, nodes: int) -> bool:
    """Per platform, what the three stores hold against what the simulator serves."""

    print()
    header = (f"{'platform':<10} {'expected':>8} {'mongo':>7} {'mariadb':>8} {'episodes':>9}"
              f" {'ep.mongo':>9} {'ep.maria':>9} {'images':>7} {'requests':>9} {'dropped':>8}")
    print(header)
    print("-" * len(header))
    complete = True
    for (request, _), platform in zip(runs, SPIDER_PLATFORM.values(), strict=True):
        want = expected["platforms"][platform.value]
        want_episodes = sum(len(t["episodes"]) for t in want.values())
        counts = store_counts(config, platform)
        stats = run_stats(redis_url, request.spider, request.run_id).get("stats", {})
        dropped = sum(v for k, v in stats.items() if "/dropped/" in k)
        print(f"{platform.value:<10} {len(want):>8} {counts['mongo_titles']:>7} "
              f"{counts['mariadb_titles']:>8} {want_episodes:>9} {counts['mongo_episodes']:>9} "
              f"{counts['mariadb_episodes']:>9} {counts['images_stored']:>7} "
              f"{int(stats.get('downloader/response_count', 0)):>9} {int(dropped):>8}")
        complete &= (counts["mongo_titles"] == counts["mariadb_titles"] == len(want)
                     and counts["mongo_episodes"] == counts["mariadb_episodes"] == want_episodes
                     and counts["images_stored"] == len(want))
    print()
    print(f"[demo] distinct webtoons in the simulator: {expected['webtoons']}; crawl time "
          f"{elapsed:.1f} s with {nodes} node(s) per platform")
    print(f"[demo] stores match the simulator exactly: {'yes' if complete else 'NO'}")
    return complete
