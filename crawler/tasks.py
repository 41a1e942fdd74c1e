"""Crawl task bodies: WEBTOON_ALL_CRAWL, WEBTOON_NEW_CRAWL, WEBTOON_EPISODE_UPDATE.

Importing this module registers them (``TOONPICK_TASK_MODULES`` lists it by default).

A crawl task is one crawl run per platform on the crawl cluster
(``crawler.cluster.runs``), all platforms at once (they are different hosts). For each
platform the body computes the start entries here, with the spider built from the
crawler settings but not run, and pushes them as a new run (``start_run``), which
becomes the spider's current run, so a plain ``scrapy crawl <platform>`` started
anywhere joins it, and so does a standby node (``crawler.cluster.standby``). If no
spider node has joined after ``node_wait`` seconds (default 0; at least
``STANDBY_JOIN_SECONDS`` while standby nodes are alive), the body runs one node
itself, a ``scrapy crawl`` subprocess given the run id (``crawler.launcher``); should
that node die with the run unfinished and no other node on it, it runs another (at
most ``MAX_NODE_STARTS`` per platform).

The body then follows the runs' summed stats in Redis to ``done``, writing progress
(requests answered against requests known) and counters, and checkpoints
``{"runs": {spider: run_id}, "done": [spider, ...]}`` as soon as a run exists, so a
restarted or retried execution rejoins the same runs rather than crawling again.

Stop is cooperative: when ``ctx.should_stop()`` turns true the body raises each
unfinished run's stop flag; nodes finish what they have in flight and close
("stopped"), the run keeps its queues, and the body raises ``TaskStopped`` once its
own nodes have exited (SIGTERM, Scrapy's graceful shutdown, after ``STOP_GRACE``
seconds; SIGKILL after as many again). Whatever was stored stays stored. A restart
lifts the flags and starts nodes on the same runs, which finish them.

The result, per platform, is the finished run's summary (``crawler.run_report``): titles
and episodes stored, drops by reason, requests and responses. The SQS completion message
is built from it.

The task ends FAILED (``CrawlTaskError``, so its retry policy rejoins the runs) when any
run is not complete (``run_report.run_problems``):
- the run was *interrupted* (Redis lost it: ``runs.INTERRUPTED``); the retry restarts it
  under the same id (``runs.restart_run``), the stores being idempotent;
- the run is done but has *dead letters* (requests no node could finish); the retry
  replays them into the run (``dead_letters.replay``) and crawls them;
(Items counted ``*/failed`` are no loss by themselves: their leases were not
acknowledged, so their requests were crawled again, or dead-lettered.)
Drops (``*/dropped/<reason>``: the data's own fault) never fail a task; they are in the
result. Before the body ends, for whatever reason, it ends the nodes it started itself
(they also die with the work horse: ``crawler.launcher``).

A restarted run (after a stop, or a retry) is made the spider's current run again unless
another live run is, so standby nodes, which follow the current run, rejoin it.
"""

from __future__ import annotations

import math
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import redis

from crawler.cluster import dead_letters, runs
from crawler.cluster.spider import new_run_id
from crawler.cluster.standby import standby_nodes
from crawler.launcher import REPO_ROOT, SPIDERS, CrawlNode, CrawlRequest, start_nodes
from crawler.run_report import run_problems, run_summary
from shared.config import load_config
from shared.domain import CrawlMode
from shared.stores.redis import redis_client
from shared.tasks.runner import TaskContext
from shared.tasks.types import (
    InvalidParams,
    RetryPolicy,
    TaskError,
    TaskStopped,
    TaskType,
    register_task,
)

