"""Parameters of the recommender's task types."""

from __future__ import annotations

from datetime import datetime

import pytest

from recommender.tasks import parse_since
from shared.tasks.types import InvalidParams


def test_since_is_read_as_utc_whatever_offset_it_carries():
    assert parse_since("2026-11-26T09:00+09:00") == datetime(2026, 11, 26, 0, 0)
    assert parse_since("2026-11-26T09:00") == datetime(2026, 11, 26, 9, 0)
    with pytest.raises(InvalidParams, match="not an ISO date-time"):
        parse_since("yesterday")
