"""Title thumbnails through Scrapy's own ImagesPipeline, under readable keys.

A WebtoonItem's ``image_urls`` (its thumbnail) is downloaded and stored as
``webtoons/{platform}/{external_id}/thumbnail.jpg`` in ``IMAGES_STORE``
(``s3://bucket/prefix/`` or a local path); ``images`` then holds the stored
path, which the catalogue turns into ``webtoon.thumbnail_path``. Episode items
carry no images.

A thumbnail ends in one of three states:

- *stored* (or already *up to date* in the store): counted ``images/stored``;
- *missing*, the platform's verdict on its own data: the image URL answers 404, 403,
  410 (or another answer that asking again would not change: other 4xx, a redirect,
  which media requests do not follow), the body is empty, the bytes are not an image,
  or the request may not be made (robots.txt, offsite). Counted
  ``images/missing/<reason>``; the item goes on and the catalogue keeps the platform's
  URL;
- *unavailable*: the thumbnail could not be stored for a reason that is not the
  data's: the store refused or timed out (S3 down, throttled, unreachable), or the
  download failed (connection refused, timeout, a 5xx or 429 after the downloader's
  own retries). Like any store write it is retried with capped backoff (counted
  ``images/retries``; an upload that failed is retried with the bytes already
  downloaded, so an S3 outage costs the platform nothing) until it succeeds; when
  ``TOONPICK_CRAWL_OUTAGE_SECONDS`` have passed since its first failure the item fails
  (``images/failed``, an exception), so its request's lease is not acknowledged and
  the request is crawled again later.
  It never "goes on without it". While thumbnails are being retried the pipeline's
  ``failing_since`` is set, like a store writer's (``crawler.pipelines.batching``):
  the cluster node reads it and takes no new work until the store answers.

The base class caches each URL's result (a failure too) for the spider's life and
logs every failure with a traceback; a retried thumbnail needs neither, so
``process_item`` runs the stages (store check, download, conversion, upload) itself.
S3 uploads go through a client from ``shared.stores.s3`` (timeouts, standard
retries) instead of Scrapy's own, which has neither.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from typing import Any

from botocore.config import Config
from itemadapter import ItemAdapter
from scrapy.crawler import Crawler
from scrapy.exceptions import IgnoreRequest
from scrapy.http import Request, Response
from scrapy.pipelines.files import S3FilesStore
from scrapy.pipelines.images import ImagesPipeline
from scrapy.pipelines.media import FileInfo, MediaPipeline
from scrapy.utils.defer import ensure_awaitable, maybe_deferred_to_future

from crawler.items import WebtoonItem
from shared.config import setting
from shared.stores.s3 import ensure_bucket, parse_s3_url, s3_client, s3_client_from_settings

logger = logging.getLogger(__name__)

OUTAGE_SETTING = "TOONPICK_CRAWL_OUTAGE_SECONDS"
# Answers that may change if asked again (a busy or broken server); every other
# non-200 answer (404, 403, 410, another 4xx, a redirect we do not follow) is the
# platform's verdict on that URL, and asking again would get the same.
TRANSIENT_STATUSES = frozenset({408, 429, *range(500, 600)})


def thumbnail_key(platform: str, external_id: str) -> str:
    return f"webtoons/{platform}/{external_id}/thumbnail.jpg"


class ThumbnailMissing(Exception):
    """The platform's verdict: this thumbnail does not exist as an image we may store."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class ThumbnailUnavailable(Exception):
    """The thumbnail could not be stored now (store or download failure); retried."""


class StoreFailed(ThumbnailUnavailable):
    """The download worked and the store did not: the retry uploads the same bytes
    instead of asking the platform again."""

    def __init__(self, message: str, response: Response):
        super().__init__(message)
        self.response = response


class ThumbnailNotStored(Exception):
    """Retries ran out: the item fails, so its lease is not acknowledged."""


class ThumbnailS3Store(S3FilesStore):
    """Scrapy's S3 store (HEAD, PUT), on a client from our factory: with timeouts and
    botocore's standard retries, which Scrapy's own client lacks."""

    def __init__(self, uri: str):
        self.bucket, self.prefix = parse_s3_url(uri)
        # TLS follows the endpoint's scheme (boto3's rule), which is also how
        # crawler/settings.py derives AWS_USE_SSL and AWS_VERIFY.
        pool = self.AWS_MAX_POOL_CONNECTIONS
        self.s3_client = s3_client(
            self.AWS_ENDPOINT_URL, self.AWS_ACCESS_KEY_ID, self.AWS_SECRET_ACCESS_KEY,
            self.AWS_REGION_NAME,
            config=Config(max_pool_connections=pool) if pool is not None else None,
        )


