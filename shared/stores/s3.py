"""S3 clients and buckets; an endpoint URL selects moto_server in dev/test.

Buckets are named in ``s3://bucket/prefix/`` store URIs, as Scrapy's
ImagesPipeline takes them. Clients come from ``shared.stores.aws`` and carry its
timeouts and retry mode (``client_config()``, why the numbers is said there).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from botocore.config import Config
from botocore.exceptions import ClientError

from shared.stores.aws import aws_client, aws_client_from_config


def s3_client(
    endpoint_url: str | None = None,
    access_key: str | None = None,
    secret_key: str | None = None,
    region: str | None = None,
    config: Config | None = None,
) -> Any:
    """A boto3 S3 client; empty values mean boto3's own defaults (real AWS)."""
    return aws_client("s3", endpoint_url, access_key, secret_key, region, config)


def s3_client_from_config(config: Mapping[str, Any]) -> Any:
    """A client from ``shared.config``."""
    return aws_client_from_config("s3", config)


def s3_client_from_settings(
    settings: Mapping[str, Any], client_config: Config | None = None
) -> Any:
    """A client from Scrapy-style ``AWS_*`` settings (or any mapping with those keys)."""
    return s3_client(
        endpoint_url=settings.get("AWS_ENDPOINT_URL"),
        access_key=settings.get("AWS_ACCESS_KEY_ID"),
        secret_key=settings.get("AWS_SECRET_ACCESS_KEY"),
        region=settings.get("AWS_REGION_NAME") or settings.get("AWS_REGION"),
        config=client_config,
    )


def parse_s3_url(url: str) -> tuple[str, str]:
    """``s3://bucket/prefix/`` -> ``("bucket", "prefix/")``; the prefix may be empty."""
    if not url.startswith("s3://"):
        raise ValueError(f"{url!r}: expected an s3:// URL")
    bucket, _, prefix = url[len("s3://"):].partition("/")
    if not bucket:
        raise ValueError(f"{url!r}: the URL names no bucket")
    return bucket, prefix


def ensure_bucket(client: Any, bucket: str, region: str | None = None) -> bool:
    """Create ``bucket`` unless it exists; True when it was created now."""
    try:
        client.head_bucket(Bucket=bucket)
        return False
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket", "NotFound"):
            raise
    kwargs: dict[str, Any] = {"Bucket": bucket}
    if region and region != "us-east-1":
        # us-east-1 rejects an explicit LocationConstraint; every other region needs one.
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
    try:
        client.create_bucket(**kwargs)
    except ClientError as exc:
        # Another process created it between our HEAD and CREATE.
        if exc.response.get("Error", {}).get("Code") in (
            "BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
            return False
        raise
    return True
