"""Standby spider nodes: long-lived processes that crawl every new run of their spider.

A spider node (``scrapy crawl <platform>``) belongs to one crawl run and exits when
the run is done. A standby node stays up on a spider machine: it announces itself in
Redis (a key with a TTL, renewed while it lives), watches the spider's current run,
and starts a spider node that joins it; when that node exits it waits for the next
run. A node that exits before its run is done (killed, crashed: a non-zero exit code,
see ``crawler.commands.crawl``) is replaced, a few times per run; one that closed
cleanly (its run done, or stopped) does not count, so a run stopped and restarted any
number of times is rejoined each time (the restart makes it current again). Crawl
tasks see standby nodes (``standby_nodes``) and push their runs to them instead of
starting a spider node on the task worker.

    toonpick spider-node naver          # or: python -m crawler.cluster.standby naver

States: *waiting* (no run it has not crawled) → *crawling* (its spider node runs) →
waiting again; SIGTERM stops the spider node gracefully (Scrapy's own shutdown: its
leases go back to the queue) and removes the announcement.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import sys
import threading
import uuid
from collections.abc import Mapping
from pathlib import Path

import redis

from crawler.cluster import runs
from crawler.launcher import SPIDERS, CrawlNode, CrawlRequest, start_nodes
from shared.config import load_config
from shared.stores.redis import RedisUnavailable, redis_client, require_redis

log = logging.getLogger(__name__)

# Spider nodes of one run that may exit non-zero before a standby node gives up on it.
MAX_STARTS_PER_RUN = 3


def _standby_prefix(spider: str) -> str:
    return f"toonpick:crawl:{spider}:standby:"


def standby_nodes(server: redis.Redis, spider: str) -> list[str]:
    """Ids of the live standby nodes of ``spider``."""
    prefix = _standby_prefix(spider)
    return sorted(key.decode()[len(prefix):]
                  for key in server.scan_iter(match=prefix + "*", count=100))


class StandbyNode:
    def __init__(self, spider: str, server: redis.Redis, env: Mapping[str, str] | None = None,
                 ttl: float = 15.0, log_dir: Path | None = None):
        if spider not in SPIDERS:
            raise ValueError(f"unknown spider {spider!r}: expected one of {', '.join(SPIDERS)}")
        self.spider = spider
        self.server = server
        self.env = dict(env or {})
        self.ttl = ttl
        self.log_dir = log_dir
        self.node_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.node: CrawlNode | None = None
        self.run_id: str | None = None
        self.starts: dict[str, int] = {}

    @property
    def key(self) -> str:
        return _standby_prefix(self.spider) + self.node_id

    def tick(self) -> None:
        """Renew the announcement; start a spider node when a run wants one."""
        self.server.set(self.key, self.run_id or "", px=int(self.ttl * 1000))
        if self.node is not None and self.node.process.poll() is None:
            return
        if self.node is not None:
            code = self.node.process.returncode
            log.info("%s: spider node %s for run %s exited (%s)", self.spider, self.node.pid,
                     self.run_id, code)
            if code == 0 and self.run_id is not None:
                self.starts[self.run_id] -= 1  # a clean close is not a failed start
            self.node = None
        run_id = runs.current_run(self.server, self.spider)
        if run_id is None:
            return
        run = runs.get_run(self.server, self.spider, run_id)
        if (run is None or run["status"] != runs.RUNNING or run.get("stop_requested")
                or self.starts.get(run_id, 0) >= MAX_STARTS_PER_RUN):
            return
        self.starts[run_id] = self.starts.get(run_id, 0) + 1
        self.run_id = run_id
        request = CrawlRequest(self.spider, run_id=run_id)
        self.node = start_nodes(request, env=self.env, log_dir=self.log_dir)[0]
        log.info("%s: spider node %s joins run %s", self.spider, self.node.pid, run_id)

    def run(self, stop: threading.Event, poll: float = 1.0) -> None:
        try:
            while not stop.is_set():
                self.tick()
                stop.wait(poll)
        finally:
            self.close()

    def close(self, grace: float = 30.0) -> None:
        if self.node is not None and self.node.process.poll() is None:
            self.node.process.send_signal(signal.SIGTERM)
            try:
                self.node.wait(timeout=grace)
            except Exception:  # noqa: BLE001 - anything but a clean exit: make sure it ends
                self.node.kill()
        self.server.delete(self.key)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="toonpick spider-node", description=__doc__.split(
        "\n")[0])
    parser.add_argument("spider", choices=SPIDERS)
    parser.add_argument("--poll", type=float, default=1.0, help="seconds between looks")
    args = parser.parse_args(argv)
    config = load_config()
    logging.basicConfig(level=config.log_level,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not config.redis_url:
        print("toonpick spider-node: REDIS_URL is empty; a standby node needs the cluster",
              file=sys.stderr)
        return 2
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    try:
        server = require_redis(redis_client(config.redis_url))
    except RedisUnavailable as exc:
        print(f"toonpick spider-node: {exc}", file=sys.stderr)
        return 1
    node = StandbyNode(args.spider, server, log_dir=Path(".run") / "logs" / "standby")
    log.info("standby node %s for %s", node.node_id, args.spider)
    node.run(stop, poll=args.poll)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
