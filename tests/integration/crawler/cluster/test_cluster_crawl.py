"""Real `scrapy runspider` processes sharing one Redis crawl a local test site."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import redis

from crawler.cluster import runs
from tests.integration.crawler.cluster.site import LinkedSite

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[4]
SPIDER_FILE = Path(__file__).with_name("site_spider.py")
ITEMS_KEY = "test:items"


def node(
    redis_url: str, site: LinkedSite, tmp_path: Path, name: str, *,
    lease: float = 10, rate: float = 0, start: str = "/page/0", run_id: str | None = None,
    cluster: bool = True,
) -> subprocess.Popen:
    env = {
        **os.environ,
        "TOONPICK_PROFILE": "test",
        "REDIS_URL": redis_url if cluster else "",
        "TOONPICK_CRAWL_LEASE_SECONDS": str(lease),
        "TOONPICK_CRAWL_HOST_RATE": str(rate),
        "TOONPICK_CRAWL_IDLE_SECONDS": "0.5",
        "TOONPICK_LOG_LEVEL": "INFO",
    }
    args = [
        sys.executable, "-m", "scrapy", "runspider", str(SPIDER_FILE),
        "-a", f"base_url={site.url}", "-a", f"start={start}",
        "-s", f"TEST_ITEMS_KEY={ITEMS_KEY}", "-s", f"TEST_ITEMS_REDIS_URL={redis_url}",
    ]
    if run_id:
        args += ["-a", f"run_id={run_id}"]
    with open(tmp_path / f"{name}.log", "wb") as log:
        return subprocess.Popen(args, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)


def finish(process: subprocess.Popen, tmp_path: Path, name: str, timeout: float = 60) -> str:
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        pytest.fail(f"{name} did not finish:\n{(tmp_path / f'{name}.log').read_text()[-4000:]}")
    return (tmp_path / f"{name}.log").read_text()


def stored_urls(client: redis.Redis) -> Counter:
    return Counter(u.decode() for u in client.lrange(ITEMS_KEY, 0, -1))


def the_run(client: redis.Redis) -> dict:
    run_ids = runs.list_runs(client, "site")
    assert len(run_ids) == 1, run_ids
    return runs.get_run(client, "site", run_ids[0])


def test_two_nodes_fetch_every_page_exactly_once(redis_url, tmp_path):
    client = redis.Redis.from_url(redis_url)
    with LinkedSite(pages=300) as site:
        a = node(redis_url, site, tmp_path, "a")
        time.sleep(0.5)
        b = node(redis_url, site, tmp_path, "b")
        log_a, log_b = finish(a, tmp_path, "a"), finish(b, tmp_path, "b")
        hits = Counter(site.page_hits())

    assert a.returncode == 0 and b.returncode == 0
    assert "'finish_reason': 'finished'" in log_a and "'finish_reason': 'finished'" in log_b
    assert hits == Counter({f"/page/{i}": 1 for i in range(300)})
    assert stored_urls(client) == Counter({f"{site.url}/page/{i}": 1 for i in range(300)})
    assert not site.hits_of("/private/"), "robots.txt must be obeyed"

    run = the_run(client)
    assert run["status"] == "done" and run["finished_at"] >= run["started_at"]
    assert runs.current_run(client, "site") is None
    stats = run["stats"]
    # Both nodes' counts, summed: every page once, plus each node's robots.txt.
    assert stats["item_scraped_count"] == 300
    assert stats["response_received_count"] == 300 + 2
    assert stats["downloader/response_status_count/200"] == 302
    assert stats["robotstxt/forbidden"] == 300
    assert stats["lease/acked"] == stats["scheduler/dequeued/redis"]
    assert len(run["nodes"]) == 2 and not any(n["active"] for n in run["nodes"])
    assert run["queue"] == {"start": 0, "requests": 0, "reclaimed": 0, "leased": 0, "dead": 0}


def test_killed_node_work_is_reclaimed_by_the_survivor(redis_url, tmp_path):
    client = redis.Redis.from_url(redis_url)
    with LinkedSite(pages=200, delay=0.05) as site:
        a = node(redis_url, site, tmp_path, "a", lease=3)
        deadline = time.monotonic() + 30
        while len(site.page_hits()) < 20 and time.monotonic() < deadline:
            time.sleep(0.05)
        b = node(redis_url, site, tmp_path, "b", lease=3)
        while len(site.page_hits()) < 60 and time.monotonic() < deadline:
            time.sleep(0.05)
        a.send_signal(signal.SIGKILL)
        a.wait()
        log_b = finish(b, tmp_path, "b")

    assert b.returncode == 0, log_b
    assert "'finish_reason': 'finished'" in log_b
    stored = stored_urls(client)
    assert set(stored) == {f"{site.url}/page/{i}" for i in range(200)}
    run = the_run(client)
    assert run["status"] == "done"
    assert run["stats"]["lease/reclaimed"] >= 1
    assert run["queue"]["dead"] == 0


def test_retry_after_pauses_the_host_and_the_run_ends(redis_url, tmp_path):
    client = redis.Redis.from_url(redis_url)
    with LinkedSite(pages=5, retry_after="2") as site:
        # 2 requests/s: /page/0 has its send slot 0.5 s after /limited/1, when the
        # host is already paused, so it must wait for the pause instead.
        a = node(redis_url, site, tmp_path, "a", start="/limited/1,/page/0", rate=2)
        log_a = finish(a, tmp_path, "a")
        limited = site.hits_of("/limited/1")
        everything = site.hits

    assert a.returncode == 0, log_a
    assert len(limited) == 2, limited
    refused_at = limited[0][1]
    # Nothing reaches the host between the 429 and the time it asked for.
    during_pause = [(p, t) for p, t in everything if refused_at < t < refused_at + 1.95]
    assert during_pause == []
    assert limited[1][1] - refused_at >= 1.9
    run = the_run(client)
    assert run["status"] == "done"
    assert run["stats"]["retry_after/paused"] == 1
    assert run["stats"]["item_scraped_count"] == 5 + 1


def test_single_process_crawl_without_redis_finishes_by_itself(redis_url, tmp_path):
    client = redis.Redis.from_url(redis_url)
    with LinkedSite(pages=50) as site:
        a = node(redis_url, site, tmp_path, "a", cluster=False)
        log_a = finish(a, tmp_path, "a")
        hits = Counter(site.page_hits())

    assert a.returncode == 0, log_a
    assert "'finish_reason': 'finished'" in log_a
    assert hits == Counter({f"/page/{i}": 1 for i in range(50)})
    assert len(stored_urls(client)) == 50
    assert not site.hits_of("/private/")
    assert not client.keys("toonpick:crawl:*"), "a single-process crawl leaves Redis alone"


def test_node_given_a_run_id_crawls_a_run_started_elsewhere(redis_url, tmp_path):
    client = redis.Redis.from_url(redis_url)
    with LinkedSite(pages=20) as site:
        run_id = runs.start_run(client, "site", [{"url": f"{site.url}/page/0"}], run_id="job-42")
        a = node(redis_url, site, tmp_path, "a", start="/page/999", run_id=run_id)
        log_a = finish(a, tmp_path, "a")
        hits = Counter(site.page_hits())

    assert a.returncode == 0, log_a
    assert hits == Counter({f"/page/{i}": 1 for i in range(20)})
    run = runs.get_run(client, "site", "job-42")
    assert run["status"] == "done" and run["stats"]["item_scraped_count"] == 20


def test_robots_txt_holds_for_requests_queued_while_it_is_fetched(redis_url, tmp_path):
    # Every start request reaches the robots check before robots.txt has arrived; with
    # Scrapy's own middleware under asyncio all but the first of them were let through.
    private = [f"/private/{i}" for i in range(12)]
    with LinkedSite(pages=5) as site:
        solo = node(redis_url, site, tmp_path, "solo", cluster=False,
                    start=",".join(["/page/0", *private]))
        log = finish(solo, tmp_path, "solo")
        hits = Counter(site.page_hits())

    assert solo.returncode == 0, log
    assert not site.hits_of("/private/")
    # Each page links to its own /private/i, already among the start requests.
    assert "'robotstxt/forbidden': 12" in log
    assert hits == Counter({f"/page/{i}": 1 for i in range(5)})
