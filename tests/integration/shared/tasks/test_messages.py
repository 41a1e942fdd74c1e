"""SQS messages on moto's SQS with real MariaDB and Redis: request → execution (run by an
in-process rq SimpleWorker) → completion message; dead-letter queue with reasons;
duplicate requestIds; redelivery after a transient failure."""

from __future__ import annotations

import json
import time
import uuid

import pytest
from rq import Queue, SimpleWorker

from shared.stores.redis import redis_client
from shared.stores.sqs import ensure_queue, sqs_client_from_config
from shared.tasks import alerts, runner
from shared.tasks.alerts import AlertSettings
from shared.tasks.messages import (
    CompletionPublisher,
    Direction,
    EventRoute,
    EventType,
    MessageConsumer,
)
from shared.tasks.repository import TaskRepository
from shared.tasks.runner import RunnerSettings
from shared.tasks.types import DEFAULT_QUEUE, ExecutionStatus, RetryPolicy, Trigger, register_task
from tests.conftest import TEST_CONFIG

pytestmark = pytest.mark.integration

ECHO_TASK = "TEST_MESSAGE_ECHO"
FAILING_TASK = "TEST_MESSAGE_FAILS"
FLAKY_TASK = "TEST_MESSAGE_FLAKY"


def echo(ctx, request_id: str, platforms: list[str] | None = None) -> dict:
    return {"requestId": request_id, "platforms": platforms or [], "titles": 3}


def fails(ctx, request_id: str, platforms: list[str] | None = None) -> None:
    raise RuntimeError("platform answered 503")


def flaky(ctx, request_id: str, platforms: list[str] | None = None) -> list:
    if ctx.attempt == 1:
        raise RuntimeError("first attempt fails")
    return [{"attempt": ctx.attempt}]


register_task(ECHO_TASK, echo)
register_task(FAILING_TASK, fails)
register_task(FLAKY_TASK, flaky, retry=RetryPolicy(max_retries=1))

ROUTES = {
    EventType.CRAWL_WEBTOON_ALL: EventRoute(ECHO_TASK, Direction.CREATE),
    EventType.CRAWL_WEBTOON_NEW: EventRoute(FLAKY_TASK, Direction.CREATE),
    EventType.CRAWL_WEBTOON_EPISODE: EventRoute(FAILING_TASK, Direction.UPDATE),
}
# Nothing listens on port 1: connecting fails at once, as with MariaDB down.
DOWN_MARIADB_URL = "mysql://toonpick:toonpick@127.0.0.1:1/toonpick_down"


class Queues:
    def __init__(self, sqs, prefix: str):
        self.sqs = sqs
        attributes = {"VisibilityTimeout": "1"}
        self.create_request = ensure_queue(sqs, f"{prefix}-create-request", attributes)
        self.update_request = ensure_queue(sqs, f"{prefix}-update-request", attributes)
        self.create_complete = ensure_queue(sqs, f"{prefix}-create-complete")
        self.update_complete = ensure_queue(sqs, f"{prefix}-update-complete")
        self.dead_letter = ensure_queue(sqs, f"{prefix}-dlq")

    def all(self) -> list[str]:
        return [self.create_request, self.update_request, self.create_complete,
                self.update_complete, self.dead_letter]

    def send(self, queue: str, body: str) -> None:
        self.sqs.send_message(QueueUrl=queue, MessageBody=body)

    def drain(self, queue: str, wait: int = 0) -> list[dict]:
        answer = self.sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10,
                                          WaitTimeSeconds=wait, VisibilityTimeout=30,
                                          AttributeNames=["All"],
                                          MessageAttributeNames=["All"])
        return answer.get("Messages", [])

    def count(self, queue: str) -> int:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=queue, AttributeNames=["ApproximateNumberOfMessages",
                                            "ApproximateNumberOfMessagesNotVisible"])
        return sum(int(v) for v in attributes["Attributes"].values())


