"""``statehq bench`` (``make bench``): statehq beside its peers, measured in one run.

The default run (``--suite all``) starts one private Valkey in a temporary folder (it
never touches a user's data or shares a server with a running bot) and measures on it,
one after another:

1. contention: 1, 8 and 32 writer processes on one member, for statehq ``update`` and
   ``mutate``, the seed design's ``WATCH``/``MULTI``/``EXEC`` with 3 retries, and aiogram's
   ``RedisStorage`` bare and under ``RedisEventIsolation`` (:mod:`.contention`);
2. single-operation latency: statehq ``get``/``update`` against a raw ``GET``/``SET`` of
   the same document on the same connection (:mod:`.latency`);
3. memory per session: statehq beside the seed design's layout and aiogram's (:mod:`.footprint`);
4. cold start: ``statehq serve`` exec to ``/readyz`` 200 (:mod:`.coldstart`);
5. end to end: a bare ASGI endpoint and pywa's webhook handler acknowledging the same
   signed requests as ``statehq serve``, which runs with 1, 2 and 4 processes; store round
   trips and bytes per processed message from the server's counters (:mod:`.service`).

It writes ``results.json`` (every figure with its goal and whether it is met:
:mod:`.results`), ``README.md`` and ``contention.png`` (:mod:`.render`) under the output
folder, and, when that folder is a checkout's ``docs/benchmarks``, the headline table into
the checkout's README between its ``bench:headline`` markers. ``--suite store`` or
``service`` measures a part only; ``faults`` and ``soak`` are separate reports.

The peers come with the ``bench`` extra (``pip install -e '.[bench]'``, which ``make bench``
does); they are imported only while they are measured.
"""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis

from .. import __version__
from ..config import Settings
from ..errors import StateError
from ..store import StateStore
from ..store.embedded import EmbeddedValkey
from .contention import IMPLEMENTATIONS, ContentionResult, run_contention, store_settings
from .plan import BenchPlan

__all__ = ["main"]

SUITES = ("all", "store", "service", "faults", "soak")
NEEDED = {
    "store": ("aiogram", "matplotlib"),
    "service": ("pywa_async", "fastapi", "matplotlib"),
}
"""The ``bench`` extra's modules each part of the run imports."""


def _progress(line: str) -> None:
    print(line, flush=True)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _machine(store: StateStore, appendfsync: str = "everysec") -> dict[str, Any]:
    """The machine and the server (the faults and soak reports read the same keys)."""
    info = store._client.info("server")
    valkey = info.get("valkey_version") or info.get("redis_version")
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "cpu_count": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "valkey": valkey,
        "redis_py": redis.__version__,
        "statehq": __version__,
        "store": f"Valkey {valkey} over a unix socket, appendfsync {appendfsync}",
    }


def _versions(machine: dict[str, Any]) -> dict[str, str]:
    from importlib.metadata import version

    from .peers import versions as peer_versions

    return {
        "statehq": str(machine["statehq"]),
        "Python": str(machine["python"]),
        "Valkey": str(machine["valkey"]),
        "redis-py": str(machine["redis_py"]),
        "uvicorn": version("uvicorn"),
        **peer_versions(),
    }


def missing_extras(suite: str) -> list[str]:
    """The ``bench`` extra's modules ``suite`` needs that are not installed."""
    parts = ("store", "service") if suite == "all" else (suite,)
    needed = dict.fromkeys(m for part in parts for m in NEEDED.get(part, ()))
    return [m for m in needed if importlib.util.find_spec(m) is None]


def main(output: str, quick: bool = False, suite: str = "all") -> int:
    """Run ``suite`` on a private server and write its report under ``output``.

    Prints progress as it goes and the markdown report at the end. Returns the exit
    status: 0 when the run completed (whether or not the goals were met), 1 when it could
    not run (the ``bench`` extra missing, the server not started or not usable).
    """
    missing = missing_extras(suite)
    if missing:
        print(
            f"statehq bench: {', '.join(missing)} not installed; the comparisons need the "
            "bench extra: pip install -e '.[bench]' (make bench installs it)",
            file=sys.stderr,
        )
        return 1
    data_dir = Path(tempfile.mkdtemp(prefix="statehq-bench-"))
    server = EmbeddedValkey(Settings(data_dir=data_dir))
    try:
        _progress(f"statehq bench: starting a private Valkey in {data_dir}")
        server.acquire()
        if suite in ("all", "store", "service"):
            markdown = _one_run(server, Path(output), quick, suite, data_dir)
        else:
            markdown = {"faults": _faults, "soak": _soak}[suite](server.url, quick, Path(output))
        print(markdown, end="")
    except (StateError, RuntimeError) as exc:
        print(f"statehq bench: {exc}", file=sys.stderr)
        return 1
    finally:
        server.release()  # stops the server: this run is its only owner
        shutil.rmtree(data_dir, ignore_errors=True)
    return 0


