"""``statehq bench``: measure the store and write ``store.json`` and ``store.md``.

The run starts its own embedded Valkey in a temporary directory (so it never touches a
user's data or shares a server with a running bot), then measures:

1. contention: 32 writer processes on one member, for each of statehq ``update``,
   statehq ``mutate`` and the seed's ``WATCH``/``MULTI`` design;
2. latency: single-connection round trips of statehq ``get``/``update`` against raw
   ``GET``/``SET`` of the same document as a JSON string.
"""

from __future__ import annotations

import os
import platform
import shutil
import sys
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis

from .. import __version__
from ..config import Settings
from ..errors import StateError
from ..store import StateStore
from ..store.embedded import EmbeddedValkey
from . import report as report_
from .contention import IMPLEMENTATIONS, ContentionResult, run_contention, store_settings
from .latency import ratios, run_latency

__all__ = ["main"]


@dataclass(frozen=True)
class Plan:
    """How long and how hard to run."""

    writers: int
    duration: float
    iterations: int
    warmup: int

    @classmethod
    def for_run(cls, quick: bool) -> Plan:
        """Short runs for a smoke test, long enough runs for figures worth keeping."""
        if quick:
            return cls(writers=32, duration=1.5, iterations=1000, warmup=200)
        return cls(writers=32, duration=5.0, iterations=5000, warmup=500)


def _progress(line: str) -> None:
    print(line, flush=True)


def _machine(store: StateStore) -> dict[str, Any]:
    info = store._client.info("server")
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "valkey": info.get("valkey_version") or info.get("redis_version"),
        "redis_py": redis.__version__,
        "statehq": __version__,
    }


def _contention(url: str, plan: Plan, control: StateStore) -> list[ContentionResult]:
    results = []
    for kind, label in IMPLEMENTATIONS.items():
        _progress(f"contention: {label}: {plan.writers} writers x {plan.duration:g} s ...")
        result = run_contention(kind, url, plan.writers, plan.duration, control)
        _progress(
            f"  {result.per_second:,.0f} successful/s, {result.failed:,} failed "
            f"({result.failed_pct:.1f} %), {result.lost:,} lost, {result.attempts:,} attempts"
        )
        results.append(result)
    return results


def _measure(url: str, plan: Plan, quick: bool, appendfsync: str) -> report_.Report:
    with StateStore.open(url, settings=store_settings(url)) as store:
        machine = _machine(store)
        _progress(
            f"statehq bench: Valkey {machine['valkey']}, {machine['cpu_count']} CPUs, "
            f"Python {machine['python']}"
        )
        contention = _contention(url, plan, store)
        latency, size = run_latency(store, plan.iterations, plan.warmup, _progress)
    parameters = {
        "command": "statehq bench" + (" --quick" if quick else ""),
        "quick": quick,
        "writers": plan.writers,
        "duration_s": plan.duration,
        "iterations": plan.iterations,
        "warmup": plan.warmup,
        "document_bytes": size,
        "appendfsync": appendfsync,
        "transport": "unix socket",
    }
    return report_.Report(machine, parameters, contention, latency, ratios(latency))


def main(output: str, quick: bool = False, suite: str = "all") -> int:
    """Run the benchmarks on a private server; write ``output``/{store,service}.{json,md}.

    ``suite`` is ``store``, ``service``, ``faults`` (reliability under hostile input and a
    failing store, on a server of its own) or ``all``; or ``soak`` (many members on a
    standalone server and a Cluster, then a master killed under load on a Cluster and a
    Sentinel set: about 10 minutes, so not part of ``all``).

    Prints progress as it goes and the markdown report at the end. Returns the exit
    status: 0 when the run completed (whether or not the targets were met), 1 when the
    server could not be started or used.
    """
    plan = Plan.for_run(quick)
    data_dir = Path(tempfile.mkdtemp(prefix="statehq-bench-"))
    server = EmbeddedValkey(Settings(data_dir=data_dir))
    try:
        _progress(f"statehq bench: starting a private Valkey in {data_dir}")
        server.acquire()
        if suite in ("all", "store"):
            result = _measure(server.url, plan, quick, server.settings.appendfsync)
            markdown = report_.write(result, Path(output))
            _progress(f"statehq bench: wrote {Path(output) / 'store.json'} and store.md\n")
            print(markdown, end="")
        if suite in ("all", "service"):
            markdown = _service(server.url, quick, Path(output), server.pid())
            _progress(f"statehq bench: wrote {Path(output) / 'service.json'} and service.md\n")
            print(markdown, end="")
        if suite in ("all", "faults"):
            markdown = _faults(server.url, quick, Path(output))
            _progress(
                f"statehq bench: wrote {Path(output) / 'reliability.json'} and reliability.md\n"
            )
            print(markdown, end="")
        if suite == "soak":  # minutes per topology: not part of "all"
            markdown = _soak(server.url, quick, Path(output))
            _progress(f"statehq bench: wrote {Path(output) / 'soak.json'} and soak.md\n")
            print(markdown, end="")
    except (StateError, RuntimeError) as exc:
        print(f"statehq bench: {exc}", file=sys.stderr)
        return 1
    finally:
        server.release()  # stops the server: this run is its only owner
        shutil.rmtree(data_dir, ignore_errors=True)
    return 0


def _service(url: str, quick: bool, output: Path, store_pid: int | None) -> str:
    from .service import ServicePlan, run_service, write_report

    plan = ServicePlan.for_run(quick)
    with StateStore.open(url, settings=store_settings(url)) as store:
        machine = _machine(store)
    results = run_service(url, plan, _progress, store_pid)
    return write_report(results, plan, machine, output)


def _faults(url: str, quick: bool, output: Path) -> str:
    from .faults import FaultPlan, run_faults, write_report

    plan = FaultPlan.for_run(quick)
    with StateStore.open(url, settings=store_settings(url)) as store:
        machine = _machine(store)
    results = run_faults(plan, _progress)
    return write_report(results, plan, machine, output)


def _soak(url: str, quick: bool, output: Path) -> str:
    from .soak import SoakPlan, run_soak, write_report

    plan = SoakPlan.for_run(quick)
    with StateStore.open(url, settings=store_settings(url)) as store:
        machine = _machine(store)
    results = run_soak(plan, _progress)
    return write_report(results, plan, machine, output)
