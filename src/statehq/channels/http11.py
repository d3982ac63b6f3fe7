"""A lean HTTP/1.1 client for a channel's send path: pre-built requests, kept-alive sockets.

A worker posts one kind of request to one host all day. Through httpx each post builds a
request object and runs it through httpcore's pool and h11's state machine: about 400 us
of CPU per reply on the 2-core VM, 41% of a worker's CPU. :class:`HttpClient` builds the
request line and headers once (:meth:`HttpClient.prepare`); a call adds the length and
the body, writes them with one ``sendall`` on a socket kept alive between calls, and
parses the answer by hand. It still does what HTTP/1.1 asks of a client:

- the body is framed by ``Content-Length``, by ``Transfer-Encoding: chunked`` (trailers
  read and dropped) or by the end of the connection; 1xx answers are skipped; 204 and
  304 have none; a gzip or deflate ``Content-Encoding`` is undone;
- a connection is kept only when both sides can go on: not after ``Connection: close``,
  an HTTP/1.0 answer without ``keep-alive``, a body framed by the close, or stray bytes;
  one idle longer than ``keepalive_expiry`` is closed rather than reused;
- https checks the server's certificate and name against ``ca_file``, else
  ``SSL_CERT_FILE`` / ``SSL_CERT_DIR``, else certifi's CAs (what httpx trusts);
- connect timeouts (the TCP and TLS handshakes), read and write timeouts (each wait for
  the socket, as httpx counts them).

Sent twice, never: an idle connection the server closed is found before use (its socket
reads as ready) and replaced. Timeline of the race that check cannot see: the server
closes the idle connection; our request is already on its way; the write fails, or the
read finds the connection gone. A write that fails proves the server never read the
request whole, so it goes once more on a new connection. A read that fails does not:
the server may have acted on the request. That error is raised, and the caller, who
knows whether its request is idempotent, decides (Graph sends are not).

Errors are httpx's transport errors, so code written for httpx's transport reads them
the same way:

```
httpx.TransportError
├── ConnectError, ConnectTimeout   no connection (refused, DNS, TLS): nothing was sent
├── WriteError, WriteTimeout       the request did not go out whole
├── ReadError, ReadTimeout         sent; the answer did not come whole
└── RemoteProtocolError            sent; the answer is not HTTP/1.x this client reads
```

Thread-safe: a call takes an idle connection (or opens one) for itself and gives it back
once the answer was read whole.
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import socket
import ssl
import threading
import time
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from urllib.parse import quote, urlsplit

import httpx

DEFAULT_PORTS = {"http": 80, "https": 443}
USER_AGENT = "statehq"
KEEPALIVE_EXPIRY = 5.0  # seconds; httpx's default, below every common server's idle timeout
MAX_IDLE = 8  # idle connections kept per origin
MAX_HEAD = 64 * 1024  # bytes of status line and headers (or of trailers)
MAX_BODY = 16 * 1024 * 1024
RECV_SIZE = 65536
NO_BODY = frozenset({204, 304})
PATH_SAFE = "/%:@!$&'()*+,;=-._~"  # RFC 3986 pchar and '/': left as they are in a path
_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,16}")
_FIELD_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # RFC 9110 token
_FORBIDDEN_IN_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # controls but tab

Origin = tuple[str, str, int]
"""(scheme, host, port): the connections of one origin are interchangeable."""


@dataclass(slots=True)
class Response:
    """An answer: status, reason phrase, headers (lower-case names; a repeated field's
    values joined with ``", "``) and the whole body, decoded from gzip or deflate."""

    status: int
    reason: str
    headers: dict[str, str]
    body: bytes

    @property
    def is_success(self) -> bool:
        """A 2xx status."""
        return 200 <= self.status < 300


@dataclass(frozen=True, slots=True)
class PreparedRequest:
    """A request built once, sent many times with different bodies (:meth:`HttpClient.send`).

    ``head`` holds the request line and every header but ``Content-Length``.
    """

    origin: Origin
    head: bytes
    timeout: float
    connect_timeout: float


def default_ssl_context(ca_file: str | None = None) -> ssl.SSLContext:
    """Certificate and host name checks against ``ca_file``, else the CAs named by
    ``SSL_CERT_FILE`` or ``SSL_CERT_DIR``, else certifi's (the CAs httpx trusts)."""
    if ca_file:
        return ssl.create_default_context(cafile=ca_file)
    if os.environ.get("SSL_CERT_FILE"):
        return ssl.create_default_context(cafile=os.environ["SSL_CERT_FILE"])
    if os.environ.get("SSL_CERT_DIR"):
        return ssl.create_default_context(capath=os.environ["SSL_CERT_DIR"])
    import certifi  # httpx's dependency: loaded only for https

    return ssl.create_default_context(cafile=certifi.where())


