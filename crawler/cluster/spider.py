"""The spider base class every platform spider subclasses.

A crawl starts from *start entries*: JSON-able dicts that describe start requests
(``{"url", "method", "body", "headers", "callback", "cb_kwargs", "meta", "dont_filter"}``;
only ``url`` is required). They are data rather than ``Request`` objects so that in
cluster mode one node can push them to Redis and any node can turn them into
requests (``request_from_entry``).

Single-process mode (no ``REDIS_URL``): ``start()`` yields one request per entry and
Scrapy's own scheduler runs the crawl to its end.

Cluster mode: the run registry (``crawler.cluster.runs``) assigns ``run_id`` when the
scheduler opens, the node that creates the run seeds the run's start queue with
``start_entries()``, and the leased scheduler hands entries out one node at a time;
``start()`` then yields nothing.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import scrapy

# Spider argument (``-a run_id=...``) and setting that say "this node is a cluster node".
RUN_ID_ARGUMENT = "run_id"
CLUSTER_MODE_SETTING = "TOONPICK_CLUSTER_MODE"

_ENTRY_KEYS = frozenset(
    {"url", "method", "body", "headers", "callback", "cb_kwargs", "meta", "dont_filter"}
)


class StartEntryError(ValueError):
    """A start entry cannot be turned into a request (bad shape, unknown callback)."""


def new_run_id() -> str:
    """A run id that sorts by start time and is unique across nodes."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:8]


def start_entry(
    url: str,
    *,
    callback: str = "parse",
    method: str = "GET",
    body: str | None = None,
    headers: dict[str, str] | None = None,
    cb_kwargs: dict[str, Any] | None = None,
    meta: dict[str, Any] | None = None,
    dont_filter: bool = False,
) -> dict[str, Any]:
    """Build a start entry; raises ``StartEntryError`` if it would not survive JSON."""
    entry: dict[str, Any] = {"url": url, "callback": callback, "method": method}
    if body is not None:
        entry["body"] = body
    if headers:
        entry["headers"] = dict(headers)
    if cb_kwargs:
        entry["cb_kwargs"] = dict(cb_kwargs)
    if meta:
        entry["meta"] = dict(meta)
    if dont_filter:
        entry["dont_filter"] = True
    try:
        json.dumps(entry)
    except (TypeError, ValueError) as exc:
        raise StartEntryError(f"start entry for {url!r} is not JSON-able: {exc}") from exc
    return entry


class ClusterSpider(scrapy.Spider):
    """Base spider: start entries in, requests out; a ``run_id`` per crawl.

    ``run_id`` comes from the ``run_id`` spider argument; otherwise, in cluster mode,
    the run registry assigns it (joining the spider's current run or creating one);
    otherwise a new local id is made here.
    """

    run_id: str

    def __init__(self, *args: Any, run_id: str | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        run_id = (run_id or "").strip() or None
        # Whether the id was asked for: a requested id is joined or created as is,
        # an unrequested one may be replaced by the cluster's current run.
        self.run_id_requested = run_id is not None
        self.run_id = run_id or new_run_id()

    # --- what subclasses provide -------------------------------------------------

    def start_entries(self) -> list[dict[str, Any]]:
        """The crawl's start requests as JSON-able dicts (see ``start_entry``)."""
        raise NotImplementedError(f"{type(self).__name__} must implement start_entries()")

    def request_from_entry(self, entry: dict[str, Any]) -> scrapy.Request:
        """Turn a start entry into a request; override for platform-specific requests."""
        if not isinstance(entry, dict) or not isinstance(entry.get("url"), str):
            raise StartEntryError(f"start entry without a url: {entry!r}")
        unknown = set(entry) - _ENTRY_KEYS
        if unknown:
            raise StartEntryError(f"start entry has unknown keys {sorted(unknown)}: {entry!r}")
        callback_name = entry.get("callback") or "parse"
        callback = getattr(self, callback_name, None)
        if not callable(callback):
            raise StartEntryError(f"{self.name}: no callback {callback_name!r} for {entry!r}")
        return scrapy.Request(
            entry["url"],
            callback=callback,
            method=entry.get("method") or "GET",
            body=entry.get("body"),
            headers=entry.get("headers"),
            cb_kwargs=entry.get("cb_kwargs") or {},
            meta=entry.get("meta") or {},
            dont_filter=bool(entry.get("dont_filter", False)),
        )

    # --- start path ------------------------------------------------------------------

    @property
    def cluster_mode(self) -> bool:
        crawler = getattr(self, "crawler", None)
        return bool(crawler and crawler.settings.getbool(CLUSTER_MODE_SETTING))

    async def start(self) -> AsyncIterator[Any]:
        if self.cluster_mode:
            # The leased scheduler serves the run's start queue; nothing to yield here.
            return
        for entry in self.start_entries():
            try:
                request = self.request_from_entry(entry)
            except StartEntryError as exc:
                self.crawler.stats.inc_value("start_entries/invalid")
                self.logger.error("dropped start entry: %s", exc)
                continue
            yield request
