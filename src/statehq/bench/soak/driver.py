"""The soak's load generator: signed webhooks on an open-loop schedule, replies tallied."""

from __future__ import annotations

import asyncio
import gc
import itertools
import random
import time
from collections import Counter
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

from ...testing import webhooks as wh
from ...testing.fake_graph import FakeGraph
from ...testing.topologies import (
    HOST,
)
from ..load import _exchange, percentile
from .plan import (
    APP_SECRET,
    NO_ANSWER,
    Progress,
    SoakPlan,
    Tally,
)


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
