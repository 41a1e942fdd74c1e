"""Connection factories for every store, each chosen by one URL.

``mariadb`` (mysql://), ``mongo`` (mongodb://), ``s3`` (s3:// buckets on an
endpoint), ``redis`` (redis://). Nothing here reads the environment: callers
pass URLs from ``shared.config`` or from Scrapy settings. Every client they build
has connect and read timeouts (each module's ``TIMEOUTS``, with why the numbers),
so a store that accepts a connection and never answers raises instead of hanging.
"""
