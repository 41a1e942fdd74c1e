"""What a finished (or unfinished) crawl run did, from its summed stats, and whether
anything in it was lost.

One reading of a run record (``crawler.cluster.runs.get_run``) for everyone who reports
on runs: the crawl tasks' results (``run_summary``), whether a task or ``toonpick crawl``
succeeded (``run_problems``), and the summary ``toonpick crawl`` prints
(``format_run``).

A run is *complete* when it is ``done`` with no dead letters: every unit of work was
stored. Drops (``*/dropped/<reason>``) are the data's own fault (a malformed payload):
they are reported, never a failure. A dead letter is a request no node could finish:
the stores miss something the platform serves. A ``*/failed`` item (a store could not
take it: a bug, or a store still down when its node closed) is reported; in a cluster
run its lease was not acknowledged, so its request was crawled again (or, failing
again and again, dead-lettered), and a done run without dead letters lost nothing. In
a single-process crawl nothing crawls it again: there a failed item makes the run
incomplete.
"""

from __future__ import annotations

from typing import Any

# The stores' counters, in data-flow order (the pipelines' stats prefixes).
STORE_PREFIXES = {"raw": "raw/", "catalogue": "catalogue/", "images": "images/"}


def _numbers(stats: dict[str, Any]) -> dict[str, float]:
    return {k: v for k, v in stats.items() if isinstance(v, int | float)
            and not isinstance(v, bool)}


def _ints(stats: dict[str, float], match: Any) -> dict[str, int]:
    return {k: int(v) for k, v in sorted(stats.items()) if match(k)}


def _is_failed(key: str) -> bool:
    return key.endswith("/failed")


def _is_retries(key: str) -> bool:
    return key.endswith("/retries")


def store_counters(stats: dict[str, Any]) -> dict[str, dict[str, int]]:
    """Per store, its counters without the prefix (``{"raw": {"webtoon/inserted": 3}}``);
    drops, failures and retries are reported on their own."""
    numbers = _numbers(stats)
    out: dict[str, dict[str, int]] = {}
    for store, prefix in STORE_PREFIXES.items():
        out[store] = {k[len(prefix):]: int(v) for k, v in sorted(numbers.items())
                      if k.startswith(prefix) and "/dropped/" not in k
                      and not _is_failed(k) and not _is_retries(k)}
    return out


def run_summary(run: dict[str, Any] | None) -> dict[str, Any]:
    """What a run did, from its summed stats: stored titles/episodes per store, drops by
    reason, truncations, retries, failed items, dead letters, pauses, requests."""
    if not run:
        return {}
    stats = _numbers(run.get("stats", {}))

    def total(prefix: str) -> int:
        # Stored outcomes only (inserted, linked, updated, unchanged...): not the items
        # that waited for their parent, failed, were retried or dropped.
        return int(sum(v for k, v in stats.items() if k.startswith(prefix)
                       and not _is_failed(k) and not _is_retries(k)
                       and "/dropped/" not in k and not k.endswith("/waiting")))

    dropped = _ints(stats, lambda k: "/dropped/" in k)
    failed = _ints(stats, _is_failed)
    return {
        "run_id": run.get("run_id"),
        "status": run.get("status"),
        "titles_stored": total("catalogue/webtoon/"),
        "titles_new": int(stats.get("catalogue/webtoon/inserted", 0)
                          + stats.get("catalogue/webtoon/linked", 0)),
        "episodes_stored": total("catalogue/episode/"),
        "episodes_new": int(stats.get("catalogue/episode/inserted", 0)
                            + stats.get("catalogue/episode/linked", 0)),
        "images_stored": int(stats.get("images/stored", 0)),
        "stores": store_counters(stats),
        "dropped": dropped,
        "dropped_total": sum(dropped.values()),
        "truncated": _ints(stats, lambda k: k.startswith("validate/truncated/")),
        "retries": _ints(stats, _is_retries),
        "failed": failed,
        "failed_total": sum(failed.values()),
        "paused": _ints(stats, lambda k: k.startswith("node/paused")),
        "requests": int(stats.get("downloader/request_count", 0)),
        "responses": int(stats.get("downloader/response_count", 0)),
        "dead_lettered": int(run.get("queue", {}).get("dead", 0)),
        "seconds": (round(run["finished_at"] - run["started_at"], 2)
                    if run.get("finished_at") and run.get("started_at") else None),
    }


def run_problems(run: dict[str, Any] | None) -> list[str]:
    """Why the run is not complete (see the module doc); empty when it is."""
    if not run:
        return ["the run is not in Redis"]
    problems = []
    if run.get("status") != "done":
        problems.append(f"the run is {run.get('status')}, not done")
    dead = int(run.get("queue", {}).get("dead", 0))
    if dead:
        problems.append(f"{dead} dead-lettered request(s)")
    failed = _ints(_numbers(run.get("stats", {})), _is_failed)
    failed = {k: v for k, v in failed.items() if v > 0}
    if failed and run.get("single_process"):
        problems.append("items not stored: " + ", ".join(f"{k}={v}" for k, v in failed.items()))
    # A cluster run dead-letters such requests (counted above); one process can only say.
    gave_up = int(_numbers(run.get("stats", {})).get("retry/max_reached", 0))
    if gave_up and run.get("single_process"):
        problems.append(f"{gave_up} request(s) given up after their retries (the platform "
                        "did not answer)")
    return problems


def _pairs(counters: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in counters.items()) or "none"


def format_run(run: dict[str, Any] | None) -> str:
    """The readable summary ``toonpick crawl`` prints."""
    summary = run_summary(run)
    if not summary:
        return "run: not in Redis"
    lines = [f"run {summary['run_id']}: {summary['status']}"
             + (f" in {summary['seconds']} s" if summary["seconds"] is not None else "")
             + f", {summary['requests']} requests, {summary['responses']} responses"]
    for store, counters in summary["stores"].items():
        lines.append(f"  {store:<10} {_pairs(counters)}")
    lines.append(f"  dropped    {_pairs(summary['dropped'])}")
    lines.append(f"  truncated  {_pairs(summary['truncated'])}")
    lines.append(f"  retries    {_pairs(summary['retries'])}")
    lines.append(f"  failed     {_pairs(summary['failed'])}")
    lines.append(f"  dead       {summary['dead_lettered']} dead-lettered request(s)")
    lines.append(f"  paused     {_pairs(summary['paused'])}")
    problems = run_problems(run)
    lines.append("  complete: " + ("yes" if not problems else "NO - " + "; ".join(problems)))
    return "\n".join(lines)
