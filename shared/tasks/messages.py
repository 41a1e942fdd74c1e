"""SQS messages: crawl requests in, completion messages out, in the original envelope.

    {"requestId": "<uuid>", "eventType": "CRAWL_WEBTOON_ALL", "data": [...],
     "message": null, "requestTime": 1719900000000}

A request on one of the two request queues moves through these states:

    received ──parse/route fails──────────────► dead-letter queue (reason) + deleted
       │ valid
       ├── MariaDB/Redis trouble ─► left on the queue: SQS delivers it again after the
       │                            visibility timeout; after ``max_receives`` deliveries
       │                            it goes to the dead-letter queue (reason too_many_receives)
       ▼
    recorded (``task_message`` row, requestId unique) + task execution (trigger=message,
    ``request_id`` among its params) ── deleted from the queue
       │ the instance's latest execution ends (COMPLETED/FAILED/STOPPED/ABANDONED, no retry
       ▼ pending)
    completion claimed ── sent to the complete queue ── recorded as sent

Idempotency: the ``task_message`` row is taken with ``SELECT ... FOR UPDATE`` before the
execution is created, so a duplicate requestId (a redelivery, or the producer sending
twice) finds the row and is acknowledged without a second execution; and ``request_id``
identifies the task instance, so even a lost row cannot start a second run
(``AlreadyRunning`` / ``AlreadyCompleted`` link the request to the existing one).

Where completions are sent from: the consumer loop scans the ``task_message`` outbox
(``CompletionPublisher``) rather than a hook in the runner, because the outbox sees every
way an execution ends — including ABANDONED set by a reconciler in another process, and
failures whose retry is still to come — survives a worker dying right after ``finish``,
and keeps SQS credentials out of task workers. The cost is latency: a completion waits
for the next poll (at most the long-poll wait). Sending is claimed first and recorded
after, so a second sender never repeats a sent completion; a sender that dies between
sending and recording makes its claim expire and the completion is sent again
(at-least-once; the receiver dedupes on requestId).
"""

from __future__ import annotations

import json
import logging
import signal
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import pymysql
import redis
from botocore.exceptions import BotoCoreError, ClientError

from shared.domain import Platform
from shared.stores.mariadb import connect
from shared.stores.sqs import MAX_MESSAGE_BYTES, queue_url, sqs_client_from_config
from shared.tasks.repository import AlreadyCompleted, AlreadyRunning
from shared.tasks.runner import enqueue_task, reconcile_at_startup
from shared.tasks.types import (
    ExecutionStatus,
    InvalidParams,
    TaskType,
    Trigger,
    UnknownTaskType,
    canonical_json,
    import_task_modules,
    parse_module_list,
)

log = logging.getLogger(__name__)

ENVELOPE_FIELDS = ("requestId", "eventType", "data", "message", "requestTime")
# SQS's largest long-poll wait and batch.
MAX_WAIT_SECONDS = 20
MAX_BATCH = 10
# A completion claim older than this is taken over by another sender.
COMPLETION_CLAIM_SECONDS = 120.0
_TERMINAL_SQL = "('COMPLETED', 'FAILED', 'STOPPED', 'ABANDONED')"
_MAX_REASON_CHARS = 1000


class EventType(StrEnum):
    CRAWL_WEBTOON_ALL = "CRAWL_WEBTOON_ALL"
    CRAWL_WEBTOON_EPISODE = "CRAWL_WEBTOON_EPISODE"
    CRAWL_WEBTOON_NEW = "CRAWL_WEBTOON_NEW"


class Direction(StrEnum):
    """Which pair of queues a request belongs to: its completion goes to the same side."""

    CREATE = "create"
    UPDATE = "update"


