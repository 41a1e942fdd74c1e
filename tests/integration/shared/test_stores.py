from __future__ import annotations

import pytest

from shared.config import load_config
from shared.stores.mariadb import connect, parse_url
from shared.stores.mongo import mongo_database
from shared.stores.redis import redis_client
from shared.stores.s3 import ensure_bucket, s3_client_from_config

pytestmark = pytest.mark.integration
CONFIG = load_config(profile="test", environ={})


def test_ensure_bucket_is_idempotent(unique_name):
    client = s3_client_from_config(CONFIG)
    bucket = f"toonpick-{unique_name}-b"
    assert ensure_bucket(client, bucket, CONFIG.aws_region) is True
    assert ensure_bucket(client, bucket, CONFIG.aws_region) is False
    client.put_object(Bucket=bucket, Key="k", Body=b"v")
    assert client.get_object(Bucket=bucket, Key="k")["Body"].read() == b"v"


def test_mongo_database_comes_from_the_url(mongo_url):
    db = mongo_database(mongo_url)
    db.probe.insert_one({"x": 1})
    assert db.name == mongo_url.split("/")[-1].split("?")[0]
    assert db.probe.count_documents({}) == 1
    db.client.close()


def test_mariadb_connection_is_utf8mb4(mariadb_url):
    conn = connect(mariadb_url)
    with conn.cursor() as cur:
        cur.execute("SELECT @@character_set_connection, DATABASE()")
        charset, database = cur.fetchone()
    conn.close()
    assert charset == "utf8mb4" and database == parse_url(mariadb_url).database


def test_redis_client(redis_url):
    client = redis_client(redis_url)
    client.set("k", "v")
    assert client.get("k") == b"v"
    client.close()
