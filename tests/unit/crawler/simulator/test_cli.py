from __future__ import annotations

import signal
import subprocess
import sys

from .conftest import fetch


def test_cli_serves_until_sigterm() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "crawler.simulator", "--port", "0", "--seed", "5",
         "--titles", "40", "--episodes", "6", "--malformed", "1", "--oversized", "1",
         "--throttle-every", "0",
         "--start-date", "2026-12-07"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        assert line.startswith("simulator listening on http://127.0.0.1:")
        url = line.rsplit(" ", 1)[1]
        assert fetch(f"{url}/_sim/clock").json() == {"today": "2026-12-07"}
        expected = fetch(f"{url}/_sim/expected").json()
        assert sum(len(v) for v in expected["platforms"].values()) == 40 - 3
        assert [len(v) for v in expected["oversized"].values()] == [1, 1, 1]
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        assert process.stdout is not None
        process.stdout.close()


def test_cli_rejects_bad_arguments() -> None:
    for args in (["--titles", "-3"], ["--start-date", "2026-13-40"], ["--port", "70000"],
                 ["--episodes", "many"], ["--oversized", "-1"]):
        result = subprocess.run(
            [sys.executable, "-m", "crawler.simulator", *args],
            capture_output=True, text=True, timeout=30,
        )
        assert result.returncode == 2, args
        assert "error:" in result.stderr