class InvalidRequest(ValueError):  # noqa: N818 - the reason is the message's fate
    """A request message that can never be processed; ``reason`` is a short code
    (``bad_json``, ``missing_field:requestId``, …), ``detail`` a sentence for people."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Request:
    request_id: str
    event_type: EventType
    data: list[Any]
    message: str | None
    request_time: int


def parse_request(body: str | bytes) -> Request:
    """Parse one envelope strictly; raises ``InvalidRequest`` saying what is wrong.
    Unknown extra fields are ignored so a producer may add some."""
    try:
        envelope = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidRequest("bad_json", str(exc)[:200]) from None
    if not isinstance(envelope, dict):
        raise InvalidRequest("wrong_type:envelope",
                             f"expected a JSON object, got {type(envelope).__name__}")
    for name in ("requestId", "eventType", "data", "requestTime"):
        if name not in envelope:
            raise InvalidRequest(f"missing_field:{name}")

    request_id = envelope["requestId"]
    if not isinstance(request_id, str):
        raise InvalidRequest("wrong_type:requestId", "expected a string")
    try:
        parsed_id = uuid.UUID(request_id)
    except ValueError:
        raise InvalidRequest("invalid_value:requestId", f"{request_id[:80]!r} is not a UUID") \
            from None

    event_type = envelope["eventType"]
    if not isinstance(event_type, str):
        raise InvalidRequest("wrong_type:eventType", "expected a string")
    if event_type not in EventType.__members__:
        raise InvalidRequest("unknown_event_type", f"{event_type[:80]!r}")

    data = envelope["data"]
    if data is None:
        data = []
    if not isinstance(data, list):
        raise InvalidRequest("wrong_type:data", f"expected a list, got {type(data).__name__}")

    message = envelope.get("message")
    if message is not None and not isinstance(message, str):
        raise InvalidRequest("wrong_type:message", "expected a string or null")

    request_time = envelope["requestTime"]
    if isinstance(request_time, bool) or not isinstance(request_time, int):
        raise InvalidRequest("wrong_type:requestTime", "expected epoch milliseconds (integer)")
    if request_time <= 0:
        raise InvalidRequest("invalid_value:requestTime", "must be positive epoch milliseconds")

    return Request(
        request_id=str(parsed_id),
        event_type=EventType(event_type),
        data=data,
        message=message,
        request_time=request_time,
    )


# -- routing: event type → task ------------------------------------------------------------


def crawl_params(request: Request) -> dict[str, Any]:
    """Task params of a crawl request: the requestId (it identifies the instance: one run
    per request) and, when ``data`` lists platform names, those platforms."""
    params: dict[str, Any] = {"request_id": request.request_id}
    if request.data:
        platforms = []
        for entry in request.data:
            name = entry.get("platform") if isinstance(entry, dict) else entry
            if not isinstance(name, str) or name.upper() not in Platform.__members__:
                raise InvalidRequest(
                    "invalid_value:data",
                    f"expected platform names ({', '.join(Platform)}), got {entry!r:.80}")
            platforms.append(Platform(name.upper()).value)
        params["platforms"] = sorted(set(platforms))
    return params


@dataclass(frozen=True)
class EventRoute:
    """What an event type becomes: a task type, its params, and where its completion goes."""

    task_type: str
    direction: Direction
    params: Callable[[Request], dict[str, Any]] = crawl_params


DEFAULT_ROUTES: Mapping[EventType, EventRoute] = {
    EventType.CRAWL_WEBTOON_ALL: EventRoute(TaskType.WEBTOON_ALL_CRAWL, Direction.CREATE),
    EventType.CRAWL_WEBTOON_NEW: EventRoute(TaskType.WEBTOON_NEW_CRAWL, Direction.CREATE),
    EventType.CRAWL_WEBTOON_EPISODE: EventRoute(TaskType.WEBTOON_EPISODE_UPDATE,
                                                Direction.UPDATE),
}


# -- completion messages -----------------------------------------------------------------


def now_ms() -> int:
    return int(time.time() * 1000)


def completion_data(result: Any) -> list[Any]:
    """The envelope's ``data`` is a list: a list result as is, nothing as [], else [result]."""
    if result is None:
        return []
    return result if isinstance(result, list) else [result]


def completion_text(status: ExecutionStatus | str, error: str | None) -> str:
    """``message`` of a completion: the status, and for a failure the error's last line."""
    status = ExecutionStatus(status)
    if status is ExecutionStatus.COMPLETED or not error:
        return status.value
    lines = [line.strip() for line in error.strip().splitlines() if line.strip()]
    return f"{status.value}: {(lines[-1] if lines else error)[:1000]}"


def completion_body(
    request_id: str,
    event_type: str,
    execution_id: int,
    status: ExecutionStatus | str,
    result: Any,
    error: str | None,
    request_time: int | None = None,
) -> str:
    """The completion message in the request's own shape; a result too big for SQS is
    left out and the message says where to read it."""
    envelope = {
        "requestId": request_id,
        "eventType": event_type,
        "data": completion_data(result),
        "message": completion_text(status, error),
        "requestTime": request_time if request_time is not None else now_ms(),
    }
    body = canonical_json(envelope)
    if len(body.encode("utf-8")) > MAX_MESSAGE_BYTES - 4096:
        envelope["data"] = []
        envelope["message"] += f" (result too large for a message: read execution #{execution_id})"
        body = canonical_json(envelope)
    return body


