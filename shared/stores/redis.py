"""Redis connections from one URL: ``redis://host:port/db``.

Every client gets timeouts (``TIMEOUTS``), which the URL can override
(``?socket_timeout=30``, redis-py reads them from the query): 5 s to connect (a
reachable server answers in milliseconds), 10 s on one command (ours are single
keys and short Lua scripts answered in microseconds; a fork for an AOF rewrite
stalls a server well under that), and a PING before reusing a connection idle for
30 s, so a connection cut by a server restart is noticed before a command is
sent on it. ``retry_on_timeout`` stays off: a command that timed out may have run
(an INCR, a lease pop), so whether to send it again is the caller's decision.
RQ workers raise ``socket_timeout`` above their own blocking dequeue by themselves.

A process checks Redis once at start-up with ``require_redis``: a server that refuses,
or accepts and never answers, is one ``RedisUnavailable`` naming the address (never
the password) and the timeout that ran out, which commands print as one line.
"""

from __future__ import annotations

import redis

# Seconds (and a flag); see the module's doc for why these numbers.
TIMEOUTS: dict[str, float | bool] = {
    "socket_connect_timeout": 5.0,
    "socket_timeout": 10.0,
    "health_check_interval": 30,
    "retry_on_timeout": False,
}


def redis_client(url: str, decode_responses: bool = False, **options: object) -> redis.Redis:
    """A client for the URL with ``TIMEOUTS``; ``options`` override them, and options
    in the URL's query override both (redis-py's rule)."""
    if not url:
        raise ValueError("no Redis URL given (set REDIS_URL)")
    return redis.Redis.from_url(url, **{**TIMEOUTS, "decode_responses": decode_responses,
                                        **options})


class RedisUnavailable(redis.exceptions.ConnectionError):
    """Redis refused us or did not answer within the client's timeout; the message says
    which, where and how long was waited, in one line."""


def redis_address(client: redis.Redis) -> str:
    """``host:port/db`` of the client's server (no credentials)."""
    kwargs = client.connection_pool.connection_kwargs
    if "path" in kwargs:
        return f"unix:{kwargs['path']}/{kwargs.get('db', 0)}"
    return f"{kwargs.get('host', '?')}:{kwargs.get('port', '?')}/{kwargs.get('db', 0)}"


def _seconds(value: object) -> str:
    return f"{value:g}" if isinstance(value, (int, float)) else str(value)


def unavailable(client: redis.Redis, exc: BaseException, what: str = "Redis"
                ) -> RedisUnavailable:
    """``exc`` (a redis-py timeout or connection error) as one line for an operator:
    ``Redis at 127.0.0.1:6379/0 did not answer within 10 s (socket_timeout)``."""
    kwargs = client.connection_pool.connection_kwargs
    where = f"{what} at {redis_address(client)}"
    if isinstance(exc, redis.exceptions.TimeoutError):
        message = (f"{where} accepted the connection but did not answer within "
                   f"{_seconds(kwargs.get('socket_timeout'))} s (socket_timeout)")
    else:
        # Connect timeouts come as ConnectionError("Timeout connecting to server").
        detail = " ".join(str(exc).split()) or type(exc).__name__
        if "imeout" in detail:
            connect = _seconds(kwargs.get("socket_connect_timeout"))
            detail += f" (socket_connect_timeout {connect} s)"
        message = f"cannot connect to {where}: {detail}"
    return RedisUnavailable(message)


def require_redis(client: redis.Redis, what: str = "Redis") -> redis.Redis:
    """PING the server once with the client's own timeouts; ``RedisUnavailable`` (one
    line) if it refuses or stays silent. Returns the client."""
    try:
        client.ping()
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
        raise unavailable(client, exc, what) from exc
    return client
