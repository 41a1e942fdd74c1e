"""A real Scrapy crawl through the four pipelines, run in a subprocess by the tests.

Its spider yields items straight from ``start()`` (no platform needed); thumbnails
come from a local HTTP server. Every scraped item is checked to be in MariaDB at
the moment Scrapy reports it scraped. Prints the crawl stats and checks as JSON.
"""

from __future__ import annotations

import functools
import http.server
import io
import json
import sys
import threading
import time
from pathlib import Path

from PIL import Image
from scrapy import Spider, signals
from scrapy.crawler import CrawlerProcess

from crawler.items import EpisodeItem, WebtoonItem
from shared.stores.mariadb import connect

PIPELINES = {
    "crawler.pipelines.validate.ValidationPipeline": 100,
    "crawler.pipelines.raw_store.MongoRawPipeline": 200,
    "crawler.pipelines.images.ThumbnailImagesPipeline": 300,
    "crawler.pipelines.catalogue.CataloguePipeline": 400,
}


def serve(directory: Path, port: int) -> str:
    buf = io.BytesIO()
    Image.new("RGB", (40, 60), (200, 30, 30)).save(buf, "JPEG")
    (directory / "thumb.jpg").write_bytes(buf.getvalue())

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", port), functools.partial(Quiet, directory=str(directory)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_port}"


def main() -> None:
    cfg = json.loads(sys.argv[1])
    base = serve(Path(cfg["dir"]), cfg.get("port", 0)) if cfg.get("images") else ""

    class ProbeSpider(Spider):
        name = "probe"

        async def start(self):
            for i in range(cfg["titles"]):
                urls = []
                if base:
                    urls = [f"{base}/{'missing' if i == 0 else 'thumb'}.jpg?title={i}"]
                yield WebtoonItem(
                    platform="NAVER", external_id=str(i), title=f"웹툰 {i}",
                    authors=[{"uid": f"NAVER:{i}", "name": f"작가 {i}", "role": "BOTH"}],
                    days_of_week=["MONDAY"], genres=["드라마"], image_urls=urls,
                    thumbnail_url=urls[0] if urls else None, raw={"titleId": i})
                for n in range(1, cfg["episodes"] + 1):
                    yield EpisodeItem(platform="NAVER", webtoon_external_id=str(i),
                                      episode_no=n, title=f"{n}화", published_at="2024-01-01",
                                      raw={"no": n, "title": i})
            if cfg.get("bad"):
                yield EpisodeItem(platform="NAVER", webtoon_external_id="never", episode_no=1,
                                  title="orphan")
                yield WebtoonItem(platform="NAVER", external_id="x", title="  ")

    settings = {
        "ITEM_PIPELINES": PIPELINES if cfg["pipelines"] else {},
        "TWISTED_REACTOR": "twisted.internet.asyncioreactor.AsyncioSelectorReactor",
        "ROBOTSTXT_OBEY": False, "TELNETCONSOLE_ENABLED": False, "LOG_LEVEL": "WARNING",
        "TOONPICK_MARIADB_URL": cfg.get("mariadb_url"), "TOONPICK_MONGO_URL": cfg.get("mongo_url"),
        "TOONPICK_CRAWL_BATCH_SIZE": cfg.get("batch_size", 500),
        "TOONPICK_CRAWL_FLUSH_SECONDS": 0.2, "TOONPICK_CRAWL_OUTAGE_SECONDS": 30,
        "IMAGES_STORE": cfg.get("images_store"), "AWS_ENDPOINT_URL": cfg.get("aws_endpoint_url"),
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION_NAME": "ap-northeast-2", "AWS_USE_SSL": False, "AWS_VERIFY": False,
        # Items come from start(): let the engine take them as fast as the pipelines allow.
        "CONCURRENT_ITEMS": 1000,
    }
    process = CrawlerProcess(settings)
    crawler = process.create_crawler(ProbeSpider)
    checks = {"scraped": 0, "not_in_catalogue_when_scraped": 0}
    conn = connect(cfg["mariadb_url"]) if cfg.get("check") else None

    def on_scraped(item, response, spider):
        checks["scraped"] += 1
        if conn is None:
            return
        with conn.cursor() as cur:
            if isinstance(item, WebtoonItem):
                cur.execute("SELECT COUNT(*) FROM webtoon_platform WHERE external_id = %s",
                            (item.external_id,))
            else:
                cur.execute("SELECT COUNT(*) FROM webtoon_episode e JOIN webtoon_platform wp "
                            "ON wp.webtoon_id = e.webtoon_id WHERE wp.external_id = %s "
                            "AND e.episode_no = %s", (item.webtoon_external_id, item.episode_no))
            conn.commit()  # a fresh snapshot for the next check
            if cur.fetchone()[0] != 1:
                checks["not_in_catalogue_when_scraped"] += 1

    crawler.signals.connect(on_scraped, signal=signals.item_scraped)
    process.crawl(crawler)
    started = time.perf_counter()
    process.start()
    elapsed = time.perf_counter() - started
    stats = {k: v for k, v in crawler.stats.get_stats().items() if isinstance(v, int | float)}
    print(json.dumps({"stats": stats, "checks": checks, "elapsed": elapsed}))


if __name__ == "__main__":
    main()
