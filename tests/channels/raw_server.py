"""A loopback HTTP server whose every byte a test scripts: answers no framework would send.

For the HTTP/1.1 client's tests: chunked bodies cut at awkward places, connections
closed or reset at chosen moments, answers that stall or are not HTTP at all. It reads
each request whole (head and ``Content-Length`` body), records it, and asks the test's
script what to do.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import TracebackType


@dataclass(frozen=True)
class Reply:
    """What the server does for one request.

    ``parts`` are written one after another, ``pause`` seconds apart (so the client must
    put them together); then ``after``: ``keep`` (read the next request), ``close`` (a
    clean close), ``reset`` (an abortive close: the client's next write fails), ``stall``
    (hold the connection open, silent, until the server stops). ``linger`` is how long to
    wait before a close or a reset.
    """

    parts: Sequence[bytes] = ()
    after: str = "keep"
    pause: float = 0.0
    linger: float = 0.0


def answer(body: bytes = b"ok", status: str = "200 OK", *headers: str) -> bytes:
    """An HTTP/1.1 answer with a Content-Length."""
    lines = [f"HTTP/1.1 {status}", *headers, f"Content-Length: {len(body)}", "", ""]
    return "\r\n".join(lines).encode() + body


Script = Callable[[int, bytes], Reply]
"""(request number from 0, the request's bytes) -> what to do."""


class RawServer:
    """Serves ``script`` on 127.0.0.1 (or ``host``), plain or over TLS with ``tls``.

    :attr:`connections` counts the connections accepted, :attr:`closed` those it closed
    or reset itself; :attr:`requests` holds each request as it came. Stop it with
    :meth:`stop` (or use it as a context manager).
    """

    def __init__(
        self, script: Script, *, tls: ssl.SSLContext | None = None, host: str = "127.0.0.1"
    ) -> None:
        self.script = script
        self.tls = tls
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._listener = socket.create_server((host, 0), family=family)
        self.port: int = self._listener.getsockname()[1]
        shown = f"[{host}]" if ":" in host else host
        self.url = f"{'https' if tls else 'http'}://{shown}:{self.port}"
        self.connections = 0
        self.closed = 0
        self.requests: list[bytes] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._open: list[socket.socket] = []
        self._threads = [threading.Thread(target=self._accept, daemon=True)]
        self._threads[0].start()

    def wait_closed(self, count: int, timeout: float = 5.0) -> None:
        """Block until the server has closed or reset ``count`` connections itself."""
        deadline = time.monotonic() + timeout
        while self.closed < count:
            assert time.monotonic() < deadline, f"{self.closed} connections closed, not {count}"
            time.sleep(0.005)

    def stop(self) -> None:
        """Close the listener and every connection; wait for the threads."""
        self._stopping.set()
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked accepting
        self._listener.close()
        with self._lock:
            for sock in self._open:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)  # wakes a thread blocked reading it
                with contextlib.suppress(OSError):
                    sock.close()
        for thread in self._threads:
            thread.join(timeout=5)

    def __enter__(self) -> RawServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self.connections += 1
                self._open.append(sock)
            thread = threading.Thread(target=self._serve, args=(sock,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, sock: socket.socket) -> None:
        with contextlib.suppress(OSError):
            if self.tls is not None:
                sock = self.tls.wrap_socket(sock, server_side=True)
                with self._lock:
                    self._open.append(sock)
            buffer = b""
            while True:
                request, buffer = _read_request(sock, buffer)
                if request is None:
                    return
                with self._lock:
                    number = len(self.requests)
                    self.requests.append(request)
                if not self._reply(sock, self.script(number, request)):
                    return
        sock.close()

    def _reply(self, sock: socket.socket, reply: Reply) -> bool:
        """Carry ``reply`` out; whether to read another request."""
        for n, part in enumerate(reply.parts):
            if n and reply.pause:
                time.sleep(reply.pause)
            sock.sendall(part)
        if reply.after == "keep":
            return True
        if reply.after == "stall":
            self._stopping.wait()
            return False
        time.sleep(reply.linger)
        if reply.after == "reset":  # SO_LINGER 0: close with RST, not FIN
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()
        with self._lock:
            self.closed += 1
        return False


def _read_request(sock: socket.socket, buffer: bytes) -> tuple[bytes | None, bytes]:
    """One request (head and Content-Length body) and the bytes after it; None at EOF."""
    while b"\r\n\r\n" not in buffer:
        data = sock.recv(65536)
        if not data:
            return None, b""
        buffer += data
    head, _, rest = buffer.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(rest) < length:
        data = sock.recv(65536)
        if not data:
            return None, b""
        rest += data
    return head + b"\r\n\r\n" + rest[:length], rest[length:]


def stalled_listener() -> socket.socket:
    """A socket that listens and never accepts: TCP connects, nothing ever answers."""
    return socket.create_server(("127.0.0.1", 0))


def in_turn(*replies: Reply) -> Script:
    """A script that answers request n with ``replies[n]`` (the last one after that)."""

    def script(number: int, _request: bytes) -> Reply:
        return replies[min(number, len(replies) - 1)]

    return script