def outage_seconds(settings: Any) -> float:
    """The retry bound from the settings, else the configuration's default."""
    default = setting("crawl_outage_seconds").default_for(
        settings.get("TOONPICK_PROFILE") or "dev")
    return settings.getfloat(OUTAGE_SETTING, float(default))


class ThumbnailImagesPipeline(ImagesPipeline):
    # One stored size: the catalogue points at the full image.
    THUMBS: dict[str, tuple[int, int]] = {}
    STORE_SCHEMES = {**ImagesPipeline.STORE_SCHEMES, "s3": ThumbnailS3Store}
    # An S3 blip of a second or two is retried at once; 5 s between tries at most keeps
    # a long outage from costing more than a few requests a minute per waiting item.
    first_retry_seconds = 0.5
    max_retry_seconds = 5.0

    def __init__(self, store_uri: str, download_func: None = None, *, crawler: Crawler):
        super().__init__(store_uri, crawler=crawler)
        self.store_uri = str(store_uri)
        self.thumbs = {}
        self.retry_seconds = outage_seconds(crawler.settings)
        # When the store started failing (None: it answers); the cluster node reads it
        # from ``crawler.toonpick_writers`` to stop taking work (back-pressure).
        self.failing_since: float | None = None
        self._retrying = 0
        self._logged_missing: set[str] = set()
        if not hasattr(crawler, "toonpick_writers"):
            crawler.toonpick_writers = []
        crawler.toonpick_writers.append(self)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ThumbnailImagesPipeline:
        settings = crawler.settings
        cls._update_stores(settings)
        store_uri = settings["IMAGES_STORE"]
        if isinstance(store_uri, str) and store_uri.startswith("s3://"):
            # Scrapy's S3 store does not create its bucket.
            bucket, _ = parse_s3_url(store_uri)
            ensure_bucket(s3_client_from_settings(settings), bucket,
                          settings.get("AWS_REGION_NAME"))
        return cls(store_uri, crawler=crawler)

    def resolve_pending(self, lease_ids: set[str] | None, verdict: str) -> None:
        """Part of the writers' surface the node calls (``BatchingPipeline.resolve_pending``);
        no thumbnail waits for other work."""

    def get_media_requests(self, item: Any, info: MediaPipeline.SpiderInfo) -> list[Request]:
        if not isinstance(item, WebtoonItem):
            return []
        return super().get_media_requests(item, info)

    def file_path(
        self,
        request: Request,
        response: Response | None = None,
        info: MediaPipeline.SpiderInfo | None = None,
        *,
        item: Any = None,
    ) -> str:
        if isinstance(item, WebtoonItem):
            return thumbnail_key(item.platform, item.external_id)
        return super().file_path(request, response, info, item=item)

    # --- the item: every thumbnail stored or missing, else retried, else it fails ------

    async def process_item(self, item: Any) -> Any:
        if not isinstance(item, WebtoonItem):
            return item
        info = self.spiderinfo
        stats = self.crawler.stats
        stored: list[FileInfo] = []
        for request in self.get_media_requests(item, info):
            try:
                stored.append(await self._store_with_retry(request, info, item))
            except ThumbnailMissing as missing:
                self._count_missing(item, request, missing.reason)
        if stored:
            stats.inc_value("images/stored", len(stored))
        ItemAdapter(item)[self.images_result_field] = stored
        return item

    async def _store_with_retry(self, request: Request, info: MediaPipeline.SpiderInfo,
                                item: WebtoonItem) -> FileInfo:
        stats = self.crawler.stats
        give_up_at: float | None = None
        delay = self.first_retry_seconds
        attempts = 0
        downloaded: Response | None = None
        try:
            while True:
                attempts += 1
                try:
                    stored = await self._store_once(request.copy(), info, item, downloaded)
                    self.failing_since = None
                    return stored
                except ThumbnailUnavailable as exc:
                    if isinstance(exc, StoreFailed):
                        downloaded = exc.response
                    now = time.monotonic()
                    if self.failing_since is None:
                        self.failing_since = now
                    if give_up_at is None:
                        give_up_at = now + self.retry_seconds
                        self._start_retrying(item, exc)
                    if now + delay > give_up_at:
                        stats.inc_value("images/failed")
                        raise ThumbnailNotStored(
                            f"thumbnail of {item.platform} {item.external_id} not stored "
                            f"after {attempts} tries in {self.retry_seconds:g} s: {exc}"
                        ) from exc
                    stats.inc_value("images/retries")
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, self.max_retry_seconds)
        finally:
            if give_up_at is not None:
                self._stop_retrying(attempts)

    async def _store_once(self, request: Request, info: MediaPipeline.SpiderInfo,
                          item: WebtoonItem, downloaded: Response | None = None) -> FileInfo:
        if downloaded is not None:
            return await self.media_downloaded(downloaded, request, info, item=item)
        # Already in the store and fresh (FilesPipeline's HEAD check; a store error there
        # only means "download it").
        known = await maybe_deferred_to_future(self.media_to_download(request, info, item=item))
        if known:
            return known
        self._modify_media_request(request)
        try:
            response = await self.crawler.engine.download_async(request)
        except IgnoreRequest as exc:
            raise ThumbnailMissing("filtered") from exc
        except Exception as exc:
            raise ThumbnailUnavailable(f"download failed: {type(exc).__name__}: {exc}") from exc
        return await self.media_downloaded(response, request, info, item=item)

    async def media_downloaded(
        self,
        response: Response,
        request: Request,
        info: MediaPipeline.SpiderInfo,
        *,
        item: Any = None,
    ) -> FileInfo:
        if response.status in TRANSIENT_STATUSES:
            # Still failing after the downloader's own retries (and Retry-After pauses).
            raise ThumbnailUnavailable(f"image URL answered {response.status}")
        if response.status != 200:
            raise ThumbnailMissing(f"http_{response.status}")
        if not response.body:
            raise ThumbnailMissing("empty")
        try:
            # Decoding and re-encoding is pure computation: any error is the bytes' fault.
            images = list(self.get_images(response, request, info, item=item))
        except Exception as exc:
            logger.debug("thumbnail %s is not an image: %s: %s", request.url,
                         type(exc).__name__, exc)
            raise ThumbnailMissing("not_an_image") from exc
        checksum: str | None = None
        path = self.file_path(request, response=response, info=info, item=item)
        for image_path, image, buf in images:
            if checksum is None:
                checksum = hashlib.md5(buf.getvalue(), usedforsecurity=False).hexdigest()
            width, height = image.size
            try:
                await ensure_awaitable(self.store.persist_file(
                    image_path, buf, info, meta={"width": width, "height": height},
                    headers={"Content-Type": "image/jpeg"}))
            except Exception as exc:
                raise StoreFailed(f"store failed: {type(exc).__name__}: {exc}",
                                  response) from exc
        status = "cached" if "cached" in response.flags else "downloaded"
        self.inc_stats(status)
        return {"url": request.url, "path": path, "checksum": checksum, "status": status}

    # --- bookkeeping: counted always, logged once per reason / per outage --------------

    def _count_missing(self, item: WebtoonItem, request: Request, reason: str) -> None:
        self.crawler.stats.inc_value(f"images/missing/{reason}")
        if reason not in self._logged_missing:
            self._logged_missing.add(reason)
            logger.warning("thumbnail of %s %s is missing (%s: %s); the catalogue keeps the "
                           "platform's URL. Further ones are only counted in "
                           "images/missing/%s", item.platform, item.external_id, reason,
                           request.url, reason)

    def _start_retrying(self, item: WebtoonItem, exc: Exception) -> None:
        if self._retrying == 0:
            logger.warning("thumbnails cannot be stored (%s, first: %s %s); retrying for up "
                           "to %g s per item", exc, item.platform, item.external_id,
                           self.retry_seconds)
        self._retrying += 1

    def _stop_retrying(self, attempts: int) -> None:
        self._retrying -= 1
        if self._retrying == 0:
            # Nothing left failing here: a node paused by us must take work again, or
            # nothing would ever try the store again.
            self.failing_since = None
            logger.info("thumbnails: no item waiting for a retry any more (the last one "
                        "took %d tries)", attempts)
