"""MariaDB connections from one URL: ``mysql://user:pass@host:port/db?charset=utf8mb4``.

``?ssl=`` chooses TLS: ``preferred`` (the default, PyMySQL's: try TLS, fall back to
plain), ``required`` or ``disabled``. PyMySQL builds a fresh TLS context for every
preferred connection, about 25 ms of CPU even when the server has no TLS, so the local
dev/test URLs say ``ssl=disabled``.

``?connect_timeout=``, ``?read_timeout=`` and ``?write_timeout=`` (seconds) bound every
network wait, so a server that accepts a connection but never answers (a stalled
proxy, a hung primary) raises ``OperationalError`` instead of hanging the process:
PyMySQL waits forever on a read without them. The defaults (``TIMEOUTS``): 10 s to
connect (a reachable server answers in milliseconds; a SYN lost to a restarting host
is retried by the kernel within that); 60 s per read or write, which is a bound on one
socket wait, not on a query: a result set streams in many reads, so only a statement
that keeps the server silent for a minute (none of ours: the catalogue's 500-row
batches take well under a second, and a lease lives 60 s) trips it. A job with a
longer statement says so in its URL, or passes ``connect(..., read_timeout=)``.

The database in the path is the one a connection uses; ``create_database`` and
``drop_database`` act on it through a connection without a default database.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from urllib.parse import parse_qs, unquote, urlsplit, urlunsplit

import pymysql
import pymysql.cursors

from shared.redaction import mask_url

DEFAULT_PORT = 3306
# Seconds; see the module's doc for why these numbers. Each can be overridden in the URL.
TIMEOUTS: dict[str, float] = {"connect_timeout": 10.0, "read_timeout": 60.0,
                              "write_timeout": 60.0}
_DATABASE_NAME = re.compile(r"^[A-Za-z0-9_]{1,64}$")


class MariaDBURLError(ValueError):
    """The URL is not a usable mysql:// URL."""


@dataclass(frozen=True)
class MariaDBURL:
    host: str
    port: int
    user: str
    password: str
    database: str
    charset: str = "utf8mb4"
    unix_socket: str | None = None
    ssl: str = "preferred"
    connect_timeout: float = TIMEOUTS["connect_timeout"]
    read_timeout: float = TIMEOUTS["read_timeout"]
    write_timeout: float = TIMEOUTS["write_timeout"]


SSL_MODES = ("preferred", "required", "disabled")


def parse_url(url: str) -> MariaDBURL:
    """Split a ``mysql://`` (or ``mariadb://``) URL; a database name is required."""
    parts = urlsplit(url)
    if parts.scheme not in ("mysql", "mariadb", "mysql+pymysql"):
        raise MariaDBURLError(f"{mask_url(url)!r}: expected a mysql:// URL")
    database = unquote(parts.path.lstrip("/"))
    if not database:
        raise MariaDBURLError(f"{mask_url(url)!r}: the URL names no database")
    if not _DATABASE_NAME.match(database):
        # The name is spliced into CREATE/DROP DATABASE, which take no parameters.
        raise MariaDBURLError(f"{mask_url(url)!r}: database name must be letters, digits or _")
    query = parse_qs(parts.query)
    ssl_mode = query.get("ssl", ["preferred"])[0]
    if ssl_mode not in SSL_MODES:
        raise MariaDBURLError(f"{mask_url(url)!r}: ssl must be one of {', '.join(SSL_MODES)}")
    timeouts = {name: _timeout(url, query, name, default) for name, default in TIMEOUTS.items()}
    return MariaDBURL(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or DEFAULT_PORT,
        user=unquote(parts.username or ""),
        password=unquote(parts.password or ""),
        database=database,
        charset=query.get("charset", ["utf8mb4"])[0],
        unix_socket=query.get("unix_socket", [None])[0],
        ssl=ssl_mode,
        **timeouts,
    )


def _timeout(url: str, query: dict[str, list[str]], name: str, default: float) -> float:
    raw = query.get(name, [None])[0]
    if raw is None:
        return default
    try:
        seconds = float(raw)
    except ValueError:
        seconds = 0.0
    if not (seconds > 0 and math.isfinite(seconds)):
        # 0 means "wait forever" to PyMySQL: exactly the hang these options exist to prevent.
        raise MariaDBURLError(f"{mask_url(url)!r}: {name} must be a number of seconds > 0, "
                              f"got {raw!r}")
    return seconds


def _connect(
    target: MariaDBURL, database: str | None, autocommit: bool, dict_cursor: bool
) -> pymysql.connections.Connection:
    return pymysql.connect(
        host=target.host,
        port=target.port,
        user=target.user,
        password=target.password,
        database=database,
        charset=target.charset,
        unix_socket=target.unix_socket,
        autocommit=autocommit,
        cursorclass=pymysql.cursors.DictCursor if dict_cursor else pymysql.cursors.Cursor,
        connect_timeout=target.connect_timeout,
        read_timeout=target.read_timeout,
        write_timeout=target.write_timeout,
        init_command="SET time_zone = '+00:00'",
        ssl_disabled=target.ssl == "disabled",
        # A non-empty dict makes TLS required (an empty one would mean "preferred").
        ssl={"check_hostname": True} if target.ssl == "required" else None,
    )


def connect(
    url: str, autocommit: bool = False, dict_cursor: bool = False, *,
    read_timeout: float | None = None,
) -> pymysql.connections.Connection:
    """A connection to the URL's database (utf8mb4, session time zone UTC).

    ``read_timeout`` replaces the URL's for a caller whose statements legitimately keep
    the server silent longer (a migration's ALTER TABLE on a large table)."""
    target = parse_url(url)
    if read_timeout is not None:
        if not (read_timeout > 0 and math.isfinite(read_timeout)):
            raise ValueError(f"read_timeout must be a number of seconds > 0, got {read_timeout}")
        target = replace(target, read_timeout=read_timeout)
    return _connect(target, target.database, autocommit, dict_cursor)


def utc_naive(moment: datetime) -> datetime:
    """``moment`` as the DATETIME columns hold it: UTC without a zone (every session runs
    at time_zone '+00:00'). A naive moment is taken to be UTC already."""
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(UTC).replace(tzinfo=None)


def with_database(url: str, database: str) -> str:
    """The same URL (server, credentials, options) naming another database."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, ""))


def create_database(url: str) -> bool:
    """Create the URL's database if it is missing; True when it was created now."""
    target = parse_url(url)
    conn = _connect(target, None, autocommit=True, dict_cursor=False)
    try:
        with conn.cursor() as cur:
            created = cur.execute(
                f"CREATE DATABASE IF NOT EXISTS `{target.database}` "
                "CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
            )
        return bool(created)
    finally:
        conn.close()


def drop_database(url: str) -> None:
    """Drop the URL's database if it exists."""
    target = parse_url(url)
    conn = _connect(target, None, autocommit=True, dict_cursor=False)
    try:
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{target.database}`")
    finally:
        conn.close()
