"""The shared host throttle survives Redis failing: a process-local rate takes over
(counted), pauses heard meanwhile still hold, Redis is tried again after a backoff;
the rate's default is the configuration's."""

from __future__ import annotations

import asyncio
import time

import pytest
from scrapy import Request
from scrapy.utils.test import get_crawler

from crawler.cluster.throttle import (
    REDIS_TIMEOUTS,
    FallbackHostThrottle,
    HostThrottleMiddleware,
    LocalHostThrottle,
    RedisHostThrottle,
    throttle_for,
)
from shared.config import setting
from shared.stores.redis import redis_client
from tests.conftest import TEST_REDIS_DB
from tests.faults.proxy import FaultProxy


@pytest.fixture
def proxy(redis_url):
    with FaultProxy("127.0.0.1", 6379) as proxy:
        yield proxy


@pytest.fixture
def crawler():
    return get_crawler(settings_dict={"REDIS_URL": ""})


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def through(proxy: FaultProxy, rate: float, stats, clock: Clock) -> FallbackHostThrottle:
    client = redis_client(f"redis://127.0.0.1:{proxy.port}/{TEST_REDIS_DB}", **REDIS_TIMEOUTS)
    return FallbackHostThrottle(RedisHostThrottle(client, rate),
                                LocalHostThrottle(rate, clock=clock), stats=stats, clock=clock)


def test_redis_down_falls_back_to_a_local_rate_and_comes_back(proxy, crawler):
    clock = Clock()
    stats = crawler.stats
    throttle = through(proxy, rate=4, stats=stats, clock=clock)
    assert throttle.reserve("h") <= 0.01 and not throttle.is_local

    proxy.close()
    # The local throttle keeps the host's rate: 4/s, slots 0.25 s apart on its clock.
    waits = [throttle.reserve("h") for _ in range(3)]
    assert waits == [0.0, 0.25, 0.5]
    assert throttle.is_local
    assert stats.get_value("throttle/local_fallback") == 3

    proxy.resume()
    # Still inside the backoff: local, without touching Redis.
    assert throttle.reserve("other") == 0.0
    assert stats.get_value("throttle/local_fallback") == 4
    clock.now += 1.5
    assert throttle.reserve("h2") <= 0.01
    assert not throttle.is_local
    assert stats.get_value("throttle/local_fallback") == 4


def test_backoff_doubles_while_redis_stays_down(proxy, crawler):
    clock = Clock()
    throttle = through(proxy, rate=0, stats=crawler.stats, clock=clock)
    proxy.close()
    tries = 0
    original = throttle.shared.reserve

    def counted(host):
        nonlocal tries
        tries += 1
        return original(host)

    throttle.shared.reserve = counted
    for _ in range(8):  # 8 seconds of requests, one per second
        throttle.reserve("h")
        clock.now += 1.0
    # Tries at t=0, 1 (after 1 s), 3 (after 2 s), 7 (after 4 s): not once per request.
    assert tries == 4
    assert crawler.stats.get_value("throttle/local_fallback") == 8


def test_a_pause_heard_while_redis_was_down_still_holds_after(proxy, crawler):
    clock = Clock()
    throttle = through(proxy, rate=0, stats=crawler.stats, clock=clock)
    proxy.close()
    assert throttle.pause("h", 30) == 30
    proxy.resume()
    clock.now += 2  # past the first backoff: Redis answers, but knows no pause
    assert 27 < throttle.reserve("h") <= 28
    assert 27 < throttle.paused_for("h") <= 28


def test_stalled_redis_costs_one_short_timeout_then_local(proxy, crawler):
    clock = Clock()
    throttle = through(proxy, rate=0, stats=crawler.stats, clock=clock)
    assert throttle.reserve("h") <= 0.01
    proxy.stall()
    started = time.monotonic()
    assert throttle.reserve("h") == 0.0
    assert time.monotonic() - started < REDIS_TIMEOUTS["socket_timeout"] + 1
    started = time.monotonic()
    for _ in range(50):
        throttle.reserve("h")
    assert time.monotonic() - started < 0.5, "inside the backoff Redis is not asked"
    proxy.resume()


def test_middleware_does_not_fail_a_download_when_redis_is_down(proxy, redis_url):
    crawler = get_crawler(settings_dict={
        "REDIS_URL": f"redis://127.0.0.1:{proxy.port}/{TEST_REDIS_DB}",
        "TOONPICK_CRAWL_HOST_RATE": 0})
    middleware = HostThrottleMiddleware.from_crawler(crawler)
    assert isinstance(middleware.throttle, FallbackHostThrottle)
    asyncio.run(middleware.process_request(Request("http://img.example/a.jpg")))
    proxy.close()
    asyncio.run(middleware.process_request(Request("http://img.example/b.jpg")))
    assert crawler.stats.get_value("throttle/local_fallback") == 1


def test_rate_defaults_to_the_configuration_not_unlimited():
    default = float(setting("crawl_host_rate").default)
    assert default > 0
    throttle = throttle_for(get_crawler(settings_dict={"REDIS_URL": ""}))
    assert isinstance(throttle, LocalHostThrottle)
    assert throttle.interval == pytest.approx(1 / default)
    # An explicit 0 still means unlimited.
    explicit = throttle_for(get_crawler(settings_dict={"REDIS_URL": "",
                                                       "TOONPICK_CRAWL_HOST_RATE": 0}))
    assert explicit.interval == 0.0


def test_cluster_throttle_uses_the_factory_with_short_timeouts(redis_url):
    throttle = throttle_for(get_crawler(settings_dict={"REDIS_URL": redis_url}))
    assert isinstance(throttle, FallbackHostThrottle)
    kwargs = throttle.shared.server.connection_pool.connection_kwargs
    assert kwargs["socket_timeout"] == REDIS_TIMEOUTS["socket_timeout"]
    assert kwargs["socket_connect_timeout"] == REDIS_TIMEOUTS["socket_connect_timeout"]
    assert throttle.reserve("h") <= 0.5
