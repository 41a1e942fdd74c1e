"""boto3 clients for any AWS service; an endpoint URL selects moto_server in dev/test.

Empty values mean boto3's own defaults (real AWS, its credential chain).

Every client gets ``client_config()``: 5 s to connect (a reachable endpoint answers
in milliseconds), 30 s on one socket read (above SQS's longest long poll, 20 s,
which holds the read open on purpose; a thumbnail or a model part is one short
request), and botocore's ``standard`` retry mode with 3 retries after the first
try, backing off with jitter on throttling, 5xx answers and connection errors (a
few seconds in all, so a caller hears of an outage quickly). Past them the error is
the caller's: the crawl's thumbnail pipeline keeps
retrying for the outage bound, a task fails and is retried by its policy.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import boto3
from botocore.config import Config

# Seconds, and botocore's retry options; see the module's doc for why these numbers.
TIMEOUTS: dict[str, float] = {"connect_timeout": 5.0, "read_timeout": 30.0}
RETRIES: dict[str, Any] = {"max_attempts": 3, "mode": "standard"}


def client_config(overrides: Config | None = None) -> Config:
    """A fresh Config per client: botocore rewrites a Config's ``retries`` in place."""
    config = Config(**TIMEOUTS, retries=dict(RETRIES))
    return config.merge(overrides) if overrides is not None else config


def aws_client(
    service: str,
    endpoint_url: str | None = None,
    access_key: str | None = None,
    secret_key: str | None = None,
    region: str | None = None,
    config: Config | None = None,
) -> Any:
    """A boto3 client with ``client_config()``; ``config`` overrides the options it sets."""
    return boto3.client(
        service,
        endpoint_url=endpoint_url or None,
        aws_access_key_id=access_key or None,
        aws_secret_access_key=secret_key or None,
        region_name=region or None,
        config=client_config(config),
    )


def aws_client_from_config(service: str, config: Mapping[str, Any]) -> Any:
    """A client from ``shared.config`` (``aws_endpoint_url``, keys, ``aws_region``)."""
    return aws_client(service, config["aws_endpoint_url"], config["aws_access_key_id"],
                      config["aws_secret_access_key"], config["aws_region"])
