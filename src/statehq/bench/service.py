"""The service benchmark: signed webhook requests in, replies counted at a fake Graph API.

Every part is a real process on this machine: a private Valkey, ``statehq serve`` (one
or more processes), the fake Graph API (:mod:`statehq.testing.fake_graph`) and, for the
baseline, a bare ASGI endpoint under the same uvicorn (:mod:`statehq.bench.bare`). The
load generator speaks HTTP/1.1 over raw asyncio streams so that it, not the system
under test, is never the bottleneck. Two phases per target:

1. throughput: every message sent as fast as ``concurrency`` connections allow (one
   message per request, each from one of ``members`` members); for statehq, processed
   messages/s counts until the last reply reached the fake Graph API;
2. latency: an open-loop schedule at ``rate`` requests/s; each acknowledgement's latency
   is measured from when it was due, so a stall is not hidden (coordinated omission).

Lost replies (messages never answered) and duplicated replies (one reply sent twice,
recognised by its ``biz_opaque_callback_data``) are counted; both must be 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any
from urllib.request import urlopen

from ..testing import webhooks as wh
from .cpu import CpuMeter
from .load import blast, paced, paced_spread, percentile, signed_requests, spread

APP_SECRET = "bench-app-secret"
ACCESS_TOKEN = "bench-access-token"


@dataclass(frozen=True)
class ServicePlan:
    """How much load, how long."""

    members: int
    messages: int
    concurrency: int
    rate: float
    latency_seconds: float
    processes: int
    workers: int

    @classmethod
    def for_run(cls, quick: bool) -> ServicePlan:
        """Short runs for a smoke test, longer ones for figures worth keeping."""
        if quick:
            return cls(100, 1000, 16, 500.0, 3.0, 2, 2)
        return cls(500, 10_000, 32, 500.0, 10.0, 2, 2)


@dataclass(frozen=True)
class PhaseResult:
    """One target under one phase."""

    target: str
    phase: str
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
    cpu_ms_per_message: dict[str, float] | None = None


# -- processes --------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def _process(
    args: list[str], env: dict[str, str], log: Path, ready: Callable[[], bool]
) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("ab") as out:
        child = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while not ready():
            if child.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{args[2]} did not start:\n{log.read_text()[-2000:]}")
            time.sleep(0.05)
        yield child
    finally:
        child.terminate()
        try:
            child.wait(timeout=20)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def _answers(url: str) -> bool:
    try:
        with urlopen(url, timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def _summary(graph_url: str) -> dict[str, Any]:
    with urlopen(f"{graph_url}/_fake/summary", timeout=10) as response:
        summary: dict[str, Any] = json.load(response)
        return summary


# -- the load generator -------------------------------------------------------------------


def _phase(
    target: str, phase: str, latencies: list[float], errors: int, seconds: float
) -> PhaseResult:
    return PhaseResult(
        target=target,
        phase=phase,
        requests=len(latencies),
        seconds=round(seconds, 3),
        acks_per_second=round(len(latencies) / seconds, 1),
        ack_p50_ms=round(percentile(latencies, 0.50), 2),
        ack_p99_ms=round(percentile(latencies, 0.99), 2),
        ack_max_ms=round(max(latencies) * 1000 if latencies else 0.0, 2),
        errors=errors,
    )


# -- the runs -----------------------------------------------------------------------------


def _wait_processed(
    graph_url: str, expected: int, progress: Callable[[str], None]
) -> dict[str, Any]:
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
        time.sleep(1.0)


def run_service(
    url: str,
    plan: ServicePlan,
    progress: Callable[[str], None],
    store_pid: int | None = None,
) -> list[PhaseResult]:
    """Both phases against statehq serve and against the bare endpoint.

    ``store_pid``: the store server's process, whose CPU time is then reported too.
    """
    work = Path(tempfile.mkdtemp(prefix="statehq-bench-service-"))
    python = sys.executable
    graph_port = _free_port()
    graph_url = f"http://127.0.0.1:{graph_port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STATEHQ_", "WHATSAPP_"))}
    results: list[PhaseResult] = []
    throughput_requests = signed_requests(plan.members, plan.messages, 11, APP_SECRET)
    paced_requests = signed_requests(
        plan.members, int(plan.rate * plan.latency_seconds), 12, APP_SECRET
    )

    bare_port = _free_port()
    progress(f"service: bare ASGI endpoint, {len(throughput_requests):,} requests ...")
    with _process(
        [python, "-m", "statehq.bench.bare", "--port", str(bare_port)],
        env,
        work / "bare.log",
        lambda: _port_open(bare_port),
    ):
        lat, err, secs = asyncio.run(blast(bare_port, throughput_requests, plan.concurrency))
        results.append(_phase("bare ASGI endpoint", "throughput", lat, err, secs))
        lat, err, secs = asyncio.run(paced(bare_port, paced_requests, plan.rate))
        results.append(_phase("bare ASGI endpoint", f"paced {plan.rate:g}/s", lat, err, secs))
    progress(f"  {results[-2].acks_per_second:,.0f} acks/s; paced p99 {results[-1].ack_p99_ms} ms")

    service_env = {
        **env,
        "STATEHQ_REDIS_URL": url,
        "STATEHQ_DATA_DIR": str(work / "data"),
        "STATEHQ_KEY_PREFIX": f"bench{random.randrange(10**6)}",
        "STATEHQ_WORKERS": str(plan.workers),
        "WHATSAPP_APP_SECRET": APP_SECRET,
        "WHATSAPP_VERIFY_TOKEN": "bench",
        "WHATSAPP_ACCESS_TOKEN": ACCESS_TOKEN,
        "WHATSAPP_PHONE_NUMBER_ID": wh.PHONE_NUMBER_ID,
        "WHATSAPP_GRAPH_URL": graph_url,
    }
    ports = [_free_port() for _ in range(plan.processes)]
    with contextlib.ExitStack() as stack:
        graph = stack.enter_context(
            _process(
                [
                    python,
                    "-m",
                    "statehq.testing.fake_graph",
                    "--port",
                    str(graph_port),
                    "--token",
                    ACCESS_TOKEN,
                ],
                env,
                work / "graph.log",
                lambda: _answers(f"{graph_url}/_fake/summary"),
            )
        )
        serving = []
        for n, port in enumerate(ports):
            serving.append(
                stack.enter_context(
                    _process(
                        [python, "-m", "statehq.cli.main", "serve", "--port", str(port)],
                        service_env,
                        work / f"serve-{n}.log",
                        partial(_answers, f"http://127.0.0.1:{port}/healthz"),
                    )
                ).pid
            )
        progress(
            f"service: statehq serve ({plan.processes} processes x {plan.workers} workers), "
            f"{len(throughput_requests):,} messages from {plan.members} members ..."
        )
        meter = CpuMeter(
            {
                "statehq webhook": serving,
                "store": [store_pid] if store_pid else [],
                "fake Graph API": [graph.pid],
            },
            with_children=("statehq webhook",),
        )
        meter.start()
        started = time.monotonic()
        lat, err, secs = asyncio.run(spread(ports, throughput_requests, plan.concurrency))
        summary = _wait_processed(graph_url, plan.messages, progress)
        done = float(summary["last_at"] or time.monotonic())
        used = meter.stop()
        phase = _phase("statehq serve", "throughput", lat, err, secs)
        answered = int(summary["answered_messages"])
        results.append(
            _with_processing(
                phase, plan.messages / max(done - started, 1e-9), plan.messages - answered, summary
            )
        )
        results[-1] = replace(results[-1], cpu_ms_per_message=_per_message(used, plan.messages))
        progress(
            f"  {results[-1].processed_per_second:,.0f} messages/s processed, "
            f"{phase.acks_per_second:,.0f} acks/s, lost {results[-1].lost}, "
            f"duplicated {results[-1].duplicated}"
        )
        before = int(summary["answered_messages"])
        lat, err, secs = asyncio.run(paced_spread(ports, paced_requests, plan.rate))
        summary = _wait_processed(graph_url, before + len(paced_requests), progress)
        phase = _phase("statehq serve", f"paced {plan.rate:g}/s", lat, err, secs)
        lost = before + len(paced_requests) - int(summary["answered_messages"])
        results.append(_with_processing(phase, None, lost, summary))
        progress(f"  paced p50 {phase.ack_p50_ms} ms, p99 {phase.ack_p99_ms} ms")
    return results


def _with_processing(
    phase: PhaseResult, per_second: float | None, lost: int, summary: dict[str, Any]
) -> PhaseResult:
    duplicated = int(summary["accepted"]) - int(summary["distinct_replies"])
    fields = asdict(phase)
    fields.update(
        processed_per_second=None if per_second is None else round(per_second, 1),
        lost=lost,
        duplicated=duplicated,
    )
    return PhaseResult(**fields)


def _per_message(used: dict[str, float], messages: int) -> dict[str, float]:
    names = {"statehq webhook children": "statehq workers"}
    per = {names.get(k, k): round(v * 1000 / messages, 3) for k, v in used.items()}
    per["total"] = round(sum(per.values()), 3)
    return per


def _port_open(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


TARGETS = (
    "at least 1,000 messages/s processed with replies; p99 acknowledgement under 50 ms at 500/s"
)


def _cpu_table(ours: PhaseResult | None, machine: dict[str, Any]) -> list[str]:
    """Where the throughput phase's CPU went, per processed message, and what it allows."""
    if ours is None or not ours.cpu_ms_per_message:
        return []
    cpu = ours.cpu_ms_per_message
    cores = int(machine.get("cpu_count") or 1)
    lines = [
        "",
        "CPU time per processed message in the throughput phase (user + system, every "
        "process on the machine that took part):",
        "",
        "| part | CPU ms per message | share |",
        "|---|---:|---:|",
    ]
    for name, ms in cpu.items():
        if name != "total":
            lines.append(f"| {name} | {ms:.3f} | {ms / cpu['total']:.0%} |")
    ceiling = cores * 1000 / cpu["total"] if cpu["total"] else 0.0
    lines += [
        f"| **total** | **{cpu['total']:.3f}** | |",
        "",
        f"At {cpu['total']:.2f} ms of CPU per message, {cores} cores can process at most "
        f"{ceiling:,.0f} messages/s, whatever the concurrency.",
    ]
    return lines


