"""Create the buckets and SQS queues the dev and test profiles need on the endpoint (moto).

Run by ``services.sh up`` after moto_server answers; idempotent. Production
buckets and queues are made by infrastructure code, not by this script.
"""

from __future__ import annotations

import sys

from shared.config import Config, load_config
from shared.stores.s3 import ensure_bucket, parse_s3_url, s3_client_from_config
from shared.stores.sqs import ensure_queue, is_queue_url, sqs_client_from_config

_QUEUE_SETTINGS = ("sqs_create_request_queue", "sqs_update_request_queue",
                   "sqs_create_complete_queue", "sqs_update_complete_queue",
                   "sqs_dead_letter_queue")


def main() -> int:
    for profile in ("dev", "test"):
        config = load_config(profile=profile)
        if not (config.aws_endpoint_url and config.images_store.startswith("s3://")):
            continue
        client = s3_client_from_config(config)
        bucket = parse_s3_url(config.images_store)[0]
        if ensure_bucket(client, bucket, config.aws_region):
            print(f"[services] s3: created bucket {bucket}")
        provision_queues(config)
    return 0


def provision_queues(config: Config) -> list[str]:
    """The five queues of the messages (created even with SQS off, so turning it on in
    dev needs no other step); returns the names created or found."""
    sqs = sqs_client_from_config(config)
    names = [config[name] for name in _QUEUE_SETTINGS if not is_queue_url(config[name])]
    for name in names:
        ensure_queue(sqs, name)
    print(f"[services] sqs: queues ready: {', '.join(names)}")
    return names


if __name__ == "__main__":
    sys.exit(main())