def _contention(url: str, plan: BenchPlan, control: StateStore) -> list[ContentionResult]:
    """Every implementation at each writer count; the implementations alternate, so a slow
    spell of a shared machine hits them alike rather than one of them."""
    results = []
    for writers in plan.writers:
        for kind, label in IMPLEMENTATIONS.items():
            _progress(f"contention: {label}: {writers} writers x {plan.contention_s:g} s ...")
            r = run_contention(kind, url, writers, plan.contention_s, control)
            _progress(f"  {r.per_second:,.0f} successful/s, {r.failed:,} failed, {r.lost:,} lost")
            results.append(r)
    return results


def _one_run(server: EmbeddedValkey, output: Path, quick: bool, suite: str, data_dir: Path) -> str:
    """Measure, judge, write ``results.json``, ``README.md`` and the plot; the markdown."""
    from .coldstart import run_cold_starts
    from .footprint import run_memory
    from .latency import run_latency
    from .results import Measured, build
    from .service import run_service

    plan = BenchPlan.for_run(quick)
    began, load = time.monotonic(), os.getloadavg()[0]
    work = data_dir / "work"
    work.mkdir()
    url = server.url
    measured = Measured([], [], 0, [], None, [])
    with StateStore.open(url, settings=store_settings(url)) as store:
        machine = _machine(store, server.settings.appendfsync)
        _progress(f"statehq bench: {machine['store']}, {machine['cpu_count']} CPUs")
        if suite in ("all", "store"):
            contention = _contention(url, plan, store)
            latency, size = run_latency(
                store, plan.latency_iterations, plan.latency_warmup, _progress
            )
            memory = run_memory(url, plan.memory_sessions, plan.history_versions, _progress)
            measured = Measured(contention, latency, size, memory, None, [])
    if suite in ("all", "service"):
        cold = run_cold_starts(url, plan.cold_starts, work, _progress)
        service = run_service(url, plan, work, _progress, server.pid())
        measured = Measured(
            measured.contention,
            measured.latency,
            measured.document_bytes,
            measured.memory,
            service,
            cold,
        )
    command = (
        "statehq bench"
        + (" --quick" if quick else "")
        + ("" if suite == "all" else f" --suite {suite}")
    )
    header = {
        "schema": 1,
        "run": {
            "command": command,
            "suite": suite,
            "quick": quick,
            "date": machine["date"],
            "seconds": round(time.monotonic() - began, 1),
            "load_average": round(load, 2),
        },
        "machine": machine,
        "versions": _versions(machine),
        "plan": asdict(plan),
    }
    return write(build(measured, header), output)


def write(results: dict[str, Any], output: Path) -> str:
    """``results.json``, ``README.md`` and the plot under ``output``; the markdown.

    When ``output`` is a checkout's ``docs/benchmarks``, the checkout's README gets the
    headline table too.
    """
    from .render import PLOT, plot_contention, to_markdown, update_readme

    output.mkdir(parents=True, exist_ok=True)
    text = json.dumps(results, indent=2, ensure_ascii=False) + "\n"
    (output / "results.json").write_text(text, encoding="utf-8")
    markdown = to_markdown(results)
    (output / "README.md").write_text(markdown, encoding="utf-8")
    wrote = ["results.json", "README.md"]
    if plot_contention(results, output / PLOT):
        wrote.append(PLOT)
    _progress(f"statehq bench: wrote {', '.join(wrote)} under {output}")
    resolved = output.resolve()
    readme = resolved.parent.parent / "README.md"
    checkout = resolved.parts[-2:] == ("docs", "benchmarks") and readme.is_file()
    if checkout and update_readme(readme, results, "docs/benchmarks/README.md"):
        _progress(f"statehq bench: the headline table in {readme} is this run's")
    return markdown


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
