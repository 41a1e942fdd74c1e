"""A tiny local web site for cluster tests: interlinked pages, robots.txt, slow and 429 paths.

``/page/{i}`` (0 <= i < pages) links to a few other pages, always including page 0
(so the start page is linked back to) and ``/private/{i}``, which robots.txt forbids.
``/limited/{i}`` answers 429 with ``Retry-After`` on its first request, 200 after.
Every request is recorded (path, time) so tests can check who was fetched when.
"""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class LinkedSite:
    def __init__(self, pages: int = 300, delay: float = 0.0, retry_after: str = "2"):
        self.pages = pages
        self.delay = delay
        self.retry_after = retry_after
        self.hits: list[tuple[str, float]] = []
        self._lock = threading.Lock()
        self._limited_seen: set[str] = set()
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                site._record(self.path)
                status, headers, body = site.answer(self.path)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> LinkedSite:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _record(self, path: str) -> None:
        with self._lock:
            self.hits.append((path, time.time()))

    def links(self, i: int) -> list[int]:
        n = self.pages
        targets = {0, (i * 7 + 1) % n, (i * 13 + 5) % n}
        if i + 1 < n:
            targets.add(i + 1)
        return sorted(targets)

    def answer(self, path: str) -> tuple[int, dict[str, str], bytes]:
        html = {"Content-Type": "text/html; charset=utf-8"}
        if path == "/robots.txt":
            return 200, {"Content-Type": "text/plain"}, b"User-agent: *\nDisallow: /private/\n"
        parts = path.strip("/").split("/")
        if len(parts) == 2 and parts[0] == "page" and parts[1].isdigit():
            i = int(parts[1])
            if i >= self.pages:
                return 404, html, b"no such page"
            if self.delay:
                time.sleep(self.delay)
            links = "".join(f'<a href="/page/{j}">{j}</a>' for j in self.links(i))
            body = f'<html><body><h1>{i}</h1>{links}<a href="/private/{i}">p</a></body></html>'
            return 200, html, body.encode()
        if len(parts) == 2 and parts[0] == "limited":
            with self._lock:
                first = path not in self._limited_seen
                self._limited_seen.add(path)
            if first:
                return 429, {**html, "Retry-After": self.retry_after}, b"slow down"
            return 200, html, f"<html><body><h1>{path}</h1></body></html>".encode()
        return 404, html, b"not found"

    def page_hits(self) -> list[str]:
        with self._lock:
            return [p for p, _ in self.hits if p.startswith("/page/")]

    def hits_of(self, prefix: str) -> list[tuple[str, float]]:
        with self._lock:
            return [(p, t) for p, t in self.hits if p.startswith(prefix)]