class HttpClient:
    """Kept-alive HTTP/1.1 connections, pooled by origin; see the module docstring.

    ``ca_file``/``ssl_context``: whom https trusts (:func:`default_ssl_context` by
    default, made at the first https request). ``keepalive_expiry``: seconds an idle
    connection may wait for reuse; ``max_idle``: idle connections kept per origin.
    """

    def __init__(
        self,
        *,
        ca_file: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
        keepalive_expiry: float = KEEPALIVE_EXPIRY,
        max_idle: int = MAX_IDLE,
    ) -> None:
        self._ca_file = ca_file
        self._ssl_context = ssl_context
        self._expiry = keepalive_expiry
        self._max_idle = max_idle
        self._pools: dict[Origin, _Pool] = {}
        self._lock = threading.Lock()
        self._closed = False

    def prepare(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | None = None,
        *,
        timeout: float = 10.0,
        connect_timeout: float | None = None,
    ) -> PreparedRequest:
        """Build a request's head once: method, URL and ``headers`` (which may replace the
        defaults ``User-Agent``, ``Accept-Encoding: identity`` and ``Connection:
        keep-alive``). ``timeout`` bounds each wait to read or write; ``connect_timeout``
        (default ``timeout``) the TCP and TLS handshakes.

        Raises ValueError for a URL this client cannot use, a HEAD request (its answer is
        framed differently), or a header that would break the request (a line break in a
        value); the message names the header, never its value.
        """
        if not _FIELD_NAME.fullmatch(method) or method.upper() == "HEAD":
            raise ValueError(f"{method[:20]!r} is not a method this client sends")
        origin, target, authority = _parse_url(url)
        fields = {"host": ("Host", authority)}
        defaults = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
        for name, value in {**defaults, "Connection": "keep-alive", **(headers or {})}.items():
            fields[name.lower()] = (name, value)
        fields.pop("content-length", None)  # set by each send
        fields.pop("transfer-encoding", None)  # bodies go whole, with their length
        lines = [f"{method} {target} HTTP/1.1\r\n"]
        lines += [_header_line(name, value) for name, value in fields.values()]
        head = "".join(lines).encode("latin-1")
        with self._lock:
            if origin not in self._pools:
                context = self._context(origin)
                self._pools[origin] = _Pool(origin, context, self._expiry, self._max_idle)
        wait = connect_timeout if connect_timeout is not None else timeout
        return PreparedRequest(origin, head, timeout, wait)

    def send(self, request: PreparedRequest, body: bytes = b"") -> Response:
        """Send ``request`` with ``body``; the whole answer, whatever its status.

        Raises one of httpx's transport errors (module docstring) when no whole answer
        came; RuntimeError once the client is closed.
        """
        if self._closed:
            raise RuntimeError("this HttpClient is closed")
        pool = self._pools[request.origin]
        data = b"%sContent-Length: %d\r\n\r\n%s" % (request.head, len(body), body)
        connection = pool.write(data, request)
        try:
            response, reusable = connection.read_response()
        except BaseException:
            connection.close()
            raise
        if reusable:
            pool.checkin(connection)
        else:
            connection.close()
        return response

    def close(self) -> None:
        """Close every idle connection; those in use close when their call ends."""
        self._closed = True
        with self._lock:
            pools = list(self._pools.values())
        for pool in pools:
            pool.close()

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _context(self, origin: Origin) -> ssl.SSLContext | None:
        if origin[0] != "https":
            return None
        if self._ssl_context is None:
            self._ssl_context = default_ssl_context(self._ca_file)
        return self._ssl_context