@pytest.fixture
def stores(mariadb_url, redis_url, unique_name, monkeypatch):
    monkeypatch.setattr(runner, "_process_config", runner._ProcessConfig(
        mariadb_url, RunnerSettings(heartbeat_interval=0.2, stop_check_interval=0.1)))
    # A retry enqueued outside a worker's job finds Redis through the environment.
    monkeypatch.setenv("TOONPICK_PROFILE", "test")
    monkeypatch.setenv("REDIS_URL", redis_url)
    alerts.configure_alerts(AlertSettings())  # no webhook: these tests are about messages
    sqs = sqs_client_from_config(TEST_CONFIG)
    queues = Queues(sqs, unique_name)
    connection = redis_client(redis_url)
    yield mariadb_url, redis_url, queues, connection
    connection.close()
    alerts.configure_alerts(None)
    for url in queues.all():
        sqs.delete_queue(QueueUrl=url)


def consumer(stores, mariadb_url: str | None = None, **options) -> MessageConsumer:
    url, redis_url, queues, _ = stores
    return MessageConsumer(
        queues.sqs,
        mariadb_url=mariadb_url or url,
        redis_url=redis_url,
        request_queues=[queues.create_request, queues.update_request],
        dead_letter_queue=queues.dead_letter,
        complete_queues={Direction.CREATE: queues.create_complete,
                         Direction.UPDATE: queues.update_complete},
        routes=ROUTES,
        wait_seconds=options.pop("wait_seconds", 0),
        **options,
    )


def request(event_type: str = "CRAWL_WEBTOON_ALL", request_id: str | None = None,
            data: list | None = None) -> tuple[str, str]:
    request_id = request_id or str(uuid.uuid4())
    body = json.dumps({"requestId": request_id, "eventType": event_type, "data": data or [],
                       "message": None, "requestTime": 1719900000000})
    return request_id, body


def work(connection) -> None:
    SimpleWorker([Queue(DEFAULT_QUEUE, connection=connection)], connection=connection).work(
        burst=True, with_scheduler=False)


def test_request_becomes_an_execution_whose_completion_is_sent_once(stores):
    mariadb_url, _, queues, connection = stores
    request_id, body = request(data=["naver"])
    queues.send(queues.create_request, body)
    subject = consumer(stores)

    report = subject.poll_once()
    assert (report.received, report.executions_created, report.completions_sent) == (1, 1, 0)
    assert queues.count(queues.create_request) == 0

    (execution,) = TaskRepository(mariadb_url).list_executions(task_type=ECHO_TASK)
    assert execution.trigger is Trigger.MESSAGE
    assert execution.params == {"request_id": request_id, "platforms": ["NAVER"]}
    assert subject.ledger.execution_of(request_id) == execution.id

    work(connection)
    assert TaskRepository(mariadb_url).get(execution.id).status is ExecutionStatus.COMPLETED
    started = int(time.time() * 1000)
    assert subject.poll_once().completions_sent == 1

    (message,) = queues.drain(queues.create_complete)
    completion = json.loads(message["Body"])
    assert completion["requestId"] == request_id
    assert completion["eventType"] == "CRAWL_WEBTOON_ALL"
    assert completion["data"] == [{"requestId": request_id, "platforms": ["NAVER"],
                                   "titles": 3}]
    assert completion["message"] == "COMPLETED"
    assert completion["requestTime"] >= started - 1000
    assert message["MessageAttributes"]["status"]["StringValue"] == "COMPLETED"
    assert message["MessageAttributes"]["executionId"]["StringValue"] == str(execution.id)
    # A second sender (or a re-run of this one) finds nothing left to send.
    assert subject.poll_once().completions_sent == 0
    assert CompletionPublisher(queues.sqs, subject.ledger, subject.publisher.complete_queues
                               ).publish_pending() == 0
    assert queues.count(queues.create_complete) == 1
    assert queues.count(queues.update_complete) == 0


