"""Create the buckets the dev and test profiles need on the S3 endpoint (moto).

Run by ``services.sh up`` after moto_server answers; idempotent. Production
buckets are made by infrastructure code, not by this script.
"""

from __future__ import annotations

import sys

from shared.config import load_config
from shared.stores.s3 import ensure_bucket, parse_s3_url, s3_client


def main() -> int:
    for profile in ("dev", "test"):
        config = load_config(profile=profile)
        if not (config.aws_endpoint_url and config.images_store.startswith("s3://")):
            continue
        client = s3_client(config.aws_endpoint_url, config.aws_access_key_id,
                           config.aws_secret_access_key, config.aws_region)
        bucket = parse_s3_url(config.images_store)[0]
        if ensure_bucket(client, bucket, config.aws_region):
            print(f"[services] s3: created bucket {bucket}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
