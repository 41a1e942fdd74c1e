"""The fault proxy in front of the real Redis and MariaDB, through our client factories:
a closed path fails fast, a stalled one fails within the client's timeout, and after
``resume()`` new connections work."""

from __future__ import annotations

import socket
import time
from concurrent.futures import ThreadPoolExecutor

import pymysql
import pytest
import redis

from shared.stores.mariadb import connect, create_database, drop_database, with_database
from shared.stores.redis import redis_client
from tests.conftest import TEST_CONFIG, TEST_REDIS_DB
from tests.faults.proxy import CLOSED, FORWARDING, STALLED, FaultProxy, proxied_url

pytestmark = pytest.mark.integration

READ_TIMEOUT = 2.0


@pytest.fixture
def redis_proxy(redis_url):
    with FaultProxy("127.0.0.1", 6379) as proxy:
        yield proxy


@pytest.fixture
def maria_database(unique_name):
    url = with_database(TEST_CONFIG.mariadb_url, f"toonpick_{unique_name}")
    create_database(url)
    yield url
    drop_database(url)


@pytest.fixture
def maria_proxy(maria_database):
    with FaultProxy("127.0.0.1", 3306) as proxy:
        yield proxy


def proxied_maria(proxy: FaultProxy, url: str) -> str:
    return proxy.url(url) + f"&read_timeout={READ_TIMEOUT}&write_timeout={READ_TIMEOUT}"


def select_one(url: str) -> int:
    conn = connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1")
            return cur.fetchone()[0]
    finally:
        conn.close()


def test_proxied_url_keeps_everything_but_the_address():
    assert proxied_url("mysql://u:p%40w@127.0.0.1:3306/db?ssl=disabled", "127.0.0.1", 4001) == (
        "mysql://u:p%40w@127.0.0.1:4001/db?ssl=disabled")
    assert proxied_url("redis://127.0.0.1:6379/12", "127.0.0.1", 4002) == (
        "redis://127.0.0.1:4002/12")


def test_forwards_many_concurrent_connections(redis_proxy):
    url = f"redis://127.0.0.1:{redis_proxy.port}/{TEST_REDIS_DB}"

    def round_trip(i: int) -> bytes:
        client = redis_client(url)
        try:
            client.set(f"proxy:{i}", b"x" * 200_000)  # bigger than one forwarded chunk
            return client.get(f"proxy:{i}")
        finally:
            client.close()

    with ThreadPoolExecutor(max_workers=32) as pool:
        values = list(pool.map(round_trip, range(200)))
    assert values == [b"x" * 200_000] * 200
    assert redis_proxy.accepted >= 200
    assert redis_proxy.state == FORWARDING


def test_closed_redis_refuses_and_resets_then_resumes(redis_proxy):
    client = redis_client(f"redis://127.0.0.1:{redis_proxy.port}/{TEST_REDIS_DB}")
    assert client.ping()
    redis_proxy.close()
    assert redis_proxy.state == CLOSED and redis_proxy.open_connections == 0
    started = time.monotonic()
    with pytest.raises(redis.ConnectionError):
        client.ping()
    assert time.monotonic() - started < 2, "a closed path must fail fast, not time out"
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(redis_proxy.address, timeout=2).close()
    redis_proxy.resume()
    # The client's pool drops the reset connection and connects again.
    assert client.ping()
    client.close()


def test_stalled_redis_times_out_within_the_socket_timeout(redis_proxy):
    client = redis_client(f"redis://127.0.0.1:{redis_proxy.port}/{TEST_REDIS_DB}",
                          socket_timeout=1.0)
    assert client.ping()
    redis_proxy.stall()
    started = time.monotonic()
    with pytest.raises(redis.TimeoutError):
        client.ping()
    assert 0.8 < time.monotonic() - started < 5
    redis_proxy.resume()
    assert client.ping()
    client.close()


def test_stalled_mariadb_raises_a_timeout_within_read_timeout(maria_proxy, maria_database):
    url = proxied_maria(maria_proxy, maria_database)
    conn = connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1")
            assert cur.fetchone() == (1,)
        maria_proxy.stall()
        assert maria_proxy.state == STALLED
        started = time.monotonic()
        with pytest.raises(pymysql.err.OperationalError, match="timed out"):
            with conn.cursor() as cur:
                cur.execute("SELECT 1")
        elapsed = time.monotonic() - started
        assert READ_TIMEOUT * 0.8 < elapsed < READ_TIMEOUT + 3, elapsed
    finally:
        conn.close()

    # A new connection is accepted but its handshake never comes: the same bound.
    started = time.monotonic()
    with pytest.raises(pymysql.err.OperationalError):
        select_one(url)
    assert time.monotonic() - started < READ_TIMEOUT + 3

    maria_proxy.resume()
    assert select_one(url) == 1


def test_closed_mariadb_raises_operational_error_then_resumes(maria_proxy, maria_database):
    url = proxied_maria(maria_proxy, maria_database)
    conn = connect(url)
    try:
        maria_proxy.close()
        started = time.monotonic()
        with pytest.raises(pymysql.err.OperationalError):
            with conn.cursor() as cur:
                cur.execute("SELECT 1")
        assert time.monotonic() - started < 2, "a reset connection must fail at once"
    finally:
        conn.close()
    with pytest.raises(pymysql.err.OperationalError):
        select_one(url)
    maria_proxy.resume()
    assert select_one(url) == 1
    # And closing again after resume works the same (the proxy can be cycled).
    maria_proxy.close()
    with pytest.raises(pymysql.err.OperationalError):
        select_one(url)
    maria_proxy.resume()
    assert select_one(url) == 1


def test_outage_later_breaks_the_path_for_its_duration(redis_proxy):
    client = redis_client(f"redis://127.0.0.1:{redis_proxy.port}/{TEST_REDIS_DB}")
    outage = redis_proxy.outage_later(after=0.2, duration=1.0)
    time.sleep(0.5)
    with pytest.raises(redis.ConnectionError):
        client.ping()
    outage.join(timeout=5)
    assert redis_proxy.state == FORWARDING
    assert client.ping()
    client.close()


def test_connect_read_timeout_overrides_the_url(maria_proxy, maria_database):
    url = proxied_maria(maria_proxy, maria_database)  # read_timeout=2 in the URL
    conn = connect(url, read_timeout=4.0)
    try:
        maria_proxy.stall()
        started = time.monotonic()
        with pytest.raises(pymysql.err.OperationalError, match="timed out"):
            with conn.cursor() as cur:
                cur.execute("SELECT 1")
        assert 3.5 < time.monotonic() - started < 7
    finally:
        maria_proxy.resume()
        conn.close()
