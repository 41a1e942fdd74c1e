"""One request rate per host, shared by every node, and host pauses (Retry-After).

Each host has a *next send slot*. A request reserves the slot atomically
(``slot = max(now, next, paused_until)``; ``next = slot + 1/rate``) and waits until it:
with N nodes the host still sees ``rate`` requests per second in total. A pause
(from a Retry-After answer) pushes every later reservation past its end; a request
that was already waiting re-checks the pause when it wakes.

``RedisHostThrottle`` keeps slots in Redis on Redis' clock (``TIME``), so nodes agree;
``LocalHostThrottle`` does the same in-process when there is no Redis.
``TOONPICK_CRAWL_HOST_RATE`` = 0 means no rate limit (pauses still apply).
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Protocol
from urllib.parse import urlsplit

import redis

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.crawler import Crawler

KEY_ROOT = "toonpick:throttle"

_NOW = "local t = redis.call('TIME') local now = tonumber(t[1]) + tonumber(t[2]) / 1000000 "

# KEYS: next slot, paused until; ARGV: interval seconds. Returns the wait in seconds.
_RESERVE = _NOW + """
local slot = math.max(now, tonumber(redis.call('GET', KEYS[1]) or 0),
                      tonumber(redis.call('GET', KEYS[2]) or 0))
local interval = tonumber(ARGV[1])
if interval > 0 then
  redis.call('SET', KEYS[1], string.format('%.6f', slot + interval),
             'PX', math.ceil((slot + interval - now) * 1000) + 60000)
end
return string.format('%.6f', slot - now)
"""

# KEYS: paused until; ARGV: seconds from now. Returns the pause's remaining seconds.
_PAUSE = _NOW + """
local until_ = math.max(now + tonumber(ARGV[1]), tonumber(redis.call('GET', KEYS[1]) or 0))
redis.call('SET', KEYS[1], string.format('%.6f', until_),
           'PX', math.ceil((until_ - now) * 1000) + 60000)
return string.format('%.6f', until_ - now)
"""

# KEYS: paused until. Returns remaining pause seconds (<= 0: not paused).
_PAUSED_FOR = _NOW + """
return string.format('%.6f', tonumber(redis.call('GET', KEYS[1]) or 0) - now)
"""


def host_of(url: str) -> str:
    """The throttling unit: host and port as in the URL."""
    return urlsplit(url).netloc.lower()


class HostThrottle(Protocol):
    def reserve(self, host: str) -> float:
        """Take the host's next send slot; returns seconds to wait for it."""

    def pause(self, host: str, seconds: float) -> float:
        """Send nothing to the host for ``seconds``; returns the pause's remaining time."""

    def paused_for(self, host: str) -> float:
        """Seconds left of the host's pause (<= 0 when not paused)."""

    def now(self) -> float:
        """The throttle's clock, seconds."""


class RedisHostThrottle:
    def __init__(self, server: redis.Redis, rate: float):
        if rate < 0:
            raise ValueError(f"host rate must be >= 0, got {rate}")
        self.server = server
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self._reserve = server.register_script(_RESERVE)
        self._pause = server.register_script(_PAUSE)
        self._paused_for = server.register_script(_PAUSED_FOR)

    @staticmethod
    def _keys(host: str) -> tuple[str, str]:
        return f"{KEY_ROOT}:{host}:next", f"{KEY_ROOT}:{host}:paused"

    def reserve(self, host: str) -> float:
        return float(self._reserve(keys=list(self._keys(host)), args=[self.interval]))

    def pause(self, host: str, seconds: float) -> float:
        return float(self._pause(keys=[self._keys(host)[1]], args=[max(seconds, 0.0)]))

    def paused_for(self, host: str) -> float:
        return float(self._paused_for(keys=[self._keys(host)[1]]))

    def now(self) -> float:
        seconds, micros = self.server.time()
        return seconds + micros / 1_000_000


class LocalHostThrottle:
    def __init__(self, rate: float, clock=time.monotonic):
        if rate < 0:
            raise ValueError(f"host rate must be >= 0, got {rate}")
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self._clock = clock
        self._next: dict[str, float] = {}
        self._paused: dict[str, float] = {}

    def reserve(self, host: str) -> float:
        now = self._clock()
        slot = max(now, self._next.get(host, 0.0), self._paused.get(host, 0.0))
        if self.interval > 0:
            self._next[host] = slot + self.interval
        return slot - now

    def pause(self, host: str, seconds: float) -> float:
        now = self._clock()
        until = max(now + max(seconds, 0.0), self._paused.get(host, 0.0))
        self._paused[host] = until
        return until - now

    def paused_for(self, host: str) -> float:
        return self._paused.get(host, 0.0) - self._clock()

    def now(self) -> float:
        return self._clock()


def throttle_for(crawler: Crawler) -> HostThrottle:
    """The crawler's one throttle (Redis-backed in cluster mode), shared by its middlewares."""
    throttle = getattr(crawler, "toonpick_throttle", None)
    if throttle is None:
        settings = crawler.settings
        rate = settings.getfloat("TOONPICK_CRAWL_HOST_RATE", 0.0)
        url = settings.get("REDIS_URL")
        throttle = RedisHostThrottle(redis.Redis.from_url(url), rate) if url else (
            LocalHostThrottle(rate)
        )
        crawler.toonpick_throttle = throttle
    return throttle


class HostThrottleMiddleware:
    """Downloader middleware: waits for the host's send slot before each download."""

    def __init__(self, crawler: Crawler, throttle: HostThrottle):
        self.crawler = crawler
        self.throttle = throttle

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> HostThrottleMiddleware:
        return cls(crawler, throttle_for(crawler))

    async def process_request(self, request: Request) -> None:
        host = host_of(request.url)
        stats = self.crawler.stats
        while True:
            wait = self.throttle.reserve(host)
            if wait <= 0:
                return None
            stats.inc_value("throttle/waits")
            stats.inc_value("throttle/wait_seconds", round(wait, 3))
            await asyncio.sleep(wait)
            # A Retry-After pause may have started while this request waited.
            if self.throttle.paused_for(host) <= 0:
                return None
