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
