"""Redis connections from one URL: ``redis://host:port/db``."""

from __future__ import annotations

import redis


def redis_client(url: str, decode_responses: bool = False) -> redis.Redis:
    if not url:
        raise ValueError("no Redis URL given (set REDIS_URL)")
    return redis.Redis.from_url(url, decode_responses=decode_responses)
