"""A running simulator and a tiny urllib client for the simulator tests."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from crawler.simulator import Catalogue, SimulatorServer, serve


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8"))


def fetch(url: str, data: Any = None, method: str | None = None) -> Answer:
    body = None
    headers = {}
    if data is not None:
        body = data if isinstance(data, bytes) else json.dumps(data).encode("utf-8")
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(url, data=body, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return Answer(response.status, dict(response.headers), response.read())
    except urllib.error.HTTPError as exc:
        return Answer(exc.code, dict(exc.headers), exc.read())


def graphql(url: str, operation: str, variables: dict[str, Any]) -> Answer:
    query = f"query {operation} {{ {operation} {{ id }} }}"
    return fetch(f"{url}/graphql",
                 {"operationName": operation, "query": query, "variables": variables})


@pytest.fixture(scope="module")
def simulator() -> Iterator[SimulatorServer]:
    """A read-only simulator shared by a module's tests (nothing advances its clock)."""
    with serve(Catalogue(seed=7, titles=120, episodes=12, malformed=3)) as server:
        yield server
