"""Job alerts posted by the runner to a local Slack-compatible receiver; a dead or slow
webhook never changes a task's outcome."""

from __future__ import annotations

import json
import queue
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from rq import Queue, SimpleWorker

from shared.stores.redis import redis_client
from shared.tasks import alerts, runner
from shared.tasks.alerts import AlertSettings
from shared.tasks.repository import TaskRepository
from shared.tasks.runner import RunnerSettings, enqueue_task
from shared.tasks.types import DEFAULT_QUEUE, ExecutionStatus, register_task

pytestmark = pytest.mark.integration

ALERT_FAILS_TASK = "TEST_ALERT_FAILS"
ALERT_OK_TASK = "TEST_ALERT_OK"


def fails(ctx, key: str) -> None:
    raise ValueError("잘못된 응답 (bad page)")


def succeeds(ctx, key: str) -> dict:
    return {"key": key}


register_task(ALERT_FAILS_TASK, fails)
register_task(ALERT_OK_TASK, succeeds)


class Receiver:
    """A webhook on 127.0.0.1:<free port> recording each JSON body; answers ``status``
    after ``delay`` seconds."""

    def __init__(self, status: int = 200, delay: float = 0.0):
        self.bodies: queue.Queue = queue.Queue()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                length = int(self.headers.get("Content-Length", "0"))
                receiver.bodies.put((self.headers.get("Content-Type"),
                                     json.loads(self.rfile.read(length))))
                time.sleep(delay)
                self.send_response(status)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/T000/B000"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def stores(mariadb_url, redis_url, monkeypatch):
    monkeypatch.setattr(runner, "_process_config", runner._ProcessConfig(
        mariadb_url, RunnerSettings(heartbeat_interval=0.2, stop_check_interval=0.1)))
    connection = redis_client(redis_url)
    yield mariadb_url, redis_url, connection
    connection.close()
    alerts.configure_alerts(None)


@pytest.fixture
def receiver():
    made: list[Receiver] = []

    def make(**options) -> Receiver:
        made.append(Receiver(**options))
        return made[-1]

    yield make
    for r in made:
        r.close()


def work(connection) -> None:
    SimpleWorker([Queue(DEFAULT_QUEUE, connection=connection)], connection=connection).work(
        burst=True, with_scheduler=False)


def test_a_failed_task_posts_the_korean_failure_notice(stores, receiver):
    mariadb_url, redis_url, connection = stores
    hook = receiver()
    alerts.configure_alerts(AlertSettings(webhook_url=hook.url))
    execution_id = enqueue_task(mariadb_url, redis_url, ALERT_FAILS_TASK, {"key": "a"}, "api")
    work(connection)

    assert TaskRepository(mariadb_url).get(execution_id).status is ExecutionStatus.FAILED
    content_type, body = hook.bodies.get(timeout=5)
    assert content_type.startswith("application/json")
    assert body == {"text": f"[긴급] 작업 실패: {ALERT_FAILS_TASK} (#{execution_id})\n"
                            "오류: ValueError: 잘못된 응답 (bad page)"}
    assert hook.bodies.empty()


def test_success_is_announced_only_when_asked(stores, receiver):
    mariadb_url, redis_url, connection = stores
    hook = receiver()
    alerts.configure_alerts(AlertSettings(webhook_url=hook.url))
    quiet = enqueue_task(mariadb_url, redis_url, ALERT_OK_TASK, {"key": "quiet"}, "api")
    work(connection)
    assert TaskRepository(mariadb_url).get(quiet).status is ExecutionStatus.COMPLETED
    assert hook.bodies.empty()

    alerts.configure_alerts(AlertSettings(webhook_url=hook.url, on_success=True))
    loud = enqueue_task(mariadb_url, redis_url, ALERT_OK_TASK, {"key": "loud"}, "api")
    work(connection)
    assert hook.bodies.get(timeout=5)[1] == {"text": f"[알림] 작업 성공: {ALERT_OK_TASK} (#{loud})"}


@pytest.mark.parametrize("webhook", ["refused", "error_500", "too_slow"])
def test_a_dead_webhook_does_not_fail_the_task(stores, receiver, webhook):
    mariadb_url, redis_url, connection = stores
    if webhook == "refused":
        url = "http://127.0.0.1:1/hook"  # nothing listens on port 1
    elif webhook == "error_500":
        url = receiver(status=500).url
    else:
        url = receiver(delay=2.0).url
    alerts.configure_alerts(AlertSettings(webhook_url=url, on_success=True, timeout=0.5))
    failed_before = alerts.stats.failed

    ok = enqueue_task(mariadb_url, redis_url, ALERT_OK_TASK, {"key": webhook}, "api")
    bad = enqueue_task(mariadb_url, redis_url, ALERT_FAILS_TASK, {"key": webhook}, "api")
    work(connection)

    repository = TaskRepository(mariadb_url)
    assert repository.get(ok).status is ExecutionStatus.COMPLETED
    assert repository.get(ok).result == {"key": webhook}
    assert repository.get(bad).status is ExecutionStatus.FAILED
    assert "잘못된 응답" in repository.get(bad).error
    assert alerts.stats.failed == failed_before + 2
