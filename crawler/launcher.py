"""Start spider nodes as separate processes: ``scrapy crawl <platform>`` with our arguments.

A node is a plain OS process so it can be killed, and so N of them on one
machine behave like N machines sharing one Redis. Used by the demo, the job
system (a crawl task with no live spider nodes runs one here), standby nodes,
``toonpick crawl``, tests and benchmarks.

A node dies with the process that started it: on Linux it is given a parent-death
signal (``prctl(PR_SET_PDEATHSIG)``), so when its parent is killed, even by SIGKILL,
the node is signalled and closes the way Scrapy closes on SIGTERM (requests in flight
finish, their items are stored, its leases go back to the run, reason ``shutdown``).
Without it, a node whose worker was killed kept crawling as an orphan while the
retried task started another.

The signal is SIGUSR1, which our ``scrapy crawl`` turns into a single SIGTERM
(``close_on_parent_death``): the kernel sends the parent-death signal each time the
node is re-parented, and a multi-threaded parent (an RQ work horse with its heartbeat
thread) re-parents it once per thread as they die, while Scrapy takes a second SIGTERM
for "force an unclean shutdown". A process without a handler just dies of SIGUSR1.
Should the graceful close hang (a store that never answers), the node exits anyway
``ORPHAN_GRACE_SECONDS`` later (``exit_when_orphaned``). The kernel signals when the
*thread* that forked the node exits, not the process: start nodes from a thread that
lives as long as their parent (every caller here uses its main thread; an RQ work
horse runs the task body in its own main thread).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from shared.domain import CrawlMode

REPO_ROOT = Path(__file__).resolve().parent.parent
SPIDERS = ("naver", "kakao", "kakaopage")
# Where ``toonpick crawl`` keeps each node's output (gitignored).
LOGS_DIR = REPO_ROOT / "logs"
# What a node receives when its parent dies (see the module doc for why not SIGTERM).
PARENT_DEATH_SIGNAL = signal.SIGUSR1
_PR_SET_PDEATHSIG = 1
_PR_GET_PDEATHSIG = 2
# How long a node whose parent died may take to close gracefully before it just exits.
ORPHAN_GRACE_SECONDS = 60.0
EXIT_ORPHANED = 4


class LaunchError(ValueError):
    """Bad arguments for a crawl (unknown spider, mode, ...)."""


@dataclass
class CrawlNode:
    spider: str
    process: subprocess.Popen
    log_path: Path | None = None

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait(self, timeout: float | None = None) -> int:
        return self.process.wait(timeout=timeout)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""


@dataclass
class CrawlRequest:
    """What to crawl: one platform, a mode, and for ``title`` mode the title."""

    spider: str
    mode: str = CrawlMode.ALL.value
    title: str | None = None
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    today: str | None = None

    def __post_init__(self) -> None:
        if self.spider not in SPIDERS:
            raise LaunchError(
                f"unknown spider {self.spider!r}: expected one of {', '.join(SPIDERS)}")
        try:
            CrawlMode(self.mode)
        except ValueError:
            modes = ", ".join(m.value for m in CrawlMode)
            raise LaunchError(f"unknown mode {self.mode!r}: expected one of {modes}") from None
        if self.mode == CrawlMode.TITLE and not self.title:
            raise LaunchError("mode 'title' needs a title id or URL")

    def command(self, settings: Mapping[str, str] | None = None) -> list[str]:
        cmd = [sys.executable, "-m", "scrapy", "crawl", self.spider,
               "-a", f"mode={self.mode}", "-a", f"run_id={self.run_id}"]
        if self.title:
            cmd += ["-a", f"title={self.title}"]
        if self.today:
            cmd += ["-a", f"today={self.today}"]
        for name, value in (settings or {}).items():
            cmd += ["-s", f"{name}={value}"]
        return cmd


def _load_prctl() -> object | None:
    """libc's prctl, resolved once in the parent (the child between fork and exec must
    not load libraries: another thread may hold a lock the loader needs)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    except OSError:
        return None
    return libc.prctl


_PRCTL = _load_prctl()


def die_with_parent(parent_pid: int, signum: int = PARENT_DEATH_SIGNAL) -> None:
    """In a freshly forked child: get ``signum`` when the parent dies. If it died before
    this ran (the child was already reparented), the signal is raised at once."""
    if _PRCTL is None:
        return
    _PRCTL(_PR_SET_PDEATHSIG, int(signum), 0, 0, 0)
    if os.getppid() != parent_pid:
        os.kill(os.getpid(), signum)


