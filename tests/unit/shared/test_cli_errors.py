"""run_command turns the errors of our store clients into one line and an exit code.
The errors come from real clients against a port nothing listens on (refused at once)."""

import pytest

from shared.cli import run_command
from shared.config import ConfigError


def _one_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def test_mongo_server_selection_timeout(capsys):
    from shared.stores.mongo import mongo_client

    def command() -> int:
        client = mongo_client("mongodb://127.0.0.1:1/x?serverSelectionTimeoutMS=300")
        try:
            client.admin.command("ping")
        finally:
            client.close()
        return 0

    assert run_command("toonpick x", command) == 1
    line = _one_line(capsys)
    assert line.startswith("toonpick x: cannot reach MongoDB: 127.0.0.1:1")
    assert "Topology Description" not in line


def test_s3_endpoint_refused(capsys):
    from shared.stores.s3 import s3_client

    def command() -> int:
        s3_client("http://127.0.0.1:1", "testing", "hidden-secret-77", "ap-northeast-2"
                  ).list_buckets()
        return 0

    assert run_command("toonpick x", command) == 1
    line = _one_line(capsys)
    assert line.startswith("toonpick x: S3/SQS failed (EndpointConnectionError)")
    assert "hidden-secret-77" not in line


def test_redis_refused_names_the_address(capsys):
    from shared.stores.redis import redis_client

    def command() -> int:
        redis_client("redis://127.0.0.1:1/0?socket_connect_timeout=2").ping()
        return 0

    assert run_command("toonpick x", command) == 1
    assert _one_line(capsys) == (
        "toonpick x: cannot connect to Redis at 127.0.0.1:1: Connection refused")


def test_a_store_error_that_caused_another_is_still_found(capsys):
    from shared.stores.mariadb import connect

    def command() -> int:
        try:
            connect("mysql://u:pw-never-shown@127.0.0.1:1/x?connect_timeout=2").close()
        except Exception as exc:
            raise RuntimeError("start-up failed") from exc
        return 0

    assert run_command("toonpick x", command) == 1
    line = _one_line(capsys)
    assert line.startswith("toonpick x: cannot connect to MariaDB: Can't connect")
    assert "pw-never-shown" not in line


def test_config_error_is_exit_2_and_other_errors_are_not_hidden(capsys):
    def bad_setting() -> int:
        raise ConfigError("TOONPICK_X=1: must be at least 2")

    assert run_command("toonpick x", bad_setting) == 2
    assert _one_line(capsys) == "toonpick x: TOONPICK_X=1: must be at least 2"

    def bug() -> int:
        raise KeyError("a bug of ours")

    # A bug is not a bad input: it keeps its traceback.
    with pytest.raises(KeyError):
        run_command("toonpick x", bug)
