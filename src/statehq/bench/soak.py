"""The soak benchmark: many members, bursts, redeliveries and statuses, and a failover.

``statehq bench --suite soak`` starts each topology from the Valkey binary on loopback
(:mod:`statehq.testing.topologies`), ``statehq serve`` against it (2 processes x 2
worker processes, as in the service benchmark) and the fake Graph API in this process,
then drives signed webhooks from an asyncio load generator:

* an open-loop schedule of events at a fixed rate for a fixed time; most events are
  one message from one member (every member writes once before any writes twice),
  some are a burst of 3-5 messages sent back to back by one member, some are a
  delivery status for a reply already sent; 5 % of messages are delivered twice (the
  same signed body again, 0-3 s later), as Meta does;
* every request not answered 200 is sent again until it is, as Meta does; a member's
  messages go one after another with timestamps that never decrease, so the order
  the member sent them in is the order statehq must answer them in.

Counted from what the fake Graph API received (each reply carries
``biz_opaque_callback_data`` = ``<message id>#<n>``): processed (messages answered),
lost (acknowledged 200, never answered), duplicated replies (one ``<id>#<n>`` twice),
order violations (a member's reply answering an earlier message after a later one's),
the latency from sending a message to its reply, the acknowledgement latency, and the
store's memory (``used_memory`` of every master, after less before) per live session.

The failover scenario runs the same load on a Cluster and on a Sentinel set, SIGKILLs a
master mid-load and keeps the load going through the failover; once with the servers'
defaults and once with ``min-replicas-to-write 1`` on the masters. statehq never calls
``WAIT``, so neither setting makes a write acknowledged by a master survive that
master's death: messages lost that way are reported, with why each was lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import json
import os
import random
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import redis
from redis.cluster import ClusterNode, RedisCluster

from ..store.keys import KeySpace
from ..testing import webhooks as wh
from ..testing.fake_graph import FakeGraph
from ..testing.topologies import (
    HOST,
    Cluster,
    SentinelSet,
    Standalone,
    start_cluster,
    start_sentinel,
    start_standalone,
)
from .load import _exchange, percentile
from .service import _answers, _free_port, _process

APP_SECRET = "soak-app-secret"
ACCESS_TOKEN = "soak-access-token"
PREFIX = "soak"
DEFAULTS = "defaults"
MIN_REPLICAS = "min-replicas-to-write 1"
SETTINGS = (DEFAULTS, MIN_REPLICAS)
NO_ANSWER = "no answer"
Progress = Callable[[str], None]
Topology = Standalone | Cluster | SentinelSet


@dataclass(frozen=True)
class SoakPlan:
    """How many members, how fast, how long; for the steady load and the failover."""

    members: int
    rate: float  # events/s: a message, a burst of messages, or a status
    seconds: float
    failover_members: int
    failover_rate: float
    failover_before: float  # seconds of load before the master is killed
    failover_after: float  # seconds of load after the kill
    topologies: tuple[str, ...] = ("standalone", "cluster")
    failovers: tuple[str, ...] = ("cluster", "sentinel")
    settings: tuple[str, ...] = SETTINGS
    processes: int = 2
    workers: int = 2
    burst_share: float = 0.1
    duplicate_share: float = 0.05
    status_share: float = 0.15
    drain_seconds: float = 120.0  # at most, once the load ends, for the replies to arrive
    warmup: float = 5.0  # seconds of load left out of the latencies (cold workers)

    @classmethod
    def for_run(cls, quick: bool) -> SoakPlan:
        """Short runs for a smoke test, minutes per topology for figures worth keeping."""
        if quick:
            return cls(1000, 50.0, 10.0, 300, 40.0, 3.0, 8.0, warmup=2.0)
        return cls(10_000, 100.0, 150.0, 2000, 60.0, 10.0, 30.0)


@dataclass
class Tally:
    """What one run's traffic and the fake Graph API's replies add up to."""

    messages: int = 0  # distinct messages sent
    deliveries: int = 0  # webhook requests that were answered 200
    duplicates_sent: int = 0  # messages delivered a second time on purpose
    statuses_sent: int = 0
    acknowledged: int = 0  # distinct messages answered 200
    unacknowledged: int = 0  # never answered 200 before the load generator gave up
    processed: int = 0  # distinct messages the fake Graph API got a reply to
    lost: int = 0  # acknowledged, never answered
    duplicated: int = 0  # replies (<id>#<n>) delivered more than once
    order_violations: int = 0
    answers: dict[str, int] = field(default_factory=dict)  # HTTP status -> requests
    reply_p50_ms: float = 0.0
    reply_p99_ms: float = 0.0
    reply_max_ms: float = 0.0
    ack_p50_ms: float = 0.0
    ack_p99_ms: float = 0.0


@dataclass
class SoakResult:
    """The steady load on one topology."""

    topology: str
    members: int
    seconds: float
    tally: Tally
    processed_per_second: float = 0.0
    sessions: int = 0
    memory_before: int = 0  # used_memory of the masters, summed
    memory_after: int = 0
    backlog_before: int = 0  # mem_replication_backlog of the masters, summed
    backlog_after: int = 0
    bytes_per_session: float = 0.0  # used_memory's growth over the sessions
    data_per_session: float = 0.0  # the same less the replication backlog's growth
    by_kind: dict[str, float] = field(default_factory=dict)  # key kind -> bytes per session


@dataclass
class FailoverResult:
    """A master killed under load, on one topology with one setting."""

    topology: str
    setting: str
    tally: Tally
    failover_s: float = 0.0  # from the kill until a replica serves the killed master's data
    webhook_outage_s: float = 0.0  # from the kill until the last answer other than 200
    reply_stall_s: float = 0.0  # the longest time no reply at all went out, after the kill
    processed_after: int = 0  # messages sent after the failover that were answered
    lost_why: dict[str, int] = field(default_factory=dict)


@dataclass
class SoakResults:
    """Everything one soak run measured."""

    loads: list[SoakResult] = field(default_factory=list)
    failovers: list[FailoverResult] = field(default_factory=list)
    seconds: float = 0.0  # the whole run, start-ups included


# -- the load generator ------------------------------------------------------------------


def _request(body: dict[str, Any]) -> bytes:
    """A signed webhook POST, as raw HTTP/1.1."""
    raw, headers = wh.signed(body, APP_SECRET)
    head = (
        "POST /webhooks/whatsapp HTTP/1.1\r\nHost: soak\r\n"
        "Content-Type: application/json\r\n"
        f"X-Hub-Signature-256: {headers['X-Hub-Signature-256']}\r\n"
        f"Content-Length: {len(raw)}\r\n\r\n"
    )
    return head.encode() + raw


Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class Http:
    """Keep-alive HTTP/1.1 connections to the ``statehq serve`` processes, taken in turn."""

    def __init__(self, ports: list[int], timeout: float = 10.0) -> None:
        self.ports = ports
        self.timeout = timeout
        self._turn = itertools.count()
        self._idle: dict[int, list[Connection]] = {port: [] for port in ports}

    async def post(self, request: bytes) -> str:
        """Send one request; its HTTP status, or ``no answer``.

        A kept-alive connection the server closed meanwhile is replaced by a fresh one.
        """
        port = self.ports[next(self._turn) % len(self.ports)]
        idle = self._idle[port]
        if idle:
            answer = await self._send(port, idle.pop(), request)
            if answer is not None:
                return answer
        try:
            connection = await self._open(port)
        except (OSError, TimeoutError):
            return NO_ANSWER
        return await self._send(port, connection, request) or NO_ANSWER

    async def _send(self, port: int, connection: Connection, request: bytes) -> str | None:
        """The answer's status (``no answer`` after the timeout); None if the connection
        failed (the server had closed it)."""
        try:
            async with asyncio.timeout(self.timeout):
                status = await _exchange(*connection, request)
        except TimeoutError:
            connection[1].close()
            return NO_ANSWER
        except (OSError, asyncio.IncompleteReadError, ValueError):
            connection[1].close()
            return None
        self._idle[port].append(connection)
        return str(status)

    async def _open(self, port: int) -> Connection:
        async with asyncio.timeout(self.timeout):
            return await asyncio.open_connection(HOST, port)

    def close(self) -> None:
        """Close every idle connection."""
        for idle in self._idle.values():
            for _, writer in idle:
                writer.close()
            idle.clear()


@dataclass
class Sent:
    """One message: whose, its place in the member's order, when it was due."""

    member: str
    seq: int
    due: float
    acknowledged: bool = False


