"""Dead letters of a crawl run: list them, replay them.

A leased unit of work (``crawler.cluster.leases``) is *dead-lettered* when it cannot be
finished in the run: its lease expired more than ``TOONPICK_CRAWL_MAX_RECLAIMS`` times
(the node holding it kept dying), or a node buried it with a reason. It then sits in the
run's ``dead`` hash (lease id → payload), with ``dead_infos`` (``origin|score|reclaims|
handed``) and ``dead_reasons`` (lease id → why; absent means ``max_reclaims``). A run
whose only leftovers are dead letters is still *done*: nothing more will happen to them
by themselves.

*Replaying* moves every dead letter back to the run's reclaim list with its reclaim
count reset, so the next node to pop gets it (bypassing the dupefilter, as for any
reclaimed work); a done run is re-opened (running again, current if no other run is),
so a node started with ``-a run_id=<id>`` crawls the replayed work and ends the run
again.
"""

from __future__ import annotations

import json
from typing import Any

import redis
from scrapy_redis import picklecompat

from crawler.cluster.runs import (
    CREATION_MARKER,
    KEY_ROOT,
    RunKeys,
    RunStateError,
    current_key,
)

# The reason of a dead letter that has none recorded (the lease code's own).
DEFAULT_REASON = "max_reclaims"


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _describe(origin: str, payload: bytes) -> dict[str, Any]:
    """url / callback / method of a payload, without a spider to rebuild the request."""
    try:
        if origin == "s":
            entry = json.loads(payload)
            return {"url": entry.get("url"), "callback": entry.get("callback") or "parse",
                    "method": entry.get("method") or "GET"}
        request = picklecompat.loads(payload)
        return {"url": request.get("url"), "callback": request.get("callback") or "parse",
                "method": request.get("method") or "GET"}
    except Exception as exc:  # a payload of another code version, or corrupt: still listed
        return {"url": None, "callback": None, "method": None,
                "error": f"undecodable payload: {type(exc).__name__}: {exc}"}


def _info_fields(info: bytes | None) -> tuple[str, int, int]:
    """(origin, reclaims, handed) from ``origin|score|reclaims|handed``."""
    try:
        origin, _score, reclaims, handed = _text(info).split("|")
        return origin, int(reclaims), int(handed)
    except (AttributeError, TypeError, ValueError):
        return "r", 0, 0


def list_dead_letters(server: redis.Redis, spider: str, run_id: str) -> list[dict[str, Any]]:
    """The run's dead letters, by url: lease id, kind (request | start entry), url,
    callback, method, reclaims, times handed out, reason. Raises LookupError for a run
    Redis does not know."""
    keys = RunKeys(spider, run_id)
    pipe = server.pipeline(transaction=True)
    pipe.exists(keys.meta)
    pipe.hgetall(keys.dead)
    pipe.hgetall(keys.dead_infos)
    pipe.hgetall(keys.dead_reasons)
    exists, payloads, infos, reasons = pipe.execute()
    if not exists:
        raise LookupError(f"no crawl run {spider}/{run_id}")
    letters = []
    for raw_id, payload in payloads.items():
        origin, reclaims, handed = _info_fields(infos.get(raw_id))
        reason = reasons.get(raw_id)
        letters.append({
            "lease_id": _text(raw_id),
            "kind": "start entry" if origin == "s" else "request",
            **_describe(origin, payload),
            "reclaims": reclaims,
            "handed": handed,
            "reason": _text(reason) if reason is not None else DEFAULT_REASON,
        })
    return sorted(letters, key=lambda letter: (letter["url"] or "", letter["lease_id"]))


# KEYS: dead, dead infos, dead reasons, payloads, infos, reclaimed, meta, current
# ARGV: key root, spider, run id, marker. Returns {moved, status before}.
_REPLAY = """
local root, spider, run_id, marker = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local status = redis.call('HGET', KEYS[7], 'status')
if not status then return {-1, ''} end
if (status ~= 'running' and status ~= 'done') or redis.call('HEXISTS', KEYS[7], marker) == 0
    then
  return {-2, status}
end
local moved = 0
for _, id in ipairs(redis.call('HKEYS', KEYS[1])) do
  local info = redis.call('HGET', KEYS[2], id) or 'r|0|0|0'
  local origin, score, _, handed = string.match(info, '^(%a)|([^|]*)|(%d+)|(%d+)$')
  if not origin then origin, score, handed = 'r', '0', '0' end
  redis.call('HSET', KEYS[4], id, redis.call('HGET', KEYS[1], id))
  redis.call('HSET', KEYS[5], id, origin .. '|' .. score .. '|0|' .. handed)
  redis.call('RPUSH', KEYS[6], id)
  redis.call('HDEL', KEYS[1], id)
  redis.call('HDEL', KEYS[2], id)
  redis.call('HDEL', KEYS[3], id)
  moved = moved + 1
end
if moved > 0 and status == 'done' then
  local t = redis.call('TIME') local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
  redis.call('HSET', KEYS[7], 'status', 'running', 'replayed_at', string.format('%.6f', now))
  redis.call('HDEL', KEYS[7], 'finished_at')
  local cur = redis.call('GET', KEYS[8])
  if not cur or redis.call('HGET', root .. ':' .. spider .. ':' .. cur .. ':meta', 'status')
      ~= 'running' then
    redis.call('SET', KEYS[8], run_id)
  end
end
if moved > 0 then redis.call('HINCRBY', KEYS[7], 'replayed', moved) end
return {moved, status}
"""


def replay(server: redis.Redis, spider: str, run_id: str) -> int:
    """Move every dead letter of the run back to its reclaim list; returns how many.

    Atomic. Reclaim counts start again at 0; a done run is running again (finished_at
    cleared, made current unless another live run is) so nodes crawl the replayed work.
    Raises LookupError for an unknown run and RunStateError for one that is not intact
    (interrupted: restart it with ``runs.restart_run`` instead).
    """
    keys = RunKeys(spider, run_id)
    script = server.register_script(_REPLAY)
    moved, status = script(
        keys=[keys.dead, keys.dead_infos, keys.dead_reasons, keys.payloads, keys.infos,
              keys.reclaimed, keys.meta, current_key(spider)],
        args=[KEY_ROOT, spider, run_id, CREATION_MARKER],
    )
    moved = int(moved)
    if moved == -1:
        raise LookupError(f"no crawl run {spider}/{run_id}")
    if moved == -2:
        raise RunStateError(f"crawl run {spider}/{run_id} is {_text(status)}, not intact: "
                            "restart it rather than replay its dead letters")
    return moved
