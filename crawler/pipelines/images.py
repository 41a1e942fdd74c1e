"""Title thumbnails through Scrapy's own ImagesPipeline, under readable keys.

A WebtoonItem's ``image_urls`` (its thumbnail) is downloaded and stored as
``webtoons/{platform}/{external_id}/thumbnail.jpg`` in ``IMAGES_STORE``
(``s3://bucket/prefix/`` or a local path); ``images`` then holds the stored
path, which the catalogue turns into ``webtoon.thumbnail_path``. A download
that fails is counted (``images/failed``) and the item goes on without it, so
the catalogue keeps the platform's URL. Episode items carry no images.
"""

from __future__ import annotations

import logging
from typing import Any

from itemadapter import ItemAdapter
from scrapy.crawler import Crawler
from scrapy.http import Request, Response
from scrapy.pipelines.images import ImagesPipeline
from scrapy.pipelines.media import MediaPipeline

from crawler.items import WebtoonItem
from shared.stores.s3 import ensure_bucket, parse_s3_url, s3_client_from_settings

logger = logging.getLogger(__name__)


def thumbnail_key(platform: str, external_id: str) -> str:
    return f"webtoons/{platform}/{external_id}/thumbnail.jpg"


class ThumbnailImagesPipeline(ImagesPipeline):
    # One stored size: the catalogue points at the full image.
    THUMBS: dict[str, tuple[int, int]] = {}

    def __init__(self, store_uri: str, download_func: None = None, *, crawler: Crawler):
        super().__init__(store_uri, crawler=crawler)
        self.store_uri = str(store_uri)
        self.thumbs = {}

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

    def item_completed(self, results: list, item: Any, info: MediaPipeline.SpiderInfo) -> Any:
        if not isinstance(item, WebtoonItem):
            return item
        failed = [x for ok, x in results if not ok]
        if failed:
            self.crawler.stats.inc_value("images/failed", len(failed))
            logger.warning("thumbnail of %s %s not stored (%s); the catalogue keeps %s",
                           item.platform, item.external_id,
                           "; ".join(repr(getattr(f, "value", f)) for f in failed),
                           item.thumbnail_url)
        stored = [x for ok, x in results if ok]
        if stored:
            self.crawler.stats.inc_value("images/stored", len(stored))
        ItemAdapter(item)[self.images_result_field] = stored
        return item