class Replies:
    """What the fake Graph API received, read as it comes."""

    def __init__(self, graph: FakeGraph) -> None:
        self.graph = graph
        self._seen = 0
        self.first_at: dict[str, float] = {}  # message id -> its first reply's arrival
        self.callbacks: Counter[str] = Counter()  # <message id>#<n> -> times delivered
        self.order: dict[str, list[str]] = {}  # member -> callbacks in arrival order
        self.times: list[float] = []  # arrival of every accepted reply
        self.sent_ids: list[tuple[str, str]] = []  # (member, wamid) of replies, for statuses

    def update(self) -> None:
        """Read the replies that arrived since the last call."""
        fresh = self.graph.received()[self._seen :]
        self._seen += len(fresh)
        for record in fresh:
            if not record.ok or record.is_read:
                continue
            to, callback = record.body.get("to"), record.body.get("biz_opaque_callback_data")
            self.times.append(record.at)
            wamids = record.answer.get("messages") or [{}]
            if isinstance(to, str) and "id" in wamids[0]:
                self.sent_ids.append((to, str(wamids[0]["id"])))
            if not isinstance(callback, str) or not isinstance(to, str):
                continue
            self.callbacks[callback] += 1
            self.first_at.setdefault(callback.split("#")[0], record.at)
            self.order.setdefault(to, []).append(callback)