def _parse_url(url: str) -> tuple[Origin, str, str]:
    """(origin, request target, Host header value) of an http or https URL."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise ValueError(f"only http and https URLs can be sent to, not {scheme or 'no'!r} ones")
    if parts.username is not None or parts.password is not None:
        raise ValueError("credentials in the URL are not supported: send a header")
    host = parts.hostname
    if not host:
        raise ValueError("the URL has no host")
    port = parts.port or DEFAULT_PORTS[scheme]  # .port raises ValueError for a bad one
    target = quote(parts.path or "/", safe=PATH_SAFE)
    if parts.query:
        target += "?" + quote(parts.query, safe=PATH_SAFE + "?")
    authority = f"[{host}]" if ":" in host else host
    if port != DEFAULT_PORTS[scheme]:
        authority += f":{port}"
    return (scheme, host, port), target, authority


def _header_line(name: str, value: str) -> str:
    if not _FIELD_NAME.fullmatch(name):
        raise ValueError(f"{name[:40]!r} is not a valid header name")
    if _FORBIDDEN_IN_VALUE.search(value):
        raise ValueError(f"the {name} header's value holds a line break or a control character")
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        raise ValueError(f"the {name} header's value is not Latin-1 text") from None
    return f"{name}: {value}\r\n"


class _Pool:
    """The idle connections of one origin, newest last."""

    def __init__(
        self, origin: Origin, context: ssl.SSLContext | None, expiry: float, max_idle: int
    ) -> None:
        self.origin = origin
        self.context = context
        self._expiry = expiry
        self._max_idle = max_idle
        self._idle: list[_Connection] = []
        self._lock = threading.Lock()
        self._closed = False

    def write(self, data: bytes, request: PreparedRequest) -> _Connection:
        """The connection ``data`` was written on whole: an idle one, else a new one.

        A write that fails on an idle connection means the server closed it unseen and
        read none of ``data``: it is written once more, on a new connection.
        """
        connection = self.checkout()
        if connection is not None:
            try:
                connection.write(data, request.timeout)
            except httpx.WriteError:
                connection.close()
            except BaseException:
                connection.close()
                raise
            else:
                return connection
        connection = self.connect(request.connect_timeout)
        try:
            connection.write(data, request.timeout)
        except BaseException:
            connection.close()
            raise
        return connection

    def checkout(self) -> _Connection | None:
        """An idle connection still fit for a request, or None."""
        now = time.monotonic()
        while True:
            with self._lock:
                if not self._idle:
                    return None
                connection = self._idle.pop()
            if now - connection.idle_since < self._expiry and not connection.stale():
                return connection
            connection.close()

    def checkin(self, connection: _Connection) -> None:
        """Keep ``connection`` for the next request (or close it when enough are kept)."""
        connection.idle_since = time.monotonic()
        with self._lock:
            if not self._closed and len(self._idle) < self._max_idle:
                self._idle.append(connection)
                return
        connection.close()

    def connect(self, timeout: float) -> _Connection:
        """A new connection (TCP, then TLS for https), within ``timeout`` seconds each."""
        _, host, port = self.origin
        try:
            sock = socket.create_connection((host, port), timeout=timeout)
        except TimeoutError as exc:
            raise httpx.ConnectTimeout(f"no connection to {host}:{port} within {timeout}s") from exc
        except OSError as exc:
            raise httpx.ConnectError(f"no connection to {host}:{port}: {exc}") from exc
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.context is not None:
                sock = self.context.wrap_socket(sock, server_hostname=host)
        except TimeoutError as exc:
            sock.close()
            raise httpx.ConnectTimeout(f"no TLS handshake with {host}:{port} in time") from exc
        except OSError as exc:  # ssl.SSLError (a certificate refused, ...) is one
            sock.close()
            raise httpx.ConnectError(f"TLS with {host}:{port} failed: {exc}") from exc
        return _Connection(sock, timeout)

    def close(self) -> None:
        """Close the idle connections; any given back later is closed too."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()


