"""boto3 clients for any AWS service; an endpoint URL selects moto_server in dev/test.

Empty values mean boto3's own defaults (real AWS, its credential chain).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import boto3


def aws_client(
    service: str,
    endpoint_url: str | None = None,
    access_key: str | None = None,
    secret_key: str | None = None,
    region: str | None = None,
) -> Any:
    return boto3.client(
        service,
        endpoint_url=endpoint_url or None,
        aws_access_key_id=access_key or None,
        aws_secret_access_key=secret_key or None,
        region_name=region or None,
    )


def aws_client_from_config(service: str, config: Mapping[str, Any]) -> Any:
    """A client from ``shared.config`` (``aws_endpoint_url``, keys, ``aws_region``)."""
    return aws_client(service, config["aws_endpoint_url"], config["aws_access_key_id"],
                      config["aws_secret_access_key"], config["aws_region"])