class Driver:
    """Members sending messages, bursts, redeliveries and statuses on an open-loop schedule."""

    def __init__(
        self, ports: list[int], graph: FakeGraph, members: int, plan: SoakPlan, seed: int
    ) -> None:
        self.http = Http(ports)
        self.replies = Replies(graph)
        self.plan = plan
        self.rng = random.Random(seed)
        self.members = [f"2637{seed % 100:02d}{n:06d}" for n in range(members)]
        self._first_pass = self.rng.sample(self.members, len(self.members))
        self._locks: dict[str, asyncio.Lock] = {}
        self._last_ts: dict[str, int] = {}
        self._seq: Counter[str] = Counter()
        self._tasks: set[asyncio.Task[None]] = set()
        self.give_up = float("inf")
        self.sent: dict[str, Sent] = {}
        self.answers: Counter[str] = Counter()
        self.ack_latencies: list[tuple[float, float]] = []  # (when it was due, seconds)
        self.started = 0.0
        self.non_200_at: list[float] = []
        self.duplicates_sent = 0
        self.statuses_sent = 0

    # -- the schedule --------------------------------------------------------------------

    async def load(self, seconds: float, rate: float) -> None:
        """``rate`` events/s for ``seconds``; returns once each was answered 200 or given up."""
        start = time.monotonic()
        self.started = self.started or start
        self.give_up = start + seconds + 60.0
        for n in range(int(seconds * rate)):
            due = start + n / rate
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            self._spawn(self._event(due))
        while self._tasks:
            await asyncio.gather(*list(self._tasks))

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task: asyncio.Task[None] = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _member(self) -> str:
        if self._first_pass:
            return self._first_pass.pop()
        return self.rng.choice(self.members)

    async def _event(self, due: float) -> None:
        roll = self.rng.random()
        if roll < self.plan.status_share and self.replies.sent_ids:
            await self._status(due)
            return
        burst = roll > 1.0 - self.plan.burst_share
        await self._messages(self._member(), self.rng.randint(3, 5) if burst else 1, due)

    async def _messages(self, member: str, count: int, due: float) -> None:
        """``count`` messages from ``member``, one after the other, in the member's order."""
        async with self._locks.setdefault(member, asyncio.Lock()):
            for _ in range(count):
                ts = max(int(time.time()), self._last_ts.get(member, 0))
                self._last_ts[member] = ts
                self._seq[member] += 1
                message = wh.text(member, "hi", ts=ts)
                sent = self.sent[message["id"]] = Sent(member, self._seq[member], due)
                request = _request(wh.payload([message]))
                sent.acknowledged = await self._deliver(request, due)
                if self.rng.random() < self.plan.duplicate_share:
                    self._spawn(self._again(request, self.rng.uniform(0.0, 3.0)))
                due = time.monotonic()

    async def _again(self, request: bytes, delay: float) -> None:
        """Deliver a message a second time (a redelivery, as Meta makes)."""
        await asyncio.sleep(delay)
        self.duplicates_sent += 1
        await self._deliver(request, time.monotonic())

    async def _status(self, due: float) -> None:
        """A delivery status for a reply already sent."""
        member, wamid = self.rng.choice(self.replies.sent_ids)
        state = self.rng.choice(("delivered", "read"))
        self.statuses_sent += 1
        await self._deliver(_request(wh.payload(statuses=[wh.status(member, wamid, state)])), due)

    async def _deliver(self, request: bytes, due: float) -> bool:
        """POST until answered 200 (True) or the generator gives up (False), as Meta does.

        The first attempt's latency counts from when it was due (coordinated omission).
        """
        started = due
        while True:
            answer = await self.http.post(request)
            now = time.monotonic()
            self.answers[answer] += 1
            self.ack_latencies.append((started, now - started))
            if answer == "200":
                return True
            self.non_200_at.append(now)
            if now > self.give_up:
                return False
            await asyncio.sleep(0.25)
            started = time.monotonic()

    # -- watching ----------------------------------------------------------------------

    async def watch(self, label: str, every: float, progress: Progress) -> None:
        """Read replies each second, and say how the run goes every ``every`` s (cancel it).

        What this process holds grows all run long (every message sent, every reply the
        fake Graph API received): left to the garbage collector, each full collection
        stalls this process, the load and the fake Graph API with it, for 100-200 ms. So
        what is there is frozen out of the collector's way each second.
        """
        started = last = time.monotonic()
        try:
            while True:
                await asyncio.sleep(1.0)
                self.replies.update()
                gc.freeze()
                if time.monotonic() - last >= every:
                    last = time.monotonic()
                    progress(f"  {label}: {last - started:.0f} s, {self._said()}")
        finally:
            gc.unfreeze()

    def _said(self) -> str:
        acked = sum(s.acknowledged for s in self.sent.values())
        return (
            f"{len(self.sent):,} messages sent, {acked:,} acknowledged, "
            f"{len(self.replies.first_at):,} answered, answers {dict(self.answers)}"
        )

    async def drain(self, wait: float, stall: float = 30.0) -> None:
        """Wait until every acknowledged message was answered, ``wait`` s passed, or no
        reply came for ``stall`` s."""
        deadline = time.monotonic() + wait
        waiting = {m for m, s in self.sent.items() if s.acknowledged}
        last_count, last_change = -1, time.monotonic()
        while True:
            self.replies.update()
            waiting -= self.replies.first_at.keys()
            now = time.monotonic()
            if len(self.replies.times) != last_count:
                last_count, last_change = len(self.replies.times), now
            if not waiting or now > deadline or now - last_change > stall:
                return
            await asyncio.sleep(0.5)

    def tally(self) -> Tally:
        """The counts of everything sent so far; the latencies after the plan's warm-up."""
        self.replies.update()
        answered = self.replies.first_at
        acked = {m for m, s in self.sent.items() if s.acknowledged}
        ours = {c: n for c, n in self.replies.callbacks.items() if c.split("#")[0] in self.sent}
        warm = self.started + self.plan.warmup
        to_reply = [
            answered[m] - s.due for m, s in self.sent.items() if m in answered and s.due >= warm
        ]
        acks = [seconds for due, seconds in self.ack_latencies if due >= warm]
        return Tally(
            messages=len(self.sent),
            deliveries=self.answers["200"],
            duplicates_sent=self.duplicates_sent,
            statuses_sent=self.statuses_sent,
            acknowledged=len(acked),
            unacknowledged=len(self.sent) - len(acked),
            processed=len(answered.keys() & self.sent.keys()),
            lost=len(acked - answered.keys()),
            duplicated=sum(n - 1 for n in ours.values()),
            order_violations=order_violations(self.sent, self.replies.order),
            answers=dict(self.answers),
            reply_p50_ms=round(percentile(to_reply, 0.50), 1),
            reply_p99_ms=round(percentile(to_reply, 0.99), 1),
            reply_max_ms=round(max(to_reply, default=0.0) * 1000, 1),
            ack_p50_ms=round(percentile(acks, 0.50), 2),
            ack_p99_ms=round(percentile(acks, 0.99), 2),
        )

    def lost(self) -> list[str]:
        """The messages acknowledged and never answered."""
        answered = self.replies.first_at
        return [m for m, s in self.sent.items() if s.acknowledged and m not in answered]


