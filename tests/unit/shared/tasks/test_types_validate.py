"""A task type's ``validate`` hook: its values are checked when the task is queued."""

import pytest

from shared.tasks.types import InvalidParams, get_task, register_task, unregister_task


@pytest.fixture
def throwaway_type(unique_name):
    name = f"UNIT_{unique_name.upper()}"
    yield name
    unregister_task(name)


def _body(ctx, region: str, limit: int = 10):
    return None


def _check_region(params):
    if params["region"] not in ("kr", "jp"):
        raise InvalidParams(f"unknown region {params['region']!r}")


def test_validate_refuses_values_the_body_would_refuse(throwaway_type):
    seen = []

    def validate(params):
        seen.append(params)
        _check_region(params)

    definition = register_task(throwaway_type, _body, validate=validate)
    assert get_task(throwaway_type).validate is validate
    assert definition.check_params({"region": "kr", "limit": 3}) == {"region": "kr", "limit": 3}
    # It sees the params as a worker would: after the JSON round trip.
    assert seen == [{"region": "kr", "limit": 3}]
    with pytest.raises(InvalidParams, match=rf"^{throwaway_type}: unknown region 'us'$"):
        definition.check_params({"region": "us"})


def test_the_signature_is_checked_before_validate(throwaway_type):
    definition = register_task(throwaway_type, _body, validate=_check_region)
    # A missing param is the signature's error, not a KeyError from the validator.
    with pytest.raises(InvalidParams, match="missing"):
        definition.check_params({"limit": 3})


def test_validate_must_be_callable(throwaway_type):
    with pytest.raises(TypeError, match="not callable"):
        register_task(throwaway_type, _body, validate="region in (kr, jp)")
