"""A Redis Cluster of masters with replicas, on loopback (:func:`start_cluster`)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import redis

from .processes import (
    CLUSTER_NODE_TIMEOUT_MS,
    FAILOVER_TIMEOUT,
    HOST,
    START_TIMEOUT,
    Node,
    _answers,
    _base_config,
    _command,
    _kill,
    _link_up,
    _spawn,
    _start_node,
    _tail,
    _Topology,
    _wait,
    cli_for,
    free_ports,
    valkey_binary,
)


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
