"""One run's figures as ``results.json``: every figure with its goal and whether it is met.

Every figure in every section carries ``goal`` (the promise it answers to, or null when
it is there to be read, not judged) and ``met`` (true, false, or null without a goal).
The judged figures are also listed together under ``goals``: the headline table. Every
comparison is a ratio between figures of this run, on this server.

=========================  ===================================================================
goal                       promise (issue 17)
=========================  ===================================================================
``end_to_end.processed``   >= 1,000 messages/s processed with replies, 0 lost, 0 duplicated
``end_to_end.ack_p99``     p99 acknowledgement under 50 ms at 500 requests/s
``contention.update``      ``update`` >= 10,000/s at 32 writers, 0 failed, 0 lost
``contention.aiogram``     ``update`` >= 10x aiogram with ``RedisEventIsolation`` (32 writers)
``contention.seed``        ``update`` >= 20x the seed design (32 writers)
``latency.get``            ``get`` <= 1.5x a raw ``GET`` of the same document (p50)
``latency.update``         ``update`` <= 2x a raw ``SET`` of the same document (p50)
``memory.session``         <= 4 KB (4,096 bytes) per session with 10 history versions
=========================  ===================================================================
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from .coldstart import ColdStart
from .contention import ContentionResult
from .footprint import MemoryResult
from .latency import LatencyResult
from .service import PhaseResult, ServiceResults

PROCESSED_GOAL = 1000.0
ACK_P99_GOAL_MS = 50.0
UPDATE_RATE_GOAL = 10_000.0
AIOGRAM_RATIO_GOAL = 10.0
SEED_RATIO_GOAL = 20.0
GET_RATIO_GOAL = 1.5
UPDATE_RATIO_GOAL = 2.0
SESSION_BYTES_GOAL = 4096.0
CONTENDED = 32  # the writer count the contention goals are judged at


@dataclass(frozen=True)
class Goal:
    """One promise, the figure measured against it, and whether it held."""

    id: str
    figure: str
    goal: str
    measured: float
    unit: str
    shown: str
    """The measurement as the tables show it (with its conditions: failed, lost...)."""
    met: bool


@dataclass(frozen=True)
class Measured:
    """Everything one run measured, before it is judged."""

    contention: list[ContentionResult]
    latency: list[LatencyResult]
    document_bytes: int
    memory: list[MemoryResult]
    service: ServiceResults | None
    """None when the run measured the store only (``--suite store``)."""
    cold_starts: list[ColdStart]


def _judged(figure: dict[str, Any], goal: Goal | None) -> dict[str, Any]:
    return {**figure, "goal": goal.goal if goal else None, "met": goal.met if goal else None}


def _ratio(ours: float, theirs: float) -> float:
    return round(ours / theirs, 2) if theirs else float("inf")


# -- contention ---------------------------------------------------------------------------


def _contention_row(r: ContentionResult) -> dict[str, Any]:
    return {
        **asdict(r),
        "per_second": round(r.per_second, 1),
        "failed_pct": round(r.failed_pct, 2),
    }


RATIO_GOALS = {
    "aiogram-isolation": (
        "contention.aiogram",
        AIOGRAM_RATIO_GOAL,
        "aiogram + RedisEventIsolation",
    ),
    "seed": ("contention.seed", SEED_RATIO_GOAL, "the seed design (WATCH/MULTI/EXEC, 3 retries)"),
}
"""The peers statehq ``update`` is promised to beat under contention, and by how much."""


def contention_goals(rows: Sequence[ContentionResult]) -> list[Goal]:
    """The three contention promises, judged on the 32-writer runs."""
    at = {r.name: r for r in rows if r.writers == CONTENDED}
    if "update" not in at:
        return []
    update = at["update"]
    clean = update.failed == 0 and update.lost == 0
    goals = [
        Goal(
            "contention.update",
            f"statehq update, {CONTENDED} writer processes on one member",
            f">= {UPDATE_RATE_GOAL:,.0f}/s with 0 failed and 0 lost",
            round(update.per_second, 1),
            "updates/s",
            f"{update.per_second:,.0f}/s, {update.failed} failed, {update.lost} lost",
            update.per_second >= UPDATE_RATE_GOAL and clean,
        )
    ]
    for name, (gid, limit, label) in RATIO_GOALS.items():
        if name in at:
            ratio = _ratio(update.per_second, at[name].per_second)
            goals.append(
                Goal(
                    gid,
                    f"statehq update / {label}, {CONTENDED} writers",
                    f">= {limit:g}x",
                    ratio,
                    "x",
                    f"{ratio:.1f}x ({update.per_second:,.0f} vs {at[name].per_second:,.0f}/s)",
                    ratio >= limit,
                )
            )
    return goals


def contention_section(rows: Sequence[ContentionResult], goals: list[Goal]) -> dict[str, Any]:
    """Every implementation at every writer count, and statehq update's ratio to each."""
    by_id = {g.id: g for g in goals}
    judged = []
    for r in rows:
        contended_update = (r.name, r.writers) == ("update", CONTENDED)
        judged.append(
            _judged(
                _contention_row(r), by_id.get("contention.update") if contended_update else None
            )
        )
    ratios = []
    for r in rows:
        update = next((u for u in rows if u.name == "update" and u.writers == r.writers), None)
        if r.name == "update" or update is None:
            continue
        gid = RATIO_GOALS[r.name][0] if r.name in RATIO_GOALS and r.writers == CONTENDED else ""
        figure = {
            "writers": r.writers,
            "versus": r.name,
            "update_ratio": _ratio(update.per_second, r.per_second),
        }
        ratios.append(_judged(figure, by_id.get(gid)))
    return {"rows": judged, "ratios": ratios}


