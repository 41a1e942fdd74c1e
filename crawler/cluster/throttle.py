"""One request rate per host, shared by every node, and host pauses (Retry-After).

Each host has a *next send slot*. A request reserves the slot atomically
(``slot = max(now, next, paused_until)``; ``next = slot + 1/rate``) and waits until it:
with N nodes the host still sees ``rate`` requests per second in total. A pause
(from a Retry-After answer) pushes every later reservation past its end; a request
that was already waiting re-checks the pause when it wakes.

``RedisHostThrottle`` keeps slots in Redis on Redis' clock (``TIME``), so nodes agree;
``LocalHostThrottle`` does the same in-process when there is no Redis.
``TOONPICK_CRAWL_HOST_RATE`` = 0 means no rate limit (pauses still apply); a crawler
whose settings lack it gets the configuration's default (``shared.config``), never 0.

In cluster mode a request must not fail because Redis blinked (a restart, a
failover): ``FallbackHostThrottle`` asks Redis and, while Redis errors, takes the
slot from a process-local throttle at the same rate instead (counted
``throttle/local_fallback``). It is *shared* while Redis answers and *local* after an
error, trying Redis again after a backoff (1 s, doubling, at most 30 s) so a stalled
Redis does not block every download for its timeout. Pauses are recorded locally as
well, so a Retry-After heard during the blip still holds once Redis is back. While
local, each node spends the host's whole rate by itself: a blip of a few seconds can
send N times the rate from N nodes, the price of not failing the crawl.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

import redis

from shared.config import setting
from shared.stores.redis import redis_client

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.crawler import Crawler

logger = logging.getLogger(__name__)

KEY_ROOT = "toonpick:throttle"
RATE_SETTING = "TOONPICK_CRAWL_HOST_RATE"
# The throttle's Redis calls run on the reactor thread and hold every download while
# they wait: a reservation is answered in microseconds, so wait a second at most.
REDIS_TIMEOUTS = {"socket_connect_timeout": 1.0, "socket_timeout": 1.0}
# After a Redis error the throttle stays local this long, doubling per failed retry.
FIRST_RETRY_SECONDS = 1.0
MAX_RETRY_SECONDS = 30.0

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


class FallbackHostThrottle:
    """The shared throttle, or a process-local one while Redis fails (module doc)."""

    def __init__(self, shared: HostThrottle, local: LocalHostThrottle, stats: Any = None,
                 clock: Callable[[], float] = time.monotonic,
                 first_retry: float = FIRST_RETRY_SECONDS,
                 max_retry: float = MAX_RETRY_SECONDS):
        self.shared = shared
        self.local = local
        self.stats = stats
        self._clock = clock
        self._first_retry = first_retry
        self._max_retry = max_retry
        self._failures = 0
        self._retry_at = 0.0

    @property
    def is_local(self) -> bool:
        return self._failures > 0

    def _ask_shared(self, call: Callable[..., float], *args: Any) -> float | None:
        """``call``'s answer, or None when Redis failed now or recently."""
        now = self._clock()
        if self._failures and now < self._retry_at:
            return None
        try:
            answer = call(*args)
        except redis.RedisError as exc:
            self._failures += 1
            backoff = min(self._first_retry * 2 ** (self._failures - 1), self._max_retry)
            self._retry_at = now + backoff
            if self._failures == 1:
                logger.warning("host throttle: Redis failed (%s: %s); using a process-local "
                               "rate until it answers again", type(exc).__name__, exc)
            return None
        if self._failures:
            logger.info("host throttle: Redis answers again after %d failed tries; shared "
                        "rate restored", self._failures)
            self._failures = 0
        return answer

    def reserve(self, host: str) -> float:
        wait = self._ask_shared(self.shared.reserve, host)
        if wait is None:
            if self.stats is not None:
                self.stats.inc_value("throttle/local_fallback")
            return self.local.reserve(host)
        # A pause heard while Redis was away still holds.
        return max(wait, self.local.paused_for(host))

    def pause(self, host: str, seconds: float) -> float:
        local = self.local.pause(host, seconds)
        shared = self._ask_shared(self.shared.pause, host, seconds)
        return local if shared is None else max(shared, local)

    def paused_for(self, host: str) -> float:
        local = self.local.paused_for(host)
        shared = self._ask_shared(self.shared.paused_for, host)
        return local if shared is None else max(shared, local)

    def now(self) -> float:
        answer = self._ask_shared(self.shared.now)
        # Redis' TIME is Unix time: the local clock is the closest stand-in.
        return time.time() if answer is None else answer


def host_rate(settings: Any) -> float:
    """``TOONPICK_CRAWL_HOST_RATE`` from Scrapy settings, else the configuration's default
    (the one place it is written), so a crawler built without our settings is not
    silently unthrottled."""
    default = setting("crawl_host_rate").default_for(settings.get("TOONPICK_PROFILE") or "dev")
    return settings.getfloat(RATE_SETTING, float(default))


def throttle_for(crawler: Crawler) -> HostThrottle:
    """The crawler's one throttle (Redis-backed in cluster mode, with a local fallback),
    shared by its middlewares."""
    throttle = getattr(crawler, "toonpick_throttle", None)
    if throttle is None:
        settings = crawler.settings
        rate = host_rate(settings)
        url = settings.get("REDIS_URL")
        if url:
            throttle = FallbackHostThrottle(
                RedisHostThrottle(redis_client(url, **REDIS_TIMEOUTS), rate),
                LocalHostThrottle(rate), stats=crawler.stats)
        else:
            throttle = LocalHostThrottle(rate)
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
