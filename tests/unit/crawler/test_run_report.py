from crawler.run_report import format_run, run_problems, run_summary


def _run(status="done", dead=0, **stats):
    return {"run_id": "r1", "status": status, "started_at": 10.0, "finished_at": 12.5,
            "queue": {"dead": dead}, "stats": {
                "catalogue/webtoon/inserted": 3, "catalogue/episode/inserted": 9,
                "catalogue/episode/waiting": 2, "raw/webtoon/inserted": 3,
                "raw/episode/inserted": 9, "images/stored": 3,
                "downloader/request_count": 20, "downloader/response_count": 19,
                "finish_reason": "finished", **stats}}


def test_a_done_run_with_only_drops_is_complete_and_its_drops_are_reported():
    run = _run(**{"validate/dropped/bad_json": 2, "validate/truncated/title": 1,
                  "raw/retries": 4, "node/paused": 1, "node/paused_seconds": 3.5})
    assert run_problems(run) == []
    summary = run_summary(run)
    assert summary["titles_stored"] == 3 and summary["episodes_stored"] == 9  # not waiting
    assert summary["dropped"] == {"validate/dropped/bad_json": 2}
    assert summary["truncated"] == {"validate/truncated/title": 1}
    assert summary["retries"] == {"raw/retries": 4}
    assert summary["paused"] == {"node/paused": 1, "node/paused_seconds": 3}
    assert summary["stores"]["raw"] == {"episode/inserted": 9, "webtoon/inserted": 3}
    assert summary["seconds"] == 2.5
    text = format_run(run)
    assert "validate/dropped/bad_json 2" in text and "complete: yes" in text


def test_unfinished_runs_dead_letters_and_failed_items_are_problems():
    assert run_problems(_run(status="running")) == ["the run is running, not done"]
    assert run_problems(_run(status="interrupted")) == ["the run is interrupted, not done"]
    assert run_problems(_run(dead=2)) == ["2 dead-lettered request(s)"]
    failed = _run(**{"catalogue/episode/failed": 15, "images/failed": 0})
    # A cluster run crawled the failed items' requests again (their leases were never
    # acked): done without dead letters, it lost nothing; the failures are reported.
    assert run_problems(failed) == []
    assert run_summary(failed)["failed_total"] == 15
    # A single process crawls nothing again: there the items are lost.
    single = {**failed, "single_process": True}
    assert run_problems(single) == ["items not stored: catalogue/episode/failed=15"]
    assert "complete: NO - items not stored" in format_run(single)
    assert run_problems(None) == ["the run is not in Redis"]
