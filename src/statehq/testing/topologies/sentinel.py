"""A master, a replica and three sentinels (:func:`start_sentinel`)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import redis

from .processes import (
    FAILOVER_TIMEOUT,
    HOST,
    SERVICE,
    START_TIMEOUT,
    Node,
    _answers,
    _base_config,
    _command,
    _kill,
    _link_up,
    _quote,
    _spawn,
    _start_node,
    _Topology,
    _wait,
    _write_config,
    free_ports,
    valkey_binary,
)


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