class _Connection:
    """One socket to the origin, and the answers read from it."""

    __slots__ = ("_poll", "_timeout", "idle_since", "sock")

    def __init__(self, sock: socket.socket, timeout: float) -> None:
        self.sock = sock
        self._timeout = timeout
        self.idle_since = 0.0
        self._poll = select.poll()
        self._poll.register(sock.fileno(), select.POLLIN)

    def stale(self) -> bool:
        """True when the idle socket reads as ready: the server closed it (or sent bytes
        nobody asked for). One ``poll`` with no wait."""
        return bool(self._poll.poll(0))

    def write(self, data: bytes, timeout: float) -> None:
        """Send the whole request, each wait bounded by ``timeout``."""
        if timeout != self._timeout:  # settimeout costs a system call: only on a change
            self.sock.settimeout(timeout)
            self._timeout = timeout
        try:
            self.sock.sendall(data)
        except TimeoutError as exc:
            raise httpx.WriteTimeout(f"the request was not written within {timeout}s") from exc
        except OSError as exc:
            raise httpx.WriteError(f"the request could not be written: {exc}") from exc

    def read_response(self) -> tuple[Response, bool]:
        """The answer, and whether this connection can carry another request."""
        reader = _Reader(self.sock.recv, self._timeout)
        while True:
            version, status, reason, headers = _parse_head(reader.until(b"\r\n\r\n", MAX_HEAD))
            if status >= 200:
                break
            if status == 101:
                raise httpx.RemoteProtocolError("the server switched protocols unasked (101)")
        reusable = _keeps_alive(version, headers)
        if status in NO_BODY:
            body = b""
        elif "transfer-encoding" in headers:
            if headers["transfer-encoding"].rpartition(",")[2].strip().lower() == "chunked":
                body = _read_chunked(reader)
                reusable = reusable and "content-length" not in headers
            else:
                body, reusable = reader.rest(), False
        elif "content-length" in headers:
            body = reader.exactly(_content_length(headers["content-length"]))
        else:
            body, reusable = reader.rest(), False
        if reader.leftover():
            reusable = False
        if "content-encoding" in headers:
            body = _decoded(body, headers["content-encoding"])
        return Response(status, reason, headers, body), reusable

    def close(self) -> None:
        """Close the socket (errors ignored: it is being thrown away)."""
        with contextlib.suppress(OSError):
            self.sock.close()


class _Reader:
    """The bytes of one answer, read from a socket as they are needed."""

    __slots__ = ("_buffer", "_got", "_position", "_recv", "_timeout")

    def __init__(self, recv: Callable[[int], bytes], timeout: float) -> None:
        self._recv = recv
        self._timeout = timeout
        self._buffer = bytearray()
        self._position = 0
        self._got = False

    def until(self, marker: bytes, limit: int) -> bytes:
        """The bytes before ``marker`` (which is consumed); RemoteProtocolError when more
        than ``limit`` bytes come without it."""
        skip = 0  # bytes after the position known not to start the marker
        while True:
            end = self._buffer.find(marker, self._position + skip)
            waiting = (end if end >= 0 else len(self._buffer)) - self._position
            if waiting > limit:
                raise httpx.RemoteProtocolError(f"no {marker!r} within {limit} bytes")
            if end >= 0:
                found = bytes(self._buffer[self._position : end])
                self._position = end + len(marker)
                return found
            skip = max(0, waiting - len(marker) + 1)
            self._fill()

    def exactly(self, size: int) -> bytes:
        """The next ``size`` bytes."""
        if size > MAX_BODY:
            raise httpx.RemoteProtocolError(f"a body of {size} bytes is over {MAX_BODY}")
        while len(self._buffer) - self._position < size:
            self._fill()
        found = bytes(self._buffer[self._position : self._position + size])
        self._position += size
        return found

    def rest(self) -> bytes:
        """Every byte until the server closes the connection."""
        while self._fill(at_end=True):
            if len(self._buffer) - self._position > MAX_BODY:
                raise httpx.RemoteProtocolError(f"a body over {MAX_BODY} bytes")
        found = bytes(self._buffer[self._position :])
        self._position = len(self._buffer)
        return found

    def leftover(self) -> bool:
        """True when bytes came after the answer (a server out of step)."""
        return len(self._buffer) > self._position

    def _fill(self, at_end: bool = False) -> bool:
        """Read more; False at the end of the connection if ``at_end`` may come, else
        RemoteProtocolError there."""
        try:
            data = self._recv(RECV_SIZE)
        except TimeoutError as exc:
            raise httpx.ReadTimeout(f"no answer within {self._timeout}s") from exc
        except OSError as exc:
            raise httpx.ReadError(f"the answer could not be read: {exc}") from exc
        if not data:
            if at_end:
                return False
            if not self._got:
                raise httpx.RemoteProtocolError("Server disconnected without sending a response.")
            raise httpx.RemoteProtocolError("the server closed the connection mid-answer")
        self._got = True
        if self._position:
            del self._buffer[: self._position]
            self._position = 0
        self._buffer += data
        return True


