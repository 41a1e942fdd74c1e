"""Connection factories for every store, each chosen by one URL.

``mariadb`` (mysql://), ``mongo`` (mongodb://), ``s3`` (s3:// buckets on an
endpoint), ``redis`` (redis://). Nothing here reads the environment: callers
pass URLs from ``shared.config`` or from Scrapy settings.
"""
