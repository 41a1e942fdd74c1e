"""SQS clients and queues; an endpoint URL selects moto_server in dev/test.

Queues are named in settings either by name (resolved with GetQueueUrl, so the same
name works on moto and on AWS) or by their full URL (used as is).
Clients carry ``shared.stores.aws.client_config()``, whose 30 s read timeout outlasts the
longest long poll (20 s).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared.stores.aws import aws_client, aws_client_from_config

# SQS refuses bodies above 256 KiB (body plus attributes).
MAX_MESSAGE_BYTES = 262_144


def sqs_client(
    endpoint_url: str | None = None,
    access_key: str | None = None,
    secret_key: str | None = None,
    region: str | None = None,
) -> Any:
    """A boto3 SQS client; empty values mean boto3's own defaults (real AWS)."""
    return aws_client("sqs", endpoint_url, access_key, secret_key, region)


def sqs_client_from_config(config: Mapping[str, Any]) -> Any:
    """A client from ``shared.config``."""
    return aws_client_from_config("sqs", config)


def is_queue_url(name_or_url: str) -> bool:
    return name_or_url.startswith(("http://", "https://"))


def queue_url(client: Any, name_or_url: str) -> str:
    """The URL of a queue named by name or URL; raises the client's ``QueueDoesNotExist``."""
    if not name_or_url:
        raise ValueError("no queue named (empty name)")
    if is_queue_url(name_or_url):
        return name_or_url
    return client.get_queue_url(QueueName=name_or_url)["QueueUrl"]


def ensure_queue(client: Any, name: str, attributes: Mapping[str, str] | None = None) -> str:
    """Create queue ``name`` unless it exists (CreateQueue is idempotent for the same
    attributes); returns its URL."""
    if is_queue_url(name):
        return name
    kwargs: dict[str, Any] = {"QueueName": name}
    if attributes:
        kwargs["Attributes"] = {k: str(v) for k, v in attributes.items()}
    return client.create_queue(**kwargs)["QueueUrl"]
