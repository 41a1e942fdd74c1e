import pytest

from shared.tasks.types import (
    ExecutionStatus,
    InvalidParams,
    RetryPolicy,
    TaskType,
    UnknownTaskType,
    check_json_params,
    get_task,
    params_hash,
    parse_module_list,
    register_task,
    unregister_task,
)


@pytest.fixture
def throwaway_type(unique_name):
    name = f"UNIT_{unique_name.upper()}"
    yield name
    unregister_task(name)


def _body(ctx, region: str, limit: int = 10):
    return None


def _other_body(ctx, region: str):
    return None


def test_retry_policy_delays_repeat_the_last_backoff():
    policy = RetryPolicy(max_retries=3, backoff=(1, 5))
    assert [policy.delay_before(a) for a in (1, 2, 3, 4)] == [0.0, 1.0, 5.0, 5.0]
    assert [policy.allows_retry_after(a) for a in (1, 3, 4)] == [True, True, False]
    assert RetryPolicy(max_retries=2).delay_before(2) == 0.0
    with pytest.raises(ValueError):
        RetryPolicy(max_retries=-1)
    with pytest.raises(ValueError):
        RetryPolicy(max_retries=1, backoff=(-1,))


def test_params_hash_ignores_key_order_but_not_values():
    assert params_hash({"a": 1, "b": [1, 2]}) == params_hash({"b": [1, 2], "a": 1})
    assert params_hash({"a": 1}) != params_hash({"a": "1"})
    assert len(params_hash({})) == 64


def test_params_must_be_a_small_json_object():
    assert check_json_params(None) == {}
    assert check_json_params({"when": "2024-01-01", "n": (1, 2)}) == {
        "when": "2024-01-01", "n": [1, 2]}
    with pytest.raises(InvalidParams, match="JSON object"):
        check_json_params(["a"])
    with pytest.raises(InvalidParams, match="serialisable"):
        check_json_params({"obj": object()})
    with pytest.raises(InvalidParams, match="identifiers"):
        check_json_params({"not a name": 1})
    with pytest.raises(InvalidParams, match="small"):
        check_json_params({"blob": "x" * 20_000})


def test_registered_type_checks_params_against_its_body(throwaway_type):
    definition = register_task(throwaway_type, _body, identifying=("region",))
    assert get_task(throwaway_type) is definition
    assert definition.check_params({"region": "kr"}) == {"region": "kr"}
    with pytest.raises(InvalidParams, match="unexpected keyword"):
        definition.check_params({"region": "kr", "colour": "red"})
    with pytest.raises(InvalidParams, match="missing"):
        definition.check_params({"limit": 3})
    # Only identifying params make the instance: limit does not.
    assert definition.identifying_params({"region": "kr", "limit": 3}) == {"region": "kr"}


def test_all_params_identify_unless_a_subset_is_named(throwaway_type):
    definition = register_task(throwaway_type, _body)
    assert definition.identifying_params({"region": "kr", "limit": 3}) == {
        "region": "kr", "limit": 3}


def test_registering_another_body_under_a_taken_name_is_refused(throwaway_type):
    register_task(throwaway_type, _body)
    register_task(throwaway_type, _body)  # importing a module twice is harmless
    with pytest.raises(ValueError, match="already registered"):
        register_task(throwaway_type, _other_body)


def test_unknown_type_names_the_missing_registration():
    with pytest.raises(UnknownTaskType, match="task modules"):
        get_task("NO_SUCH_TASK_TYPE")


def test_original_names_are_kept():
    assert TaskType.WEBTOON_EPISODE_UPDATE == "WEBTOON_EPISODE_UPDATE"
    assert {"WEBTOON_ALL_CRAWL", "RECOMMENDATION_UPDATE", "CACHE_REFRESH"} <= set(TaskType)


def test_status_groups():
    assert ExecutionStatus.QUEUED.is_active and not ExecutionStatus.QUEUED.is_running
    assert ExecutionStatus.STOPPING.is_running
    assert not ExecutionStatus.ABANDONED.is_active


def test_module_lists_parse_from_a_setting():
    assert parse_module_list(" a.b, ,c.d ") == ("a.b", "c.d")
    assert parse_module_list(None) == ()
    assert parse_module_list(["x", ""]) == ("x",)


def test_a_worker_without_queues_serves_every_registered_queue():
    from shared.tasks.types import DEFAULT_QUEUE, register_task, registered_queues

    def body(ctx):
        return None

    register_task("TEST_QUEUE_B", body, queue="zeta")
    register_task("TEST_QUEUE_A", body, queue="alpha")
    try:
        queues = registered_queues()
        assert queues[0] == DEFAULT_QUEUE
        assert queues.index("alpha") < queues.index("zeta")
    finally:
        unregister_task("TEST_QUEUE_A")
        unregister_task("TEST_QUEUE_B")
    assert "alpha" not in registered_queues()
