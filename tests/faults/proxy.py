"""A TCP forwarder between our clients and a real store, under a test's control.

``FaultProxy(target_host, target_port)`` listens on 127.0.0.1:<free port> and forwards
every connection to the target. A test points a client (or a crawl's settings) at
``proxy.port`` and then breaks the path the way stores break in production:

- *forwarding* (the start, and after ``resume()``): bytes flow both ways;
- *closed* (``close()``): the store is down. The listening socket is closed, so a new
  connection is refused, and every open connection is reset (RST, not a polite FIN),
  as when a server process dies or a host goes away;
- *stalled* (``stall()``): the store hangs. New connections are accepted and open ones
  stay open, but nothing is forwarded in either direction, as with a wedged server or
  a black-holed route: only a client's own timeouts get it out;
- ``resume()`` returns to forwarding from either state (a stalled connection then
  delivers what it held back; a closed one is gone for good).

One asyncio loop in a daemon thread carries every connection, so a crawl's few
hundred connections cost no thread each. Control calls block until the state change
has taken effect. ``with FaultProxy(...) as proxy:`` (or ``shutdown()``) stops it.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

FORWARDING, STALLED, CLOSED = "forwarding", "stalled", "closed"
_CHUNK = 65536
# Control calls wait this long for the loop; far above what any state change takes.
_CONTROL_TIMEOUT = 10.0


# eq=False: pairs are kept in a set by identity; two pairs are never "equal".
@dataclass(eq=False)
class _Pair:
    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter | None = None


class FaultProxy:
    def __init__(self, target_host: str, target_port: int, listen_host: str = "127.0.0.1",
                 connect_timeout: float = 5.0):
        self.target = (target_host, target_port)
        self.host = listen_host
        self.port = 0
        self.connect_timeout = connect_timeout
        self.state = FORWARDING
        self.accepted = 0
        self.resets = 0
        self._pairs: set[_Pair] = set()
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.AbstractServer | None = None
        self._flowing: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._loop.run_forever,
                                        name=f"fault-proxy-{target_port}", daemon=True)
        self._thread.start()
        self._call(self._start())

    # --- control, from the test's thread -------------------------------------------

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port

    @property
    def open_connections(self) -> int:
        return len(self._pairs)

    def url(self, url: str) -> str:
        """``url`` with its host and port replaced by the proxy's (scheme, credentials,
        path and query kept): ``mysql://u:p@127.0.0.1:3306/db`` → ``...@127.0.0.1:<port>/db``."""
        return proxied_url(url, self.host, self.port)

    def close(self) -> None:
        """The store goes down: refuse new connections, reset every open one."""
        self._call(self._close())

    def stall(self) -> None:
        """The store hangs: accept and hold connections, forward nothing."""
        self._call(self._stall())

    def resume(self) -> None:
        """Forward again (listening again after ``close()``)."""
        self._call(self._resume())

    @contextlib.contextmanager
    def outage(self, kind: str = CLOSED) -> Iterator[FaultProxy]:
        """``with proxy.outage("stalled"):`` breaks the path for the block's duration."""
        {CLOSED: self.close, STALLED: self.stall}[kind]()
        try:
            yield self
        finally:
            self.resume()

    def outage_later(self, after: float, duration: float, kind: str = CLOSED
                     ) -> threading.Thread:
        """Break the path ``after`` seconds from now for ``duration`` seconds, in the
        background; join the returned thread to wait for the end of the outage."""
        def run() -> None:
            time.sleep(after)
            with self.outage(kind):
                time.sleep(duration)

        thread = threading.Thread(target=run, name="fault-proxy-outage", daemon=True)
        thread.start()
        return thread

    def shutdown(self) -> None:
        """Stop listening, reset every connection and stop the loop's thread."""
        if not self._loop.is_running():
            return
        self._call(self._finish())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=_CONTROL_TIMEOUT)
        self._loop.close()

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown()

    def _call(self, coro) -> None:
        asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=_CONTROL_TIMEOUT)

    # --- the loop's side ----------------------------------------------------------

    async def _start(self) -> None:
        self._flowing = asyncio.Event()
        self._flowing.set()
        await self._listen()

    async def _listen(self) -> None:
        # port 0 the first time; the same port again after an outage (SO_REUSEADDR
        # lets it rebind while reset connections linger in TIME_WAIT).
        self._server = await asyncio.start_server(self._accept, self.host, self.port,
                                                  reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _close(self) -> None:
        self.state = CLOSED
        if self._server is not None:
            self._server.close()
            self._server = None
        for pair in list(self._pairs):
            self._reset(pair)
        # Let the pumps see their aborted transports before the next state change.
        await asyncio.sleep(0)

    async def _finish(self) -> None:
        await self._close()
        # Pumps held by a stall wake up, read their aborted transports' EOF and end.
        self._flowing.set()
        await asyncio.sleep(0.05)

    async def _stall(self) -> None:
        if self.state == CLOSED:
            await self._listen()
        self.state = STALLED
        self._flowing.clear()

    async def _resume(self) -> None:
        if self.state == CLOSED:
            await self._listen()
        self.state = FORWARDING
        self._flowing.set()

    def _reset(self, pair: _Pair) -> None:
        self._pairs.discard(pair)
        self.resets += 1
        for writer in (pair.client, pair.upstream):
            if writer is None:
                continue
            sock = writer.get_extra_info("socket")
            if sock is not None:
                # Linger 0: close() sends RST, so the peer sees "connection reset".
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                    struct.pack("ii", 1, 0))
            writer.transport.abort()

    async def _accept(self, client_reader: asyncio.StreamReader,
                      client_writer: asyncio.StreamWriter) -> None:
        if self.state == CLOSED:
            client_writer.transport.abort()
            return
        self.accepted += 1
        pair = _Pair(client_writer)
        self._pairs.add(pair)
        try:
            upstream_reader, upstream_writer = await asyncio.wait_for(
                asyncio.open_connection(*self.target), self.connect_timeout)
        except (OSError, TimeoutError):
            # The target itself is down: the client sees its connection dropped.
            self._reset(pair)
            return
        if pair not in self._pairs:  # reset by close() while connecting upstream
            upstream_writer.transport.abort()
            return
        pair.upstream = upstream_writer
        await asyncio.gather(self._pump(client_reader, upstream_writer),
                             self._pump(upstream_reader, client_writer))
        if pair in self._pairs:
            self._pairs.discard(pair)
            for writer in (client_writer, upstream_writer):
                writer.close()

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                # Not reading while stalled also stops the sender by TCP back-pressure.
                await self._flowing.wait()
                data = await reader.read(_CHUNK)
                if not data:
                    break
                # A stall that began during the read holds these bytes until resume.
                await self._flowing.wait()
                writer.write(data)
                await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            # One side finished: pass the half-close on, so the other side's answer
            # still flows back (HTTP and MySQL clients close after their last request).
            if writer.can_write_eof() and not writer.is_closing():
                with contextlib.suppress(OSError):
                    writer.write_eof()


def proxied_url(url: str, host: str, port: int) -> str:
    """``url`` with its host and port replaced (credentials, path and query kept)."""
    parts = urlsplit(url)
    credentials, _, _ = parts.netloc.rpartition("@")
    netloc = f"{credentials}@{host}:{port}" if credentials else f"{host}:{port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
