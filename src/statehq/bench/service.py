"""End to end: signed webhook requests in, replies counted at a fake Graph API.

Every part is a real process on this machine: the private Valkey, ``statehq serve`` (1, 2
or 4 processes, each with its worker processes), the fake Graph API
(:mod:`statehq.testing.fake_graph`) and two peers answering the very same requests under
the same uvicorn: a bare ASGI endpoint (:mod:`statehq.bench.bare`: reads the body,
answers 200) and pywa's FastAPI webhook handler (:mod:`statehq.bench.pywa_app`: checks the
signature, answers 200, parses and handles the update). The load generator speaks
HTTP/1.1 over raw asyncio streams so that it, not the system under test, is never the
bottleneck (:mod:`statehq.bench.load`). Two phases per target:

1. throughput: every message sent as fast as ``concurrency`` connections allow, spread
   over the target's processes like a load balancer would; for statehq, processed
   messages/s counts until the last reply reached the fake Graph API;
2. latency: an open-loop schedule at ``rate`` requests/s; each acknowledgement's latency
   is measured from when it was due, so a stall is not hidden (coordinated omission).

Lost replies (messages never answered) and duplicated replies (one reply sent twice,
recognised by its ``biz_opaque_callback_data``) are counted; both must be 0. Store
traffic per message comes from the server's counters (:mod:`statehq.bench.traffic`).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import asdict, dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any
from urllib.request import urlopen

import redis

from ..testing import webhooks as wh
from . import procs
from .cpu import CpuMeter
from .load import paced_spread, percentile, signed_requests, spread
from .plan import BenchPlan
from .traffic import Traffic, per_message, read_counters

APP_SECRET = "bench-app-secret"
ACCESS_TOKEN = "bench-access-token"
BARE = "bare ASGI endpoint"
PYWA = "pywa (FastAPI webhook handler)"
STATEHQ = "statehq serve"
Progress = Callable[[str], None]


@dataclass(frozen=True)
class PhaseResult:
    """One target under one phase."""

    target: str
    phase: str
    processes: int
    requests: int
    seconds: float
    acks_per_second: float
    ack_p50_ms: float
    ack_p99_ms: float
    ack_max_ms: float
    errors: int
    processed_per_second: float | None = None
    lost: int | None = None
    duplicated: int | None = None
    handled: int | None = None
    """Messages the peer's own handler was given (pywa), as a check it really parsed them."""
    cpu_ms_per_message: dict[str, float] | None = None


@dataclass(frozen=True)
class StatehqRun:
    """``statehq serve`` with ``processes`` processes: throughput, traffic, maybe latency."""

    processes: int
    workers: int
    throughput: PhaseResult
    traffic: Traffic
    paced: PhaseResult | None = None


@dataclass(frozen=True)
class ServiceResults:
    """The peers' phases and every ``statehq serve`` configuration's."""

    peers: list[PhaseResult]
    runs: list[StatehqRun]
    headline_processes: int

    @property
    def headline(self) -> StatehqRun:
        """The configuration the peers are compared with."""
        return next(r for r in self.runs if r.processes == self.headline_processes)


def clean_env() -> dict[str, str]:
    """This environment without any ``STATEHQ_*``/``WHATSAPP_*`` a user may have set."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("STATEHQ_", "WHATSAPP_"))}


def _phase(
    target: str, phase: str, processes: int, outcome: tuple[list[float], int, float]
) -> PhaseResult:
    latencies, errors, seconds = outcome
    return PhaseResult(
        target=target,
        phase=phase,
        processes=processes,
        requests=len(latencies),
        seconds=round(seconds, 3),
        acks_per_second=round(len(latencies) / seconds, 1),
        ack_p50_ms=round(percentile(latencies, 0.50), 2),
        ack_p99_ms=round(percentile(latencies, 0.99), 2),
        ack_max_ms=round(max(latencies) * 1000 if latencies else 0.0, 2),
        errors=errors,
    )


# -- the peers ----------------------------------------------------------------------------


def _handled(ports: list[int], expected: int) -> int:
    """Messages pywa's handlers were given, once its background tasks caught up."""
    deadline, total = time.monotonic() + 10, 0
    while time.monotonic() < deadline:
        total = 0
        for port in ports:
            with urlopen(f"http://127.0.0.1:{port}/_bench/handled", timeout=5) as response:
                total += int(json.load(response)["messages"])
        if total >= expected:
            break
        time.sleep(0.2)
    return total


