"""``scrapy crawl`` whose exit code says how the spider closed.

Scrapy's own ``crawl`` exits 0 whatever the close reason, so a node killed by SIGTERM
("shutdown"), or one whose run was lost ("interrupted"), looked like a node that
finished its run. This command keeps Scrapy's behaviour and then reads the crawler's
``finish_reason`` stat:

- 0: closed "finished" (its run is done) or "stopped" (the run's stop flag: the run
  keeps its queues for a restart, which is what was asked for);
- 1: Scrapy could not start the crawl (its own code for a bootstrap failure);
- 3: closed for any other reason (``shutdown``, ``interrupted``, ``closespider_*``, ...):
  the run is not done as far as this node knows;
- 4: its parent (the process that started it through ``crawler.launcher``) died and
  the graceful close did not end within ``launcher.ORPHAN_GRACE_SECONDS``.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from scrapy.commands.crawl import Command as ScrapyCrawlCommand

from crawler.cluster.node import STOPPED
from crawler.launcher import close_on_parent_death, exit_when_orphaned, parent_death_signal

if TYPE_CHECKING:
    import argparse

    from scrapy import Spider
    from scrapy.crawler import Crawler

CLEAN_CLOSE_REASONS = frozenset({"finished", STOPPED})
EXIT_UNFINISHED = 3


class Command(ScrapyCrawlCommand):
    def short_desc(self) -> str:
        return "Run a spider; exit non-zero unless it closed 'finished' or 'stopped'"

    def _create_crawler(self, spidercls: type[Spider] | str) -> Crawler:
        crawler = super()._create_crawler(spidercls)
        self.toonpick_crawler = crawler
        return crawler

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        if parent_death_signal():
            # Started to die with its parent (crawler.launcher): close gracefully once, and
            # bound the dying. A node started by hand (nohup, a shell) has none.
            close_on_parent_death(parent_death_signal())
            exit_when_orphaned()
        super().run(args, opts)
        crawler = getattr(self, "toonpick_crawler", None)
        if self.exitcode or crawler is None or crawler.stats is None:
            return
        reason = crawler.stats.get_value("finish_reason")
        if reason not in CLEAN_CLOSE_REASONS:
            self.exitcode = EXIT_UNFINISHED
            print(f"scrapy crawl: spider closed with reason {reason!r}; exit code "
                  f"{EXIT_UNFINISHED}", file=sys.stderr)
