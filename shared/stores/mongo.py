"""MongoDB connections from one URL: ``mongodb://host:port/db?retryWrites=false``.

The URL's options are passed through untouched: SecantusDB (dev/test) needs
``retryWrites=false``, and production URLs carry their own options.
"""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

import pymongo
from pymongo.database import Database


class MongoURLError(ValueError):
    """The URL is not a usable mongodb:// URL."""


def database_name(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("mongodb", "mongodb+srv"):
        raise MongoURLError(f"{url!r}: expected a mongodb:// URL")
    name = unquote(parts.path.lstrip("/"))
    if not name:
        raise MongoURLError(f"{url!r}: the URL names no database")
    return name


def mongo_client(url: str, **options: object) -> pymongo.MongoClient:
    """A client for the URL (the database in its path is not checked here)."""
    return pymongo.MongoClient(url, tz_aware=True, **options)


def mongo_database(url: str, client: pymongo.MongoClient | None = None) -> Database:
    """The URL's database, on ``client`` when given (else a new client)."""
    name = database_name(url)
    return (client or mongo_client(url))[name]