def parent_death_signal() -> int:
    """The parent-death signal this process was given (0: none, or not Linux)."""
    if _PRCTL is None:
        return 0
    value = ctypes.c_int(0)
    _PRCTL(_PR_GET_PDEATHSIG, ctypes.byref(value), 0, 0, 0)
    return value.value


def close_on_parent_death(signum: int = PARENT_DEATH_SIGNAL) -> None:
    """Turn the parent-death signal, however often it comes, into one SIGTERM to this
    process (Scrapy's graceful shutdown). Call it from the main thread."""
    received = threading.Event()

    def parent_died(_signum: int, _frame: object) -> None:
        if not received.is_set():
            received.set()
            os.kill(os.getpid(), signal.SIGTERM)

    signal.signal(signum, parent_died)


def exit_when_orphaned(grace: float = ORPHAN_GRACE_SECONDS, poll: float = 1.0,
                       code: int = EXIT_ORPHANED) -> threading.Thread:
    """Watch the parent from a daemon thread: ``grace`` seconds after it died, leave with
    ``os._exit(code)``. The parent-death signal asks for a graceful close; this bounds it
    (a close stuck on a store that never answers must not leave an orphan holding its
    leases: once the process is gone they expire and another node takes the work)."""
    parent = os.getppid()

    def watch() -> None:
        orphaned_at = None
        while True:
            time.sleep(poll)
            if os.getppid() == parent:
                continue
            orphaned_at = orphaned_at or time.monotonic()
            if time.monotonic() - orphaned_at >= grace:
                sys.stderr.write(f"parent {parent} died {grace:g} s ago and this process "
                                 f"has not closed; exiting ({code})\n")
                sys.stderr.flush()
                os._exit(code)

    thread = threading.Thread(target=watch, name="parent-watch", daemon=True)
    thread.start()
    return thread


def spawn(command: Sequence[str], **popen: object) -> subprocess.Popen:
    """``subprocess.Popen(command, **popen)`` for a process that must not outlive this one
    (see the module doc). Call it from a thread that lives as long as the process."""
    parent_pid = os.getpid()
    return subprocess.Popen(list(command), preexec_fn=lambda: die_with_parent(parent_pid),
                            **popen)  # type: ignore[call-overload]


def start_nodes(
    request: CrawlRequest,
    nodes: int = 1,
    env: Mapping[str, str] | None = None,
    log_dir: Path | None = None,
    settings: Mapping[str, str] | None = None,
) -> list[CrawlNode]:
    """Start ``nodes`` processes crawling the same run (they share it through REDIS_URL)."""
    if nodes < 1:
        raise LaunchError("nodes must be at least 1")
    full_env = {**os.environ, **(env or {})}
    full_env.setdefault("SCRAPY_SETTINGS_MODULE", "crawler.settings")
    if nodes > 1 and not full_env.get("REDIS_URL"):
        raise LaunchError("more than one node needs REDIS_URL (nodes share the run through Redis)")
    started = []
    for index in range(nodes):
        log_path = None
        out = subprocess.DEVNULL
        if log_dir is not None:
            log_dir.mkdir(parents=True, exist_ok=True)
            log_path = log_dir / f"{request.spider}-{request.run_id}-{index}.log"
            # Appended: a later crawl joining the same run keeps the earlier nodes' logs.
            out = log_path.open("ab")
        process = spawn(
            request.command(settings), cwd=REPO_ROOT, env=full_env,
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
        if log_path is not None:
            out.close()
        started.append(CrawlNode(request.spider, process, log_path))
    return started


def wait_all(nodes: Sequence[CrawlNode], timeout: float) -> list[int]:
    """Wait for every node; kill the rest and raise TimeoutError past ``timeout``."""
    deadline = time.monotonic() + timeout
    codes = []
    for node in nodes:
        remaining = max(0.1, deadline - time.monotonic())
        try:
            codes.append(node.wait(timeout=remaining))
        except subprocess.TimeoutExpired as exc:
            for other in nodes:
                other.kill()
            raise TimeoutError(
                f"{node.spider} node {node.pid} still running after {timeout} s") from exc
    return codes