def run_peer(
    target: str,
    module: list[str],
    plan: BenchPlan,
    requests: list[bytes],
    paced: list[bytes],
    work: Path,
    progress: Progress,
) -> list[PhaseResult]:
    """Both phases against ``plan.headline_processes`` processes of a peer endpoint."""
    count = plan.headline_processes
    progress(f"end to end: {target}, {count} processes, {len(requests):,} requests ...")
    ports = [procs.free_port() for _ in range(count)]
    with ExitStack() as stack:
        for n, port in enumerate(ports):
            args = [sys.executable, "-m", *module, "--port", str(port)]
            log = work / f"{module[0].rsplit('.', 1)[-1]}-{n}.log"
            stack.enter_context(
                procs.started(args, clean_env(), log, partial(procs.port_open, port))
            )
        throughput = _phase(
            target, "throughput", count, asyncio.run(spread(ports, requests, plan.concurrency))
        )
        latency = _phase(
            target,
            f"paced {plan.rate:g}/s",
            count,
            asyncio.run(paced_spread(ports, paced, plan.rate)),
        )
        if target == PYWA:
            throughput = replace(throughput, handled=_handled(ports, len(requests) + len(paced)))
    progress(
        f"  {throughput.acks_per_second:,.0f} acks/s; paced p99 {latency.ack_p99_ms} ms"
        + ("" if throughput.handled is None else f"; {throughput.handled:,} handled")
    )
    return [throughput, latency]


# -- statehq serve ------------------------------------------------------------------------


def _summary(graph_url: str) -> dict[str, Any]:
    with urlopen(f"{graph_url}/_fake/summary", timeout=10) as response:
        summary: dict[str, Any] = json.load(response)
        return summary


def _wait_processed(graph_url: str, expected: int, progress: Progress) -> dict[str, Any]:
    """The fake Graph API's summary once ``expected`` messages were answered (or stalled)."""
    deadline = time.monotonic() + 300
    last_seen, stalled_since = -1, time.monotonic()
    while True:
        summary = _summary(graph_url)
        answered = int(summary["answered_messages"])
        if answered >= expected:
            return summary
        if answered != last_seen:
            last_seen, stalled_since = answered, time.monotonic()
            progress(f"    {answered:,}/{expected:,} answered ...")
        if time.monotonic() > deadline or time.monotonic() - stalled_since > 30:
            return summary
        time.sleep(0.5)


def _with_processing(
    phase: PhaseResult, per_second: float | None, lost: int, summary: dict[str, Any]
) -> PhaseResult:
    return replace(
        phase,
        processed_per_second=None if per_second is None else round(per_second, 1),
        lost=lost,
        duplicated=int(summary["accepted"]) - int(summary["distinct_replies"]),
    )


def _per_message(used: dict[str, float], messages: int) -> dict[str, float]:
    names = {"statehq webhook children": "statehq workers"}
    per = {names.get(k, k): round(v * 1000 / messages, 3) for k, v in used.items()}
    per["total"] = round(sum(per.values()), 3)
    return per


def _serve_env(url: str, plan: BenchPlan, graph_url: str, work: Path, tag: str) -> dict[str, str]:
    return {
        **clean_env(),
        "STATEHQ_REDIS_URL": url,
        "STATEHQ_DATA_DIR": str(work / "data"),
        "STATEHQ_KEY_PREFIX": f"bench{tag}x{random.randrange(10**6)}",  # fresh members per run
        "STATEHQ_WORKERS": str(plan.workers),
        "WHATSAPP_APP_SECRET": APP_SECRET,
        "WHATSAPP_VERIFY_TOKEN": "bench",
        "WHATSAPP_ACCESS_TOKEN": ACCESS_TOKEN,
        "WHATSAPP_PHONE_NUMBER_ID": wh.PHONE_NUMBER_ID,
        "WHATSAPP_GRAPH_URL": graph_url,
    }


def _start_statehq(
    stack: ExitStack, url: str, plan: BenchPlan, processes: int, work: Path
) -> tuple[str, int, list[int], list[int]]:
    """The fake Graph API and ``processes`` serve processes: Graph URL and pid, ports, pids."""
    graph_port = procs.free_port()
    graph_url = f"http://127.0.0.1:{graph_port}"
    graph_args = [sys.executable, "-m", "statehq.testing.fake_graph", "--port", str(graph_port)]
    graph = stack.enter_context(
        procs.started(
            [*graph_args, "--token", ACCESS_TOKEN],
            clean_env(),
            work / f"graph-{processes}.log",
            partial(procs.answers, f"{graph_url}/_fake/summary"),
        )
    )
    env = _serve_env(url, plan, graph_url, work, str(processes))
    ports = [procs.free_port() for _ in range(processes)]
    pids = []
    for n, port in enumerate(ports):
        args = [sys.executable, "-m", "statehq.cli.main", "serve", "--port", str(port)]
        ready = partial(procs.answers, f"http://127.0.0.1:{port}/readyz")
        child = stack.enter_context(
            procs.started(args, env, work / f"serve-{processes}-{n}.log", ready)
        )
        pids.append(child.pid)
    return graph_url, graph.pid, ports, pids


