"""A real crawl through validate -> raw -> images -> catalogue, on the real services."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import boto3
import pytest

from shared.catalogue import catalogue_counts
from shared.config import load_config
from shared.stores.mongo import mongo_database

pytestmark = pytest.mark.integration
CONFIG = load_config(profile="test", environ={})
PROBE = Path(__file__).with_name("crawl_probe.py")


def free_port() -> int:
    # The same port on both runs: thumbnail URLs are part of the catalogue row.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def crawl(**cfg) -> dict:
    done = subprocess.run([sys.executable, str(PROBE), json.dumps(cfg)], capture_output=True,
                          text=True, timeout=240, cwd=Path(__file__).parents[4])
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_crawl_stores_items_in_every_store_before_reporting_them(
        mariadb_url, mongo_url, s3_bucket, tmp_path):
    cfg = dict(titles=6, episodes=4, pipelines=True, images=True, bad=True, check=True,
               dir=str(tmp_path), mariadb_url=mariadb_url, mongo_url=mongo_url,
               images_store=f"s3://{s3_bucket}/thumbs/", aws_endpoint_url=CONFIG.aws_endpoint_url,
               batch_size=5, port=free_port())
    first = crawl(**cfg)

    stats, checks = first["stats"], first["checks"]
    assert checks == {"scraped": 30, "not_in_catalogue_when_scraped": 0}
    assert stats["validate/dropped/missing_title"] == 1
    assert stats["catalogue/dropped/unknown_webtoon"] == 1
    assert stats["catalogue/webtoon/inserted"] == 6 and stats["catalogue/episode/inserted"] == 24
    assert stats["raw/webtoon/inserted"] == 6 and stats["raw/episode/inserted"] == 25
    assert stats["images/stored"] == 5 and stats["images/missing/http_404"] == 1
    assert "images/failed" not in stats  # a 404 is the platform's verdict, not a failure
    counts = catalogue_counts(mariadb_url)
    assert counts["webtoons"] == 6 and counts["episodes"] == 24

    s3 = boto3.client("s3", endpoint_url=CONFIG.aws_endpoint_url, region_name=CONFIG.aws_region,
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=s3_bucket)["Contents"])
    assert keys == [f"thumbs/webtoons/NAVER/{i}/thumbnail.jpg" for i in range(1, 6)]
    import pymysql

    conn = pymysql.connect(**_conn_args(mariadb_url))
    with conn.cursor() as cur:
        cur.execute("SELECT external_id, thumbnail_path FROM webtoon ORDER BY external_id")
        paths = dict(cur.fetchall())
    conn.close()
    assert paths["0"] is None  # the failed download keeps only thumbnail_url
    assert paths["3"] == f"s3://{s3_bucket}/thumbs/webtoons/NAVER/3/thumbnail.jpg"

    again = crawl(**cfg)["stats"]
    assert again["catalogue/webtoon/unchanged"] == 6
    assert again["catalogue/episode/unchanged"] == 24
    assert again["raw/webtoon/unchanged"] == 6 and again["raw/episode/unchanged"] == 25
    assert catalogue_counts(mariadb_url) == counts
    db = mongo_database(mongo_url)
    assert db.webtoon_raw.count_documents({"content_hash": {"$exists": True}}) == 6
    # The episode whose title was dropped is kept in a document of its own, episodes only.
    assert db.webtoon_raw.count_documents({}) == 7
    db.client.close()


def _conn_args(url):
    from shared.stores.mariadb import parse_url

    target = parse_url(url)
    return dict(host=target.host, port=target.port, user=target.user, password=target.password,
                database=target.database)
