"""Crawl runs: one id per crawl, its Redis keys, its nodes, its summed stats, its end.

Every key of a run lives under ``toonpick:crawl:{spider}:{run_id}:``, so runs never
block each other; ``toonpick:crawl:{spider}:current`` points at the run that nodes
started without ``-a run_id=`` join, and ``toonpick:crawl:{spider}:runs`` lists runs
by start time.

A run is *running* from the moment it is created (atomically, with its start entries
already in its start queue) until a node finds its start queue, request queue,
reclaim list and lease set all empty: then it is *done* (``finished_at`` set, the
``current`` pointer cleared, the dupefilter dropped) and every node closes.

A running run can be *stopped* (``request_stop``): a flag under the run's keys that
every node checks on its heartbeat and when idle; a node that sees it closes with
reason ``stopped``, handing its leases back. The run keeps its queues and stays
``running`` (not done), so clearing the flag (``clear_stop``) and starting a node
with ``-a run_id=<id>`` carries on where it stopped.

A run is *interrupted* when Redis lost it under the nodes (a restart without
persistence, a FLUSHDB, a failover to an empty replica): its meta is gone, or lacks
``started_at``, the marker written only when the run is created. ``run_intact`` tells
a node so; ``mark_interrupted`` records it (never over a done run), so the run can
never pass for done, and the functions nodes call on every heartbeat
(``register_node``, the stats flush) write nothing for a run that is not intact.
Its queues, leases and fingerprints are lost or partial, so ``restart_run`` starts it
again from its start entries under the same id (the stores are idempotent: titles
stored before the loss are simply stored again); it also restarts a stopped run from
scratch.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis

from crawler.cluster.leases import QueueKeys
from crawler.cluster.spider import new_run_id

KEY_ROOT = "toonpick:crawl"
RUNNING = "running"
DONE = "done"
INTERRUPTED = "interrupted"
# Written by create_run and restart_run only: meta without it was re-made after a loss.
CREATION_MARKER = "started_at"


class RunStateError(ValueError):
    """The run is not in a state that allows the operation (e.g. restarting a live run)."""


class RunExistsError(ValueError):
    """``start_run`` was given the id of a run that already exists."""


_RUN_KEY_NAMES = frozenset(
    {
        "meta", "start", "requests", "reclaimed", "leases", "payloads", "infos", "dead",
        "dead_infos", "dead_reasons", "waiting", "dupefilter", "stats", "nodes", "node_infos",
        "stop",
    }
)


@dataclass(frozen=True)
class RunKeys:
    spider: str
    run_id: str

    @property
    def prefix(self) -> str:
        return f"{KEY_ROOT}:{self.spider}:{self.run_id}:"

    def __getattr__(self, name: str) -> str:
        if name not in _RUN_KEY_NAMES:
            raise AttributeError(name)
        return self.prefix + name

    @property
    def queue(self) -> QueueKeys:
        return QueueKeys(
            requests=self.requests,
            start=self.start,
            reclaimed=self.reclaimed,
            leases=self.leases,
            payloads=self.payloads,
            infos=self.infos,
            dead=self.dead,
            dead_infos=self.dead_infos,
            dead_reasons=self.dead_reasons,
            waiting=self.waiting,
        )


def current_key(spider: str) -> str:
    return f"{KEY_ROOT}:{spider}:current"


def runs_key(spider: str) -> str:
    return f"{KEY_ROOT}:{spider}:runs"


# Keys of a run's work and progress, emptied when the run is (re)created (its nodes are
# kept: the record of who crawled it). A new run has none of them; a run re-created
# after Redis lost it may: nodes still alive put requests and fingerprints in fresh keys,
# and such a fingerprint would keep the new crawl from fetching its page.
_WORK_KEYS = ("start", "requests", "reclaimed", "leases", "payloads", "infos", "dead",
              "dead_infos", "dead_reasons", "waiting", "dupefilter", "stats")

# KEYS: current, runs index; ARGV: key root, spider, run id, claim current (1|0), entries...
# With claim=1 an existing live current run wins and is returned instead.
# started_at is CREATION_MARKER.
_CREATE = """
local t = redis.call('TIME') local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local root, spider, run_id, claim = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
if claim == '1' then
  local cur = redis.call('GET', KEYS[1])
  if cur and redis.call('HGET', root .. ':' .. spider .. ':' .. cur .. ':meta', 'status')
      == 'running' then
    return {0, cur}
  end
