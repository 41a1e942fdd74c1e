"""The simulator's HTTP server: all three platforms' APIs on one port.

Stdlib ``ThreadingHTTPServer`` speaking HTTP/1.1 with keep-alive (Scrapy reuses
connections). Payloads are rendered once per (catalogue version, public base
URL, request) and cached as encoded bytes, so a 5,000-title crawl costs a dict
lookup per request; ``advance`` bumps the version and empties the cache.

Routes (GET unless noted):

- Naver: ``/api/webtoon/titlelist/weekday`` (``week=dailyPlus`` for the daily-plus
  list), ``/api/webtoon/titlelist/finished?page=N``, ``/api/article/list/info?titleId=``,
  ``/api/article/list?titleId=&page=&sort=``.
- Kakao: ``/section/v2/timetables/days?placement=``,
  ``/decorator/v2/decorator/contents/{id}``,
  ``/episode/v2/views/content-home/contents/{id}/episodes?sort=&offset=&limit=``.
- KakaoPage: ``POST /graphql`` (see ``kakaopage.py``).
- Images under ``/thumb/``, ``/kakao-img/``, ``/kakaopage/download/`` (see ``images.py``).
- ``/robots.txt``; control endpoints under ``/_sim/`` (never throttled or counted):
  ``POST /_sim/advance?days=N``, ``/_sim/clock``, ``/_sim/expected``,
  ``/_sim/requests``, ``POST /_sim/requests/reset``.

With ``throttle_every=N`` every Nth API request (lists, titles, episodes,
GraphQL; not images) is refused, alternately 429 and 503, with ``Retry-After: 1``.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections import defaultdict
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from . import kakao, kakaopage, naver
from .catalogue import Catalogue
from .images import image_response

log = logging.getLogger(__name__)

ROBOTS_TXT = b"User-agent: *\nDisallow: /_sim/\n"
JSON_TYPE = "application/json; charset=utf-8"
HTML_TYPE = "text/html; charset=utf-8"

_KAKAO_DETAIL = re.compile(r"^/decorator/v2/decorator/contents/([^/]+)$")
_KAKAO_EPISODES = re.compile(r"^/episode/v2/views/content-home/contents/([^/]+)/episodes$")

# (status, content type, body, extra headers)
Reply = tuple[int, str, bytes, dict[str, str]]


class BadRequest(Exception):
    """A query parameter the real API would reject."""


# A lone surrogate can only sit inside a JSON string, where its escape is valid JSON.
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _encode(status: int, payload: Any) -> tuple[int, str, bytes]:
    if isinstance(payload, str):
        return status, HTML_TYPE, payload.encode("utf-8")
    text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    # The catalogue's cut emoji (oversized=K) goes out as "\ud83d", as a platform sends it.
    text = _LONE_SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
    return status, JSON_TYPE, text.encode("utf-8")


def _json_reply(status: int, payload: Any) -> Reply:
    status, ctype, body = _encode(status, payload)
    return status, ctype, body, {}


class SimulatorState:
    """The catalogue plus what the server tracks: payload cache, counters, throttle."""

    def __init__(self, catalogue: Catalogue, throttle_every: int = 0) -> None:
        if throttle_every < 0:
            raise ValueError("throttle_every must be >= 0")
        self.catalogue = catalogue
        self.throttle_every = throttle_every
        self.lock = threading.RLock()
        self._cache: dict[tuple[Any, ...], Any] = {}
        self._cache_version = catalogue.version
        self._api_requests = 0
        self.reset_counters()

    def reset_counters(self) -> None:
        with self.lock:
            self.per_title: dict[str, dict[str, int]] = {
                kind: defaultdict(int)
                for kind in (
                    "naver_info", "naver_episodes", "kakao_detail", "kakao_episodes",
                    "kakaopage_detail", "kakaopage_episodes",
                )
            }
            self.totals: dict[str, int] = defaultdict(int)

    def counters(self) -> dict[str, Any]:
        with self.lock:
            out: dict[str, Any] = {k: dict(v) for k, v in self.per_title.items()}
            for key in ("lists", "images", "throttled", "not_found", "bad_requests"):
                out[key] = self.totals[key]
            out["api_requests"] = self._api_requests
            return out

    def count(self, kind: str, title_id: str | None = None) -> None:
        with self.lock:
            if title_id is None:
                self.totals[kind] += 1
            else:
                self.per_title[kind][title_id] += 1

    def throttled(self) -> Reply | None:
        """Counts one API request; the refusal to send when it is an Nth one."""
        with self.lock:
            self._api_requests += 1
            if not self.throttle_every or self._api_requests % self.throttle_every:
                return None
            self.totals["throttled"] += 1
            odd = self.totals["throttled"] % 2 == 1
        status = HTTPStatus.TOO_MANY_REQUESTS if odd else HTTPStatus.SERVICE_UNAVAILABLE
        status_code, ctype, body = _encode(int(status), {"error": status.phrase})
        return status_code, ctype, body, {"Retry-After": "1"}

    def cached(self, key: tuple[Any, ...], build: Callable[[], Any]) -> Any:
        with self.lock:
            if self._cache_version != self.catalogue.version:
                self._cache.clear()
                self._cache_version = self.catalogue.version
            if key not in self._cache:
                self._cache[key] = build()
            return self._cache[key]

    def advance(self, days: int) -> str:
        with self.lock:
            return self.catalogue.advance(days).isoformat()

    def expected(self) -> dict[str, Any]:
        with self.lock:
            return self.catalogue.expected()

    def today(self) -> str:
        with self.lock:
            return self.catalogue.today.isoformat()


def _int_param(query: dict[str, list[str]], name: str, default: int | None = None) -> int:
    values = query.get(name)
    if not values:
        if default is None:
            raise BadRequest(f"{name} is required")
        return default
    try:
        return int(values[0])
    except ValueError as exc:
        raise BadRequest(f"{name} must be an integer, got {values[0]!r}") from exc


def _str_param(query: dict[str, list[str]], name: str, default: str = "") -> str:
    values = query.get(name)
    return values[0] if values else default


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ToonpickSimulator/1.0"
    timeout = 60  # an idle keep-alive connection is dropped after this many seconds
    # Headers and body go out in two writes; with Nagle on, each reply would wait for
    # the client's delayed ACK (~40 ms) on a kept-alive connection.
    disable_nagle_algorithm = True

    server: _SimulatorHTTPServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib name
        return  # quiet: a benchmark makes tens of thousands of requests

    # ---- plumbing ------------------------------------------------------------------

    @property
    def state(self) -> SimulatorState:
        return self.server.state

    def _base_url(self) -> str:
        if self.server.public_url:
            return self.server.public_url
        host = self.headers.get("Host")
        return f"http://{host}" if host else self.server.url

    def _send(self, reply: Reply, head_only: bool = False) -> None:
        status, ctype, body, headers = reply
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if not head_only:
            self.wfile.write(body)

    def _dispatch(self, method: str) -> None:
        body = b""
        length = self.headers.get("Content-Length")
        if length:
            try:
                body = self.rfile.read(int(length))
            except ValueError:
                self._send(_json_reply(400, {"error": "bad Content-Length"}))
                return
        try:
            reply = self._route(method, body)
        except BadRequest as exc:
            self.state.count("bad_requests")
            reply = _json_reply(400, {"error": str(exc)})
        except Exception:  # the simulator must answer, not hang the crawler under test
            log.exception("simulator failed on %s %s", method, self.path)
            reply = _json_reply(500, {"error": "internal simulator error"})
        self._send(reply)

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        self._dispatch("GET")

    def do_POST(self) -> None:  # noqa: N802 - stdlib name
        self._dispatch("POST")

    # ---- routing -------------------------------------------------------------------

    def _route(self, method: str, body: bytes) -> Reply:
        parts = urlsplit(self.path)
        path, query = parts.path, parse_qs(parts.query)
        if path == "/robots.txt":
            return 200, "text/plain; charset=utf-8", ROBOTS_TXT, {}
        if path.startswith("/_sim/"):
            return self._control(method, path, query)
        image = image_response(path)
        if image is not None and method == "GET":
            self.state.count("images")
            return 200, image[0], image[1], {}
        api = self._api(method, path, query, body)
        if api is None:
            self.state.count("not_found")
            return _json_reply(404, {"error": "not found", "path": path})
        return api

    def _control(self, method: str, path: str, query: dict[str, list[str]]) -> Reply:
        state = self.state
        if path == "/_sim/advance" and method == "POST":
            days = _int_param(query, "days", 1)
            if days < 0:
                raise BadRequest("days must be >= 0")
            return _json_reply(200, {"today": state.advance(days)})
        if path == "/_sim/clock" and method == "GET":
            return _json_reply(200, {"today": state.today()})
        if path == "/_sim/expected" and method == "GET":
            return _json_reply(200, state.expected())
        if path == "/_sim/requests" and method == "GET":
            return _json_reply(200, state.counters())
        if path == "/_sim/requests/reset" and method == "POST":
            state.reset_counters()
            return _json_reply(200, state.counters())
        return _json_reply(404, {"error": "not found", "path": path})

    def _api(
        self, method: str, path: str, query: dict[str, list[str]], body: bytes
    ) -> Reply | None:
        route = self._resolve(method, path, query, body)
        if route is None:
            return None
        refusal = self.state.throttled()
        if refusal is not None:
            return refusal
        return route()

    def _resolve(
        self, method: str, path: str, query: dict[str, list[str]], body: bytes
    ) -> Callable[[], Reply] | None:
        """The handler for an API request, or None when no API lives at ``path``."""
        state, cat, base = self.state, self.state.catalogue, self._base_url()

        def cached(key: tuple[Any, ...], build: Callable[[], tuple[int, Any]]) -> Reply:
            status, ctype, data = state.cached((base, *key), lambda: _encode(*build()))
            return status, ctype, data, {}

        if method == "POST" and path == "/graphql":
            return lambda: self._graphql(body, base)
        if method != "GET":
            return None
        if path == "/api/webtoon/titlelist/weekday":
            daily_plus = _str_param(query, "week") == "dailyPlus"

            def weekday() -> Reply:
                state.count("lists")
                if daily_plus:
                    return cached(("naver_daily_plus",), lambda: naver.daily_plus_list(cat, base))
                return cached(("naver_weekday",), lambda: naver.weekday_list(cat, base))

            return weekday
        if path == "/api/webtoon/titlelist/finished":
            page = _int_param(query, "page", 1)

            def finished() -> Reply:
                state.count("lists")
                return cached(("naver_finished", page),
                              lambda: naver.finished_list(cat, base, page))

            return finished
        if path == "/api/article/list/info":
            title_id = str(_int_param(query, "titleId"))

            def info() -> Reply:
                state.count("naver_info", title_id)
                return cached(("naver_info", title_id),
                              lambda: naver.title_info(cat, base, title_id))

            return info
        if path == "/api/article/list":
            title_id = str(_int_param(query, "titleId"))
            page = _int_param(query, "page", 1)
            sort = _str_param(query, "sort", "DESC").upper()

            def articles() -> Reply:
                state.count("naver_episodes", title_id)
                return cached(("naver_articles", title_id, page, sort),
                              lambda: naver.article_list(cat, base, title_id, page, sort))

            return articles
        if path == "/section/v2/timetables/days":
            placement = _str_param(query, "placement")

            def timetable() -> Reply:
                state.count("lists")
                return cached(("kakao_timetable", placement),
                              lambda: kakao.timetable(cat, base, placement))

            return timetable
        match = _KAKAO_DETAIL.match(path)
        if match:
            content_id = match.group(1)

            def detail() -> Reply:
                state.count("kakao_detail", content_id)
                return cached(("kakao_detail", content_id),
                              lambda: kakao.decorator(cat, base, content_id))

            return detail
        match = _KAKAO_EPISODES.match(path)
        if match:
            content_id = match.group(1)
            sort = _str_param(query, "sort", "-NO")
            offset = _int_param(query, "offset", 0)
            limit = _int_param(query, "limit", kakao.DEFAULT_LIMIT)

            def kakao_episodes() -> Reply:
                state.count("kakao_episodes", content_id)
                return cached(("kakao_episodes", content_id, sort, offset, limit),
                              lambda: kakao.episodes(cat, base, content_id, sort, offset, limit))

            return kakao_episodes
        return None

    def _graphql(self, body: bytes, base: str) -> Reply:
        state = self.state

        def build() -> tuple[str, str | None, tuple[int, str, bytes]]:
            operation, series_id, status, payload = kakaopage.answer(state.catalogue, base, body)
            return operation, series_id, _encode(status, payload)

        operation, series_id, (status, ctype, data) = state.cached((base, "graphql", body), build)
        if operation == "staticLandingGenreSection":
            state.count("lists")
        elif operation == "contentHomeOverview":
            state.count("kakaopage_detail", series_id)
        elif operation == "contentHomeProductList":
            state.count("kakaopage_episodes", series_id)
        else:
            state.count("bad_requests")
        return status, ctype, data, {}


class _SimulatorHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], state: SimulatorState, public_url: str | None):
        super().__init__(address, _Handler)
        self.state = state
        host, port = self.server_address[:2]
        self.url = f"http://{host}:{port}"
        self.public_url = public_url.rstrip("/") if public_url else None


class SimulatorServer:
    """A running simulator; ``url`` is where it listens. Use as a context manager."""

    def __init__(
        self,
        catalogue: Catalogue,
        host: str = "127.0.0.1",
        port: int = 0,
        throttle_every: int = 0,
        public_url: str | None = None,
    ) -> None:
        self.state = SimulatorState(catalogue, throttle_every)
        self._httpd = _SimulatorHTTPServer((host, port), self.state, public_url)
        self.url: str = self._httpd.url
        self.port: int = self._httpd.server_address[1]
        self._thread: threading.Thread | None = None

    @property
    def catalogue(self) -> Catalogue:
        return self.state.catalogue

    def start(self) -> SimulatorServer:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._httpd.serve_forever,
                kwargs={"poll_interval": 0.1},
                name=f"simulator:{self.port}",
                daemon=True,
            )
            self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve on the calling thread (the CLI) until ``shutdown`` is called elsewhere."""
        self._httpd.serve_forever(poll_interval=0.2)

    def request_stop(self) -> None:
        """Make ``serve_forever`` return; safe from a signal handler (does not wait)."""
        threading.Thread(target=self._httpd.shutdown, daemon=True).start()

    def shutdown(self) -> None:
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> SimulatorServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.shutdown()


def serve(
    catalogue: Catalogue,
    host: str = "127.0.0.1",
    port: int = 0,
    throttle_every: int = 0,
    public_url: str | None = None,
) -> SimulatorServer:
    """Start a simulator for ``catalogue`` on a background thread (port 0 = any free port)."""
    return SimulatorServer(catalogue, host, port, throttle_every, public_url).start()
