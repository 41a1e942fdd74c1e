"""End-to-end crawl fixtures: a simulator, spider processes, and a read-back of the stores."""

from __future__ import annotations

import json
import urllib.request
from collections import Counter
from dataclasses import dataclass
from typing import Any

import pytest

from crawler.launcher import CrawlNode, CrawlRequest, start_nodes, wait_all
from crawler.pipelines.raw_store import parse_episode_field
from shared.stores.mariadb import connect
from shared.stores.mongo import mongo_database
from shared.stores.s3 import s3_client_from_config
from tests.conftest import TEST_CONFIG

PLATFORM_OF = {"naver": "NAVER", "kakao": "KAKAO", "kakaopage": "KAKAOPAGE"}


def sim_get(url: str, path: str) -> Any:
    with urllib.request.urlopen(url + path, timeout=10) as response:
        return json.loads(response.read())


def sim_post(url: str, path: str) -> Any:
    request = urllib.request.Request(url + path, data=b"", method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


@dataclass
class CrawlHarness:
    """Everything one test's crawls share: stores, Redis, the simulator's URL."""

    env: dict[str, str]
    mariadb_url: str
    mongo_url: str
    bucket: str
    redis_url: str
    tmp_path: Any

    def start(self, spider: str, nodes: int = 1, settings: dict[str, str] | None = None,
              **kwargs: Any) -> tuple[CrawlRequest, list[CrawlNode]]:
        request = CrawlRequest(spider, **kwargs)
        return request, start_nodes(request, nodes=nodes, env=self.env,
                                    log_dir=self.tmp_path / "logs", settings=settings)

    def crawl(self, spider: str, nodes: int = 1, timeout: float = 180, **kwargs: Any
              ) -> CrawlRequest:
        request, procs = self.start(spider, nodes=nodes, **kwargs)
        self.wait(procs, timeout)
        return request

    def wait(self, procs: list[CrawlNode], timeout: float = 180) -> None:
        codes = wait_all(procs, timeout=timeout)
        logs = "\n".join(p.log_text()[-3000:] for p in procs)
        assert codes == [0] * len(procs), f"node exit codes {codes}\n{logs}"

    # --- read-back -------------------------------------------------------------------

    def mongo_titles(self, platform: str) -> Counter:
        db = mongo_database(self.mongo_url)
        try:
            # A document created by its episodes alone holds no title payload yet.
            return Counter(d["external_id"] for d in db.webtoon_raw.find(
                {"platform": platform, "content_hash": {"$exists": True}}, {"external_id": 1}))
        finally:
            db.client.close()

    def mongo_episodes(self, platform: str) -> Counter:
        db = mongo_database(self.mongo_url)
        try:
            # Episodes live inside their title's document, keyed "{season}-{no}".
            return Counter(
                (d["external_id"], *parse_episode_field(name))
                for d in db.webtoon_raw.find({"platform": platform},
                                             {"external_id": 1, "episodes": 1})
                for name in d.get("episodes", {})
            )
        finally:
            db.client.close()

    def mongo_history_lengths(self) -> dict[tuple[str, str], int]:
        db = mongo_database(self.mongo_url)
        try:
            return {(d["platform"], d["external_id"]): len(d.get("history", []))
                    for d in db.webtoon_raw.find({})}
        finally:
            db.client.close()

    def sql(self, query: str, *args: Any) -> list[tuple]:
        conn = connect(self.mariadb_url)
        try:
            with conn.cursor() as cur:
                cur.execute(query, args)
                return [tuple(r.values()) if isinstance(r, dict) else tuple(r)
                        for r in cur.fetchall()]
        finally:
            conn.close()

    def maria_titles(self, platform: str) -> Counter:
        rows = self.sql(
            "SELECT wp.external_id FROM webtoon_platform wp JOIN platform p"
            " ON p.id = wp.platform_id WHERE p.name = %s", platform)
        return Counter(r[0] for r in rows)

    def maria_episodes(self, platform: str) -> Counter:
        rows = self.sql(
            "SELECT wp.external_id, s.season_no, e.episode_no FROM webtoon_episode_link l"
            " JOIN platform p ON p.id = l.platform_id"
            " JOIN webtoon_episode e ON e.id = l.episode_id"
            " JOIN webtoon_season s ON s.id = e.season_id"
            " JOIN webtoon_platform wp ON wp.webtoon_id = e.webtoon_id"
            "  AND wp.platform_id = l.platform_id"
            " WHERE p.name = %s", platform)
        return Counter((r[0], int(r[1]), int(r[2])) for r in rows)

    def s3_keys(self) -> set[str]:
        client = s3_client_from_config(TEST_CONFIG)
        keys: set[str] = set()
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket):
            keys.update(o["Key"] for o in page.get("Contents", []))
        return keys

    def run_record(self, spider: str, run_id: str) -> dict[str, Any]:
        from crawler.cluster.runs import get_run
        from shared.stores.redis import redis_client

        client = redis_client(self.redis_url)
        try:
            return get_run(client, spider, run_id) or {}
        finally:
            client.close()