# -- the ledger (task_message) -----------------------------------------------------------


@dataclass(frozen=True)
class Recorded:
    execution_id: int
    created: bool  # False: the request was already known (a duplicate)


@dataclass(frozen=True)
class PendingCompletion:
    request_id: str
    event_type: str
    direction: Direction
    execution_id: int
    status: ExecutionStatus
    result: Any
    error: str | None


class MessageLedger:
    """``task_message`` rows: which request started which task instance, and whether its
    completion went out."""

    def __init__(self, mariadb_url: str, redis_url: str):
        self.mariadb_url = mariadb_url
        self.redis_url = redis_url

    def _connect(self) -> pymysql.connections.Connection:
        return connect(self.mariadb_url, autocommit=False, dict_cursor=True)

    def record_request(self, request: Request, route: EventRoute) -> Recorded:
        """The execution of this request: created now, or the one a previous delivery
        created. Raises ``InvalidRequest`` for params the task refuses and lets store
        errors through (the caller leaves the message for redelivery)."""
        params = route.params(request)
        conn = self._connect()
        try:
            with conn.cursor() as cur:
                cur.execute(
                    "INSERT INTO task_message (request_id, event_type, task_type, direction, "
                    "request_time) VALUES (%s, %s, %s, %s, %s) "
                    "ON DUPLICATE KEY UPDATE request_id = request_id",
                    (request.request_id, request.event_type.value, str(route.task_type),
                     route.direction.value, request.request_time),
                )
                # Held until commit: a concurrent delivery of the same request waits here.
                cur.execute("SELECT * FROM task_message WHERE request_id = %s FOR UPDATE",
                            (request.request_id,))
                row = cur.fetchone()
                if row["event_type"] != request.event_type.value:
                    raise InvalidRequest(
                        "conflicting_request_id",
                        f"requestId already used for {row['event_type']}")
                if row["execution_id"] is not None:
                    conn.commit()
                    return Recorded(row["execution_id"], created=False)
                created = True
                try:
                    execution_id = enqueue_task(self.mariadb_url, self.redis_url,
                                                route.task_type, params, Trigger.MESSAGE)
                except (AlreadyRunning, AlreadyCompleted) as exc:
                    # The instance exists: an earlier delivery created it and died before
                    # this row recorded it. Link the request to it.
                    execution_id, created = exc.execution_id, False
                except UnknownTaskType as exc:
                    raise InvalidRequest("unregistered_task_type", str(exc)) from None
                except InvalidParams as exc:
                    raise InvalidRequest("invalid_params", str(exc)) from None
                cur.execute("SELECT instance_id FROM task_execution WHERE id = %s",
                            (execution_id,))
                instance_id = cur.fetchone()["instance_id"]
                cur.execute(
                    "UPDATE task_message SET execution_id = %s, instance_id = %s "
                    "WHERE request_id = %s",
                    (execution_id, instance_id, request.request_id),
                )
            conn.commit()
            return Recorded(execution_id, created)
        except BaseException:
            conn.rollback()
            raise
        finally:
            conn.close()

    def execution_of(self, request_id: str) -> int | None:
        conn = self._connect()
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT execution_id FROM task_message WHERE request_id = %s",
                            (request_id,))
                row = cur.fetchone()
            conn.commit()
            return None if row is None else row["execution_id"]
        finally:
            conn.close()

    def pending_completions(
        self, limit: int = 50, claim_seconds: float = COMPLETION_CLAIM_SECONDS
    ) -> list[PendingCompletion]:
        """Requests whose task instance has ended (its latest execution is terminal, so no
        retry is pending) and whose completion is neither sent nor freshly claimed."""
        conn = self._connect()
        try:
            with conn.cursor() as cur:
                cur.execute(
                    "SELECT m.request_id, m.event_type, m.direction, e.id AS execution_id, "
                    "e.status, e.result, e.error FROM task_message m "
                    "JOIN task_execution e ON e.id = (SELECT MAX(x.id) FROM task_execution x "
                    "  WHERE x.instance_id = m.instance_id) "
                    f"WHERE m.completion_sent_at IS NULL AND e.status IN {_TERMINAL_SQL} "
                    "AND (m.completion_claimed_at IS NULL OR m.completion_claimed_at "
                    "     < UTC_TIMESTAMP(6) - INTERVAL %s MICROSECOND) "
                    "ORDER BY m.received_at LIMIT %s",
                    (int(claim_seconds * 1_000_000), limit),
                )
                rows = cur.fetchall()
            conn.commit()
        finally:
            conn.close()
        return [
            PendingCompletion(
                request_id=row["request_id"],
                event_type=row["event_type"],
                direction=Direction(row["direction"]),
                execution_id=row["execution_id"],
                status=ExecutionStatus(row["status"]),
                result=json.loads(row["result"]) if row["result"] is not None else None,
                error=row["error"],
            )
            for row in rows
        ]

    def claim_completion(self, request_id: str, claim_seconds: float) -> str | None:
        """A claim token when this caller may send the completion now, else None."""
        token = uuid.uuid4().hex
        conn = self._connect()
        try:
            with conn.cursor() as cur:
                claimed = cur.execute(
                    "UPDATE task_message SET completion_claim = %s, "
                    "completion_claimed_at = UTC_TIMESTAMP(6) "
                    "WHERE request_id = %s AND completion_sent_at IS NULL AND "
                    "(completion_claimed_at IS NULL OR completion_claimed_at "
                    " < UTC_TIMESTAMP(6) - INTERVAL %s MICROSECOND)",
                    (token, request_id, int(claim_seconds * 1_000_000)),
                )
            conn.commit()
            return token if claimed == 1 else None
        finally:
            conn.close()

    def mark_sent(self, request_id: str, token: str, pending: PendingCompletion,
                  message_id: str) -> bool:
        conn = self._connect()
        try:
            with conn.cursor() as cur:
                done = cur.execute(
                    "UPDATE task_message SET completion_sent_at = UTC_TIMESTAMP(6), "
                    "completion_execution_id = %s, completion_status = %s, "
                    "completion_message_id = %s WHERE request_id = %s AND completion_claim = %s",
                    (pending.execution_id, pending.status.value, message_id[:128], request_id,
                     token),
                )
            conn.commit()
            return done == 1
        finally:
            conn.close()

    def release_claim(self, request_id: str, token: str) -> None:
        conn = self._connect()
        try:
            with conn.cursor() as cur:
                cur.execute(
                    "UPDATE task_message SET completion_claim = NULL, "
                    "completion_claimed_at = NULL WHERE request_id = %s AND completion_claim = %s",
                    (request_id, token),
                )
            conn.commit()
        finally:
            conn.close()