# -- latency ------------------------------------------------------------------------------


def latency_goals(results: Sequence[LatencyResult]) -> list[Goal]:
    """``get`` against a raw GET and ``update`` against a raw SET, at p50."""
    by = {r.operation: r for r in results}
    goals = []
    for gid, ours, raw, limit in (
        ("latency.get", "statehq get", "raw GET + json.loads", GET_RATIO_GOAL),
        ("latency.update", "statehq update", "raw SET + json.dumps", UPDATE_RATIO_GOAL),
    ):
        if ours in by and raw in by:
            ratio = _ratio(by[ours].p50_us, by[raw].p50_us)
            goals.append(
                Goal(
                    gid,
                    f"{ours} / {raw.split(' +')[0]}, p50, one connection",
                    f"<= {limit:g}x",
                    ratio,
                    "x",
                    f"{ratio:.2f}x ({by[ours].p50_us:.0f} vs {by[raw].p50_us:.0f} µs)",
                    ratio <= limit,
                )
            )
    return goals


def latency_section(
    results: Sequence[LatencyResult], document_bytes: int, goals: list[Goal]
) -> dict[str, Any]:
    """Per-call latency of every operation, and the two ratios on p50 and mean."""
    by = {r.operation: r for r in results}
    by_id = {g.id: g for g in goals}
    ratios = []
    for gid, ours, raw in (
        ("latency.get", "statehq get", "raw GET + json.loads"),
        ("latency.update", "statehq update", "raw SET + json.dumps"),
    ):
        if ours in by and raw in by:
            figure = {
                "ratio": f"{ours} / {raw}",
                "p50": _ratio(by[ours].p50_us, by[raw].p50_us),
                "mean": _ratio(by[ours].mean_us, by[raw].mean_us),
            }
            ratios.append(_judged(figure, by_id.get(gid)))
    operations = [_judged(asdict(r), None) for r in results]
    return {"document_bytes": document_bytes, "operations": operations, "ratios": ratios}


# -- end to end ---------------------------------------------------------------------------


def processed_met(throughput: PhaseResult) -> bool:
    """One configuration's throughput phase against the processing goal."""
    rate = throughput.processed_per_second or 0.0
    return rate >= PROCESSED_GOAL and throughput.lost == 0 and throughput.duplicated == 0


def end_to_end_goals(service: ServiceResults) -> list[Goal]:
    """Processed messages/s (the best configuration, none lost or doubled), ack p99 at 500/s."""
    clean = [r for r in service.runs if r.throughput.lost == 0 and r.throughput.duplicated == 0]
    best = max(clean or service.runs, key=lambda r: r.throughput.processed_per_second or 0.0)
    rate = best.throughput.processed_per_second or 0.0
    # a deployment picks its process count, so the goal is judged on the best configuration
    counts = ", ".join(str(r.processes) for r in service.runs)
    goals = [
        Goal(
            "end_to_end.processed",
            f"messages processed with replies, best of {counts} serve processes",
            f">= {PROCESSED_GOAL:,.0f}/s with 0 lost and 0 duplicated",
            rate,
            "messages/s",
            f"{rate:,.0f}/s ({best.processes} process{'es' if best.processes != 1 else ''} x "
            f"{best.workers} workers), "
            f"{best.throughput.lost} lost, {best.throughput.duplicated} duplicated",
            processed_met(best.throughput),
        )
    ]
    paced = service.headline.paced
    if paced is not None:
        goals.append(
            Goal(
                "end_to_end.ack_p99",
                f"acknowledgement p99 at {paced.phase.removeprefix('paced ')}",
                f"< {ACK_P99_GOAL_MS:g} ms",
                paced.ack_p99_ms,
                "ms",
                f"{paced.ack_p99_ms:g} ms (p50 {paced.ack_p50_ms:g} ms), {paced.errors} errors",
                paced.ack_p99_ms < ACK_P99_GOAL_MS and paced.errors == 0,
            )
        )
    return goals