SPIDER_OF_PLATFORM = {"NAVER": "naver", "KAKAO": "kakao", "KAKAOPAGE": "kakaopage"}
PLATFORM_OF_SPIDER = {spider: platform for platform, spider in SPIDER_OF_PLATFORM.items()}
# An API run is one instance per platforms + day (+ SQS request); a scheduled slot is
# its own instance. node_wait only changes how the work is placed, not what it is.
IDENTIFYING = ("platforms", "today", "schedule", "slot", "request_id")
POLL_SECONDS = 0.5
PROGRESS_SECONDS = 2.0
STOP_GRACE = 30.0
# Longer than a node's stats flush interval (crawler.cluster.stats.FLUSH_SECONDS).
STATS_SETTLE_SECONDS = 1.5
MAX_NODE_STARTS = 3
# How long a run waits for a standby node to join before the worker starts its own.
STANDBY_JOIN_SECONDS = 20.0
LOG_DIR = REPO_ROOT / ".run" / "logs" / "tasks"
# Crawls are long and mostly bounded by the platforms' rate: no RQ time limit.
CRAWL_RETRY = RetryPolicy(max_retries=2, backoff=(60.0, 300.0))


class CrawlTaskError(TaskError):
    """A crawl run could not be carried out (its nodes keep dying, Redis is missing)."""


def spiders_for(platforms: Any) -> list[str]:
    """Spider names for the ``platforms`` param: None → all three; names as the platform
    enum (``NAVER``) or the spider (``naver``), any case. Raises ``InvalidParams``."""
    if platforms is None:
        return list(SPIDERS)
    if isinstance(platforms, str):
        platforms = [platforms]
    if not isinstance(platforms, list) or not platforms:
        raise InvalidParams(f"platforms must be a non-empty list, got {platforms!r}")
    spiders: list[str] = []
    for value in platforms:
        name = str(value).strip()
        spider = SPIDER_OF_PLATFORM.get(name.upper()) or (name.lower() if name.lower()
                                                          in SPIDERS else None)
        if spider is None:
            # Only the platforms with a spider: the enum also names ones never crawled.
            known = ", ".join(SPIDER_OF_PLATFORM)
            raise InvalidParams(f"unknown platform {value!r}: expected some of {known}")
        if spider not in spiders:
            spiders.append(spider)
    return spiders


def check_today(today: Any) -> str | None:
    if today is None or today == "":
        return None
    try:
        return date.fromisoformat(str(today)).isoformat()
    except ValueError:
        raise InvalidParams(f"today {today!r} is not a date in the form YYYY-MM-DD") from None


def check_node_wait(node_wait: Any) -> float:
    try:
        wait = float(node_wait or 0)
    except (TypeError, ValueError):
        wait = math.nan
    if not math.isfinite(wait):
        raise InvalidParams(f"node_wait {node_wait!r} is not a number of seconds")
    return max(0.0, wait)


def check_slot(slot: Any) -> datetime | None:
    """A scheduled slot's moment: an ISO date-time with its UTC offset."""
    if not slot:
        return None
    try:
        moment = datetime.fromisoformat(str(slot))
    except ValueError:
        raise InvalidParams(f"slot {slot!r} is not an ISO date-time") from None
    if moment.tzinfo is None:
        raise InvalidParams(f"slot {slot!r} has no UTC offset")
    return moment


def check_crawl_params(params: Mapping[str, Any]) -> None:
    """What a crawl body would refuse, said when the task is queued (register_task's
    ``validate``): unknown or no platforms, a malformed day, slot or node_wait."""
    spiders_for(params.get("platforms"))
    check_today(params.get("today"))
    check_slot(params.get("slot"))
    check_node_wait(params.get("node_wait"))


def start_entries(spider: str, mode: CrawlMode, today: str | None) -> list[dict[str, Any]]:
    """The spider's start entries for ``mode``, from a spider built but not run."""
    from scrapy.crawler import Crawler
    from scrapy.settings import Settings
    from scrapy.spiderloader import SpiderLoader

    settings = Settings()
    settings.setmodule("crawler.settings", priority="project")
    spider_class = SpiderLoader.from_settings(settings).load(spider)
    kwargs: dict[str, Any] = {"mode": mode.value, "run_id": "entries"}
    if today:
        kwargs["today"] = today
    instance = spider_class.from_crawler(Crawler(spider_class, settings), **kwargs)
    return instance.start_entries()


