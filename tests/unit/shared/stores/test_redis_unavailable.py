"""``require_redis``: a refused Redis is one line naming where, never the password.
(A Redis that accepts and stays silent: tests/integration/shared/test_hanging_redis.py.)"""

from __future__ import annotations

import socket

import pytest

from shared.stores.redis import RedisUnavailable, redis_client, require_redis


def closed_port() -> int:
    # A port that was just free: nothing listens there, so a connect is refused.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_refused_is_one_line_with_the_address_and_no_password():
    port = closed_port()
    client = redis_client(f"redis://:hunter2@127.0.0.1:{port}/4")
    with pytest.raises(RedisUnavailable) as raised:
        require_redis(client)
    message = str(raised.value)
    assert message.startswith(f"cannot connect to Redis at 127.0.0.1:{port}/4: ")
    assert "refused" in message
    assert "\n" not in message
    assert "hunter2" not in message


def test_a_missing_unix_socket_names_its_path():
    client = redis_client("unix:///nonexistent/toonpick-redis.sock?db=2")
    with pytest.raises(RedisUnavailable, match="Redis at unix:/nonexistent/toonpick-redis"
                                               r"\.sock/2"):
        require_redis(client)


def test_unavailable_is_a_redis_connection_error():
    # Callers that already retry redis-py's ConnectionError keep doing so.
    import redis

    assert issubclass(RedisUnavailable, redis.ConnectionError)