def _warm_up(ports: list[int], plan: BenchPlan, graph_url: str, progress: Progress) -> int:
    """A few messages per worker, answered before the clock starts: every worker is up."""
    count = len(ports) * plan.workers * 4
    warm = signed_requests(count, count, 13, APP_SECRET)
    asyncio.run(spread(ports, warm, plan.concurrency))
    summary = _wait_processed(graph_url, count, progress)
    if int(summary["answered_messages"]) < count:
        raise RuntimeError("statehq serve did not answer its warm-up messages")
    return count


def run_statehq(
    url: str,
    plan: BenchPlan,
    processes: int,
    requests: list[bytes],
    paced: list[bytes] | None,
    store_pid: int | None,
    work: Path,
    progress: Progress,
) -> StatehqRun:
    """Throughput (and latency when ``paced``) of ``processes`` serve processes."""
    progress(
        f"end to end: {STATEHQ}, {processes} process{'es' if processes > 1 else ''} x "
        f"{plan.workers} workers, "
        f"{len(requests):,} messages from {plan.members} members ..."
    )
    with ExitStack() as stack, redis.Redis.from_url(url) as client:
        graph_url, graph_pid, ports, pids = _start_statehq(stack, url, plan, processes, work)
        offset = _warm_up(ports, plan, graph_url, progress)
        meter = CpuMeter(
            {
                "statehq webhook": pids,
                "store": [store_pid] if store_pid else [],
                "fake Graph API": [graph_pid],
            },
            with_children=("statehq webhook",),
        )
        before = read_counters(client)
        meter.start()
        started = time.monotonic()
        acks = asyncio.run(spread(ports, requests, plan.concurrency))
        summary = _wait_processed(graph_url, offset + len(requests), progress)
        done = float(summary["last_at"] or time.monotonic())
        used = meter.stop()
        after = read_counters(client)
        answered = int(summary["answered_messages"]) - offset
        throughput = _with_processing(
            _phase(STATEHQ, "throughput", processes, acks),
            len(requests) / max(done - started, 1e-9),
            len(requests) - answered,
            summary,
        )
        throughput = replace(throughput, cpu_ms_per_message=_per_message(used, len(requests)))
        traffic = per_message(before, after, answered)
        progress(
            f"  {throughput.processed_per_second:,.0f} messages/s processed, "
            f"{throughput.acks_per_second:,.0f} acks/s, lost {throughput.lost}, "
            f"duplicated {throughput.duplicated}; {traffic.round_trips:g} round trips, "
            f"{traffic.commands:g} commands per message"
        )
        latency = None
        if paced is not None:
            offset += len(requests)
            outcome = asyncio.run(paced_spread(ports, paced, plan.rate))
            summary = _wait_processed(graph_url, offset + len(paced), progress)
            lost = offset + len(paced) - int(summary["answered_messages"])
            latency = _with_processing(
                _phase(STATEHQ, f"paced {plan.rate:g}/s", processes, outcome), None, lost, summary
            )
            progress(f"  paced p50 {latency.ack_p50_ms} ms, p99 {latency.ack_p99_ms} ms")
    return StatehqRun(processes, plan.workers, throughput, traffic, latency)


def run_service(
    url: str, plan: BenchPlan, work: Path, progress: Progress, store_pid: int | None = None
) -> ServiceResults:
    """The peers, then every ``statehq serve`` configuration, on the same requests.

    ``store_pid``: the store server's process, whose CPU time is then reported too.
    """
    requests = signed_requests(plan.members, plan.messages, 11, APP_SECRET)
    paced = signed_requests(plan.members, plan.paced_requests, 12, APP_SECRET)
    pywa = ["statehq.bench.pywa_app", "--app-secret", APP_SECRET, "--access-token", ACCESS_TOKEN]
    peers = [
        *run_peer(BARE, ["statehq.bench.bare"], plan, requests, paced, work, progress),
        *run_peer(PYWA, pywa, plan, requests, paced, work, progress),
    ]
    runs = [
        run_statehq(
            url,
            plan,
            count,
            requests,
            paced if count == plan.headline_processes else None,
            store_pid,
            work,
            progress,
        )
        for count in plan.processes
    ]
    return ServiceResults(peers, runs, plan.headline_processes)


def to_json(results: ServiceResults) -> dict[str, Any]:
    """The service figures as plain data."""
    return {
        "peers": [asdict(p) for p in results.peers],
        "runs": [asdict(r) for r in results.runs],
        "headline_processes": results.headline_processes,
    }