def touched_titles(counters: dict) -> dict[str, set[str]]:
    """Title ids the simulator served a title or episode request for, per platform."""
    touched: dict[str, set[str]] = {p: set() for p in PLATFORM_OF.values()}
    for kind, per_title in counters.items():
        spider = kind.split("_")[0]
        if spider in PLATFORM_OF and isinstance(per_title, dict):
            touched[PLATFORM_OF[spider]].update(per_title)
    return touched


def served_responses(counters: dict) -> int:
    """Every response the simulator sent but robots.txt (which it does not count)."""
    return (counters["api_requests"] + counters["images"] + counters["not_found"]
            + counters["bad_requests"])


def expected_titles(expected: dict, platform: str) -> Counter:
    return Counter(expected["platforms"][platform].keys())


def expected_episodes(expected: dict, platform: str) -> Counter:
    return Counter(
        (external_id, int(season), int(no))
        for external_id, title in expected["platforms"][platform].items()
        for season, no in title["episodes"]
    )


def assert_platform_matches(harness, expected: dict, platform: str) -> None:
    """``assert_stores_match`` for one crawled platform: every store exact, every title's
    thumbnail in S3 and its path in the catalogue."""
    want_titles = expected_titles(expected, platform)
    want_episodes = expected_episodes(expected, platform)
    assert want_titles and want_episodes
    assert harness.mongo_titles(platform) == want_titles
    assert harness.maria_titles(platform) == want_titles
    assert harness.mongo_episodes(platform) == want_episodes
    assert harness.maria_episodes(platform) == want_episodes
    keys = harness.s3_keys()
    missing = [e for e in want_titles if f"webtoons/{platform}/{e}/thumbnail.jpg" not in keys]
    assert missing == []
    assert unset_thumbnail_paths(harness, platform) == 0


def unset_thumbnail_paths(harness, platform: str | None = None) -> int:
    if platform is None:
        return harness.sql("SELECT COUNT(*) FROM webtoon WHERE thumbnail_path IS NULL")[0][0]
    return harness.sql(
        "SELECT COUNT(*) FROM webtoon w JOIN webtoon_platform wp ON wp.webtoon_id = w.id"
        " JOIN platform p ON p.id = wp.platform_id"
        " WHERE p.name = %s AND w.thumbnail_path IS NULL", platform)[0][0]


@pytest.fixture
def harness(mariadb_url: str, mongo_url: str, s3_bucket: str, redis_url: str,
            tmp_path) -> CrawlHarness:
    env = {
        "TOONPICK_PROFILE": "test",
        "TOONPICK_MARIADB_URL": mariadb_url,
        "TOONPICK_MONGO_URL": mongo_url,
        "TOONPICK_IMAGES_STORE": f"s3://{s3_bucket}/",
        "REDIS_URL": redis_url,
        "TOONPICK_CRAWL_HOST_RATE": "0",
        "TOONPICK_CRAWL_IDLE_SECONDS": "1",
        "TOONPICK_CRAWL_FLUSH_SECONDS": "0.2",
        "TOONPICK_LOG_LEVEL": "INFO",
    }
    return CrawlHarness(env, mariadb_url, mongo_url, s3_bucket, redis_url, tmp_path)


@pytest.fixture
def simulator():
    """A factory: ``simulator(**catalogue_options)`` → (server, catalogue), shut down after."""
    from crawler.simulator.catalogue import Catalogue
    from crawler.simulator.server import serve

    servers = []

    def start(throttle_every: int = 0, **options: Any):
        catalogue = Catalogue(**options)
        server = serve(catalogue, throttle_every=throttle_every)
        servers.append(server)
        return server, catalogue

    yield start
    for server in servers:
        server.shutdown()


def point_at(harness: CrawlHarness, url: str) -> None:
    harness.env.update({
        "TOONPICK_NAVER_BASE_URL": url,
        "TOONPICK_KAKAO_BASE_URL": url,
        "TOONPICK_KAKAOPAGE_BASE_URL": url,
    })
