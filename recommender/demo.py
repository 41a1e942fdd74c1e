"""The recommender's part of ``toonpick demo``, after the crawl filled the catalogue.

Seeds members and their activity over the crawled webtoons, queues
``RECOMMENDATION_UPDATE`` (train, evaluate, store, serve, then every member's top-N,
similar webtoons and recommend groups) and runs a worker for it, then prints the
model's offline metrics and a few members' recommendations as served: a heavy reader,
a light one, one who just did something (their list refreshed in real time, without
retraining) and a member who joined after training.
"""

from __future__ import annotations

import os
import time
import unicodedata
import uuid
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from typing import Any

from recommender.service import RecommendationService, Served
from recommender.serving import RecommendationCache
from recommender.synthetic import add_interaction, seed_members
from shared.config import Config, load_config, mask_url
from shared.stores.mariadb import connect

METRIC_ROWS = ("hybrid", "als", "popularity")


def _titles(conn: Any, webtoon_ids: list[int]) -> dict[int, tuple[str, str]]:
    """webtoon id -> (title, its genres joined)."""
    if not webtoon_ids:
        return {}
    with conn.cursor() as cur:
        cur.execute(
            "SELECT w.id, w.title, COALESCE(GROUP_CONCAT(g.name ORDER BY g.name SEPARATOR '/'),"
            " '-') FROM webtoon w LEFT JOIN webtoon_genre wg ON wg.webtoon_id = w.id"
            " LEFT JOIN genre g ON g.id = wg.genre_id WHERE w.id IN ("
            + ",".join(["%s"] * len(webtoon_ids)) + ") GROUP BY w.id, w.title", webtoon_ids)
        return {int(i): (t, g) for i, t, g in cur.fetchall()}


