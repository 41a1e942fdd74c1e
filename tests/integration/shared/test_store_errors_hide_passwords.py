"""A store that refuses a URL or its credentials says so without the password: the error
text and its whole traceback are what a command prints or a log keeps. Against the real
services (MariaDB, SecantusDB) and a Redis of the test's own that requires a password."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import traceback
from collections.abc import Callable, Iterator

import pymongo.errors
import pymysql
import pytest
import redis

from shared.stores import mariadb, mongo
from shared.stores.redis import redis_client

pytestmark = pytest.mark.integration

PASSWORD = "NotThePw-3c9d1e"


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def raised_text(call: Callable[[], object], expected: type[BaseException]) -> str:
    """The error ``call`` raises, as it would be printed: message and traceback."""
    with pytest.raises(expected) as error:
        call()
    return str(error.value) + "".join(traceback.format_exception(error.value))


def assert_hidden(text: str) -> None:
    assert PASSWORD not in text, text


@pytest.mark.parametrize(("url", "why"), [
    (f"postgres://toonpick:{PASSWORD}@127.0.0.1/db", "expected a mysql:// URL"),
    (f"mysql://toonpick:{PASSWORD}@127.0.0.1/", "names no database"),
    (f"mysql://toonpick:{PASSWORD}@127.0.0.1/bad-name", "letters, digits or _"),
    (f"mysql://toonpick:{PASSWORD}@127.0.0.1/db?ssl=maybe", "ssl must be one of"),
    (f"mysql://toonpick:{PASSWORD}@127.0.0.1/db?read_timeout=0", "read_timeout must be"),
])
def test_mariadb_url_errors_mask_the_password(url, why):
    text = raised_text(lambda: mariadb.parse_url(url), mariadb.MariaDBURLError)
    assert why in text and "toonpick:***@127.0.0.1" in text
    assert_hidden(text)


def test_mariadb_wrong_password_and_refused_connection():
    text = raised_text(lambda: mariadb.connect(
        f"mysql://toonpick:{PASSWORD}@127.0.0.1:3306/toonpick_test?ssl=disabled"),
        pymysql.err.OperationalError)
    assert "Access denied" in text
    assert_hidden(text)
    text = raised_text(lambda: mariadb.connect(
        f"mysql://toonpick:{PASSWORD}@127.0.0.1:{_closed_port()}/toonpick_test?ssl=disabled"
        "&connect_timeout=3"), pymysql.err.OperationalError)
    assert "Can't connect" in text
    assert_hidden(text)


@pytest.mark.parametrize("url", [
    f"mongo://raw:{PASSWORD}@127.0.0.1:27017/toonpick_test",
    f"mongodb://raw:{PASSWORD}@127.0.0.1:27017/",
])
def test_mongo_url_errors_mask_the_password(url):
    text = raised_text(lambda: mongo.database_name(url), mongo.MongoURLError)
    assert "raw:***@127.0.0.1" in text
    assert_hidden(text)


def test_mongo_wrong_password_bad_port_and_refused_connection():
    def ping(url: str) -> object:
        client = mongo.mongo_client(url)
        try:
            return client.admin.command("ping")
        finally:
            client.close()

    text = raised_text(lambda: ping(
        f"mongodb://raw:{PASSWORD}@127.0.0.1:27017/toonpick_test?retryWrites=false"
        "&serverSelectionTimeoutMS=5000"), pymongo.errors.OperationFailure)
    assert "uthentication failed" in text
    assert_hidden(text)
    text = raised_text(lambda: ping(f"mongodb://raw:{PASSWORD}@127.0.0.1:port/toonpick_test"),
                       ValueError)
    assert_hidden(text)
    text = raised_text(lambda: ping(
        f"mongodb://raw:{PASSWORD}@127.0.0.1:{_closed_port()}/toonpick_test"
        "?serverSelectionTimeoutMS=1000"), pymongo.errors.ServerSelectionTimeoutError)
    assert_hidden(text)


@pytest.fixture
def redis_with_password() -> Iterator[int]:
    """A Redis of this test's own (never the shared one) that requires a password."""
    port = _closed_port()
    server = subprocess.Popen(
        [shutil.which("redis-server") or "redis-server", "--port", str(port),
         "--bind", "127.0.0.1", "--requirepass", "the-right-one", "--save", "",
         "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, \
                    "redis-server did not start"
                time.sleep(0.05)
        yield port
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_redis_wrong_password_bad_url_and_refused_connection(redis_with_password):
    port = redis_with_password
    text = raised_text(lambda: redis_client(f"redis://:{PASSWORD}@127.0.0.1:{port}/0").ping(),
                       redis.AuthenticationError)
    assert_hidden(text)
    assert redis_client(f"redis://:the-right-one@127.0.0.1:{port}/0").ping() is True
    for url in (f"redis://:{PASSWORD}@127.0.0.1:port/0",
                f"redis2://:{PASSWORD}@127.0.0.1:{port}/0",
                f"redis://:{PASSWORD}@127.0.0.1:{port}/0?socket_timeout=soon"):
        assert_hidden(raised_text(lambda url=url: redis_client(url).ping(), ValueError))
    # redis-py ignores a database that is not a number: the password is what it refuses.
    assert_hidden(raised_text(
        lambda: redis_client(f"redis://:{PASSWORD}@127.0.0.1:{port}/not-a-number").ping(),
        redis.AuthenticationError))
    text = raised_text(lambda: redis_client(f"redis://:{PASSWORD}@127.0.0.1:{_closed_port()}/0",
                                            socket_connect_timeout=2).ping(),
                       redis.ConnectionError)
    assert "Connection refused" in text
    assert_hidden(text)
