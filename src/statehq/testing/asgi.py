"""What the fake servers share: an ASGI app served by uvicorn on a background thread.

:class:`BackgroundServer` binds its port when made (so ``url`` is known before
``start``), serves on its own thread and event loop, and stops once; the fakes of the
Graph API (:mod:`.fake_graph`) and of Telegram's Bot API (:mod:`.fake_telegram`) are
ASGI apps on it.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, Self

import uvicorn

Scope = dict[str, Any]
Event = dict[str, Any]
Receive = Callable[[], Awaitable[Event]]
Send = Callable[[Event], Awaitable[None]]


class BackgroundServer:
    """Serves ``self`` (an ASGI app) with uvicorn on a thread; subclasses name ``title``."""

    title = "the fake server"
    url: str
    _sock: socket.socket
    _server: uvicorn.Server | None = None
    _thread: threading.Thread | None = None

    def start(self, timeout: float = 10.0) -> Self:
        """Serve on a background thread; returns once listening."""
        config = uvicorn.Config(
            self, lifespan="off", log_level="warning", log_config=None, access_log=False
        )
        return self._serve(config, timeout)

    def _serve(self, config: uvicorn.Config, timeout: float) -> Self:
        if self._server is not None:
            raise RuntimeError(f"{self.title} was already started")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, name=self.title
        )
        self._thread.daemon = True
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{self.title} did not start on {self.url}")
            time.sleep(0.002)
        return self

    def stop(self) -> None:
        """Stop serving and release the port (open connections are closed)."""
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
        self._sock.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        raise NotImplementedError  # the subclass is the app


def listen(host: str, port: int, family: socket.AddressFamily) -> socket.socket:
    """A listening socket whose ``proto`` is IPPROTO_TCP.

    asyncio sets TCP_NODELAY only on accepted sockets that say IPPROTO_TCP, and they
    inherit ``proto`` from this one (``socket.create_server`` leaves it 0). Without it
    every answer waits out the client's delayed ACK: 40 ms a request instead of 0.3.
    """
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except BaseException:
        sock.close()
        raise
    return sock


async def read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        event = await receive()
        chunks.append(event.get("body", b""))
        if not event.get("more_body", False):
            return b"".join(chunks)


async def respond(
    send: Send, status: int, payload: Any, chunked: bool = False, close: bool = False
) -> None:
    data = json.dumps(payload).encode()
    headers = [(b"content-type", b"application/json")]
    if not chunked:  # without a length, uvicorn frames the body in chunks
        headers.append((b"content-length", b"%d" % len(data)))
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    if chunked:  # two chunks, so a client must put them together
        half = len(data) // 2
        await send({"type": "http.response.body", "body": data[:half], "more_body": True})
        data = data[half:]
    await send({"type": "http.response.body", "body": data})
