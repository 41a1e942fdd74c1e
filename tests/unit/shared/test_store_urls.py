from __future__ import annotations

import pytest

from shared.catalogue import identity_key, normalize_title
from shared.schema.migrate import discover, split_statements
from shared.stores.mariadb import MariaDBURLError, parse_url, with_database
from shared.stores.mongo import MongoURLError, database_name
from shared.stores.s3 import parse_s3_url


def test_mariadb_url_parts():
    url = parse_url("mysql://toon%40pick:p%2Fw@db.internal:3307/toonpick_x?charset=utf8mb4")
    assert (url.user, url.password, url.host, url.port, url.database) == (
        "toon@pick", "p/w", "db.internal", 3307, "toonpick_x")


@pytest.mark.parametrize("bad", ["postgres://h/db", "mysql://h/", "mysql://h/bad-name;drop"])
def test_mariadb_url_errors(bad):
    with pytest.raises(MariaDBURLError):
        parse_url(bad)


def test_mariadb_url_tls_mode_and_other_database():
    assert parse_url("mysql://u:p@h/db").ssl == "preferred"
    url = "mysql://u:p@h:3307/db?ssl=disabled"
    assert parse_url(url).ssl == "disabled"
    other = with_database(url, "db_2")
    assert other == "mysql://u:p@h:3307/db_2?ssl=disabled"
    assert parse_url(other).database == "db_2" and parse_url(other).ssl == "disabled"
    with pytest.raises(MariaDBURLError, match="ssl must be one of"):
        parse_url("mysql://u:p@h/db?ssl=maybe")


def test_mongo_database_name():
    assert database_name("mongodb://127.0.0.1:27017/toonpick?retryWrites=false") == "toonpick"
    with pytest.raises(MongoURLError):
        database_name("mongodb://127.0.0.1:27017/")


def test_s3_url():
    assert parse_s3_url("s3://bucket/images/") == ("bucket", "images/")
    assert parse_s3_url("s3://bucket") == ("bucket", "")
    with pytest.raises(ValueError):
        parse_s3_url("/local/path")


def test_identity_ignores_spacing_and_author_order():
    assert normalize_title(" 전지적  독자 시점 ") == "전지적독자시점"
    assert identity_key("전지적 독자 시점", ["싱숑", "슬리피-C"]) == identity_key(
        "전지적독자시점", ["슬리피-C", "싱숑", "싱숑"])
    assert identity_key("전지적 독자 시점", ["싱숑"]) != identity_key("전지적 독자 시점", ["UMI"])


def test_statement_splitting_respects_quotes_and_comments():
    sql = ("-- a; comment\nCREATE TABLE a (x VARCHAR(3) DEFAULT ';');\n"
           "/* b; */INSERT INTO a VALUES ('it''s;');")
    assert split_statements(sql) == [
        "CREATE TABLE a (x VARCHAR(3) DEFAULT ';')", "INSERT INTO a VALUES ('it''s;')"]


def test_shipped_migrations_are_numbered_in_order():
    versions = [m.version for m in discover()]
    assert versions[0] == "0001" and versions == sorted(versions)
