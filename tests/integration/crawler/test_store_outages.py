"""A store goes away in the middle of a crawl, then comes back: nothing is lost, nothing
is counted as dropped, and the run is done only once every store holds everything.

Each store is reached through a ``tests.faults.proxy.FaultProxy`` in front of the
real local service (moto_server for S3, MariaDB, SecantusDB, and Redis for the
cluster itself), which the test closes (refuses and resets connections: the store is
down) or stalls (accepts and holds them: the store hangs) while real spider nodes
crawl the simulator. The shared services are never stopped; only the path to them is
broken.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.faults.proxy import CLOSED, STALLED, FaultProxy
from tests.integration.crawler.conftest import (
    PLATFORM_OF,
    assert_platform_matches,
    point_at,
    sim_get,
    unset_thumbnail_paths,
)
from tests.integration.crawler.test_crawl_end_to_end import assert_stores_match

# Each test crawls for 15-40 s; a loaded machine can triple that.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

SPIDERS = tuple(PLATFORM_OF)
# Short enough for a stalled connection to be noticed within a few seconds.
STALL_TIMEOUTS = "&read_timeout=3&write_timeout=3&connect_timeout=3"


def wait_until(what: str, condition: Callable[[], bool], procs: list, timeout: float = 90
               ) -> None:
    """Poll ``condition``; fail if it does not hold in time or a node exits meanwhile."""
    deadline = time.monotonic() + timeout
    while not condition():
        for proc in procs:
            assert proc.process.poll() is None, (
                f"a node exited while waiting for {what}\n{proc.log_text()[-3000:]}")
        assert time.monotonic() < deadline, f"no {what} within {timeout} s"
        time.sleep(0.2)


def hold_outage(proxy: FaultProxy, kind: str, seconds: float, procs: list,
                stored: Callable[[], int], check: Callable[[], None] | None = None
                ) -> tuple[int, int]:
    """Break the path for ``seconds`` while the nodes keep running (none may exit).

    Returns what ``stored`` counted in the broken store a second into the outage (a
    write already on the wire may still land before) and at its end: equal when the
    outage really held every write back."""
    with proxy.outage(kind):
        deadline = time.monotonic() + seconds
        first = None
        while time.monotonic() < deadline:
            for proc in procs:
                assert proc.process.poll() is None, (
                    f"a node exited during the {kind} outage\n{proc.log_text()[-3000:]}")
            if check is not None:
                check()
            if first is None and time.monotonic() > deadline - seconds + 1:
                first = stored()
            time.sleep(0.5)
        last = stored()
    return first, last


def assert_clean_done(harness, request) -> dict[str, Any]:
    """The run is done and nothing was dropped or given up on; returns its stats."""
    run = harness.run_record(request.spider, request.run_id)
    assert run["status"] == "done", run
    stats = run["stats"]
    dropped = {k: v for k, v in stats.items() if "/dropped/" in k}
    assert dropped == {}, dropped
    given_up = {k: v for k, v in stats.items()
                if k.startswith("images/missing/") or k in ("images/failed", "lease/dead_lettered")}
    assert given_up == {}, given_up
    return stats


def thumbnails_stored(harness) -> int:
    return len(harness.s3_keys())


@pytest.mark.slow
def test_s3_closed_for_20_s_mid_crawl_every_thumbnail_lands(harness, simulator):
    server, catalogue = simulator(seed=21, titles=24, episodes=3)
    point_at(harness, server.url)
    expected = catalogue.expected()
    total_titles = sum(len(expected["platforms"][p]) for p in PLATFORM_OF.values())
    with FaultProxy("127.0.0.1", 5000) as s3:
        # One simulator host shared by the three platforms: 12 requests/s in all keeps
        # the crawl going well past the outage.
        harness.env.update({"AWS_ENDPOINT_URL": f"http://127.0.0.1:{s3.port}",
                            "TOONPICK_CRAWL_HOST_RATE": "12"})
        began = time.monotonic()
        runs = [harness.start(spider, nodes=2) for spider in SPIDERS]
        procs = [p for _, ps in runs for p in ps]
        wait_until("first thumbnails", lambda: thumbnails_stored(harness) >= 3, procs)
        outage_at = time.monotonic() - began
        first, last = hold_outage(s3, CLOSED, 20, procs, lambda: thumbnails_stored(harness))
        for _, ps in runs:
            harness.wait(ps, timeout=300)
        print(f"S3 closed 20 s from {outage_at:.1f} s with {first} of {total_titles} "
              f"thumbnails stored; crawl took {time.monotonic() - began:.1f} s; "
              f"{s3.accepted} connections, {s3.resets} reset")

    assert first == last, "thumbnails were stored while S3 was closed"
    assert last < total_titles, "every thumbnail was stored before S3 went down"
    assert_stores_match(harness, expected)
    assert unset_thumbnail_paths(harness) == 0
    retries = 0
    for request, _ in runs:
        stats = assert_clean_done(harness, request)
        retries += stats.get("images/retries", 0)
        assert stats["images/stored"] == len(expected["platforms"][PLATFORM_OF[request.spider]])
    assert retries > 0, "no thumbnail met the outage"
    # A failed upload is retried with the bytes it has: each image was fetched once.
    assert sim_get(server.url, "/_sim/requests")["images"] == total_titles


def test_s3_stalled_mid_crawl_every_thumbnail_lands(harness, simulator):
    """S3 accepts connections and answers nothing for 8 s: uploads wait (or time out and
    are retried), no thumbnail is lost, the catalogue points at every one."""
    with FaultProxy("127.0.0.1", 5000) as s3:
        request, expected = crawl_through_outage(
            harness, simulator, s3, {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{s3.port}"},
            STALLED, 8, stored=lambda: thumbnails_stored(harness))
    assert_platform_matches(harness, expected, "NAVER")
    assert_clean_done(harness, request)


def crawl_through_outage(harness, simulator, proxy: FaultProxy, env: dict[str, str],
                         kind: str, seconds: float, stored: Callable[[], int],
                         check: Callable[[Any], None] | None = None, seed: int = 33):
    """Crawl naver with two nodes, break ``proxy`` for ``seconds`` once ``stored`` has
    counted 3 titles, and wait for the nodes. Returns the request and the truth."""
    server, catalogue = simulator(seed=seed, titles=30, episodes=4)
    point_at(harness, server.url)
    expected = catalogue.expected()
    total = len(expected["platforms"]["NAVER"])
    harness.env.update({"TOONPICK_CRAWL_HOST_RATE": "10", **env})
    began = time.monotonic()
    request, procs = harness.start("naver", nodes=2)
    wait_until("first writes", lambda: stored() >= 3, procs)
    outage_at = time.monotonic() - began
    first, last = hold_outage(proxy, kind, seconds, procs, stored,
                              None if check is None else lambda: check(request))
    harness.wait(procs, timeout=300)
    # Shown with -s: where the outage fell in the crawl.
    print(f"{kind} {seconds} s outage from {outage_at:.1f} s with {first} of {total} titles "
          f"stored; crawl took {time.monotonic() - began:.1f} s; {proxy.accepted} "
          f"connections, {proxy.resets} reset")
    assert first == last, f"writes landed while the store was {kind}"
    assert last < total, "every title was stored before the outage"
    return request, expected


def maria_titles_stored(harness) -> int:
    return sum(harness.maria_titles("NAVER").values())


def mongo_titles_stored(harness) -> int:
    return sum(harness.mongo_titles("NAVER").values())


@pytest.mark.parametrize(("kind", "seconds"), [(CLOSED, 8), (STALLED, 8)])
def test_mariadb_outage_mid_crawl_loses_nothing(harness, simulator, kind, seconds):
    with FaultProxy("127.0.0.1", 3306) as db:
        url = db.url(harness.mariadb_url) + STALL_TIMEOUTS
        request, expected = crawl_through_outage(
            harness, simulator, db, {"TOONPICK_MARIADB_URL": url}, kind, seconds,
            stored=lambda: maria_titles_stored(harness))
    assert_platform_matches(harness, expected, "NAVER")
    stats = assert_clean_done(harness, request)
    # PyMySQL has no retries of its own: the pipeline's retries met the outage.
    assert stats.get("catalogue/retries", 0) > 0, "no catalogue write met the outage"


@pytest.mark.parametrize(("kind", "seconds"), [(CLOSED, 8), (STALLED, 8)])
def test_mongo_outage_mid_crawl_loses_nothing(harness, simulator, kind, seconds):
    with FaultProxy("127.0.0.1", 27017) as mongo:
        # SecantusDB names itself a replica set at 127.0.0.1:27017: without a direct
        # connection pymongo would find the real address and go round the proxy.
        url = (mongo.url(harness.mongo_url) + "&directConnection=true"
               "&socketTimeoutMS=3000&connectTimeoutMS=3000&serverSelectionTimeoutMS=3000")
        request, expected = crawl_through_outage(
            harness, simulator, mongo, {"TOONPICK_MONGO_URL": url}, kind, seconds,
            stored=lambda: mongo_titles_stored(harness))
    # pymongo retries a failed read by itself, so a stall may never reach the pipeline's
    # own retries: the frozen count during the outage (checked above) is the evidence.
    assert_platform_matches(harness, expected, "NAVER")
    assert_clean_done(harness, request)


class RunNotDone:
    """Called during the outage: the run must not be reported done meanwhile."""

    def __init__(self, harness) -> None:
        self.harness = harness
        self.statuses: list[str] = []

    def __call__(self, request) -> None:
        run = self.harness.run_record(request.spider, request.run_id)
        self.statuses.append(run.get("status", "?"))
        assert run.get("status") != "done", "run reported done while MariaDB was down"


def test_mariadb_down_longer_than_the_outage_bound_is_never_done_early(harness, simulator):
    # A 5 s bound and 5 s leases: the nodes let their leases expire during a 15 s outage.
    not_done = RunNotDone(harness)
    with FaultProxy("127.0.0.1", 3306) as db:
        url = db.url(harness.mariadb_url) + STALL_TIMEOUTS
        request, expected = crawl_through_outage(
            harness, simulator, db,
            {"TOONPICK_MARIADB_URL": url, "TOONPICK_CRAWL_OUTAGE_SECONDS": "5",
             "TOONPICK_CRAWL_LEASE_SECONDS": "5"},
            CLOSED, 15, stored=lambda: maria_titles_stored(harness), check=not_done, seed=35)
    assert len(not_done.statuses) >= 10, not_done.statuses
    assert_platform_matches(harness, expected, "NAVER")
    stats = assert_clean_done(harness, request)
    assert stats.get("catalogue/retries", 0) > 0
    assert stats.get("node/leases_let_expire", 0) >= 1, "the outage never passed the bound"


def test_redis_blip_mid_crawl_fails_no_thumbnail(harness, simulator):
    # The operator's case: Redis restarting mid-crawl failed thumbnail downloads in the
    # shared host throttle. Now the throttle falls back to a local rate meanwhile.
    server, catalogue = simulator(seed=37, titles=30, episodes=4)
    point_at(harness, server.url)
    expected = catalogue.expected()
    with FaultProxy("127.0.0.1", 6379) as redis_path:
        harness.env.update({
            "REDIS_URL": redis_path.url(harness.redis_url), "TOONPICK_CRAWL_HOST_RATE": "10"})
        request, procs = harness.start("naver", nodes=2)
        wait_until("first writes", lambda: mongo_titles_stored(harness) >= 3, procs)
        with redis_path.outage(CLOSED):
            time.sleep(3)
        harness.wait(procs, timeout=300)
    assert_platform_matches(harness, expected, "NAVER")
    stats = assert_clean_done(harness, request)
    assert stats.get("throttle/local_fallback", 0) > 0, "no download met the blip"


def test_s3_down_past_the_bound_fails_items_and_they_are_crawled_again(harness, simulator):
    # A 3 s bound: thumbnails give up during a 15 s outage, their items fail and their
    # requests' leases (5 s) expire; other nodes (or the same) crawl them again after.
    server, catalogue = simulator(seed=39, titles=30, episodes=4)
    point_at(harness, server.url)
    expected = catalogue.expected()
    total = len(expected["platforms"]["NAVER"])
    with FaultProxy("127.0.0.1", 5000) as s3:
        harness.env.update({"AWS_ENDPOINT_URL": f"http://127.0.0.1:{s3.port}",
                            "TOONPICK_CRAWL_HOST_RATE": "10",
                            "TOONPICK_CRAWL_OUTAGE_SECONDS": "3",
                            "TOONPICK_CRAWL_LEASE_SECONDS": "5",
                            # Several failed rounds must not dead-letter a request.
                            "TOONPICK_CRAWL_MAX_RECLAIMS": "20"})
        request, procs = harness.start("naver", nodes=2)
        wait_until("first thumbnails", lambda: thumbnails_stored(harness) >= 3, procs)
        first, last = hold_outage(s3, CLOSED, 15, procs, lambda: thumbnails_stored(harness))
        harness.wait(procs, timeout=300)
    assert first == last < total
    assert_platform_matches(harness, expected, "NAVER")
    run = harness.run_record("naver", request.run_id)
    assert run["status"] == "done"
    stats = run["stats"]
    assert stats.get("images/failed", 0) > 0, "no thumbnail outlasted the bound"
    assert stats.get("lease/reclaimed", 0) > 0, "failed items' requests were not crawled again"
    assert {k: v for k, v in stats.items() if "/dropped/" in k or "/missing/" in k} == {}
    assert stats.get("lease/dead_lettered", 0) == 0