def write_report(
    results: list[PhaseResult], plan: ServicePlan, machine: dict[str, Any], output: Path
) -> str:
    """Write ``service.json`` and ``service.md`` under ``output``; returns the markdown."""
    output.mkdir(parents=True, exist_ok=True)
    data = {
        "machine": machine,
        "parameters": asdict(plan),
        "targets": TARGETS,
        "results": [asdict(r) for r in results],
    }
    (output / "service.json").write_text(json.dumps(data, indent=2) + "\n")
    lines = [
        "# statehq service benchmark",
        "",
        f"`statehq bench` on {machine.get('cpu_count')} CPUs, Python {machine.get('python')}, "
        f"Valkey {machine.get('valkey')}, {machine.get('date')}. Signed single-message webhook "
        f"requests from {plan.members} members; {plan.processes} `statehq serve` processes x "
        f"{plan.workers} worker processes each; replies counted at the fake Graph API (its own "
        "process).",
        "",
        "| target | phase | requests | acks/s | ack p50 ms | ack p99 ms | processed msg/s "
        "| lost | duplicated |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        processed = "" if r.processed_per_second is None else f"{r.processed_per_second:,.0f}"
        lines.append(
            f"| {r.target} | {r.phase} | {r.requests:,} | {r.acks_per_second:,.0f} | "
            f"{r.ack_p50_ms} | {r.ack_p99_ms} | {processed} | "
            f"{'' if r.lost is None else r.lost} | {'' if r.duplicated is None else r.duplicated} |"
        )
    bare = next(
        (r for r in results if r.target.startswith("bare") and r.phase == "throughput"), None
    )
    ours = next(
        (r for r in results if r.target == "statehq serve" and r.phase == "throughput"), None
    )
    if bare and ours:
        lines += [
            "",
            f"Acknowledgement throughput is {ours.acks_per_second / bare.acks_per_second:.1%} of "
            f"the bare endpoint's on the same server. Targets: {TARGETS}.",
        ]
    lines += _cpu_table(ours, machine)
    markdown = "\n".join(lines) + "\n"
    (output / "service.md").write_text(markdown)
    return markdown
