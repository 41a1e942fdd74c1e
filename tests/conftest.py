"""Fixtures for the real local services (see deploy/local/services.sh).

Every test that touches a store gets its own MariaDB database, MongoDB database,
S3 bucket and Redis key space, so tests never see each other's data. A service
that does not answer fails the test loudly: these tests never skip themselves
into a green run.
"""

from __future__ import annotations

import os
import socket
import uuid
from urllib.parse import urlsplit, urlunsplit

import pytest

from shared.config import load_config

TEST_CONFIG = load_config(profile="test", environ={})
TEST_REDIS_DB = int(os.environ.get("TOONPICK_TEST_REDIS_DB", "15"))


def _require(host: str, port: int, what: str) -> None:
    try:
        socket.create_connection((host, port), timeout=2).close()
    except OSError as exc:
        pytest.fail(
            f"{what} does not answer on {host}:{port} ({exc}); "
            "start the services with `deploy/local/services.sh up`",
            pytrace=False,
        )


def _with_path(url: str, path: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + path, parts.query, ""))


@pytest.fixture
def unique_name() -> str:
    return "t" + uuid.uuid4().hex[:10]


@pytest.fixture
def redis_url() -> str:
    """A Redis database of its own for the test (db 15, or ``TOONPICK_TEST_REDIS_DB`` so
    that two targeted test runs can share the machine), flushed before and after."""
    import redis

    _require("127.0.0.1", 6379, "Redis")
    url = f"redis://127.0.0.1:6379/{TEST_REDIS_DB}"
    client = redis.Redis.from_url(url)
    client.flushdb()
    yield url
    client.flushdb()
    client.close()


@pytest.fixture
def mariadb_url(unique_name: str) -> str:
    """A fresh, migrated MariaDB database, dropped afterwards."""
    from shared.schema.migrate import migrate
    from shared.stores.mariadb import drop_database

    _require("127.0.0.1", 3306, "MariaDB")
    url = _with_path(TEST_CONFIG.mariadb_url, f"toonpick_{unique_name}")
    migrate(url)
    yield url
    drop_database(url)


@pytest.fixture
def mongo_url(unique_name: str) -> str:
    """A MongoDB (SecantusDB) database of its own, dropped afterwards."""
    import pymongo

    _require("127.0.0.1", 27017, "SecantusDB (MongoDB wire)")
    url = _with_path(TEST_CONFIG.mongo_url, f"toonpick_{unique_name}")
    yield url
    client = pymongo.MongoClient(url)
    client.drop_database(f"toonpick_{unique_name}")
    client.close()


@pytest.fixture
def s3_bucket(unique_name: str) -> str:
    """A new bucket on moto_server; returns its name."""
    import boto3

    _require("127.0.0.1", 5000, "moto_server (S3)")
    s3 = boto3.client(
        "s3",
        endpoint_url=TEST_CONFIG.aws_endpoint_url,
        aws_access_key_id=TEST_CONFIG.aws_access_key_id,
        aws_secret_access_key=TEST_CONFIG.aws_secret_access_key,
        region_name=TEST_CONFIG.aws_region,
    )
    bucket = f"toonpick-{unique_name}"
    s3.create_bucket(
        Bucket=bucket,
        CreateBucketConfiguration={"LocationConstraint": TEST_CONFIG.aws_region},
    )
    yield bucket
