import pytest

from crawler.tasks import slot_day
from shared.tasks.types import InvalidParams


def test_a_scheduled_episode_update_judges_its_slot_day_in_seoul(monkeypatch):
    monkeypatch.delenv("TOONPICK_CRAWL_TODAY", raising=False)
    # 16:00 UTC is already the next day (01:00) in Asia/Seoul.
    assert slot_day("2026-11-25T16:00:00+00:00") == "2026-11-26"
    assert slot_day("2026-11-25T14:59:00+00:00") == "2026-11-25"
    assert slot_day(None) is None
    with pytest.raises(InvalidParams, match="no UTC offset"):
        slot_day("2026-11-25T16:00:00")
    with pytest.raises(InvalidParams, match="not an ISO"):
        slot_day("yesterday")
    monkeypatch.setenv("TOONPICK_CRAWL_TODAY", "2026-11-02")
    assert slot_day("2026-11-25T16:00:00+00:00") is None  # the override wins