@dataclass
class PlatformCrawl:
    """One platform's run as this execution sees it."""

    spider: str
    run_id: str
    done: bool = False
    node: CrawlNode | None = None
    node_starts: int = 0
    waiting_since: float = field(default_factory=time.monotonic)
    run: dict[str, Any] | None = None

    @property
    def node_running(self) -> bool:
        return self.node is not None and self.node.process.poll() is None


class CrawlTask:
    """The body shared by the three crawl task types (see the module doc)."""

    def __init__(self, ctx: TaskContext, mode: CrawlMode, spiders: list[str],
                 today: str | None, node_wait: float, server: redis.Redis):
        self.ctx = ctx
        self.mode = mode
        self.spiders = spiders
        self.today = today
        self.node_wait = node_wait
        self.server = server
        self.crawls: dict[str, PlatformCrawl] = {}

    # --- runs ----------------------------------------------------------------------

    def open_runs(self) -> None:
        known = dict(self.ctx.checkpoint.get("runs") or {})
        done = set(self.ctx.checkpoint.get("done") or [])
        for spider in self.spiders:
            run_id = known.get(spider)
            if run_id is None:
                # Checkpointed before it exists: a restart after a crash in between finds
                # the id and creates the run (the branch below) instead of a second run.
                self._new_run(spider)
                continue
            run = runs.get_run(self.server, spider, run_id)
            if spider in done:
                if run is not None and run_problems(run):
                    self._reopen_done(spider, run)
                    continue
                self.crawls[spider] = PlatformCrawl(spider, run_id, done=True)
            elif run is None:
                # Never created, or Redis lost it (flushed, restored): crawl it under the
                # same id; the stores are idempotent, so nothing stored twice.
                runs.start_run(self.server, spider, self._entries(spider), run_id)
                self.ctx.log.warning("%s: crawl run %s was not in Redis; started it",
                                     spider, run_id)
                self.crawls[spider] = PlatformCrawl(spider, run_id)
            elif run["status"] == runs.INTERRUPTED:
                runs.restart_run(self.server, spider, run_id, self._entries(spider))
                self.ctx.log.warning("%s: crawl run %s was interrupted; restarted it",
                                     spider, run_id)
                self.crawls[spider] = PlatformCrawl(spider, run_id)
            else:
                runs.clear_stop(self.server, spider, run_id)
                make_current(self.server, spider, run_id)
                self.ctx.log.info("%s: rejoining crawl run %s", spider, run_id)
                self.crawls[spider] = PlatformCrawl(spider, run_id)
            self.save_checkpoint()

    def _entries(self, spider: str) -> list[dict[str, Any]]:
        return start_entries(spider, self.mode, self.today)

    def _new_run(self, spider: str) -> None:
        run_id = new_run_id()
        self.crawls[spider] = PlatformCrawl(spider, run_id)
        self.save_checkpoint()
        runs.start_run(self.server, spider, self._entries(spider), run_id)
        self.ctx.log.info("%s: crawl run %s started (%s)", spider, run_id, self.mode)

    def _reopen_done(self, spider: str, run: dict[str, Any]) -> None:
        """A done run a previous attempt failed on (see the module doc)."""
        run_id = run["run_id"]
        replayed = dead_letters.replay(self.server, spider, run_id)
        self.ctx.log.warning("%s: crawl run %s: %d dead letter(s) replayed; crawling them",
                             spider, run_id, replayed)
        self.crawls[spider] = PlatformCrawl(spider, run_id)
        self.save_checkpoint()

    def save_checkpoint(self) -> None:
        self.ctx.save_checkpoint({
            "runs": {s: c.run_id for s, c in self.crawls.items()},
            "done": [s for s, c in self.crawls.items() if c.done],
        })

    def ensure_node(self, crawl: PlatformCrawl) -> None:
        """Start a node on the worker if nobody crawls the run (see the module doc)."""
        if crawl.node_running:
            return
        if crawl.node is not None:
            self.ctx.log.warning("%s: node %s exited (%s) before run %s was done",
                                 crawl.spider, crawl.node.pid, crawl.node.process.returncode,
                                 crawl.run_id)
            crawl.node = None
            crawl.waiting_since = time.monotonic()
        if runs.active_nodes(self.server, crawl.spider, crawl.run_id):
            crawl.waiting_since = time.monotonic()
            return
        wait = self.node_wait
        if standby_nodes(self.server, crawl.spider):
            # Live standby nodes join a new run within seconds: leave the run to them.
            wait = max(wait, STANDBY_JOIN_SECONDS)
        if time.monotonic() - crawl.waiting_since < wait:
            return
        if crawl.node_starts >= MAX_NODE_STARTS:
            raise CrawlTaskError(
                f"{crawl.spider}: crawl run {crawl.run_id} is not done after "
                f"{MAX_NODE_STARTS} spider nodes exited; see {LOG_DIR}")
        request = CrawlRequest(crawl.spider, mode=self.mode.value, run_id=crawl.run_id,
                               today=self.today)
        crawl.node = start_nodes(request, log_dir=LOG_DIR)[0]
        crawl.node_starts += 1
        self.ctx.log.info("%s: spider node %s started on this worker for run %s",
                          crawl.spider, crawl.node.pid, crawl.run_id)

    def poll(self) -> None:
        for crawl in self.crawls.values():
            if crawl.done:
                continue
            # Whether the node exited is read before the run, so an exit after the run
            # was done is never taken for a death.
            crawl.run = runs.get_run(self.server, crawl.spider, crawl.run_id)
            if crawl.run is None:
                raise CrawlTaskError(f"{crawl.spider}: crawl run {crawl.run_id} vanished "
                                     "from Redis while it ran")
            if crawl.run["status"] == runs.INTERRUPTED:
                raise CrawlTaskError(
                    f"{crawl.spider}: crawl run {crawl.run_id} was interrupted (Redis lost "
                    "it); a retry restarts it")
            if crawl.run["status"] == runs.DONE:
                crawl.done = True
                self.save_checkpoint()
                self.ctx.log.info("%s: crawl run %s done", crawl.spider, crawl.run_id)
                continue
            self.ensure_node(crawl)

    # --- progress --------------------------------------------------------------------

    def report(self, message: str | None = None) -> None:
        shares = []
        counters: dict[str, Any] = {}
        for crawl in self.crawls.values():
            if crawl.run is None:
                crawl.run = runs.get_run(self.server, crawl.spider, crawl.run_id)
            summary = run_summary(crawl.run)
            counters[PLATFORM_OF_SPIDER[crawl.spider]] = {
                k: summary.get(k, 0) for k in
                ("titles_stored", "episodes_stored", "dropped_total", "failed_total",
                 "dead_lettered", "requests")
            }
            shares.append(1.0 if crawl.done else _run_fraction(crawl.run))
        percent = 100.0 * sum(shares) / len(shares) if shares else 100.0
        if not all(c.done for c in self.crawls.values()):
            percent = min(percent, 99.0)
        if message is None:
            message = ", ".join(
                f"{c.spider} {'done' if c.done else 'crawling'}" for c in self.crawls.values())
        self.ctx.progress(percent, message, platforms=counters)

    # --- the whole body ----------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        try:
            return self._run()
        finally:
            # Whatever ended the body (done, stop, failure, a lost execution): no node of
            # ours outlives it. SIGTERM first: Scrapy's graceful close hands leases back.
            deadline = time.monotonic() + STOP_GRACE
            for crawl in self.crawls.values():
                if crawl.node_running:
                    self.ctx.log.info("%s: ending spider node %s", crawl.spider,
                                      crawl.node.pid)
                    _end_node(crawl.node, max(0.1, deadline - time.monotonic()),
                              wait_first=False)

    def _run(self) -> dict[str, Any]:
        self.open_runs()
        last_report = 0.0
        while True:
            if self.ctx.should_stop():
                self.stop()
            self.poll()
            if all(c.done for c in self.crawls.values()):
                break
            if time.monotonic() - last_report >= PROGRESS_SECONDS:
                self.report()
                last_report = time.monotonic()
            time.sleep(POLL_SECONDS)
        self.settle()
        self.report("done")
        problems = {c.spider: run_problems(c.run) for c in self.crawls.values()}
        problems = {spider: found for spider, found in problems.items() if found}
        if problems:
            raise CrawlTaskError("crawl runs not complete: " + "; ".join(
                f"{spider} run {self.crawls[spider].run_id}: {', '.join(found)}"
                for spider, found in problems.items()))
        return {
            "mode": self.mode.value,
            "today": self.today,
            "platforms": {PLATFORM_OF_SPIDER[c.spider]: run_summary(c.run)
                          for c in self.crawls.values()},
        }

    def settle(self) -> None:
        """Wait for the nodes to leave and their last stats to land (a run is done when
        its items are stored; nodes flush their stats about a second later, on close)."""
        deadline = time.monotonic() + STOP_GRACE
        for crawl in self.crawls.values():
            if crawl.node is not None:
                _end_node(crawl.node, max(0.1, deadline - time.monotonic()))
        for crawl in self.crawls.values():
            while (runs.active_nodes(self.server, crawl.spider, crawl.run_id)
                   and time.monotonic() < deadline):
                time.sleep(POLL_SECONDS)
            previous = None
            while time.monotonic() < deadline:
                crawl.run = runs.get_run(self.server, crawl.spider, crawl.run_id)
                stats = (crawl.run or {}).get("stats")
                if stats == previous:
                    break
                previous = stats
                time.sleep(STATS_SETTLE_SECONDS)

    def stop(self) -> None:
        if self.ctx.lost:
            # Another execution owns the runs now (this one was declared ABANDONED): leave
            # them running for it, just get out.
            raise TaskStopped(f"execution {self.ctx.execution_id} lost; runs left running")
        open_crawls = [c for c in self.crawls.values() if not c.done]
        for crawl in open_crawls:
            runs.request_stop(self.server, crawl.spider, crawl.run_id)
        deadline = time.monotonic() + STOP_GRACE
        for crawl in open_crawls:
            if crawl.node is not None:
                _end_node(crawl.node, max(0.1, deadline - time.monotonic()))
        while time.monotonic() < deadline and any(
                runs.active_nodes(self.server, c.spider, c.run_id) for c in open_crawls):
            time.sleep(POLL_SECONDS)
        for crawl in open_crawls:
            crawl.run = runs.get_run(self.server, crawl.spider, crawl.run_id)
        self.report("stopped: " + ", ".join(
            f"{c.spider} {'done' if c.done else 'stopped'}" for c in self.crawls.values()))
        raise TaskStopped("stop requested; crawl runs "
                          + ", ".join(f"{c.spider}/{c.run_id}" for c in open_crawls)
                          + " stopped with their queues kept")


