import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from crawler.launcher import (
    PARENT_DEATH_SIGNAL,
    REPO_ROOT,
    CrawlRequest,
    LaunchError,
    spawn,
    start_nodes,
)


def test_command_carries_mode_run_and_settings():
    request = CrawlRequest("kakao", mode="title", title="https://webtoon.kakao.com/content/a/1",
                           run_id="r1", today="2026-11-30")
    cmd = request.command({"ITEM_PIPELINES": "{}"})
    assert cmd[1:5] == ["-m", "scrapy", "crawl", "kakao"]
    assert "mode=title" in cmd and "run_id=r1" in cmd and "today=2026-11-30" in cmd
    assert "title=https://webtoon.kakao.com/content/a/1" in cmd
    assert cmd[-2:] == ["-s", "ITEM_PIPELINES={}"]


def test_each_request_gets_its_own_run_id():
    assert CrawlRequest("naver").run_id != CrawlRequest("naver").run_id


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"spider": "lezhin"}, "unknown spider 'lezhin'"),
        ({"spider": "naver", "mode": "everything"}, "unknown mode 'everything'"),
        ({"spider": "naver", "mode": "title"}, "needs a title"),
    ],
)
def test_bad_arguments_are_clear_errors(kwargs, message):
    with pytest.raises(LaunchError, match=message):
        CrawlRequest(**kwargs)


def test_several_nodes_need_redis():
    with pytest.raises(LaunchError, match="REDIS_URL"):
        start_nodes(CrawlRequest("naver"), nodes=2, env={"REDIS_URL": ""})
    with pytest.raises(LaunchError, match="at least 1"):
        start_nodes(CrawlRequest("naver"), nodes=0)



# A worker-like tree: the top process forks a "work horse" (as RQ does: os.fork, then a
# process group of its own), and the horse spawns the node from its main thread.
_TREE = r"""
import os, sys, threading, time
from crawler.launcher import spawn
node = r'''
import signal, sys, time
from crawler.launcher import close_on_parent_death, parent_death_signal
def closing(*_):
    open(sys.argv[1], "a").write("SIGTERM ")
    time.sleep(1)  # a graceful close takes a while: a second SIGTERM would arrive now
    sys.exit(0)
signal.signal(signal.SIGTERM, closing)
close_on_parent_death(parent_death_signal())
print("ready", flush=True)
time.sleep(60)
'''
if os.fork() == 0:
    os.setpgrp()
    # Threads in the horse (RQ's has its heartbeat): the node is re-parented once per
    # thread as they die, each time with its parent-death signal.
    for _ in range(3):
        threading.Thread(target=time.sleep, args=(60,), daemon=True).start()
    child = spawn([sys.executable, "-c", node, sys.argv[1]], stdout=open(sys.argv[2], "w"))
    print(os.getpid(), child.pid, flush=True)
    time.sleep(60)
    os._exit(0)
time.sleep(60)
"""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def _wait_until(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_node_spawned_by_a_forked_work_horse_gets_sigterm_when_the_tree_is_killed(tmp_path):
    marker, ready = tmp_path / "signalled", tmp_path / "ready"
    top = subprocess.Popen([sys.executable, "-c", _TREE, str(marker), str(ready)],
                           cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True)
    try:
        horse_pid, node_pid = map(int, top.stdout.readline().split())
        assert _wait_until(lambda: ready.exists() and ready.read_text().strip() == "ready", 10)
        assert _alive(node_pid)
        # SIGKILL: nothing in the parent can forward anything; only the kernel signals.
        os.kill(top.pid, signal.SIGKILL)
        os.kill(horse_pid, signal.SIGKILL)
        assert _wait_until(lambda: not _alive(node_pid), 10), "the node outlived its parent"
        assert marker.read_text() == "SIGTERM "  # one graceful close, not a kill
    finally:
        top.kill()
        top.wait()
        top.stdout.close()


def test_spawn_from_a_live_parent_leaves_the_child_running(tmp_path):
    child = spawn([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        time.sleep(0.5)
        assert child.poll() is None
    finally:
        child.kill()
        child.wait()


_STUBBORN_NODE = r"""
import signal, sys, time
from crawler.launcher import close_on_parent_death, exit_when_orphaned, parent_death_signal
signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a graceful close that never ends
close_on_parent_death(parent_death_signal())
exit_when_orphaned(grace=1.0, poll=0.1)
print("ready", parent_death_signal(), flush=True)
time.sleep(60)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_node_whose_close_hangs_still_exits_soon_after_its_parent_died(tmp_path):
    ready = tmp_path / "ready"
    tree = _TREE.replace("[sys.executable, \"-c\", node, sys.argv[1]]",
                         "[sys.executable, \"-c\", sys.argv[3]]")
    top = subprocess.Popen([sys.executable, "-c", tree, "unused", str(ready), _STUBBORN_NODE],
                           cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True)
    try:
        horse_pid, node_pid = map(int, top.stdout.readline().split())
        assert _wait_until(lambda: ready.exists() and ready.read_text().startswith("ready"), 10)
        assert ready.read_text().split() == ["ready", str(int(PARENT_DEATH_SIGNAL))]
        time.sleep(1.5)
        assert _alive(node_pid)  # a live parent: the watch does nothing
        os.kill(top.pid, signal.SIGKILL)
        os.kill(horse_pid, signal.SIGKILL)
        assert _wait_until(lambda: not _alive(node_pid), 10), "the node outlived its parent"
    finally:
        top.kill()
        top.wait()
        top.stdout.close()


def test_a_process_not_started_by_spawn_has_no_parent_death_signal():
    # Cleared by fork: a node started by hand (nohup, a shell) is never watched.
    code = "from crawler.launcher import parent_death_signal; print(parent_death_signal())"
    plain = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True,
                           text=True, check=True)
    assert plain.stdout.strip() == "0"
    spawned = spawn([sys.executable, "-c", code], cwd=REPO_ROOT, stdout=subprocess.PIPE,
                    text=True)
    assert spawned.communicate(timeout=30)[0].strip() == str(int(PARENT_DEATH_SIGNAL))
