"""Scrapy's RetryMiddleware, plus Retry-After: a 429/503 answer pauses its host.

The pause goes to the shared host throttle (``crawler.cluster.throttle``), so every
node of the cluster holds off that host until the time the server asked for; then
the request is retried as usual (RETRY_TIMES, RETRY_HTTP_CODES). A request whose
retries ran out is marked (``GAVE_UP_META``): in cluster mode its lease is then
dead-lettered rather than acked (``crawler.cluster.leases``), so the run does not end
as if the platform had answered.
"""

from __future__ import annotations

import logging
import time
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING

from scrapy.downloadermiddlewares.retry import RetryMiddleware

from crawler.cluster.leases import GAVE_UP_META
from crawler.cluster.throttle import HostThrottle, host_of, throttle_for

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.crawler import Crawler
    from scrapy.http import Response

logger = logging.getLogger(__name__)

RETRY_AFTER_CODES = frozenset({429, 503})


def retry_after_seconds(value: str | bytes | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After value (delay-seconds or HTTP-date).

    Returns None when the header is absent or malformed; a date in the past gives 0.
    """
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    value = value.strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None or when.tzinfo is None:
        # RFC 9110 dates are GMT; a zone-less date is malformed for this header.
        return None
    now = time.time() if now is None else now
    return max(when.timestamp() - now, 0.0)


class RetryAfterMiddleware(RetryMiddleware):
    def __init__(self, settings, throttle: HostThrottle, max_pause: float):
        super().__init__(settings)
        self.throttle = throttle
        self.max_pause = max_pause

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> RetryAfterMiddleware:
        settings = crawler.settings
        o = cls(
            settings,
            throttle_for(crawler),
            settings.getfloat("TOONPICK_CRAWL_RETRY_AFTER_MAX", 600.0),
        )
        o.crawler = crawler
        return o

    def process_response(self, request: Request, response: Response) -> Request | Response:
        if response.status in RETRY_AFTER_CODES and not request.meta.get("dont_retry", False):
            self._pause_host(request, response)
        return super().process_response(request, response)

    def _retry(self, request: Request, reason: str | Exception | type[Exception]
               ) -> Request | None:
        retry = super()._retry(request, reason)
        if retry is None:
            request.meta[GAVE_UP_META] = _reason_text(reason)
        return retry

    def _pause_host(self, request: Request, response: Response) -> None:
        raw = response.headers.get("Retry-After")
        seconds = retry_after_seconds(raw)
        stats = self.crawler.stats
        if seconds is None:
            if raw is not None:
                stats.inc_value("retry_after/malformed")
                logger.warning("ignored malformed Retry-After %r from %s", raw, response.url)
            return
        if seconds > self.max_pause:
            logger.warning(
                "%s asked to wait %.0fs; pausing the host for %.0fs only",
                response.url, seconds, self.max_pause,
            )
            seconds = self.max_pause
        host = host_of(request.url)
        self.throttle.pause(host, seconds)
        stats.inc_value("retry_after/paused")
        logger.info("%s answered %d: pausing %s for %.1fs", response.url, response.status,
                    host, seconds)


def _reason_text(reason: str | Exception | type[Exception]) -> str:
    """A short name for why retries ran out: ``503 Service Unavailable``, ``TimeoutError``."""
    if isinstance(reason, str):
        return reason
    if isinstance(reason, type):
        return reason.__name__
    return type(reason).__name__