def order_violations(sent: dict[str, Sent], order: dict[str, list[str]]) -> int:
    """Replies that reached a member after a reply to a message the member sent later.

    ``order``: each member's ``<message id>#<n>`` in the order the replies arrived. A
    reply delivered again is counted as duplicated, not here.
    """
    violations = 0
    for callbacks in order.values():
        latest, seen = 0, set()
        for callback in callbacks:
            if callback in seen:
                continue
            seen.add(callback)
            message = sent.get(callback.split("#")[0])
            if message is None:
                continue
            if message.seq < latest:
                violations += 1
            latest = max(latest, message.seq)
    return violations


# -- the servers -------------------------------------------------------------------------


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
    ports = [_free_port() for _ in range(plan.processes)]
    with contextlib.ExitStack() as stack:
        for n, port in enumerate(ports):
            args = [sys.executable, "-m", "statehq.cli.main", "serve", "--port", str(port)]
            ready = partial(_answers, f"http://{HOST}:{port}/readyz")
            stack.enter_context(_process(args, env, work / f"serve-{n}.log", ready))
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


# -- the runs ----------------------------------------------------------------------------


def run_soak(plan: SoakPlan, progress: Progress) -> SoakResults:
    """The steady load on each topology of the plan, then each failover; their figures."""
    started = time.monotonic()
    results = SoakResults()
    for kind in plan.topologies:
        results.loads.append(soak(kind, plan, progress))
    for kind in plan.failovers:
        for setting in plan.settings:
            results.failovers.append(failover(kind, setting, plan, progress))
    results.seconds = round(time.monotonic() - started, 1)
    return results