def end_to_end_section(service: ServiceResults, goals: list[Goal]) -> dict[str, Any]:
    """The peers' and statehq's phases side by side, with statehq's ratios to each peer."""
    by_id = {g.id: g for g in goals}
    head = service.headline
    phases = [_judged(asdict(p), None) for p in service.peers]
    goal = by_id.get("end_to_end.processed")
    throughput = {**asdict(head.throughput), "goal": goal.goal if goal else None}
    phases.append({**throughput, "met": processed_met(head.throughput) if goal else None})
    if head.paced is not None:
        phases.append(_judged(asdict(head.paced), by_id.get("end_to_end.ack_p99")))
    ratios = []
    for peer in service.peers:
        ours = head.throughput if peer.phase == "throughput" else head.paced
        if ours is None:
            continue
        figure = {
            "versus": peer.target,
            "phase": peer.phase,
            "acks_per_second_ratio": _ratio(ours.acks_per_second, peer.acks_per_second),
            "ack_p99_ratio": _ratio(ours.ack_p99_ms, peer.ack_p99_ms),
        }
        ratios.append(_judged(figure, None))
    return {"phases": phases, "ratios": ratios}


def scaling_section(service: ServiceResults, goals: list[Goal]) -> list[dict[str, Any]]:
    """Each serve configuration's throughput, relative to one process."""
    goal = {g.id: g for g in goals}.get("end_to_end.processed")
    one = service.runs[0].throughput.processed_per_second or 0.0
    rows = []
    for run in service.runs:
        t = run.throughput
        figure = {
            "processes": run.processes,
            "workers_per_process": run.workers,
            "processed_per_second": t.processed_per_second,
            "acks_per_second": t.acks_per_second,
            "ack_p99_ms": t.ack_p99_ms,
            "lost": t.lost,
            "duplicated": t.duplicated,
            "versus_first": _ratio(t.processed_per_second or 0.0, one),
            "cpu_ms_per_message": t.cpu_ms_per_message,
        }
        judged = (
            {"goal": goal.goal, "met": processed_met(t)} if goal else {"goal": None, "met": None}
        )
        rows.append({**figure, **judged})
    return rows


def round_trips_section(service: ServiceResults) -> list[dict[str, Any]]:
    """Store traffic per processed message, each configuration."""
    return [_judged({"processes": r.processes, **asdict(r.traffic)}, None) for r in service.runs]


# -- memory and cold start ----------------------------------------------------------------


def memory_goals(layouts: Sequence[MemoryResult]) -> list[Goal]:
    """statehq's session (document, history, markers) against 4 KB."""
    ours = next((m for m in layouts if m.layout == "statehq"), None)
    if ours is None:
        return []
    return [
        Goal(
            "memory.session",
            f"statehq memory per session, {ours.history_versions} history versions",
            f"<= {SESSION_BYTES_GOAL:,.0f} bytes",
            ours.bytes_per_session,
            "bytes",
            f"{ours.bytes_per_session:,.0f} bytes",
            ours.bytes_per_session <= SESSION_BYTES_GOAL,
        )
    ]


def memory_section(layouts: Sequence[MemoryResult], goals: list[Goal]) -> dict[str, Any]:
    """Every layout's bytes per session, and statehq's ratio to each peer."""
    goal = {g.id: g for g in goals}.get("memory.session")
    rows = [_judged(asdict(m), goal if m.layout == "statehq" else None) for m in layouts]
    ours = next((m for m in layouts if m.layout == "statehq"), None)
    ratios = [
        _judged(
            {"versus": m.layout, "ratio": _ratio(ours.bytes_per_session, m.bytes_per_session)}, None
        )
        for m in layouts
        if ours is not None and m is not ours
    ]
    return {"layouts": rows, "ratios": ratios}


def cold_start_section(starts: Sequence[ColdStart]) -> list[dict[str, Any]]:
    """Seconds from exec to ready, each configuration."""
    return [
        _judged({**asdict(s), "median_s": s.median_s, "worst_s": s.worst_s}, None) for s in starts
    ]


def build(measured: Measured, header: dict[str, Any]) -> dict[str, Any]:
    """``results.json``: the header (run, machine, versions, plan), goals, then every section.

    A section the run did not measure (``--suite store`` or ``service``) is null.
    """
    service = measured.service
    goals = [
        *(end_to_end_goals(service) if service else []),
        *contention_goals(measured.contention),
        *latency_goals(measured.latency),
        *memory_goals(measured.memory),
    ]
    return {
        **header,
        "goals": [asdict(g) for g in goals],
        "contention": contention_section(measured.contention, goals)
        if measured.contention
        else None,
        "latency": (
            latency_section(measured.latency, measured.document_bytes, goals)
            if measured.latency
            else None
        ),
        "end_to_end": end_to_end_section(service, goals) if service else None,
        "round_trips": round_trips_section(service) if service else None,
        "scaling": scaling_section(service, goals) if service else None,
        "memory": memory_section(measured.memory, goals) if measured.memory else None,
        "cold_start": cold_start_section(measured.cold_starts) if measured.cold_starts else None,
    }