def _parse_head(head: bytes) -> tuple[str, int, str, dict[str, str]]:
    """(HTTP version, status, reason, headers) of an answer's head.

    Decoded once as Latin-1 (every byte is a character), then split: half the CPU of
    decoding field by field, for the 15-odd fields of a Graph API answer.
    """
    lines = head.decode("latin-1").split("\r\n")
    version, _, rest = lines[0].partition(" ")
    code, _, reason = rest.partition(" ")
    if version not in ("HTTP/1.1", "HTTP/1.0") or len(code) != 3 or not code.isdigit():
        raise httpx.RemoteProtocolError(f"not an HTTP/1.x status line: {lines[0][:60]!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon or not name or " " in name or "\t" in name:  # or a folded line
            raise httpx.RemoteProtocolError(f"a malformed header line: {line[:60]!r}")
        key = name.lower()
        value = value.strip(" \t")
        if key in headers:
            headers[key] += ", " + value
        else:
            headers[key] = value
    return version, int(code), reason, headers


def _keeps_alive(version: str, headers: dict[str, str]) -> bool:
    """Whether the server keeps the connection open after this answer (RFC 9112 9.3)."""
    connection = headers.get("connection")
    if connection is None:
        return version == "HTTP/1.1"
    options = {option.strip().lower() for option in connection.split(",")}
    if "close" in options:
        return False
    return version == "HTTP/1.1" or "keep-alive" in options


def _content_length(value: str) -> int:
    """A Content-Length header's value (the same number repeated is one, RFC 9110 8.6)."""
    if value.isascii() and value.isdigit():
        return int(value)
    numbers = {part.strip() for part in value.split(",")}
    if len(numbers) != 1:
        raise httpx.RemoteProtocolError(f"conflicting Content-Length values: {value[:60]!r}")
    number = numbers.pop()
    if not number.isdigit() or not number.isascii():
        raise httpx.RemoteProtocolError(f"a malformed Content-Length: {value[:60]!r}")
    return int(number)


def _read_chunked(reader: _Reader) -> bytes:
    """A ``chunked`` body, its chunk extensions and trailer fields dropped."""
    chunks: list[bytes] = []
    size = total = 0
    while True:
        line = reader.until(b"\r\n", MAX_HEAD)
        digits = line.partition(b";")[0].strip(b" \t")
        if not _CHUNK_SIZE.fullmatch(digits):
            raise httpx.RemoteProtocolError(f"a malformed chunk size: {line[:40]!r}")
        size = int(digits, 16)
        if size == 0:
            break
        total += size
        if total > MAX_BODY:
            raise httpx.RemoteProtocolError(f"a chunked body over {MAX_BODY} bytes")
        chunks.append(reader.exactly(size))
        if reader.exactly(2) != b"\r\n":
            raise httpx.RemoteProtocolError("a chunk did not end where its size said")
    trailers = 0
    while line := reader.until(b"\r\n", MAX_HEAD):
        trailers += len(line)
        if trailers > MAX_HEAD:
            raise httpx.RemoteProtocolError(f"trailer fields over {MAX_HEAD} bytes")
    return b"".join(chunks)


def _decoded(body: bytes, encoding: str) -> bytes:
    """``body`` undone from gzip or deflate (identity and unknown codings: as it came)."""
    coding = encoding.strip().lower()
    if coding in ("gzip", "x-gzip"):
        wbits = 16 + zlib.MAX_WBITS
    elif coding == "deflate":
        wbits = zlib.MAX_WBITS if body[:1] == b"\x78" else -zlib.MAX_WBITS  # zlib, else raw
    else:
        return body
    inflate = zlib.decompressobj(wbits)
    try:
        plain = inflate.decompress(body, MAX_BODY)
    except zlib.error as exc:
        raise httpx.RemoteProtocolError(f"a {coding} body that does not inflate: {exc}") from exc
    if inflate.unconsumed_tail:
        raise httpx.RemoteProtocolError(f"a {coding} body over {MAX_BODY} bytes inflated")
    return plain