def soak(kind: str, plan: SoakPlan, progress: Progress) -> SoakResult:
    """The steady load of the plan on a fresh ``kind`` topology."""
    progress(
        f"soak: {kind}: {plan.members:,} members, {plan.rate:g} events/s for {plan.seconds:g} s ..."
    )
    with _world(kind, plan) as (topology, graph, ports):
        before = used_memory(masters(topology))
        driver = Driver(ports, graph, plan.members, plan, seed=21)
        started = time.monotonic()
        asyncio.run(_steady(driver, kind, plan, progress))
        tally = driver.tally()
        last = max(driver.replies.times, default=started)
        ports_now = masters(topology)
        result = SoakResult(kind, plan.members, plan.seconds, tally)
        result.processed_per_second = round(tally.processed / max(last - started, 1e-9), 1)
        result.memory_before, result.backlog_before = before
        result.memory_after, result.backlog_after = used_memory(ports_now)
        result.sessions = sessions(ports_now)
        _per_session(result)
        result.by_kind = memory_by_kind(ports_now, result.sessions)
    progress(f"  {_said_soak(result)}")
    return result


def _per_session(result: SoakResult) -> None:
    """Memory per session: all of ``used_memory``'s growth, and less the backlog's."""
    growth = result.memory_after - result.memory_before
    backlog = result.backlog_after - result.backlog_before
    per = max(result.sessions, 1)
    result.bytes_per_session = round(growth / per, 1)
    result.data_per_session = round((growth - backlog) / per, 1)


async def _steady(driver: Driver, kind: str, plan: SoakPlan, progress: Progress) -> None:
    watcher = asyncio.create_task(driver.watch(kind, _every(plan.seconds), progress))
    try:
        await driver.load(plan.seconds, plan.rate)
        await driver.drain(plan.drain_seconds)
    finally:
        watcher.cancel()
        driver.http.close()


def _every(seconds: float) -> float:
    return 5.0 if seconds < 60 else 15.0