def _run_fraction(run: dict[str, Any] | None) -> float:
    """Answered requests against all requests known so far (a lower bound of the end)."""
    if not run:
        return 0.0
    answered = float(run.get("stats", {}).get("downloader/response_count", 0) or 0)
    queue = run.get("queue", {})
    pending = sum(int(queue.get(k, 0)) for k in ("start", "requests", "reclaimed", "leased"))
    if answered + pending == 0:
        return 0.0
    return answered / (answered + pending)


def _end_node(node: CrawlNode, grace: float, wait_first: bool = True) -> None:
    """Wait for a node to close by itself (unless ``wait_first`` is False), then SIGTERM
    (graceful), then SIGKILL, ``grace`` seconds each."""
    steps = (None, node.process.terminate, node.process.kill)
    for signal_it in steps if wait_first else steps[1:]:
        if node.process.poll() is not None:
            return
        if signal_it is not None:
            signal_it()
        try:
            node.process.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue


# KEYS: current; ARGV: run id, the current run's meta key prefix (root:spider:)
_MAKE_CURRENT = """
local cur = redis.call('GET', KEYS[1])
if cur and cur ~= ARGV[1] and redis.call('HGET', ARGV[2] .. cur .. ':meta', 'status')
    == 'running' then
  return 0
end
redis.call('SET', KEYS[1], ARGV[1])
return 1
"""