class CompletionPublisher:
    """Sends the completion of every ended request once (see the module doc)."""

    def __init__(self, sqs: Any, ledger: MessageLedger, complete_queues: Mapping[Direction, str],
                 claim_seconds: float = COMPLETION_CLAIM_SECONDS):
        self.sqs = sqs
        self.ledger = ledger
        self.complete_queues = dict(complete_queues)
        self.claim_seconds = claim_seconds

    def publish_pending(self, limit: int = 50) -> int:
        """Send what is due; returns how many completions were sent."""
        sent = 0
        for pending in self.ledger.pending_completions(limit, self.claim_seconds):
            token = self.ledger.claim_completion(pending.request_id, self.claim_seconds)
            if token is None:
                continue  # another sender has it
            body = completion_body(pending.request_id, pending.event_type,
                                   pending.execution_id, pending.status, pending.result,
                                   pending.error)
            try:
                answer = self.sqs.send_message(
                    QueueUrl=self.complete_queues[pending.direction],
                    MessageBody=body,
                    MessageAttributes={
                        "status": _string_attribute(pending.status.value),
                        "executionId": {"DataType": "Number",
                                        "StringValue": str(pending.execution_id)},
                    },
                )
            except (ClientError, BotoCoreError) as exc:
                self.ledger.release_claim(pending.request_id, token)
                log.warning("completion of request %s not sent (%s); next poll retries",
                            pending.request_id, exc)
                continue
            self.ledger.mark_sent(pending.request_id, token, pending, answer["MessageId"])
            sent += 1
            log.info("completion of request %s (execution %s, %s) sent", pending.request_id,
                     pending.execution_id, pending.status)
        return sent


# -- the consumer ------------------------------------------------------------------------