def failover(kind: str, setting: str, plan: SoakPlan, progress: Progress) -> FailoverResult:
    """A master of a fresh ``kind`` topology SIGKILLed under load, with ``setting``."""
    progress(
        f"soak: failover on {kind} ({setting}): {plan.failover_rate:g} events/s, the master "
        f"killed after {plan.failover_before:g} s, {plan.failover_after:g} s more ..."
    )
    with _world(kind, plan) as (topology, graph, ports):
        if setting == MIN_REPLICAS:
            for port in masters(topology):
                _command(port, "CONFIG", "SET", "min-replicas-to-write", "1")
                _command(port, "CONFIG", "SET", "min-replicas-max-lag", "10")
        driver = Driver(ports, graph, plan.failover_members, plan, seed=31)
        killed_at, promoted_at = asyncio.run(_with_failover(driver, topology, plan, progress))
        result = FailoverResult(kind, setting, driver.tally())
        result.lost_why = lost_why(topology, driver)
    result.failover_s = round(promoted_at - killed_at, 2)
    result.webhook_outage_s = round(
        max((t - killed_at for t in driver.non_200_at if t >= killed_at), default=0.0), 2
    )
    result.reply_stall_s = round(_longest_gap(driver.replies.times, killed_at), 2)
    answered = driver.replies.first_at
    result.processed_after = sum(
        1 for m, s in driver.sent.items() if s.due > promoted_at and m in answered
    )
    progress(f"  {_said_failover(result)}")
    return result


async def _with_failover(
    driver: Driver, topology: Topology, plan: SoakPlan, progress: Progress
) -> tuple[float, float]:
    """The load with a master killed during it: when it was killed, when it was replaced."""
    if isinstance(topology, Standalone):
        raise ValueError("a standalone server has no replica to fail over to")
    seconds = plan.failover_before + plan.failover_after
    watcher = asyncio.create_task(driver.watch("failover", _every(seconds), progress))
    try:
        load = asyncio.create_task(driver.load(seconds, plan.failover_rate))
        await asyncio.sleep(plan.failover_before)
        killed_at = time.monotonic()
        port = await asyncio.to_thread(topology.kill_master)
        promoted = await asyncio.to_thread(topology.wait_for_failover, port)
        promoted_at = time.monotonic()
        progress(
            f"  killed the master on port {port}; port {promoted} took over after "
            f"{promoted_at - killed_at:.1f} s"
        )
        await load
        await driver.drain(plan.drain_seconds)
    finally:
        watcher.cancel()
        driver.http.close()
    return killed_at, promoted_at


def _longest_gap(times: list[float], since: float) -> float:
    """The longest time between replies from ``since`` on (the last one before it counts)."""
    ordered = sorted(times)
    before = [t for t in ordered if t < since]
    after = [t for t in ordered if t >= since]
    points = before[-1:] + after
    return max((b - a for a, b in itertools.pairwise(points)), default=0.0)


def lost_why(topology: Topology, driver: Driver) -> dict[str, int]:
    """Why each lost message was lost, as the store shows it now.

    ``received mark gone``: the webhook's write was acknowledged by the old master and
    never reached the replica that took over (asynchronous replication). ``still
    queued``: in its sender's inbox, not processed. ``dead letter``: set aside.
    ``turn committed``: processed, its reply never sent.
    """
    lost = driver.lost()
    if not lost:
        return {}
    keys = KeySpace(PREFIX)
    reasons: Counter[str] = Counter()
    with _client(topology) as client:
        for message_id in lost:
            member = keys.member(f"whatsapp:{driver.sent[message_id].member}")
            reasons[_why(client, member.received(message_id), member, message_id)] += 1
    return dict(reasons)


def _why(client: redis.Redis | RedisCluster, received: str, member: Any, message_id: str) -> str:
    if not client.exists(received):
        return "received mark gone"
    if client.zscore(member.inbox, message_id) is not None:
        return "still queued"
    if client.hexists(member.dead, message_id):
        return "dead letter"
    if client.exists(member.message(message_id)):
        return "turn committed"
    return "received, then gone"


def _client(topology: Topology) -> redis.Redis | RedisCluster:
    if isinstance(topology, Cluster):
        seeds = topology.masters()
        nodes = [ClusterNode(HOST, port) for port in seeds]  # type: ignore[no-untyped-call]
        return RedisCluster(startup_nodes=nodes, socket_timeout=5.0)
    return redis.Redis(host=HOST, port=masters(topology)[0], socket_timeout=5.0)


