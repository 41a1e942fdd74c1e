"""Thumbnails: the platform's verdicts (missing) told apart from failures to store
(unavailable, retried); the S3 store's client carries our timeouts."""

from __future__ import annotations

import asyncio
import io

import pytest
from PIL import Image
from scrapy import Request
from scrapy.http import Response
from scrapy.utils.test import get_crawler

from crawler.items import EpisodeItem, WebtoonItem
from crawler.pipelines.images import (
    StoreFailed,
    ThumbnailImagesPipeline,
    ThumbnailMissing,
    ThumbnailS3Store,
    ThumbnailUnavailable,
    outage_seconds,
)
from shared.config import setting
from shared.stores import aws

URL = "http://img.example/thumb/1.jpg"


def jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (12, 16), (10, 200, 30)).save(out, "JPEG")
    return out.getvalue()


def webtoon() -> WebtoonItem:
    return WebtoonItem(platform="NAVER", external_id="1", title="t", image_urls=[URL],
                       thumbnail_url=URL)


def pipeline_on(store: str, **settings) -> ThumbnailImagesPipeline:
    crawler = get_crawler(settings_dict={"IMAGES_STORE": store, **settings})
    return ThumbnailImagesPipeline.from_crawler(crawler)


def downloaded(pipeline, status: int = 200, body: bytes = b""):
    response = Response(URL, status=status, body=body, request=Request(URL))
    return asyncio.run(pipeline.media_downloaded(response, Request(URL), None, item=webtoon()))


@pytest.mark.parametrize("status", [404, 403, 410, 400, 301])
def test_answers_that_would_not_change_are_missing(tmp_path, status):
    with pytest.raises(ThumbnailMissing) as caught:
        downloaded(pipeline_on(str(tmp_path)), status, jpeg())
    assert caught.value.reason == f"http_{status}"


@pytest.mark.parametrize("status", [500, 503, 429, 408])
def test_busy_or_broken_answers_are_retried_not_verdicts(tmp_path, status):
    with pytest.raises(ThumbnailUnavailable, match=str(status)):
        downloaded(pipeline_on(str(tmp_path)), status, jpeg())


@pytest.mark.parametrize(("body", "reason"), [(b"", "empty"),
                                              (b"<html>not found</html>", "not_an_image"),
                                              (jpeg()[:40], "not_an_image")])
def test_bytes_that_are_not_an_image_are_missing(tmp_path, body, reason):
    with pytest.raises(ThumbnailMissing) as caught:
        downloaded(pipeline_on(str(tmp_path)), 200, body)
    assert caught.value.reason == reason


def test_an_image_is_stored_under_its_title_key(tmp_path):
    pipeline = pipeline_on(str(tmp_path))
    info = downloaded(pipeline, 200, jpeg())
    assert info["path"] == "webtoons/NAVER/1/thumbnail.jpg"
    assert info["status"] == "downloaded" and len(info["checksum"]) == 32
    stored = tmp_path / "webtoons/NAVER/1/thumbnail.jpg"
    with Image.open(stored) as image:
        assert image.size == (12, 16)


def test_a_store_that_cannot_write_is_unavailable_not_missing(tmp_path):
    blocked = tmp_path / "store"
    blocked.write_text("a file where the store's directory should be")
    with pytest.raises(StoreFailed, match="store failed") as caught:
        downloaded(pipeline_on(str(blocked)), 200, jpeg())
    assert isinstance(caught.value, ThumbnailUnavailable)
    # The retry uploads these bytes again rather than asking the platform again.
    assert caught.value.response.body == jpeg()


def test_items_without_thumbnails_pass_untouched(tmp_path):
    pipeline = pipeline_on(str(tmp_path))
    episode = EpisodeItem(platform="NAVER", webtoon_external_id="1", episode_no=1, title="e")
    assert asyncio.run(pipeline.process_item(episode)) is episode


def test_retry_bound_is_the_outage_setting_with_the_configuration_default(tmp_path):
    default = float(setting("crawl_outage_seconds").default)
    assert pipeline_on(str(tmp_path)).retry_seconds == default
    assert pipeline_on(str(tmp_path), TOONPICK_CRAWL_OUTAGE_SECONDS=7).retry_seconds == 7
    assert outage_seconds(get_crawler(settings_dict={}).settings) == default


def test_s3_store_client_has_our_timeouts(s3_bucket):
    from tests.conftest import TEST_CONFIG

    pipeline = pipeline_on(
        f"s3://{s3_bucket}/thumbs/", AWS_ENDPOINT_URL=TEST_CONFIG.aws_endpoint_url,
        AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
        AWS_REGION_NAME=TEST_CONFIG.aws_region)
    assert isinstance(pipeline.store, ThumbnailS3Store)
    assert (pipeline.store.bucket, pipeline.store.prefix) == (s3_bucket, "thumbs/")
    config = pipeline.store.s3_client.meta.config
    assert config.connect_timeout == aws.TIMEOUTS["connect_timeout"]
    assert config.read_timeout == aws.TIMEOUTS["read_timeout"]
    assert config.retries["mode"] == "standard"