def test_a_failed_update_request_completes_on_the_update_queue_with_the_error(stores):
    mariadb_url, _, queues, connection = stores
    request_id, body = request("CRAWL_WEBTOON_EPISODE")
    queues.send(queues.update_request, body)
    subject = consumer(stores)
    assert subject.poll_once().executions_created == 1
    work(connection)
    assert subject.poll_once().completions_sent == 1

    (message,) = queues.drain(queues.update_complete)
    completion = json.loads(message["Body"])
    assert completion["requestId"] == request_id
    assert completion["eventType"] == "CRAWL_WEBTOON_EPISODE"
    assert completion["data"] == []
    assert completion["message"] == "FAILED: RuntimeError: platform answered 503"
    assert queues.count(queues.create_complete) == 0


def test_a_completion_waits_for_the_retry_of_a_failed_attempt(stores):
    mariadb_url, _, queues, connection = stores
    request_id, body = request("CRAWL_WEBTOON_NEW")
    queues.send(queues.create_request, body)
    subject = consumer(stores)
    subject.poll_once()
    # Run only the first attempt: its retry is QUEUED, so the request is not done.
    (first,) = TaskRepository(mariadb_url).list_executions(task_type=FLAKY_TASK)
    runner.run_execution(first.id)
    executions = TaskRepository(mariadb_url).list_executions(task_type=FLAKY_TASK)
    assert [e.status for e in executions] == [ExecutionStatus.QUEUED, ExecutionStatus.FAILED]
    assert subject.poll_once().completions_sent == 0

    work(connection)
    assert subject.poll_once().completions_sent == 1
    (message,) = queues.drain(queues.create_complete)
    completion = json.loads(message["Body"])
    assert completion["requestId"] == request_id
    assert completion["message"] == "COMPLETED" and completion["data"] == [{"attempt": 2}]


def test_invalid_messages_go_to_the_dead_letter_queue_with_their_reason(stores):
    mariadb_url, _, queues, _ = stores
    bad = {
        "bad_json": "{oops",
        "missing_field:requestTime": json.dumps(
            {"requestId": str(uuid.uuid4()), "eventType": "CRAWL_WEBTOON_ALL", "data": []}),
        "unknown_event_type": request("CRAWL_EVERYTHING")[1],
        "invalid_value:data": request(data=["NETFLIX"])[1],
    }
    for body in bad.values():
        queues.send(queues.create_request, body)
    queues.send(queues.update_request, json.dumps({"requestId": 1}))
    subject = consumer(stores)

    report = subject.poll_once()
    assert report.received == 5 and report.executions_created == 0
    assert dict(report.dead_lettered) == {reason: 1 for reason in bad} | {
        "missing_field:eventType": 1}
    assert queues.count(queues.create_request) == queues.count(queues.update_request) == 0

    dead = queues.drain(queues.dead_letter)
    dead += queues.drain(queues.dead_letter)
    assert len(dead) == 5
    by_reason = {m["MessageAttributes"]["reason"]["StringValue"]: m for m in dead}
    for reason, body in bad.items():
        wrapper = json.loads(by_reason[reason]["Body"])
        assert wrapper["reason"] == reason and wrapper["body"] == body
        assert wrapper["sourceQueue"] == queues.create_request
        assert by_reason[reason]["MessageAttributes"]["sourceQueue"]["StringValue"] == (
            queues.create_request)
    assert json.loads(by_reason["missing_field:eventType"]["Body"])["sourceQueue"] == (
        queues.update_request)
    assert TaskRepository(mariadb_url).list_executions() == []


def test_a_duplicate_request_id_runs_once(stores):
    mariadb_url, _, queues, connection = stores
    request_id, body = request()
    queues.send(queues.create_request, body)
    queues.send(queues.create_request, body)
    subject = consumer(stores)
    report = subject.poll_once()
    assert (report.received, report.executions_created, report.duplicates) == (2, 1, 1)
    assert queues.count(queues.create_request) == 0

    work(connection)
    subject.poll_once()
    # Delivered again after it completed: acknowledged, no new execution, no new completion.
    queues.send(queues.create_request, body)
    report = subject.poll_once()
    assert (report.duplicates, report.executions_created, report.completions_sent) == (1, 0, 0)
    assert len(TaskRepository(mariadb_url).list_executions(task_type=ECHO_TASK)) == 1
    assert queues.count(queues.create_complete) == 1