def _said_soak(r: SoakResult) -> str:
    t = r.tally
    return (
        f"{t.processed:,} processed ({r.processed_per_second:,.0f}/s), {t.lost} lost, "
        f"{t.duplicated} duplicated, {t.order_violations} out of order; reply p50 "
        f"{t.reply_p50_ms} ms p99 {t.reply_p99_ms} ms; ack p50 {t.ack_p50_ms} ms p99 "
        f"{t.ack_p99_ms} ms; {r.sessions:,} sessions, {r.bytes_per_session:,.0f} bytes each"
    )


def _said_failover(r: FailoverResult) -> str:
    t = r.tally
    return (
        f"{t.acknowledged:,} acknowledged, {t.unacknowledged} never acknowledged, {t.lost} lost "
        f"{r.lost_why}, {t.duplicated} duplicated, {t.order_violations} out of order; "
        f"failover {r.failover_s} s, webhook outage {r.webhook_outage_s} s, reply stall "
        f"{r.reply_stall_s} s; {r.processed_after:,} answered after the failover"
    )


# -- the report --------------------------------------------------------------------------


def write_report(
    results: SoakResults, plan: SoakPlan, machine: dict[str, Any], output: Path
) -> str:
    """Write ``soak.json`` and ``soak.md`` under ``output``; returns the markdown."""
    output.mkdir(parents=True, exist_ok=True)
    data = {"machine": machine, "plan": asdict(plan), "results": asdict(results)}
    (output / "soak.json").write_text(json.dumps(data, indent=2) + "\n")
    markdown = "\n".join([*_head(plan, machine, results), *_loads(results), *_failovers(results)])
    (output / "soak.md").write_text(markdown + "\n")
    return markdown + "\n"


def _head(plan: SoakPlan, machine: dict[str, Any], results: SoakResults) -> list[str]:
    return [
        "# statehq soak: many members, bursts, redeliveries, a failover",
        "",
        f"{machine.get('date', '')}, {machine.get('cpu_count')} CPUs, Valkey "
        f"{machine.get('valkey')}, `statehq bench --suite soak` ({results.seconds:,.0f} s in "
        f"all); {plan.processes} `statehq serve` processes x {plan.workers} worker processes "
        "on each topology, started fresh from the Valkey binary on loopback; the fake Graph "
        "API and the load generator in one process. Each event of the open-loop schedule is "
        f"a message ({plan.burst_share:.0%} of them a burst of 3-5 from one member, sent back "
        f"to back) or a delivery status for a reply already sent ({plan.status_share:.0%}); "
        f"{plan.duplicate_share:.0%} of the messages are delivered a second time 0-3 s later. "
        "Every request not answered 200 is sent again, as Meta does.",
    ]