end
local prefix = root .. ':' .. spider .. ':' .. run_id .. ':'
if redis.call('EXISTS', prefix .. 'meta') == 1 then return {0, run_id} end
for _, name in ipairs({""" + ", ".join(f"'{name}'" for name in _WORK_KEYS) + """}) do
  redis.call('DEL', prefix .. name)
end
redis.call('HSET', prefix .. 'meta', 'run_id', run_id, 'spider', spider, 'status', 'running',
           'started_at', string.format('%.6f', now), 'start_entries', #ARGV - 4)
for i = 5, #ARGV, 500 do
  redis.call('RPUSH', prefix .. 'start', unpack(ARGV, i, math.min(i + 499, #ARGV)))
end
if claim == '1' then
  redis.call('SET', KEYS[1], run_id)
else
  redis.call('SET', KEYS[1], run_id, 'NX')
end
redis.call('ZADD', KEYS[2], now, run_id)
return {1, run_id}
"""

# KEYS: meta, start, requests, reclaimed, leases, current, dupefilter; ARGV: run id, marker
# Empty queues in a run that is not intact mean "lost", never "done": returns ''.
_FINISH_IF_DONE = """
local status = redis.call('HGET', KEYS[1], 'status')
if status ~= 'running' then return status or '' end
if redis.call('HEXISTS', KEYS[1], ARGV[2]) == 0 then return '' end
if redis.call('LLEN', KEYS[2]) + redis.call('ZCARD', KEYS[3]) + redis.call('LLEN', KEYS[4])
    + redis.call('ZCARD', KEYS[5]) > 0 then
  return 'running'
end
local t = redis.call('TIME') local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
redis.call('HSET', KEYS[1], 'status', 'done', 'finished_at', string.format('%.6f', now))
if redis.call('GET', KEYS[6]) == ARGV[1] then redis.call('DEL', KEYS[6]) end
redis.call('UNLINK', KEYS[7])
return 'done'
"""


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _number(value: Any) -> Any:
    text = _text(value)
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def server_time(server: redis.Redis) -> float:
    seconds, micros = server.time()
    return seconds + micros / 1_000_000


def create_run(
    server: redis.Redis,
    spider: str,
    entries: list[dict[str, Any]],
    run_id: str,
    *,
    claim_current: bool,
) -> tuple[bool, str]:
    """Atomically create a run with its start entries; returns (created, run id).

    ``claim_current``: join the spider's live current run if there is one (nodes);
    otherwise the run is made current only if no other run is (``start_run``).
    """
    encoded = [json.dumps(entry, sort_keys=True, ensure_ascii=False) for entry in entries]
    script = server.register_script(_CREATE)
    created, actual = script(
        keys=[current_key(spider), runs_key(spider)],
        args=[KEY_ROOT, spider, run_id, "1" if claim_current else "0", *encoded],
    )
    return bool(created), _text(actual)


def start_run(
    server: redis.Redis,
    spider_name: str,
    entries: list[dict[str, Any]],
    run_id: str | None = None,
) -> str:
    """Create a run seeded with ``entries`` without starting a node; returns its id.

    Nodes started with ``-a run_id=<id>`` (or without, if this run became the current
    one) crawl it. Raises ``RunExistsError`` if ``run_id`` is taken.
    """
    run_id = run_id or new_run_id()
    created, _ = create_run(server, spider_name, entries, run_id, claim_current=False)
    if not created:
        raise RunExistsError(f"crawl run {spider_name}/{run_id} already exists")
    return run_id


# KEYS: stop flag, current; ARGV: reason, run id
_REQUEST_STOP = """
redis.call('SET', KEYS[1], ARGV[1])
if redis.call('GET', KEYS[2]) == ARGV[2] then redis.call('DEL', KEYS[2]) end
return 1
"""


def request_stop(server: redis.Redis, spider: str, run_id: str, reason: str = "stopped") -> None:
    """Ask every node of the run to close; the run keeps its queues for a later restart.

    The run stops being the spider's current run, so plain ``scrapy crawl <spider>``
    nodes start a fresh run instead of joining one that is being stopped.
    """
    script = server.register_script(_REQUEST_STOP)
    script(keys=[RunKeys(spider, run_id).stop, current_key(spider)], args=[reason, run_id])


def clear_stop(server: redis.Redis, spider: str, run_id: str) -> None:
    """Lift a stop so nodes started with ``-a run_id=<id>`` crawl the run again."""
    server.delete(RunKeys(spider, run_id).stop)


def stop_requested(server: redis.Redis, spider: str, run_id: str) -> bool:
    return bool(server.exists(RunKeys(spider, run_id).stop))


def current_run(server: redis.Redis, spider: str) -> str | None:
    """The id of the spider's live run that new nodes join, if any."""
    value = server.get(current_key(spider))
    return None if value is None else _text(value)


def list_runs(server: redis.Redis, spider: str, limit: int = 20) -> list[str]:
    """Run ids of a spider, newest first."""
    return [_text(v) for v in server.zrevrange(runs_key(spider), 0, limit - 1)]


def finish_if_done(server: redis.Redis, spider: str, run_id: str) -> str:
    """Mark the run done if nothing is queued or leased; returns its status."""
    keys = RunKeys(spider, run_id)
    script = server.register_script(_FINISH_IF_DONE)
    status = script(
        keys=[
            keys.meta,
            keys.start,
            keys.requests,
            keys.reclaimed,
            keys.leases,
            current_key(spider),
            keys.dupefilter,
        ],
        args=[run_id, CREATION_MARKER],
    )
    return _text(status)


# KEYS: meta, nodes, node infos; ARGV: marker, node id, ttl seconds, info JSON
# A heartbeat into a lost run would re-create its node set and make it look crawled.
_REGISTER = """
local status = redis.call('HGET', KEYS[1], 'status')
if (status ~= 'running' and status ~= 'done') or redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then
  return 0
end
local t = redis.call('TIME') local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[3]), ARGV[2])
redis.call('HSET', KEYS[3], ARGV[2], ARGV[4])
return 1
"""

# KEYS: meta, nodes, node infos; ARGV: node id, info JSON. Any recorded run (an
# interrupted one too) keeps why its nodes left; a vanished one is not re-created.
_LEFT = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local t = redis.call('TIME') local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
redis.call('ZADD', KEYS[2], now, ARGV[1])
redis.call('HSET', KEYS[3], ARGV[1], ARGV[2])
return 1
"""


def register_node(
    server: redis.Redis, spider: str, run_id: str, node_id: str, ttl: float, info: dict
) -> bool:
    """Record a node's heartbeat: it counts as active until now + ttl (Redis clock).

    Returns False, writing nothing, if the run is not intact (see ``run_intact``).
    """
    keys = RunKeys(spider, run_id)
    script = server.register_script(_REGISTER)
    return bool(script(
        keys=[keys.meta, keys.nodes, keys.node_infos],
        args=[CREATION_MARKER, node_id, ttl, json.dumps(info, sort_keys=True)],
    ))


def node_left(server: redis.Redis, spider: str, run_id: str, node_id: str, reason: str) -> None:
    keys = RunKeys(spider, run_id)
    now = server_time(server)
    raw = server.hget(keys.node_infos, node_id)
    info = json.loads(raw) if raw else {}
    info.update({"closed_at": now, "reason": reason})
    script = server.register_script(_LEFT)
    script(keys=[keys.meta, keys.nodes, keys.node_infos],
           args=[node_id, json.dumps(info, sort_keys=True)])


# --- Redis lost the run: detect, record, restart ----------------------------------

def run_intact(server: redis.Redis, spider: str, run_id: str) -> bool:
    """Whether Redis still holds the run as created: meta with status running or done
    and the creation marker. False for a run lost (or partly re-made) after a Redis
    restart without persistence or a FLUSHDB, and for an interrupted one."""
    status, marker = server.hmget(RunKeys(spider, run_id).meta, "status", CREATION_MARKER)
    return marker is not None and status in (RUNNING.encode(), DONE.encode())


# KEYS: meta, current, runs index; ARGV: run id, spider, reason, marker
_MARK_INTERRUPTED = """
local status = redis.call('HGET', KEYS[1], 'status')
if status == 'done' or status == 'interrupted' then return status end
if status == 'running' and redis.call('HEXISTS', KEYS[1], ARGV[4]) == 1 then
  return status
end
local t = redis.call('TIME') local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
redis.call('HSET', KEYS[1], 'run_id', ARGV[1], 'spider', ARGV[2], 'status', 'interrupted',
           'interrupted_at', string.format('%.6f', now), 'interrupted_reason', ARGV[3])
if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end
redis.call('ZADD', KEYS[3], 'NX', now, ARGV[1])
return 'interrupted'
"""


def mark_interrupted(server: redis.Redis, spider: str, run_id: str, reason: str) -> str:
    """Record that Redis lost the run (``reason`` says how it was noticed); returns the
    run's status afterwards.

    Atomic: only a run that is not intact becomes ``interrupted`` (a done run stays
    done, a run another node already restarted stays running), it stops being the
    spider's current run and is listed again among the spider's runs.
    """
    keys = RunKeys(spider, run_id)
    script = server.register_script(_MARK_INTERRUPTED)
    return _text(script(keys=[keys.meta, current_key(spider), runs_key(spider)],
                        args=[run_id, spider, reason, CREATION_MARKER]))


# KEYS: meta, current, runs index, stop flag, then the keys of _WORK_KEYS (KEYS[5]
# is the start queue); ARGV: key root, spider, run id, marker, entries...
_RESTART = """
local root, spider, run_id, marker = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local status = redis.call('HGET', KEYS[1], 'status')
local intact = redis.call('HEXISTS', KEYS[1], marker) == 1
if status == 'done' or (status == 'running' and intact and redis.call('EXISTS', KEYS[4]) == 0)
    then
  return {0, status}
end
for i = 4, #KEYS do redis.call('DEL', KEYS[i]) end
local t = redis.call('TIME') local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local stamp = string.format('%.6f', now)
redis.call('HSET', KEYS[1], 'run_id', run_id, 'spider', spider, 'status', 'running',
           marker, redis.call('HGET', KEYS[1], marker) or stamp, 'restarted_at', stamp,
           'start_entries', #ARGV - 4)
redis.call('HDEL', KEYS[1], 'finished_at')
redis.call('HINCRBY', KEYS[1], 'restarts', 1)
for i = 5, #ARGV, 500 do
  redis.call('RPUSH', KEYS[5], unpack(ARGV, i, math.min(i + 499, #ARGV)))
end
local cur = redis.call('GET', KEYS[2])
if not cur or cur == run_id
    or redis.call('HGET', root .. ':' .. spider .. ':' .. cur .. ':meta', 'status') ~= 'running'
    then
  redis.call('SET', KEYS[2], run_id)
end
redis.call('ZADD', KEYS[3], 'NX', now, run_id)
return {1, 'running'}
"""


def restart_run(
    server: redis.Redis, spider: str, run_id: str, entries: list[dict[str, Any]]
) -> None:
    """Crawl an interrupted (or lost, or stopped) run again from ``entries``, same id.

    Atomically empties what is left of its queues, leases, dead letters, stats and
    dupefilter (after a loss, nodes still alive may have put fingerprints in a fresh
    set, which would keep the re-crawl from fetching those pages), seeds the start
    queue, sets it running (``restarts`` counts this) and makes it the spider's current
    run unless another live run is. Raises ``RunStateError`` for a done run or a live
    one (running, not stopped): restarting would throw away work nodes are doing.
    """
    keys = RunKeys(spider, run_id)
    encoded = [json.dumps(entry, sort_keys=True, ensure_ascii=False) for entry in entries]
    script = server.register_script(_RESTART)
    restarted, status = script(
        keys=[keys.meta, current_key(spider), runs_key(spider), keys.stop,
              *(getattr(keys, name) for name in _WORK_KEYS)],
        args=[KEY_ROOT, spider, run_id, CREATION_MARKER, *encoded],
    )
    if not restarted:
        raise RunStateError(
            f"crawl run {spider}/{run_id} is {_text(status)}: only an interrupted, lost or "
            "stopped run is restarted")


def open_requested_run(
    server: redis.Redis,
    spider: str,
    run_id: str,
    entries: Callable[[], list[dict[str, Any]]],
) -> str:
    """What a node given ``-a run_id=<id>`` does with that run: returns ``created`` (it
    did not exist), ``restarted`` (it was interrupted: crawled again from ``entries()``,
    see ``restart_run``) or ``joined``. ``entries`` is called only to seed."""
    status = server.hget(RunKeys(spider, run_id).meta, "status")
    if status is None:
        created, _ = create_run(server, spider, entries(), run_id, claim_current=False)
        return "created" if created else "joined"
    if _text(status) != INTERRUPTED:
        return "joined"
    try:
        restart_run(server, spider, run_id, entries())
    except RunStateError:
        return "joined"  # another node restarted it first
    return "restarted"


def active_nodes(server: redis.Redis, spider: str, run_id: str | None = None) -> list[str]:
    """Nodes of the run (default: the current run) whose heartbeat has not lapsed."""
    run_id = run_id or current_run(server, spider)
    if run_id is None:
        return []
    now = server_time(server)
    members = server.zrangebyscore(RunKeys(spider, run_id).nodes, f"({now}", "+inf")
    return sorted(_text(m) for m in members)


def get_run(server: redis.Redis, spider: str, run_id: str) -> dict[str, Any] | None:
    """A run's state: status, times, nodes, queue sizes and its stats summed over nodes."""
    keys = RunKeys(spider, run_id)
    pipe = server.pipeline(transaction=False)
    pipe.hgetall(keys.meta)
    pipe.hgetall(keys.stats)
    pipe.zrange(keys.nodes, 0, -1, withscores=True)
    pipe.hgetall(keys.node_infos)
    pipe.llen(keys.start)
    pipe.zcard(keys.requests)
    pipe.llen(keys.reclaimed)
    pipe.zcard(keys.leases)
    pipe.hlen(keys.dead)
    pipe.exists(keys.stop)
    pipe.time()
    (meta, stats, nodes, node_infos, start, queued, reclaimed, leased, dead, stop,
     now) = pipe.execute()
    if not meta:
        return None
    meta = {_text(k): _text(v) for k, v in meta.items()}
    now_s = now[0] + now[1] / 1_000_000
    infos = {_text(k): json.loads(v) for k, v in node_infos.items()}
    return {
        "spider": spider,
        "run_id": run_id,
        "status": meta.get("status"),
        "started_at": float(meta["started_at"]) if meta.get("started_at") else None,
        "finished_at": float(meta["finished_at"]) if meta.get("finished_at") else None,
        "start_entries": int(meta.get("start_entries", 0)),
        "restarts": int(meta.get("restarts", 0)),
        "interrupted_at": (float(meta["interrupted_at"]) if meta.get("interrupted_at")
                           else None),
        "interrupted_reason": meta.get("interrupted_reason"),
        "stop_requested": bool(stop),
        "nodes": [
            {"node": _text(node), "active": deadline > now_s, **infos.get(_text(node), {})}
            for node, deadline in nodes
        ],
        "queue": {
            "start": start,
            "requests": queued,
            "reclaimed": reclaimed,
            "leased": leased,
            "dead": dead,
        },
        "stats": {_text(k): _number(v) for k, v in stats.items()},
    }


def wait_for_done(
    server: redis.Redis,
    spider: str,
    run_id: str,
    timeout: float,
    poll: float = 0.25,
) -> dict[str, Any]:
    """Block until the run is done; returns ``get_run``. Raises TimeoutError, and
    RunStateError if the run is interrupted."""
    deadline = time.monotonic() + timeout
    while True:
        run = get_run(server, spider, run_id)
        if run is None:
            raise LookupError(f"no crawl run {spider}/{run_id}")
        if run["status"] == DONE:
            return run
        if run["status"] == INTERRUPTED:
            raise RunStateError(f"crawl run {spider}/{run_id} was interrupted: "
                                f"{run['interrupted_reason']}")
        if time.monotonic() >= deadline:
            raise TimeoutError(
                f"crawl run {spider}/{run_id} not done after {timeout}s: {run['queue']}"
            )
        time.sleep(poll)
