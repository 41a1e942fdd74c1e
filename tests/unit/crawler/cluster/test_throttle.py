"""Host throttle: slot spacing and pauses, in Redis and in-process; Retry-After values."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime

import pytest
import redis

from crawler.cluster.retry import retry_after_seconds
from crawler.cluster.throttle import LocalHostThrottle, RedisHostThrottle, host_of


@pytest.fixture
def server(redis_url):
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def send_times(throttle, host: str, n: int) -> list[float]:
    start = throttle.now()
    return [start + throttle.reserve(host) for _ in range(n)]


def test_redis_reservations_are_spaced_by_the_rate(server):
    throttle = RedisHostThrottle(server, rate=10)
    times = send_times(throttle, "a.example", 5)
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert all(abs(gap - 0.1) < 0.01 for gap in gaps), gaps
    # Another host has its own slots.
    assert throttle.reserve("b.example") <= 0.001


def test_two_throttles_on_one_redis_share_the_host_rate(server):
    a, b = RedisHostThrottle(server, rate=5), RedisHostThrottle(server, rate=5)
    start = a.now()
    times = sorted(start + t.reserve("h") for t in (a, b, a, b))
    gaps = [y - x for x, y in zip(times, times[1:], strict=False)]
    assert all(abs(gap - 0.2) < 0.02 for gap in gaps), gaps


def test_pause_pushes_reservations_past_its_end(server):
    throttle = RedisHostThrottle(server, rate=0)
    assert throttle.reserve("h") <= 0
    throttle.pause("h", 2)
    assert 1.9 < throttle.paused_for("h") <= 2
    assert 1.9 < throttle.reserve("h") <= 2
    # A shorter pause does not shorten a longer one.
    throttle.pause("h", 0.5)
    assert throttle.paused_for("h") > 1.8


def test_local_throttle_behaves_the_same():
    clock = [100.0]
    throttle = LocalHostThrottle(rate=4, clock=lambda: clock[0])
    assert [throttle.reserve("h") for _ in range(3)] == [0.0, 0.25, 0.5]
    throttle.pause("h", 3)
    assert throttle.reserve("h") == 3.0
    clock[0] += 10
    assert throttle.paused_for("h") < 0 and throttle.reserve("h") == 0.0
    assert LocalHostThrottle(rate=0).reserve("h") == 0.0


def test_negative_rate_is_refused(server):
    with pytest.raises(ValueError):
        LocalHostThrottle(rate=-1)
    with pytest.raises(ValueError):
        RedisHostThrottle(server, rate=-1)


def test_host_is_host_and_port():
    assert host_of("http://127.0.0.1:8080/a?b") == "127.0.0.1:8080"
    assert host_of("https://Comic.Naver.com/x") == "comic.naver.com"


@pytest.mark.parametrize(
    ("value", "expected"),
    [("120", 120.0), (b"0", 0.0), (" 7 ", 7.0), ("", None), (None, None), ("soon", None),
     ("-5", None), ("1.5", None)],
)
def test_retry_after_delay_seconds(value, expected):
    assert retry_after_seconds(value) == expected


def test_retry_after_http_date():
    now = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC).timestamp()
    later = format_datetime(datetime(2025, 1, 1, 12, 0, 30, tzinfo=UTC), usegmt=True)
    assert retry_after_seconds(later, now=now) == 30.0
    earlier = format_datetime(datetime(2025, 1, 1, 11, 0, 0, tzinfo=UTC), usegmt=True)
    assert retry_after_seconds(earlier, now=now) == 0.0
    assert retry_after_seconds("Wed, 01 Jan 2025 12:00:30", now=now) is None