@dataclass
class PollReport:
    received: int = 0
    executions_created: int = 0
    duplicates: int = 0
    dead_lettered: Counter = field(default_factory=Counter)  # by reason
    deferred: int = 0  # transient failures left on the queue for redelivery
    completions_sent: int = 0


class MessageConsumer:
    """Long-polls the request queues, turns requests into task executions, dead-letters
    what cannot be processed, and sends completions of ended requests.

    ``routes`` maps event types to tasks (tests inject their own). Queue arguments are
    URLs (``from_config`` resolves names)."""

    def __init__(
        self,
        sqs: Any,
        *,
        mariadb_url: str,
        redis_url: str,
        request_queues: Sequence[str],
        dead_letter_queue: str,
        complete_queues: Mapping[Direction, str],
        routes: Mapping[EventType, EventRoute] = DEFAULT_ROUTES,
        visibility_timeout: int = 60,
        max_receives: int = 5,
        wait_seconds: int = MAX_WAIT_SECONDS,
        batch_size: int = MAX_BATCH,
    ):
        if not request_queues:
            raise ValueError("no request queue to consume")
        if max_receives < 1:
            raise ValueError("max_receives must be >= 1")
        self.sqs = sqs
        self.request_queues = list(request_queues)
        self.dead_letter_queue = dead_letter_queue
        self.routes = dict(routes)
        self.visibility_timeout = int(visibility_timeout)
        self.max_receives = max_receives
        self.wait_seconds = max(0, min(MAX_WAIT_SECONDS, int(wait_seconds)))
        self.batch_size = max(1, min(MAX_BATCH, batch_size))
        self.ledger = MessageLedger(mariadb_url, redis_url)
        self.publisher = CompletionPublisher(sqs, self.ledger, complete_queues)
        self.totals = PollReport()

    @classmethod
    def from_config(cls, config: Mapping[str, Any], sqs: Any = None,
                    **overrides: Any) -> MessageConsumer:
        sqs = sqs or sqs_client_from_config(config)
        return cls(
            sqs,
            mariadb_url=config["mariadb_url"],
            redis_url=config["redis_url"],
            request_queues=[queue_url(sqs, config["sqs_create_request_queue"]),
                            queue_url(sqs, config["sqs_update_request_queue"])],
            dead_letter_queue=queue_url(sqs, config["sqs_dead_letter_queue"]),
            complete_queues={
                Direction.CREATE: queue_url(sqs, config["sqs_create_complete_queue"]),
                Direction.UPDATE: queue_url(sqs, config["sqs_update_complete_queue"]),
            },
            visibility_timeout=config["sqs_visibility_timeout"],
            max_receives=config["sqs_max_receives"],
            wait_seconds=config["sqs_wait_seconds"],
            **overrides,
        )

    def poll_once(self, wait_seconds: int | None = None) -> PollReport:
        """One receive per request queue (the long-poll wait shared between them), every
        message handled, then the due completions sent."""
        wait = self.wait_seconds if wait_seconds is None else wait_seconds
        per_queue = max(0, wait // len(self.request_queues)) if wait else 0
        if wait and per_queue == 0:
            per_queue = 1
        report = PollReport()
        for queue in self.request_queues:
            answer = self.sqs.receive_message(
                QueueUrl=queue,
                MaxNumberOfMessages=self.batch_size,
                WaitTimeSeconds=per_queue,
                VisibilityTimeout=self.visibility_timeout,
                AttributeNames=["ApproximateReceiveCount"],
                MessageAttributeNames=["All"],
            )
            for message in answer.get("Messages", []):
                report.received += 1
                self._handle(queue, message, report)
        try:
            report.completions_sent = self.publisher.publish_pending()
        except (pymysql.err.Error, OSError) as exc:
            # Completions stay in the outbox; the next poll sends them.
            log.warning("completions not sent this poll: %s", exc)
        self._add_to_totals(report)
        return report

    def _handle(self, queue: str, message: Mapping[str, Any], report: PollReport) -> None:
        receives = int(message.get("Attributes", {}).get("ApproximateReceiveCount", "1"))
        body = message.get("Body", "")
        try:
            request = parse_request(body)
            route = self.routes.get(request.event_type)
            if route is None:
                raise InvalidRequest("unknown_event_type",
                                     f"{request.event_type} is not handled by this consumer")
            recorded = self.ledger.record_request(request, route)
        except InvalidRequest as exc:
            self._dead_letter(queue, message, exc.reason, exc.detail, receives, report)
            return
        except (pymysql.err.Error, redis.exceptions.RedisError, OSError) as exc:
            # The stores are down: the message stays; SQS delivers it again.
            if receives >= self.max_receives:
                self._dead_letter(queue, message, "too_many_receives",
                                  f"{receives} deliveries; last error: {exc}", receives, report)
            else:
                report.deferred += 1
                log.warning("request message %s deferred (delivery %s of %s): %s",
                            message.get("MessageId"), receives, self.max_receives, exc)
            return
        if recorded.created:
            report.executions_created += 1
            log.info("request %s (%s) → execution %s", request.request_id,
                     request.event_type, recorded.execution_id)
        else:
            report.duplicates += 1
            log.info("request %s is a duplicate of execution %s; acknowledged",
                     request.request_id, recorded.execution_id)
        self._delete(queue, message)

    def _dead_letter(self, queue: str, message: Mapping[str, Any], reason: str, detail: str,
                     receives: int, report: PollReport) -> None:
        body = message.get("Body", "")
        wrapper = {
            "reason": reason,
            "detail": detail[:_MAX_REASON_CHARS],
            "sourceQueue": queue,
            "sourceMessageId": message.get("MessageId"),
            "receiveCount": receives,
            "deadLetteredAt": now_ms(),
            "body": body,
        }
        encoded = json.dumps(wrapper, ensure_ascii=False)
        if len(encoded.encode("utf-8")) > MAX_MESSAGE_BYTES - 4096:
            wrapper["body"] = body[: MAX_MESSAGE_BYTES // 8]
            wrapper["bodyTruncated"] = True
            encoded = json.dumps(wrapper, ensure_ascii=False)
        # Sent before the delete: a crash in between leaves a copy in both queues, never
        # in neither.
        self.sqs.send_message(
            QueueUrl=self.dead_letter_queue,
            MessageBody=encoded,
            MessageAttributes={
                "reason": _string_attribute(reason),
                "sourceQueue": _string_attribute(queue),
            },
        )
        self._delete(queue, message)
        report.dead_lettered[reason] += 1
        log.warning("request message %s dead-lettered: %s %s", message.get("MessageId"),
                    reason, detail[:200])

    def _delete(self, queue: str, message: Mapping[str, Any]) -> None:
        try:
            self.sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
        except ClientError as exc:
            # The receipt expired (handling outlived the visibility timeout): the message
            # comes back and is acknowledged then as a duplicate.
            log.warning("request message %s not deleted (%s); its redelivery is a duplicate",
                        message.get("MessageId"), exc)

    def _add_to_totals(self, report: PollReport) -> None:
        self.totals.received += report.received
        self.totals.executions_created += report.executions_created
        self.totals.duplicates += report.duplicates
        self.totals.dead_lettered.update(report.dead_lettered)
        self.totals.deferred += report.deferred
        self.totals.completions_sent += report.completions_sent

    def run(self, stop: threading.Event | None = None, error_backoff: float = 5.0) -> None:
        """Poll until ``stop`` is set; an SQS or store outage is logged and waited out."""
        stop = stop or threading.Event()
        while not stop.is_set():
            try:
                self.poll_once()
            except (ClientError, BotoCoreError, pymysql.err.Error,
                    redis.exceptions.RedisError, OSError) as exc:
                log.warning("message poll failed (%s); again in %gs", exc, error_backoff)
                stop.wait(error_backoff)


def _string_attribute(value: str) -> dict[str, str]:
    return {"DataType": "String", "StringValue": value or "-"}


def main() -> int:
    """``python -m shared.tasks.messages``: consume until SIGTERM/SIGINT."""
    from shared.config import load_config

    config = load_config()
    logging.basicConfig(level=config.log_level,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not config.sqs_enabled:
        log.info("SQS messages are off (TOONPICK_SQS_ENABLED=false); nothing to do")
        return 0
    if not config.redis_url:
        log.error("REDIS_URL is empty: requests cannot become task executions")
        return 2
    import_task_modules(parse_module_list(config.task_modules))
    reconcile_at_startup(config)
    consumer = MessageConsumer.from_config(config)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    log.info("consuming %s", ", ".join(consumer.request_queues))
    consumer.run(stop)
    return 0


if __name__ == "__main__":
    from shared.cli import run_command

    raise SystemExit(run_command("toonpick messages", main))