def _taste(conn: Any, member_id: int) -> tuple[int, str]:
    """(titles the member engaged with, their three most read genres)."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT g.name FROM member_webtoon_interaction i"
            " JOIN webtoon_genre wg ON wg.webtoon_id = i.webtoon_id"
            " JOIN genre g ON g.id = wg.genre_id"
            " WHERE i.member_id = %s AND i.status <> 'DROPPED'", (member_id,))
        genres = Counter(row[0] for row in cur.fetchall())
        cur.execute("SELECT COUNT(*) FROM member_webtoon_interaction WHERE member_id = %s",
                    (member_id,))
        count = int(cur.fetchone()[0])
    return count, ", ".join(f"{g} {n}" for g, n in genres.most_common(3)) or "-"


def _pad(text: str, width: int) -> str:
    """``text`` cut or padded to ``width`` terminal columns (Hangul takes two)."""
    out, used = [], 0
    for char in text:
        size = 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1
        if used + size > width:
            break
        out.append(char)
        used += size
    return "".join(out) + " " * (width - used)


def _print_served(conn: Any, label: str, served: Served, extra: str = "") -> None:
    count, taste = _taste(conn, served.member_id)
    print(f"\n[demo] member #{served.member_id} ({label}): {count} titles, tastes {taste}{extra}")
    print(f"         answered by {served.source}, model {served.version}"
          + (", from the cache" if served.cached else ""))
    titles = _titles(conn, served.webtoon_ids)
    for rank, (webtoon_id, score) in enumerate(zip(served.webtoon_ids, served.scores,
                                                   strict=True), 1):
        title, genres = titles.get(webtoon_id, ("?", "-"))
        print(f"         {rank:>2}. {_pad(title, 30)} {_pad(genres, 16)} {score:7.3f}")


def _print_metrics(metrics: dict[str, Any]) -> None:
    split = metrics.get("split", {})
    print(f"[demo] offline evaluation: per-member random {1 - split.get('test_fraction', 0.2):.0%}"
          f"/{split.get('test_fraction', 0.2):.0%} split (seed {split.get('seed')}), "
          f"{split.get('test_members')} members with held-out titles")
    print(f"         {'model':<11} {'P@10':>7} {'MAP@10':>7} {'NDCG@10':>8} {'recall@10':>10}"
          f" {'coverage':>9}")
    for name in METRIC_ROWS:
        m = metrics.get(name)
        if m:
            print(f"         {name:<11} {m['precision']:7.4f} {m['map']:7.4f} {m['ndcg']:8.4f}"
                  f" {m['recall']:10.4f} {m['coverage']:9.3f}")


def _new_member(conn: Any) -> int:
    stamp = uuid.uuid4()
    with conn.cursor() as cur:
        cur.execute("INSERT INTO member (uid, user_name, email, nick_name) VALUES (%s, %s, %s, %s)",
                    (str(stamp), f"demo_{stamp.hex[:12]}", f"{stamp.hex[:12]}@example.com",
                     "새 회원"))
        member_id = int(cur.lastrowid)
    conn.commit()
    return member_id


def clear_model_versions(config: Config) -> int:
    """Delete the stored model versions under the models store (the demo's fresh start:
    the MariaDB rows that named them are gone)."""
    from shared.stores.s3 import parse_s3_url, s3_client_from_config

    bucket, prefix = parse_s3_url(config.recommender_models_store)
    client = s3_client_from_config(config)
    deleted = 0
    try:
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        for page in pages:
            keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
            if keys:
                client.delete_objects(Bucket=bucket, Delete={"Objects": keys})
                deleted += len(keys)
    except client.exceptions.NoSuchBucket:
        return 0
    return deleted


def run_recommender_demo(redis_url: str, log_dir: Path, members: int = 2000,
                         seed: int = 7, fresh: bool = True) -> bool:
    from shared.tasks.repository import TaskRepository
    from shared.tasks.runner import enqueue_task
    from shared.tasks.types import import_task_modules, parse_module_list
    from shared.tasks.worker import run_burst_worker

    config = load_config(environ={**os.environ, "REDIS_URL": redis_url})
    if fresh and config.profile != "prod":
        clear_model_versions(config)
        # Member ids restart with the emptied database: old lists would be theirs.
        RecommendationCache(redis_url, 1).clear()
    print(f"\n[demo] recommender: seeding {members} members (seed {seed}) and their activity "
          "over the crawled catalogue")
    summary = seed_members(config.mariadb_url, members, seed)
    print(f"         {summary.inserted} members inserted ({summary.skipped} already there), "
          f"{summary.interactions} interactions, {summary.views} episode views, "
          f"{summary.likes} likes, {summary.bookmarks} bookmarks, {summary.reviews} reviews, "
          f"{summary.dropped} dropped, {summary.cold_start} cold-start members, "
          f"{summary.seconds:.1f}s")

    import_task_modules(parse_module_list(config.task_modules))
    execution_id = enqueue_task(config.mariadb_url, redis_url, "RECOMMENDATION_UPDATE",
                                {"train": True}, "api", force=True)
    started = time.monotonic()
    run_burst_worker({**os.environ, "REDIS_URL": redis_url},
                     log_dir / "demo-recommender-worker.log", timeout=1800)
    repository = TaskRepository(config.mariadb_url)
    try:
        view = repository.get(execution_id).as_dict()
    finally:
        repository.close()
    result = view.get("result") or {}
    print(f"[demo] execution #{view['id']} {view['task_type']}: {view['status']}, progress "
          f"{view['progress']}%, {time.monotonic() - started:.1f}s; model "
          f"{result.get('model_version')}, {result.get('members')} members' lists, "
          f"{result.get('similar_webtoons')} similar-webtoon rows, groups "
          f"{len(result.get('groups') or {})}")
    if view["status"] != "COMPLETED":
        # The recorded error is an exception's text, which may quote a store URL.
        print(f"[demo] the recommender job did not complete: {mask_url(str(view.get('error')))}; "
              f"worker log in {log_dir / 'demo-recommender-worker.log'}")
        return False
    _print_metrics(result.get("metrics") or {})

    service = RecommendationService(config)
    conn = connect(config.mariadb_url)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT member_id, COUNT(*) AS n FROM member_webtoon_interaction"
                " WHERE member_id IN (" + ",".join(["%s"] * len(summary.member_ids)) + ")"
                " GROUP BY member_id ORDER BY n DESC, member_id", summary.member_ids)
            counts = cur.fetchall()
        # A regular reader (the 90th percentile: the heaviest have read most of a small
        # catalogue, their own tastes included) and a light one.
        heavy = int(counts[len(counts) // 10][0])
        light = next((int(m) for m, n in counts if 3 <= n <= 5), int(counts[-1][0]))
        _print_served(conn, "regular reader", service.serve(heavy, 5))
        _print_served(conn, "light reader", service.serve(light, 5))

        # Real time: the light reader likes and reads a title outside their list.
        before = service.serve(light, 10)
        with conn.cursor() as cur:
            cur.execute("SELECT webtoon_id FROM member_webtoon_recommendation"
                        " WHERE member_id = %s", (heavy,))
            candidates = [int(r[0]) for r in cur.fetchall()]
        conn.commit()
        target = next((w for w in candidates if w not in before.webtoon_ids), candidates[0])
        add_interaction(config.mariadb_url, light, target, liked=True, bookmarked=True,
                        viewed_episodes=5, rating=5.0)
        timings = service.refresh_members([light])
        after = service.serve(light, 5)
        changed = len(set(after.webtoon_ids) - set(before.webtoon_ids[:5]))
        title = _titles(conn, [target]).get(target, ("?", "-"))
        _print_served(conn, "just liked and read 5 episodes of "
                      f"{title[0][:30]!r}", after,
                      f"; refreshed by fold-in in {timings[light]:.1f} ms, "
                      f"{changed} new titles in the top 5, no retraining")

        newcomer = _new_member(conn)
        _print_served(conn, "joined after training, no activity yet",
                      service.serve(newcomer, 5))
    finally:
        conn.close()
        service.close()
    print(f"\n[demo] stored: {asdict(summary)['inserted']} members' activity in MariaDB, "
          "each member's top-N in member_webtoon_recommendation and the Redis cache, "
          "the model version in S3 (toonpick recommender versions)")
    return True
