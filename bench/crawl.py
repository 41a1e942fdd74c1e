"""Crawl throughput and memory: all pipelines against the same crawl with pipelines off.

    .venv/bin/python bench/crawl.py                 # 5,000 titles, 20 episodes each
    .venv/bin/python bench/crawl.py --titles 500    # quick look

Both crawls run in this same invocation against one simulator process serving
the same seeded catalogue, one spider process per platform, platforms one after
another. The baseline (pipelines off) measures what the spiders and the
simulator cost on this machine; the ratio says what the stores add. Target:
items/s with pipelines ≥ 0.8 × without. Needs the local services
(``deploy/local/services.sh up``); writes into throwaway databases and a
throwaway bucket, dropped at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from crawler.launcher import CrawlRequest, start_nodes, wait_all  # noqa: E402
from shared.config import load_config  # noqa: E402
from shared.schema.migrate import migrate  # noqa: E402
from shared.stores.mariadb import drop_database, with_database  # noqa: E402
from shared.stores.mongo import mongo_database  # noqa: E402
from shared.stores.s3 import ensure_bucket, s3_client_from_config  # noqa: E402

SPIDERS = ("naver", "kakao", "kakaopage")
# Store servers sharing this machine's cores in dev/test (in production they run elsewhere).
STORE_PROCESSES = {"secantus": "secantusd-py", "moto": "moto_server", "mariadb": "mariadbd"}


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) a live process has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def store_cpu() -> dict[str, float]:
    found = subprocess.run(["ps", "-eo", "pid=,args="], capture_output=True, text=True).stdout
    totals = dict.fromkeys(STORE_PROCESSES, 0.0)
    for line in found.splitlines():
        pid, _, args = line.strip().partition(" ")
        for name, marker in STORE_PROCESSES.items():
            if marker in args and "ps -eo" not in args:
                try:
                    totals[name] += process_cpu(int(pid))
                except (FileNotFoundError, ProcessLookupError):
                    pass
    return totals


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_simulator(titles: int, episodes: int, seed: int) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "crawler.simulator", "--port", str(port), "--seed", str(seed),
         "--titles", str(titles), "--episodes", str(episodes)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    line = proc.stdout.readline()
    if "listening" not in line:
        proc.kill()
        raise RuntimeError(f"simulator did not start: {line}")
    return proc, f"http://127.0.0.1:{port}"


def crawl_once(label: str, env: dict[str, str], workdir: Path,
               pipelines: dict[str, int] | None, simulator_pid: int) -> dict[str, Any]:
    totals = {"items": 0, "seconds": 0.0, "peak_rss_mb": 0.0, "responses": 0}
    children_before = os.times()
    simulator_before = process_cpu(simulator_pid)
    stores_before = store_cpu()
    for spider in SPIDERS:
        stats_file = workdir / f"{label}-{spider}.json"
        settings = {"TOONPICK_STATS_FILE": str(stats_file)}
        if pipelines is not None:
            settings["ITEM_PIPELINES"] = json.dumps(pipelines)
        request = CrawlRequest(spider)
        started = time.monotonic()
        nodes = start_nodes(request, env=env, log_dir=workdir / "logs", settings=settings)
        codes = wait_all(nodes, timeout=3600)
        elapsed = time.monotonic() - started
        if codes != [0]:
            raise RuntimeError(f"{label} {spider}: exit {codes}, see {nodes[0].log_path}")
        stats = json.loads(stats_file.read_text())
        totals["items"] += int(stats.get("item_scraped_count", 0))
        totals["responses"] += int(stats.get("downloader/response_count", 0))
        totals["seconds"] += elapsed
        totals["peak_rss_mb"] = max(totals["peak_rss_mb"],
                                    stats.get("memusage/max", 0) / 1024 / 1024)
        print(f"  {label:<13} {spider:<10} {stats.get('item_scraped_count', 0):>8} items "
              f"{elapsed:>7.1f} s  peak {stats.get('memusage/max', 0) / 1024 / 1024:>6.0f} MB",
              flush=True)
    totals["items_per_s"] = totals["items"] / totals["seconds"]
    children = os.times()
    totals["cpu"] = {
        "crawler": (children.children_user + children.children_system)
        - (children_before.children_user + children_before.children_system),
        "simulator": process_cpu(simulator_pid) - simulator_before,
        **{k: v - stores_before[k] for k, v in store_cpu().items()},
    }
    return totals


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--titles", type=int, default=5000)
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--only", default="",
                        help="comma-separated pipeline class names to keep (profiling aid)")
    args = parser.parse_args(argv)

    config = load_config(profile="test")
    name = "toonpick_bench_" + uuid.uuid4().hex[:8]
    mariadb_url = with_database(config.mariadb_url, name)
    mongo_url = config.mongo_url.replace("/toonpick_test?", f"/{name}?")
    bucket = name.replace("_", "-")
    workdir = ROOT / ".run" / "bench" / name
    workdir.mkdir(parents=True, exist_ok=True)
    migrate(mariadb_url)
    client = s3_client_from_config(config)
    ensure_bucket(client, bucket, config.aws_region)

    sim, url = start_simulator(args.titles, args.episodes, args.seed)
    env = {
        **os.environ,
        "TOONPICK_PROFILE": "test", "REDIS_URL": "",
        "TOONPICK_MARIADB_URL": mariadb_url, "TOONPICK_MONGO_URL": mongo_url,
        "TOONPICK_IMAGES_STORE": f"s3://{bucket}/",
        "TOONPICK_NAVER_BASE_URL": url, "TOONPICK_KAKAO_BASE_URL": url,
        "TOONPICK_KAKAOPAGE_BASE_URL": url, "TOONPICK_CRAWL_HOST_RATE": "0",
        "TOONPICK_LOG_LEVEL": "WARNING",
    }
    print(f"catalogue: {args.titles} titles x ~{args.episodes} episodes, seed {args.seed}; "
          f"one spider process per platform; simulator {url}")
    try:
        off = crawl_once("pipelines off", env, workdir, pipelines={}, simulator_pid=sim.pid)
        kept = None
        if args.only:
            from crawler.settings import ITEM_PIPELINES

            names = set(args.only.split(","))
            kept = {k: v for k, v in ITEM_PIPELINES.items() if k.rsplit(".", 1)[1] in names}
        on = crawl_once("all pipelines" if kept is None else "some pipelines", env, workdir,
                        pipelines=kept, simulator_pid=sim.pid)
    finally:
        sim.terminate()
        sim.wait()
        drop_database(mariadb_url)
        db = mongo_database(mongo_url)
        db.client.drop_database(db.name)
        db.client.close()

    print()
    on_label = "all pipelines" if kept is None else "kept pipelines"
    cpu_names = list(off["cpu"])
    print(f"{'':<14} {'items':>8} {'seconds':>8} {'items/s':>9} {'peak MB':>8}   CPU seconds: "
          + " ".join(f"{n:>9}" for n in cpu_names))
    for label, row in (("pipelines off", off), (on_label, on)):
        print(f"{label:<14} {row['items']:>8} {row['seconds']:>8.1f} {row['items_per_s']:>9.0f} "
              f"{row['peak_rss_mb']:>8.0f}                " + " ".join(
                  f"{row['cpu'][n]:>9.1f}" for n in cpu_names))
    ratio = on["items_per_s"] / off["items_per_s"]
    print(f"throughput ratio ({on_label} / off): {ratio:.2f}  (target >= 0.80)")
    print(f"peak memory ratio ({on_label} / off): {on['peak_rss_mb'] / off['peak_rss_mb']:.2f}")
    # What the cores were busy with: the store servers run on this machine only in dev/test.
    cores = os.cpu_count() or 1
    for label, row in (("pipelines off", off), (on_label, on)):
        busy = sum(row["cpu"].values())
        print(f"{label}: {busy:.1f} CPU s over {row['seconds']:.1f} s on {cores} cores "
              f"({100 * busy / (cores * row['seconds']):.0f}% busy)")
    if on["items"] != off["items"]:
        print(f"WARNING: item counts differ ({on['items']} vs {off['items']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
