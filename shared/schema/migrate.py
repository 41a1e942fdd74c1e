"""Versioned MariaDB migrations: ``migrations/NNNN_name.sql`` applied in order.

A version is *pending* until its file has run, then *applied*: a row in
``schema_migration`` holds its checksum. Re-running applies nothing; an applied
file whose content changed is an error (write a new migration instead). A
server-wide ``GET_LOCK`` per database makes concurrent processes take turns,
so the second one finds everything applied.

``python -m shared.schema.migrate [--url URL]`` runs it from the command line.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from shared.stores.mariadb import connect, create_database, parse_url

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
LOCK_TIMEOUT_SECONDS = 120
# Longer than the lock wait above and than any migration we ship takes.
MIGRATION_READ_TIMEOUT_SECONDS = 3600
_FILE_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


class MigrationError(RuntimeError):
    """A migration could not be applied, or the applied history disagrees with the files."""


@dataclass(frozen=True)
class Migration:
    version: str
    name: str
    path: Path

    @property
    def sql(self) -> str:
        return self.path.read_text(encoding="utf-8")

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()

    def statements(self) -> list[str]:
        return split_statements(self.sql)


def discover(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """The migration files in version order; a misnamed or duplicate version is an error."""
    found: dict[str, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        match = _FILE_NAME.match(path.name)
        if not match:
            raise MigrationError(f"{path.name}: migration files are named NNNN_name.sql")
        version, name = match.groups()
        if version in found:
            raise MigrationError(f"two migrations with version {version}")
        found[version] = Migration(version, name, path)
    return [found[v] for v in sorted(found)]


def split_statements(sql: str) -> list[str]:
    """Split a script on ``;`` outside quotes and comments (no DELIMITER support)."""
    statements: list[str] = []
    current: list[str] = []
    quote: str | None = None
    i, n = 0, len(sql)
    while i < n:
        ch = sql[i]
        if quote:
            current.append(ch)
            if ch == "\\" and i + 1 < n:
                current.append(sql[i + 1])
                i += 2
                continue
            if ch == quote:
                quote = None
        elif ch in ("'", '"', "`"):
            quote = ch
            current.append(ch)
        elif sql.startswith("--", i) or ch == "#":
            end = sql.find("\n", i)
            i = n if end < 0 else end
            continue
        elif sql.startswith("/*", i):
            end = sql.find("*/", i + 2)
            i = n if end < 0 else end + 2
            continue
        elif ch == ";":
            statement = "".join(current).strip()
            if statement:
                statements.append(statement)
            current = []
        else:
            current.append(ch)
        i += 1
    tail = "".join(current).strip()
    if tail:
        statements.append(tail)
    return statements


_HISTORY_DDL = """
CREATE TABLE IF NOT EXISTS schema_migration (
    version VARCHAR(16) NOT NULL PRIMARY KEY,
    name VARCHAR(128) NOT NULL,
    checksum CHAR(64) NOT NULL,
    applied_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci
"""


def migrate(url: str, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply the pending migrations to the URL's database; returns the versions applied now."""
    migrations = discover(directory)
    create_database(url)
    lock_name = f"toonpick.migrate.{parse_url(url).database}"
    # An ALTER TABLE on a large table may run for many minutes: no read timeout of the
    # usual size here (the connection still has the factory's connect timeout).
    conn = connect(url, autocommit=True, read_timeout=MIGRATION_READ_TIMEOUT_SECONDS)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT GET_LOCK(%s, %s)", (lock_name, LOCK_TIMEOUT_SECONDS))
            (locked,) = cur.fetchone()
            if locked != 1:
                raise MigrationError(
                    f"another process held the migration lock {lock_name!r} "
                    f"for more than {LOCK_TIMEOUT_SECONDS}s"
                )
            try:
                return _apply_pending(cur, migrations)
            finally:
                cur.execute("SELECT RELEASE_LOCK(%s)", (lock_name,))
    finally:
        conn.close()


def _apply_pending(cur, migrations: list[Migration]) -> list[str]:
    cur.execute(_HISTORY_DDL)
    cur.execute("SELECT version, checksum FROM schema_migration")
    applied = dict(cur.fetchall())
    known = {m.version for m in migrations}
    unknown = sorted(set(applied) - known)
    if unknown:
        raise MigrationError(
            f"the database has migrations this code does not know: {', '.join(unknown)}"
        )
    for migration in migrations:
        recorded = applied.get(migration.version)
        if recorded is not None and recorded != migration.checksum:
            raise MigrationError(
                f"migration {migration.path.name} changed after it was applied "
                "(add a new migration instead of editing an applied one)"
            )
    done: list[str] = []
    for migration in migrations:
        if migration.version in applied:
            continue
        # MariaDB commits DDL implicitly, so a failed file stays partly applied and
        # unrecorded: the error names it so an operator can repair and re-run.
        for number, statement in enumerate(migration.statements(), start=1):
            try:
                cur.execute(statement)
            except Exception as exc:
                raise MigrationError(
                    f"migration {migration.path.name}, statement {number} failed: {exc}"
                ) from exc
        cur.execute(
            "INSERT INTO schema_migration (version, name, checksum) VALUES (%s, %s, %s)",
            (migration.version, migration.name, migration.checksum),
        )
        done.append(migration.version)
    return done


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m shared.schema.migrate", description="Apply MariaDB migrations."
    )
    parser.add_argument("--url", help="mysql:// URL (default: TOONPICK_MARIADB_URL)")
    args = parser.parse_args(argv)
    url = args.url
    if not url:
        from shared.config import load_config

        url = load_config().mariadb_url
    try:
        applied = migrate(url)
    except MigrationError as exc:
        print(f"migration failed: {exc}", file=sys.stderr)
        return 1
    target = parse_url(url)
    where = f"{target.host}:{target.port}/{target.database}"
    if applied:
        print(f"applied {len(applied)} migration(s) to {where}: {', '.join(applied)}")
    else:
        print(f"{where} is up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
