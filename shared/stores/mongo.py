"""MongoDB connections from one URL: ``mongodb://host:port/db?retryWrites=false``.

The URL's options are passed through untouched: SecantusDB (dev/test) needs
``retryWrites=false``, and production URLs carry their own options.

Every client gets timeouts (``TIMEOUTS``) unless the URL names its own
(``?socketTimeoutMS=120000``): pymongo waits 30 s to find a server by default and
forever on a socket read, so a stalled server would hang a writer for good. Ours:
10 s to select a server (a replica set elects a new primary in about that; a
crawl's writer retries after it), 5 s to open a connection (a reachable server
answers in milliseconds), 60 s on one socket read or write (a 500-document bulk
write takes well under a second; a minute of silence is a dead server, not a
slow one).
"""

from __future__ import annotations

from urllib.parse import parse_qs, unquote, urlsplit

import pymongo
from pymongo.database import Database

from shared.redaction import mask_url

# Milliseconds, pymongo's option names; see the module's doc for why these numbers.
TIMEOUTS: dict[str, int] = {
    "serverSelectionTimeoutMS": 10_000,
    "connectTimeoutMS": 5_000,
    "socketTimeoutMS": 60_000,
}


class MongoURLError(ValueError):
    """The URL is not a usable mongodb:// URL."""


def database_name(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("mongodb", "mongodb+srv"):
        raise MongoURLError(f"{mask_url(url)!r}: expected a mongodb:// URL")
    name = unquote(parts.path.lstrip("/"))
    if not name:
        raise MongoURLError(f"{mask_url(url)!r}: the URL names no database")
    return name


def client_options(url: str, **options: object) -> dict[str, object]:
    """The keyword options ``mongo_client`` passes: ``TIMEOUTS`` the URL does not set
    itself, then ``options``. pymongo lets keyword options override the URL's, so a
    default must not be passed for an option the URL names (names are case-insensitive)."""
    in_url = {name.lower() for name in parse_qs(urlsplit(url).query)}
    merged: dict[str, object] = {name: value for name, value in TIMEOUTS.items()
                                 if name.lower() not in in_url}
    merged.update(options)
    return merged


def mongo_client(url: str, **options: object) -> pymongo.MongoClient:
    """A client for the URL (the database in its path is not checked here)."""
    return pymongo.MongoClient(url, tz_aware=True, **client_options(url, **options))


def mongo_database(url: str, client: pymongo.MongoClient | None = None) -> Database:
    """The URL's database, on ``client`` when given (else a new client)."""
    name = database_name(url)
    return (client or mongo_client(url))[name]