def make_current(server: redis.Redis, spider: str, run_id: str) -> bool:
    """Point the spider's current run at ``run_id`` (``runs.request_stop`` cleared it)
    unless another live run is current; returns whether it did. Standby nodes follow
    the current run, so a restarted run gets them back."""
    script = server.register_script(_MAKE_CURRENT)
    return bool(script(keys=[runs.current_key(spider)],
                       args=[run_id, f"{runs.KEY_ROOT}:{spider}:"]))


def slot_day(slot: str | None) -> str | None:
    """A scheduled slot's date on the platforms' calendar: a slot run late, past midnight,
    still judges the titles due on its own day. TOONPICK_CRAWL_TODAY, when set, wins."""
    config = load_config()
    if not slot or config.crawl_today:
        return None
    moment = check_slot(slot)
    return moment.astimezone(ZoneInfo(config.timezone)).date().isoformat()


def crawl(ctx: TaskContext, mode: CrawlMode, platforms: Any = None, today: Any = None,
          node_wait: Any = 0.0) -> dict[str, Any]:
    spiders = spiders_for(platforms)
    today = check_today(today)
    wait = check_node_wait(node_wait)
    redis_url = load_config().redis_url
    if not redis_url:
        raise CrawlTaskError("crawl tasks need REDIS_URL (runs and their stats live there)")
    server = redis_client(redis_url)
    try:
        return CrawlTask(ctx, mode, spiders, today, wait, server).run()
    finally:
        server.close()


