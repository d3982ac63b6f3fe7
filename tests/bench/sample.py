"""Figures of a made-up run, shaped as the benchmark makes them, for the report's tests."""

from __future__ import annotations

from statehq.bench.coldstart import ColdStart
from statehq.bench.contention import IMPLEMENTATIONS, ContentionResult
from statehq.bench.footprint import MemoryResult
from statehq.bench.latency import LatencyResult
from statehq.bench.plan import BenchPlan
from statehq.bench.results import Measured
from statehq.bench.service import PhaseResult, ServiceResults, StatehqRun
from statehq.bench.traffic import Traffic

RATES = {"update": 12_000.0, "mutate": 2_000.0, "seed": 400.0, "aiogram": 3_000.0}
RATES["aiogram-isolation"] = 1_000.0
RATES["aiogram-statehq"] = 1_500.0


def contention(update_rate: float = 12_000.0, update_lost: int = 0) -> list[ContentionResult]:
    """Every implementation at 1, 8 and 32 writers, over a 1 s window."""
    rows = []
    for writers in (1, 8, 32):
        for name, label in IMPLEMENTATIONS.items():
            rate = update_rate if name == "update" else RATES[name]
            lost = update_lost if name == "update" else (100 if name == "aiogram" else 0)
            n = int(rate)
            rows.append(ContentionResult(name, label, writers, 1.0, 1.0, n, 0, n, n, lost, {}))
    return rows


def latency(get_us: float = 140.0, update_us: float = 150.0) -> list[LatencyResult]:
    """The four operations, raw GET at 100 µs and raw SET at 100 µs."""
    return [
        LatencyResult("raw GET + json.loads", 100, 100.0, 150.0, 100.0, 10_000.0),
        LatencyResult("raw SET + json.dumps", 100, 100.0, 150.0, 100.0, 10_000.0),
        LatencyResult("statehq get", 100, get_us, 200.0, get_us, 7_000.0),
        LatencyResult("statehq update", 100, update_us, 220.0, update_us, 6_500.0),
    ]


def memory(statehq_bytes: float = 3_500.0) -> list[MemoryResult]:
    """statehq, the seed layout and aiogram."""
    breakdown = {"doc": 1_500.0, "history": 1_800.0, "markers": 200.0, "dedup": 2_000.0}
    breakdown |= {"audit": 8_000.0, "audit_tail": 1_000.0, "state": statehq_bytes}
    breakdown["total"] = 14_500.0
    return [
        MemoryResult("statehq", "statehq: ...", 10, 10, statehq_bytes, breakdown),
        MemoryResult("seed", "seed: ...", 10, 0, 1_000.0, {"document": 900.0, "stage": 100.0}),
        MemoryResult("aiogram", "aiogram: ...", 10, 0, 950.0, {"state": 75.0, "data": 875.0}),
    ]


def phase(target: str, phase: str, processes: int = 2, **extra: object) -> PhaseResult:
    """A phase of 1,000 requests acknowledged at 2,000/s."""
    fields: dict[str, object] = {
        "target": target,
        "phase": phase,
        "processes": processes,
        "requests": 1000,
        "seconds": 0.5,
        "acks_per_second": 2000.0,
        "ack_p50_ms": 2.0,
        "ack_p99_ms": 10.0,
        "ack_max_ms": 20.0,
        "errors": 0,
    }
    return PhaseResult(**{**fields, **extra})  # type: ignore[arg-type]


def traffic() -> Traffic:
    """Seven round trips a message."""
    return Traffic(1000, 7.0, 36.0, 6.0, 4000.0, 600.0, {"evalsha": 6.0, "get": 5.0})


def service(
    rates: tuple[float, ...] = (800.0, 1_100.0, 900.0), p99: float = 20.0
) -> ServiceResults:
    """The peers and 1, 2 and 4 serve processes processing at ``rates``."""
    peers = [
        phase("bare ASGI endpoint", "throughput", acks_per_second=20_000.0, ack_p99_ms=2.0),
        phase("bare ASGI endpoint", "paced 500/s", acks_per_second=500.0, ack_p99_ms=1.0),
        phase("pywa", "throughput", acks_per_second=4_000.0, handled=1000),
        phase("pywa", "paced 500/s", acks_per_second=500.0),
    ]
    runs = []
    for processes, rate in zip((1, 2, 4), rates, strict=True):
        cpu = {"statehq webhook": 0.5, "total": 2.0}
        throughput = phase(
            "statehq serve",
            "throughput",
            processes,
            processed_per_second=rate,
            lost=0,
            duplicated=0,
            cpu_ms_per_message=cpu,
        )
        paced = None
        if processes == 2:
            paced = phase(
                "statehq serve",
                "paced 500/s",
                2,
                acks_per_second=500.0,
                ack_p99_ms=p99,
                lost=0,
                duplicated=0,
            )
        runs.append(StatehqRun(processes, 2, throughput, traffic(), paced))
    return ServiceResults(peers, runs, 2)


def measured(**changes: object) -> Measured:
    """A whole run; ``changes`` replaces parts of it."""
    parts: dict[str, object] = {
        "contention": contention(),
        "latency": latency(),
        "document_bytes": 987,
        "memory": memory(),
        "service": service(),
        "cold_starts": [ColdStart("running store", [0.5, 0.6, 0.4])],
    }
    return Measured(**{**parts, **changes})  # type: ignore[arg-type]


def header(suite: str = "all", quick: bool = False) -> dict[str, object]:
    """The run, machine, versions and plan part of ``results.json``."""
    plan = BenchPlan.for_run(quick)
    return {
        "schema": 1,
        "run": {
            "command": "statehq bench",
            "suite": suite,
            "quick": quick,
            "date": "2026-12-03T10:00:00Z",
            "seconds": 200.0,
            "load_average": 0.1,
        },
        "machine": {
            "platform": "Linux",
            "cpu_count": 2,
            "cpu_model": "a CPU",
            "store": "Valkey 8.1.8 over a unix socket, appendfsync everysec",
        },
        "versions": {"statehq": "0.1.0", "aiogram": "3.31.0"},
        "plan": {"contention_s": plan.contention_s},
    }
