"""The request envelope parsed strictly, crawl params from it, and completion bodies."""

from __future__ import annotations

import json

import pytest

from shared.stores.sqs import MAX_MESSAGE_BYTES
from shared.tasks.messages import (
    DEFAULT_ROUTES,
    Direction,
    EventType,
    InvalidRequest,
    completion_body,
    completion_data,
    completion_text,
    crawl_params,
    parse_request,
)
from shared.tasks.types import ExecutionStatus, TaskType

REQUEST_ID = "0b6f1d1e-3c1a-4f5e-9a57-2b0c3d4e5f60"


def envelope(**changes):
    body = {"requestId": REQUEST_ID, "eventType": "CRAWL_WEBTOON_ALL", "data": [],
            "message": None, "requestTime": 1719900000000}
    body.update(changes)
    return {k: v for k, v in body.items() if v is not ...}


def test_a_valid_envelope_parses():
    request = parse_request(json.dumps(envelope(data=["NAVER"], message="please")))
    assert request.request_id == REQUEST_ID
    assert request.event_type is EventType.CRAWL_WEBTOON_ALL
    assert request.data == ["NAVER"] and request.message == "please"
    assert request.request_time == 1719900000000


def test_null_data_and_absent_message_are_accepted_and_extra_fields_ignored():
    request = parse_request(json.dumps(envelope(data=None, message=..., extra={"x": 1})))
    assert request.data == [] and request.message is None


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("{not json", "bad_json"),
        (b"\xff\xfe", "bad_json"),
        ("[1, 2]", "wrong_type:envelope"),
        (json.dumps(envelope(requestId=...)), "missing_field:requestId"),
        (json.dumps(envelope(eventType=...)), "missing_field:eventType"),
        (json.dumps(envelope(data=...)), "missing_field:data"),
        (json.dumps(envelope(requestTime=...)), "missing_field:requestTime"),
        (json.dumps(envelope(requestId=42)), "wrong_type:requestId"),
        (json.dumps(envelope(requestId="not-a-uuid")), "invalid_value:requestId"),
        (json.dumps(envelope(eventType=7)), "wrong_type:eventType"),
        (json.dumps(envelope(eventType="CRAWL_EVERYTHING")), "unknown_event_type"),
        (json.dumps(envelope(data={"platform": "NAVER"})), "wrong_type:data"),
        (json.dumps(envelope(message=["x"])), "wrong_type:message"),
        (json.dumps(envelope(requestTime="1719900000000")), "wrong_type:requestTime"),
        (json.dumps(envelope(requestTime=True)), "wrong_type:requestTime"),
        (json.dumps(envelope(requestTime=1.5)), "wrong_type:requestTime"),
        (json.dumps(envelope(requestTime=-1)), "invalid_value:requestTime"),
    ],
)
def test_bad_envelopes_say_why(body, reason):
    with pytest.raises(InvalidRequest) as caught:
        parse_request(body)
    assert caught.value.reason == reason


def test_crawl_params_carry_the_request_id_and_named_platforms():
    assert crawl_params(parse_request(json.dumps(envelope()))) == {"request_id": REQUEST_ID}
    request = parse_request(json.dumps(envelope(data=["kakao", {"platform": "NAVER"}, "KAKAO"])))
    assert crawl_params(request) == {"request_id": REQUEST_ID, "platforms": ["KAKAO", "NAVER"]}


@pytest.mark.parametrize("data", [["NETFLIX"], [3], [{"id": 1}]])
def test_crawl_params_refuse_what_is_not_a_platform(data):
    with pytest.raises(InvalidRequest) as caught:
        crawl_params(parse_request(json.dumps(envelope(data=data))))
    assert caught.value.reason == "invalid_value:data"


def test_event_types_route_to_the_original_task_types_and_queues():
    assert DEFAULT_ROUTES[EventType.CRAWL_WEBTOON_ALL].task_type == TaskType.WEBTOON_ALL_CRAWL
    assert DEFAULT_ROUTES[EventType.CRAWL_WEBTOON_NEW].task_type == TaskType.WEBTOON_NEW_CRAWL
    episode = DEFAULT_ROUTES[EventType.CRAWL_WEBTOON_EPISODE]
    assert episode.task_type == TaskType.WEBTOON_EPISODE_UPDATE
    assert episode.direction is Direction.UPDATE
    assert DEFAULT_ROUTES[EventType.CRAWL_WEBTOON_NEW].direction is Direction.CREATE


def test_completion_data_is_always_a_list():
    assert completion_data(None) == []
    assert completion_data([1, 2]) == [1, 2]
    assert completion_data({"NAVER": {"titles": 3}}) == [{"NAVER": {"titles": 3}}]


def test_completion_text_names_the_status_and_the_error_line():
    assert completion_text(ExecutionStatus.COMPLETED, None) == "COMPLETED"
    assert completion_text("STOPPED", None) == "STOPPED"
    error = "Traceback (most recent call last):\n  File 'x'\nRuntimeError: boom\n"
    assert completion_text(ExecutionStatus.FAILED, error) == "FAILED: RuntimeError: boom"


def test_a_completion_has_the_request_shape():
    body = json.loads(completion_body(REQUEST_ID, "CRAWL_WEBTOON_NEW", 7, "COMPLETED",
                                      {"titles": 2}, None, request_time=1719900000123))
    assert body == {"requestId": REQUEST_ID, "eventType": "CRAWL_WEBTOON_NEW",
                    "data": [{"titles": 2}], "message": "COMPLETED",
                    "requestTime": 1719900000123}
    # And it parses as a request would.
    assert parse_request(json.dumps(body)).request_id == REQUEST_ID


def test_a_result_too_big_for_sqs_is_left_out_and_pointed_to():
    body = completion_body(REQUEST_ID, "CRAWL_WEBTOON_ALL", 9, "COMPLETED",
                           ["x" * 1000] * 300, None)
    assert len(body.encode()) < MAX_MESSAGE_BYTES
    decoded = json.loads(body)
    assert decoded["data"] == [] and "execution #9" in decoded["message"]
