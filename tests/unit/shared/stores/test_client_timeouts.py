"""Every store client factory sets timeouts, and the URL can override each of them."""

from __future__ import annotations

import pytest
from botocore.config import Config

from shared.stores import aws, mariadb, mongo
from shared.stores import redis as redis_store
from shared.stores.mariadb import MariaDBURLError, parse_url
from shared.stores.mongo import client_options, mongo_client
from shared.stores.redis import redis_client
from shared.stores.s3 import s3_client
from shared.stores.sqs import sqs_client


def test_mariadb_timeouts_default_to_the_module_table():
    url = parse_url("mysql://u:p@h/db")
    assert (url.connect_timeout, url.read_timeout, url.write_timeout) == (
        mariadb.TIMEOUTS["connect_timeout"], mariadb.TIMEOUTS["read_timeout"],
        mariadb.TIMEOUTS["write_timeout"])
    assert all(seconds > 0 for seconds in mariadb.TIMEOUTS.values())


def test_mariadb_timeouts_come_from_the_url_query():
    url = parse_url("mysql://u:p@h/db?ssl=disabled&read_timeout=2.5&write_timeout=4"
                    "&connect_timeout=1")
    assert (url.connect_timeout, url.read_timeout, url.write_timeout) == (1.0, 2.5, 4.0)
    assert url.ssl == "disabled"


@pytest.mark.parametrize("value", ["0", "-3", "soon", "nan", "inf"])
def test_mariadb_bad_timeout_is_a_one_line_error_without_the_password(value):
    with pytest.raises(MariaDBURLError, match="read_timeout must be a number") as caught:
        parse_url(f"mysql://user:s3cret@h/db?read_timeout={value}")
    message = str(caught.value)
    assert "s3cret" not in message and "user:***@h" in message
    assert "\n" not in message


def test_mariadb_url_errors_never_show_the_password():
    with pytest.raises(MariaDBURLError) as caught:
        parse_url("mysql://user:s3cret@h/")
    assert "s3cret" not in str(caught.value)


def test_mongo_defaults_unless_the_url_names_the_option():
    assert client_options("mongodb://h/db") == mongo.TIMEOUTS
    # URI option names are case-insensitive; the URL's value must win, so no default
    # is passed for it (pymongo lets keyword options override the URL).
    options = client_options("mongodb://h/db?sockettimeoutms=1500&retryWrites=false")
    assert "socketTimeoutMS" not in options
    assert options["serverSelectionTimeoutMS"] == mongo.TIMEOUTS["serverSelectionTimeoutMS"]
    assert client_options("mongodb://h/db", connectTimeoutMS=1)["connectTimeoutMS"] == 1


def test_mongo_client_carries_the_timeouts():
    # MongoClient connects in the background: building one needs no server.
    client = mongo_client("mongodb://127.0.0.1:1/db?retryWrites=false&socketTimeoutMS=1500")
    try:
        assert client.options.server_selection_timeout == (
            mongo.TIMEOUTS["serverSelectionTimeoutMS"] / 1000)
        assert client.options.pool_options.connect_timeout == (
            mongo.TIMEOUTS["connectTimeoutMS"] / 1000)
        assert client.options.pool_options.socket_timeout == 1.5
    finally:
        client.close()


def test_mongo_url_errors_never_show_the_password():
    with pytest.raises(mongo.MongoURLError) as caught:
        mongo.database_name("mongodb://user:s3cret@h:27017/")
    assert "s3cret" not in str(caught.value)


def test_redis_client_defaults_and_url_overrides():
    client = redis_client("redis://127.0.0.1:1/3", decode_responses=True)
    kwargs = client.connection_pool.connection_kwargs
    for name, value in redis_store.TIMEOUTS.items():
        assert kwargs[name] == value, name
    assert kwargs["decode_responses"] is True and kwargs["db"] == 3
    assert kwargs["retry_on_timeout"] is False

    overridden = redis_client("redis://127.0.0.1:1/0?socket_timeout=2&health_check_interval=5",
                              socket_connect_timeout=1.5)
    kwargs = overridden.connection_pool.connection_kwargs
    assert (kwargs["socket_timeout"], kwargs["health_check_interval"],
            kwargs["socket_connect_timeout"]) == (2.0, 5, 1.5)
    assert kwargs["decode_responses"] is False


def test_redis_client_needs_a_url():
    with pytest.raises(ValueError, match="REDIS_URL"):
        redis_client("")


@pytest.mark.parametrize("factory", [s3_client, sqs_client])
def test_aws_clients_carry_timeouts_and_standard_retries(factory):
    client = factory("http://127.0.0.1:1", "k", "s", "ap-northeast-2")
    config = client.meta.config
    assert config.connect_timeout == aws.TIMEOUTS["connect_timeout"]
    assert config.read_timeout == aws.TIMEOUTS["read_timeout"]
    assert config.retries["mode"] == "standard"
    # botocore counts max_attempts as retries after the first try.
    assert config.retries["total_max_attempts"] == aws.RETRIES["max_attempts"] + 1


def test_aws_client_config_overrides_only_what_it_names():
    client = s3_client("http://127.0.0.1:1", "k", "s", "ap-northeast-2",
                       config=Config(read_timeout=2))
    assert client.meta.config.read_timeout == 2
    assert client.meta.config.connect_timeout == aws.TIMEOUTS["connect_timeout"]
    assert client.meta.config.retries["mode"] == "standard"


def test_mariadb_connect_read_timeout_override_is_checked():
    with pytest.raises(ValueError, match="read_timeout"):
        mariadb.connect("mysql://u:p@127.0.0.1:1/db", read_timeout=0)
