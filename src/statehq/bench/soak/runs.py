"""The soak's runs: steady load per topology, and a master killed under load."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter
from typing import Any

import redis
from redis.cluster import ClusterNode, RedisCluster

from ...store.keys import KeySpace
from ...testing.topologies import (
    HOST,
    Cluster,
    Standalone,
)
from .driver import (
    Driver,
)
from .plan import (
    MIN_REPLICAS,
    PREFIX,
    FailoverResult,
    Progress,
    SoakPlan,
    SoakResult,
    SoakResults,
    Topology,
)
from .servers import (
    _command,
    _world,
    masters,
    memory_by_kind,
    sessions,
    used_memory,
)


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
