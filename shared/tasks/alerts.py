"""Job-result alerts: a Slack-compatible webhook (``{"text": ...}``) told when a task
execution ends, in the original system's words:

    [알림] 작업 성공: WEBTOON_ALL_CRAWL (#42)
    [긴급] 작업 실패: WEBTOON_ALL_CRAWL (#43)
    오류: RuntimeError: platform answered 503

Failures (FAILED, and ABANDONED: the worker died) always alert when a webhook is set;
successes only with ``TOONPICK_ALERT_ON_SUCCESS``; STOPPED never (an operator asked).
An alert is best effort: a webhook that is down, slow or refuses is logged and counted
(``stats``) and never changes the outcome of the task.
"""

from __future__ import annotations

import http.client
import json
import logging
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from shared.config import mask_url, redact, setting
from shared.tasks.types import ExecutionStatus

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_SECONDS = 5.0
_MAX_ERROR_CHARS = 1500


@dataclass(frozen=True)
class AlertSettings:
    webhook_url: str = ""
    on_success: bool = False
    timeout: float = DEFAULT_TIMEOUT_SECONDS

    @classmethod
    def from_config(cls, config: Any) -> AlertSettings:
        return cls(webhook_url=config["alert_webhook_url"],
                   on_success=bool(config["alert_on_success"]))


class AlertStats:
    """What this process's alerts did (a worker logs them; tests read them)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.sent = 0
        self.failed = 0

    def count(self, sent: bool) -> None:
        with self._lock:
            if sent:
                self.sent += 1
            else:
                self.failed += 1


stats = AlertStats()
# Set by tests or a process that wires alerts itself; None: read shared.config each time
# (a forked work horse sees its worker's environment).
_configured: AlertSettings | None = None


def configure_alerts(settings: AlertSettings | None) -> None:
    global _configured
    _configured = settings


def _settings() -> AlertSettings:
    if _configured is not None:
        return _configured
    from shared.config import load_config

    return AlertSettings.from_config(load_config())


def error_summary(error: str | None) -> str:
    """The line of a traceback that says what went wrong (its last), clipped, with the
    passwords of any URL it quotes masked: the alert leaves for a chat channel."""
    if not error:
        return "(no error text)"
    lines = [line.rstrip() for line in error.strip().splitlines() if line.strip()]
    summary = lines[-1].strip() if lines else error.strip()
    return mask_url(summary)[:_MAX_ERROR_CHARS]


def alert_text(
    status: ExecutionStatus | str,
    task_type: str,
    execution_id: int,
    error: str | None = None,
    retry_execution_id: int | None = None,
    on_success: bool = False,
) -> str | None:
    """The alert for an execution that ended in ``status``; None when it is not alerted."""
    status = ExecutionStatus(status)
    if status is ExecutionStatus.COMPLETED:
        return f"[알림] 작업 성공: {task_type} (#{execution_id})" if on_success else None
    if status not in (ExecutionStatus.FAILED, ExecutionStatus.ABANDONED):
        return None
    text = f"[긴급] 작업 실패: {task_type} (#{execution_id})\n오류: {error_summary(error)}"
    if retry_execution_id is not None:
        text += f"\n재시도: #{retry_execution_id}"
    return text


class AlertDeliveryError(Exception):
    pass


def post_webhook(url: str, text: str, timeout: float = DEFAULT_TIMEOUT_SECONDS) -> None:
    """POST ``{"text": text}`` as JSON; raises ``AlertDeliveryError`` unless answered 2xx."""
    try:
        request = urllib.request.Request(
            url,
            data=json.dumps({"text": text}, ensure_ascii=False).encode("utf-8"),
            headers={"Content-Type": "application/json; charset=utf-8"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            answer.read()
    except urllib.error.HTTPError as exc:
        raise AlertDeliveryError(f"webhook answered {exc.code}") from None
    except urllib.error.URLError as exc:
        # The reason is the socket's (refused, timed out, unknown host), not the URL.
        raise AlertDeliveryError(_without_url(f"webhook unreachable: {exc.reason}", url)) from None
    except OSError as exc:
        raise AlertDeliveryError(_without_url(f"webhook unreachable: {exc}", url)) from None
    except (ValueError, http.client.InvalidURL) as exc:
        # These quote the URL ("unknown url type: '...'") or its path, token and all.
        raise AlertDeliveryError(f"webhook URL {shown_webhook(url)} is not usable "
                                 f"({type(exc).__name__})") from None
    except http.client.HTTPException as exc:
        raise AlertDeliveryError(f"webhook gave no HTTP answer ({type(exc).__name__})") from None


def shown_webhook(url: str) -> str:
    """The webhook URL as a log line may show it: a Slack-style URL's path is its token."""
    return str(redact(setting("alert_webhook_url"), url))


def _without_url(text: str, url: str) -> str:
    return text.replace(url, shown_webhook(url)) if url else text


def announce_execution_end(
    execution_id: int,
    task_type: str,
    status: ExecutionStatus | str,
    error: str | None = None,
    retry_execution_id: int | None = None,
    settings: AlertSettings | None = None,
) -> bool:
    """Alert on an ended execution when the settings say so. Never raises; True when an
    alert was delivered."""
    try:
        settings = settings or _settings()
        if not settings.webhook_url:
            return False
        text = alert_text(status, task_type, execution_id, error, retry_execution_id,
                          settings.on_success)
        if text is None:
            return False
        post_webhook(settings.webhook_url, text, settings.timeout)
    except Exception as exc:  # an alert must never break the task it reports
        stats.count(sent=False)
        text = str(exc)
        if settings is not None:
            text = _without_url(text, settings.webhook_url)
        log.warning("alert for execution %s (%s) not delivered: %s", execution_id, status, text)
        return False
    stats.count(sent=True)
    return True
