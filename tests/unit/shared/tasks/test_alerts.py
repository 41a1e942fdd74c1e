"""Alert texts in the original's words, and which outcomes alert."""

from __future__ import annotations

import pytest

from shared.tasks import alerts
from shared.tasks.alerts import AlertSettings, alert_text, announce_execution_end, error_summary
from shared.tasks.types import ExecutionStatus


def test_failure_text_names_the_task_the_execution_and_the_error():
    error = "Traceback (most recent call last):\n  File 'x', line 1\nValueError: bad page\n"
    assert alert_text(ExecutionStatus.FAILED, "WEBTOON_ALL_CRAWL", 43, error) == (
        "[긴급] 작업 실패: WEBTOON_ALL_CRAWL (#43)\n오류: ValueError: bad page")


def test_failure_text_mentions_the_retry():
    text = alert_text("FAILED", "WEBTOON_NEW_CRAWL", 5, "boom", retry_execution_id=6)
    assert text == "[긴급] 작업 실패: WEBTOON_NEW_CRAWL (#5)\n오류: boom\n재시도: #6"


def test_an_abandoned_execution_alerts_as_a_failure():
    text = alert_text("ABANDONED", "DATA_CLEANUP", 9, "heartbeat silent for more than 60s")
    assert text.startswith("[긴급] 작업 실패: DATA_CLEANUP (#9)\n오류: heartbeat silent")


def test_success_alerts_only_when_asked():
    assert alert_text("COMPLETED", "RANKING_UPDATE", 1) is None
    assert alert_text("COMPLETED", "RANKING_UPDATE", 1, on_success=True) == (
        "[알림] 작업 성공: RANKING_UPDATE (#1)")


@pytest.mark.parametrize("status", ["STOPPED", "QUEUED", "STARTED"])
def test_other_outcomes_do_not_alert(status):
    assert alert_text(status, "X", 1, "e", on_success=True) is None


def test_error_summary_is_clipped_and_never_empty():
    assert error_summary(None) == "(no error text)"
    assert len(error_summary("E: " + "x" * 5000)) == 1500


def test_without_a_webhook_nothing_is_sent_or_counted():
    before = (alerts.stats.sent, alerts.stats.failed)
    assert announce_execution_end(1, "X", "FAILED", "boom", settings=AlertSettings()) is False
    assert (alerts.stats.sent, alerts.stats.failed) == before


def test_a_broken_webhook_url_is_counted_not_raised():
    before = alerts.stats.failed
    settings = AlertSettings(webhook_url="not a url at all")
    assert announce_execution_end(1, "X", "FAILED", "boom", settings=settings) is False
    assert alerts.stats.failed == before + 1


# A Slack-style webhook URL's path is its token: no error or log line may carry it.
WEBHOOK_TOKEN = "HookTok-a1b2c3d4"


def _closed_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize("url", [
    f"hooks.example/services/T000/B000/{WEBHOOK_TOKEN}",  # no scheme: urllib quotes it all
    f"https://hooks.example/services/T000/{WEBHOOK_TOKEN} x",  # a space: http.client quotes it
    f"htps://hooks.example/services/T000/B000/{WEBHOOK_TOKEN}",
])
def test_an_unusable_webhook_url_is_not_quoted_in_the_error(url):
    with pytest.raises(alerts.AlertDeliveryError) as error:
        alerts.post_webhook(url, "text", timeout=2)
    assert WEBHOOK_TOKEN not in str(error.value)
    assert "webhook" in str(error.value)


def test_an_undelivered_alert_is_logged_without_the_webhook_token(caplog):
    url = f"http://127.0.0.1:{_closed_port()}/services/T000/B000/{WEBHOOK_TOKEN}"
    with caplog.at_level("WARNING", logger="shared.tasks.alerts"):
        assert announce_execution_end(
            7, "X", "FAILED", "boom", settings=AlertSettings(webhook_url=url, timeout=2)) is False
    assert "not delivered: webhook unreachable" in caplog.text
    assert WEBHOOK_TOKEN not in caplog.text


def test_an_alert_never_quotes_a_store_password():
    error = ("Traceback (most recent call last):\n  File 'x', line 1\n"
             "OperationalError: mysql://toonpick:DbPw-77f1@db.internal/toonpick unreachable")
    text = alert_text("FAILED", "WEBTOON_ALL_CRAWL", 3, error)
    assert "DbPw-77f1" not in text
    assert "mysql://toonpick:***@db.internal/toonpick unreachable" in text