def webtoon_all_crawl(ctx: TaskContext, platforms: list[str] | None = None,
                      today: str | None = None, schedule: str | None = None,
                      slot: str | None = None, request_id: str | None = None,
                      node_wait: float = 0.0) -> dict[str, Any]:
    """Every title of the platforms, finished ones included, and all their episodes."""
    return crawl(ctx, CrawlMode.ALL, platforms, today, node_wait)


def webtoon_new_crawl(ctx: TaskContext, platforms: list[str] | None = None,
                      today: str | None = None, schedule: str | None = None,
                      slot: str | None = None, request_id: str | None = None,
                      node_wait: float = 0.0) -> dict[str, Any]:
    """Titles the catalogue does not know yet."""
    return crawl(ctx, CrawlMode.NEW, platforms, today, node_wait)


def webtoon_episode_update(ctx: TaskContext, platforms: list[str] | None = None,
                           today: str | None = None, schedule: str | None = None,
                           slot: str | None = None, request_id: str | None = None,
                           node_wait: float = 0.0) -> dict[str, Any]:
    """New episodes of the titles due for an update ``today`` (default: today)."""
    return crawl(ctx, CrawlMode.EPISODES, platforms, today or slot_day(slot), node_wait)


for _type, _body in (
    (TaskType.WEBTOON_ALL_CRAWL, webtoon_all_crawl),
    (TaskType.WEBTOON_NEW_CRAWL, webtoon_new_crawl),
    (TaskType.WEBTOON_EPISODE_UPDATE, webtoon_episode_update),
):
    register_task(_type.value, _body, retry=CRAWL_RETRY, identifying=IDENTIFYING, timeout=None,
                  validate=check_crawl_params)
