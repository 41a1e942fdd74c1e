from __future__ import annotations

import shutil
import subprocess
import sys
import threading

import pytest

from shared.schema.migrate import MIGRATIONS_DIR, MigrationError, discover, migrate
from shared.stores.mariadb import connect, drop_database, parse_url, with_database

pytestmark = pytest.mark.integration


ALL_VERSIONS = [m.version for m in discover()]


def tables(url):
    conn = connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW TABLES")
            return {row[0] for row in cur.fetchall()}
    finally:
        conn.close()


@pytest.fixture
def fresh_url(mariadb_url):
    url = with_database(mariadb_url, parse_url(mariadb_url).database + "_m")
    yield url
    drop_database(url)


def test_migrate_creates_the_catalogue_and_rerunning_applies_nothing(fresh_url):
    assert migrate(fresh_url) == ALL_VERSIONS
    assert migrate(fresh_url) == []
    assert {"webtoon", "webtoon_platform", "webtoon_episode", "webtoon_statistics",
            "webtoon_publish_day", "tag", "schema_migration"} <= tables(fresh_url)
    conn = connect(fresh_url)
    with conn.cursor() as cur:
        cur.execute("SELECT name FROM platform ORDER BY id")
        assert [r[0] for r in cur.fetchall()][:3] == ["NAVER", "KAKAO", "KAKAOPAGE"]
    conn.close()


def test_concurrent_migrations_apply_each_version_once(fresh_url):
    results, errors = [], []

    def run():
        try:
            results.append(migrate(fresh_url))
        except Exception as exc:  # collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(results) == [[], [], [], ALL_VERSIONS]


def test_a_changed_applied_migration_is_an_error(fresh_url, tmp_path):
    shutil.copy(MIGRATIONS_DIR / "0001_catalogue.sql", tmp_path / "0001_catalogue.sql")
    migrate(fresh_url, tmp_path)
    with open(tmp_path / "0001_catalogue.sql", "a") as f:
        f.write("\n-- edited afterwards\n")
    with pytest.raises(MigrationError, match="changed after it was applied"):
        migrate(fresh_url, tmp_path)


def test_new_migration_files_are_applied_in_order(fresh_url, tmp_path):
    shutil.copy(MIGRATIONS_DIR / "0001_catalogue.sql", tmp_path / "0001_catalogue.sql")
    migrate(fresh_url, tmp_path)
    (tmp_path / "0002_extra.sql").write_text("CREATE TABLE extra (id INT PRIMARY KEY);")
    assert migrate(fresh_url, tmp_path) == ["0002"]
    assert "extra" in tables(fresh_url)


def test_command_line(fresh_url):
    out = subprocess.run([sys.executable, "-m", "shared.schema.migrate", "--url", fresh_url],
                         capture_output=True, text=True, check=True).stdout
    assert f"applied {len(ALL_VERSIONS)} migration(s)" in out and "0001" in out
    out = subprocess.run([sys.executable, "-m", "shared.schema.migrate", "--url", fresh_url],
                         capture_output=True, text=True, check=True).stdout
    assert "up to date" in out