def _loads(results: SoakResults) -> list[str]:
    lines = [
        "",
        "## Steady load",
        "",
        "| topology | members | seconds | messages | redelivered | statuses | processed "
        "| processed/s | lost | duplicated | out of order | reply p50 | reply p99 | ack p50 "
        "| ack p99 | sessions | memory per session | less replication backlog |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results.loads:
        t = r.tally
        lines.append(
            f"| {r.topology} | {r.members:,} | {r.seconds:g} | {t.messages:,} "
            f"| {t.duplicates_sent:,} | {t.statuses_sent:,} | {t.processed:,} "
            f"| {r.processed_per_second:,.0f} | {t.lost} | {t.duplicated} "
            f"| {t.order_violations} | {t.reply_p50_ms:,.1f} ms | {t.reply_p99_ms:,.1f} ms "
            f"| {t.ack_p50_ms:.2f} ms | {t.ack_p99_ms:.2f} ms | {r.sessions:,} "
            f"| {r.bytes_per_session / 1024:,.1f} KiB | {r.data_per_session / 1024:,.1f} KiB |"
        )
    lines += [
        "",
        "Processed: messages the fake Graph API got a reply to (processed/s: over the time "
        "from the first message to the last reply; the offered rate when the service keeps "
        "up). Lost: acknowledged (200), "
        "never answered. Duplicated: a reply (`<message id>#<n>`) delivered more than once. "
        "Out of order: a reply that reached a member after the reply to a message the member "
        "sent later. Reply: from when the message was due to when its reply reached the fake "
        "Graph API. Ack: each webhook request, from when it was due. Both latencies leave out "
        "what was due in the first seconds of the load (the plan's `warmup`), while the "
        "freshly started workers are still slow. Memory per session: the "
        "masters' `used_memory` after the run less before it, over the session documents "
        "then held: everything a member leaves in the store (the document and its history, "
        "the dedup marks kept for 7 days, the audit trail), not only the document. Less "
        "replication backlog: the same without the growth of `mem_replication_backlog`, a "
        "fixed cost of each master with replicas (up to `repl-backlog-size`, 10 MB by "
        "default in Valkey 8) that a short run spreads over few sessions.",
    ]
    return lines + _memory(results.loads)


def _memory(loads: list[SoakResult]) -> list[str]:
    """Where a session's memory goes: ``MEMORY USAGE`` of each kind of key, per session."""
    kinds = list(dict.fromkeys(k for r in loads for k in r.by_kind))
    if not kinds:
        return []
    lines = [
        "",
        "Where it goes: `MEMORY USAGE` of every key after the run, by kind, per session "
        "(bytes; `*` stands for a message id, shared keys are every member's). The audit "
        "trail is a stream, and Valkey gives a stream's first node `stream-node-max-bytes` "
        "(4 KiB by default) at once: a member's trail costs that from its first entry.",
        "",
        "| key | " + " | ".join(r.topology for r in loads) + " |",
        "|---|" + "---:|" * len(loads),
    ]
    for kind in kinds:
        sizes = " | ".join(f"{r.by_kind.get(kind, 0.0):,.0f}" for r in loads)
        lines.append(f"| `{kind}` | {sizes} |")
    totals = " | ".join(f"**{sum(r.by_kind.values()):,.0f}**" for r in loads)
    lines.append(f"| **total** | {totals} |")
    return lines


def _failovers(results: SoakResults) -> list[str]:
    if not results.failovers:
        return []
    lines = [
        "",
        "## A master killed under load",
        "",
        "| topology | setting | acknowledged | never acknowledged | lost | why lost "
        "| duplicated | out of order | 5xx but 503 | failover | webhook outage "
        "| longest reply stall | answered after failover | reply p99 | reply max |",
        "|---|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results.failovers:
        t = r.tally
        why = ", ".join(f"{k}: {v}" for k, v in r.lost_why.items() if v) or "-"
        lines.append(
            f"| {r.topology} | {r.setting} | {t.acknowledged:,} | {t.unacknowledged} "
            f"| {t.lost} | {why} | {t.duplicated} | {t.order_violations} "
            f"| {_unexpected(t.answers)} | {r.failover_s:.1f} s | {r.webhook_outage_s:.1f} s "
            f"| {r.reply_stall_s:.1f} s "
            f"| {r.processed_after:,} | {t.reply_p99_ms / 1000:,.1f} s "
            f"| {t.reply_max_ms / 1000:,.1f} s |"
        )
    lines += [
        "",
        "SIGKILL of a master after the load ran a while; the load goes on through the "
        "failover. 5xx but 503: answers the webhook should never give (503 is how it says "
        "the store is unavailable; Meta redelivers after either). Failover: from the kill "
        "until a replica serves the killed master's data "
        "and every node agrees. Webhook outage: from the kill until the last answer other "
        "than 200. Longest reply stall: the longest time, after the kill, in which no reply "
        "at all went out. Never acknowledged: messages still refused when the load "
        "generator gave up (60 s after the load ended). Why lost, as the store shows it "
        "afterwards: `received mark gone` is a webhook write the old master acknowledged "
        "that never reached the replica which took over.",
        "",
        "`min-replicas-to-write 1` (with `min-replicas-max-lag 10`, set on the masters "
        "only) makes a master refuse writes while no replica is connected and recent; it "
        "does not make a write wait for a replica. statehq never calls `WAIT`, so a write "
        "the master acknowledged and died before sending is lost under either setting: "
        "replication is asynchronous. On loopback that window is far smaller than across a "
        "network; it is not closed.",
        "",
        "Answers by status:",
        "",
    ]
    for r in results.failovers:
        answers = ", ".join(f"{k}: {v:,}" for k, v in sorted(r.tally.answers.items()))
        lines.append(f"- {r.topology}, {r.setting}: {answers}")
    return lines


def _unexpected(answers: dict[str, int]) -> int:
    """Answers 5xx other than 503 (the webhook's only deliberate 5xx)."""
    return sum(n for code, n in answers.items() if code.startswith("5") and code != "503")