def test_a_transient_failure_leaves_the_message_for_redelivery(stores):
    mariadb_url, _, queues, _ = stores
    request_id, body = request()
    queues.send(queues.create_request, body)

    down = consumer(stores, mariadb_url=DOWN_MARIADB_URL, visibility_timeout=1)
    report = down.poll_once()
    assert (report.received, report.deferred, sum(report.dead_lettered.values())) == (1, 1, 0)
    assert queues.count(queues.create_request) == 1  # in flight, not deleted

    time.sleep(1.5)  # the visibility timeout passes: SQS delivers it again
    report = consumer(stores, visibility_timeout=1).poll_once(wait_seconds=2)
    assert (report.received, report.executions_created) == (1, 1)
    assert queues.count(queues.create_request) == 0
    (execution,) = TaskRepository(mariadb_url).list_executions(task_type=ECHO_TASK)
    assert execution.params["request_id"] == request_id


def test_a_message_failing_on_every_delivery_ends_in_the_dead_letter_queue(stores):
    _, _, queues, _ = stores
    _, body = request()
    queues.send(queues.create_request, body)
    down = consumer(stores, mariadb_url=DOWN_MARIADB_URL, visibility_timeout=1,
                    max_receives=2)
    assert down.poll_once().deferred == 1
    time.sleep(1.5)
    report = down.poll_once(wait_seconds=2)
    assert dict(report.dead_lettered) == {"too_many_receives": 1}
    assert queues.count(queues.create_request) == 0
    (dead,) = queues.drain(queues.dead_letter)
    wrapper = json.loads(dead["Body"])
    assert wrapper["reason"] == "too_many_receives" and wrapper["receiveCount"] == 2
    assert wrapper["body"] == body and "2 deliveries" in wrapper["detail"]


def test_a_claimed_completion_is_not_sent_twice_until_its_claim_expires(stores):
    mariadb_url, _, queues, connection = stores
    request_id, body = request()
    queues.send(queues.create_request, body)
    subject = consumer(stores)
    subject.poll_once()
    work(connection)
    # A sender claimed it and died before sending.
    assert subject.ledger.claim_completion(request_id, claim_seconds=60) is not None
    assert subject.poll_once().completions_sent == 0
    quick = CompletionPublisher(queues.sqs, subject.ledger, subject.publisher.complete_queues,
                                claim_seconds=0.5)
    time.sleep(0.7)
    assert quick.publish_pending() == 1
    assert quick.publish_pending() == 0
    assert queues.count(queues.create_complete) == 1


def test_from_config_finds_the_queues_by_name(stores, unique_name):
    mariadb_url, redis_url, queues, _ = stores
    from shared.config import load_config

    names = {
        "AWS_SQS_WEBTOON_CREATE_REQUEST": f"{unique_name}-create-request",
        "AWS_SQS_WEBTOON_UPDATE_REQUEST": f"{unique_name}-update-request",
        "AWS_SQS_WEBTOON_CREATE_COMPLETE": f"{unique_name}-create-complete",
        "AWS_SQS_WEBTOON_UPDATE_COMPLETE": queues.update_complete,  # a URL is used as is
        "TOONPICK_SQS_DEAD_LETTER_QUEUE": f"{unique_name}-dlq",
    }
    config = load_config(profile="test", environ={
        **names, "TOONPICK_MARIADB_URL": mariadb_url, "REDIS_URL": redis_url,
        "TOONPICK_SQS_WAIT_SECONDS": "0", "TOONPICK_SQS_MAX_RECEIVES": "3"})
    subject = MessageConsumer.from_config(config, queues.sqs, routes=ROUTES)
    assert subject.request_queues == [queues.create_request, queues.update_request]
    assert subject.dead_letter_queue == queues.dead_letter
    assert subject.publisher.complete_queues == {Direction.CREATE: queues.create_complete,
                                                 Direction.UPDATE: queues.update_complete}
    assert (subject.max_receives, subject.wait_seconds) == (3, 0)
    queues.send(queues.create_request, request()[1])
    assert subject.poll_once().executions_created == 1
