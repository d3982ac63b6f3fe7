"""The servers a soak runs on: a topology, `statehq serve` on it, what the store holds."""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import redis

from ...store.keys import KeySpace
from ...testing import webhooks as wh
from ...testing.fake_graph import FakeGraph
from ...testing.topologies import (
    HOST,
    Cluster,
    SentinelSet,
    start_cluster,
    start_sentinel,
    start_standalone,
)
from .. import procs
from .plan import (
    ACCESS_TOKEN,
    APP_SECRET,
    PREFIX,
    SoakPlan,
    Topology,
)


def _start(kind: str, directory: Path) -> Topology:
    """A fresh topology of ``kind`` (``standalone``, ``cluster`` or ``sentinel``)."""
    topology: Topology
    if kind == "cluster":
        topology = start_cluster(directory)
    elif kind == "sentinel":
        topology = start_sentinel(directory)
    elif kind == "standalone":
        topology = start_standalone(directory)
    else:
        raise ValueError(f"unknown topology {kind!r}")
    for port in _data_ports(topology):  # room for every session: 256 MB may not be
        _command(port, "CONFIG", "SET", "maxmemory", "2gb")
    return topology


def _data_ports(topology: Topology) -> list[int]:
    if isinstance(topology, Cluster):
        return [node.port for node in topology.nodes]
    if isinstance(topology, SentinelSet):
        return [node.port for node in topology.servers]
    return [topology.port]


def masters(topology: Topology) -> list[int]:
    """The ports of the servers taking writes now."""
    if isinstance(topology, Cluster):
        return topology.masters()
    if isinstance(topology, SentinelSet):
        return [topology.master_port()]
    return [topology.port]


def _command(port: int, *args: str) -> Any:
    with redis.Redis(host=HOST, port=port, socket_timeout=5.0, decode_responses=True) as client:
        return client.execute_command(*args)


def used_memory(ports: list[int]) -> tuple[int, int]:
    """``used_memory`` and ``mem_replication_backlog`` summed over the servers on ``ports``."""
    infos = [_command(port, "INFO", "memory") for port in ports]
    used = sum(int(info["used_memory"]) for info in infos)
    return used, sum(int(info.get("mem_replication_backlog", 0)) for info in infos)


def sessions(ports: list[int]) -> int:
    """The session documents held by the servers on ``ports`` (SCAN, never KEYS)."""
    pattern = KeySpace(PREFIX).doc_pattern()
    count = 0
    for port in ports:
        with redis.Redis(host=HOST, port=port, socket_timeout=10.0) as client:
            count += sum(1 for _ in client.scan_iter(match=pattern, count=1000))
    return count


def memory_by_kind(ports: list[int], per: int) -> dict[str, float]:
    """``MEMORY USAGE`` of every statehq key on ``ports`` by kind, over ``per`` sessions."""
    totals: Counter[str] = Counter()
    for port in ports:
        with redis.Redis(host=HOST, port=port, socket_timeout=30.0) as client:
            batch: list[bytes] = []
            for key in client.scan_iter(match=f"{PREFIX}:*", count=1000):
                batch.append(key)
                if len(batch) >= 1000:
                    _add_usage(client, batch, totals)
                    batch = []
            _add_usage(client, batch, totals)
    return {kind: round(total / max(per, 1), 1) for kind, total in totals.most_common()}


def _add_usage(client: redis.Redis, keys: list[bytes], totals: Counter[str]) -> None:
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.memory_usage(key)
    for key, size in zip(keys, pipe.execute(), strict=True):
        totals[key_kind(key.decode(errors="replace"))] += int(size or 0)


def key_kind(key: str) -> str:
    """What a statehq key holds, with the member and message ids left out.

    ``soak:{whatsapp:263...}:msg:wamid.X`` is ``msg:*``; ``soak:{...}:doc`` is ``doc``;
    ``soak:audit-tail:2`` (a key every member shares) is ``audit-tail (shared)``.
    """
    rest = key.removeprefix(f"{PREFIX}:")
    if "}:" not in rest:
        return f"{rest.split(':')[0]} (shared)"
    rest = rest.split("}:", 1)[1]
    head = rest.split(":")[0]
    return f"{head}:*" if head in ("msg", "rcvd", "outbox") else rest


@contextlib.contextmanager
def _serving(url: str, graph_url: str, work: Path, plan: SoakPlan) -> Iterator[list[int]]:
    """``plan.processes`` ``statehq serve`` processes on the store at ``url``; their ports."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STATEHQ_", "WHATSAPP_"))}
    env.update(
        STATEHQ_REDIS_URL=url,
        STATEHQ_DATA_DIR=str(work / "data"),
        STATEHQ_KEY_PREFIX=PREFIX,
        STATEHQ_WORKERS=str(plan.workers),
        STATEHQ_RECONCILE_INTERVAL="2",
        WHATSAPP_APP_SECRET=APP_SECRET,
        WHATSAPP_VERIFY_TOKEN="soak",
        WHATSAPP_ACCESS_TOKEN=ACCESS_TOKEN,
        WHATSAPP_PHONE_NUMBER_ID=wh.PHONE_NUMBER_ID,
        WHATSAPP_GRAPH_URL=graph_url,
    )
    ports = [procs.free_port() for _ in range(plan.processes)]
    with contextlib.ExitStack() as stack:
        for n, port in enumerate(ports):
            args = [sys.executable, "-m", "statehq.cli.main", "serve", "--port", str(port)]
            ready = partial(procs.answers, f"http://{HOST}:{port}/readyz")
            stack.enter_context(procs.started(args, env, work / f"serve-{n}.log", ready))
        yield ports


@contextlib.contextmanager
def _world(kind: str, plan: SoakPlan) -> Iterator[tuple[Topology, FakeGraph, list[int]]]:
    """A fresh topology, the fake Graph API and ``statehq serve`` on them; all gone after."""
    work = Path(tempfile.mkdtemp(prefix=f"statehq-soak-{kind}-"))
    try:
        with (
            _start(kind, work / "store") as topology,
            FakeGraph(access_token=ACCESS_TOKEN) as graph,
            _serving(topology.url, graph.url, work, plan) as ports,
        ):
            yield topology, graph, ports
    finally:
        shutil.rmtree(work, ignore_errors=True)
