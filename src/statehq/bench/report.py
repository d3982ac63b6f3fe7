"""Turning the measurements into ``store.json`` and ``store.md``, with the targets judged."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .contention import ContentionResult
from .latency import LatencyResult

UPDATE_RATE_TARGET = 10_000  # successful updates/s under contention, with 0 failed and 0 lost
UPDATE_SET_TARGET = 2.0  # statehq update p50 <= 2x raw SET p50
GET_GET_TARGET = 1.5  # statehq get p50 <= 1.5x raw GET p50


@dataclass
class Target:
    """One promise, what was measured against it, and whether it held."""

    target: str
    measured: str
    met: bool


@dataclass
class Report:
    """Everything one run measured."""

    machine: dict[str, Any]
    parameters: dict[str, Any]
    contention: list[ContentionResult]
    latency: list[LatencyResult]
    ratios: dict[str, dict[str, float]]

    def targets(self) -> list[Target]:
        """The three targets, judged on this run's figures."""
        update = next(r for r in self.contention if r.name == "update")
        rate_ok = update.per_second >= UPDATE_RATE_TARGET
        clean = update.failed == 0 and update.lost == 0
        up_set = self.ratios["update/SET"]["p50"]
        get_get = self.ratios["get/GET"]["p50"]
        return [
            Target(
                f"update >= {UPDATE_RATE_TARGET:,} successful updates/s with 0 failed and 0 lost "
                f"({update.writers} writers, one member)",
                f"{update.per_second:,.0f}/s, {update.failed} failed, {update.lost} lost",
                rate_ok and clean,
            ),
            Target(
                f"update <= {UPDATE_SET_TARGET:g}x raw SET (p50)",
                f"{up_set:.2f}x",
                up_set <= UPDATE_SET_TARGET,
            ),
            Target(
                f"get <= {GET_GET_TARGET:g}x raw GET (p50)",
                f"{get_get:.2f}x",
                get_get <= GET_GET_TARGET,
            ),
        ]

    def to_json(self) -> dict[str, Any]:
        """The machine-readable form written to ``store.json``."""
        contention = [
            {**asdict(r), "per_second": r.per_second, "failed_pct": r.failed_pct}
            for r in self.contention
        ]
        return {
            "machine": self.machine,
            "parameters": self.parameters,
            "contention": contention,
            "latency": [asdict(r) for r in self.latency],
            "ratios": self.ratios,
            "targets": [asdict(t) for t in self.targets()],
        }


def _row(*cells: object) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def _contention_md(report: Report) -> list[str]:
    first = report.contention[0]
    lines = [
        f"## Contention: {first.writers} writer processes, one member, {first.duration_s:g} s each",
        "",
        _row("implementation", "successful/s", "failed", "failed %", "lost", "attempts"),
        _row("---", "---:", "---:", "---:", "---:", "---:"),
    ]
    for r in report.contention:
        lines.append(
            _row(
                r.label,
                f"{r.per_second:,.0f}",
                f"{r.failed:,}",
                f"{r.failed_pct:.1f}",
                f"{r.lost:,}",
                f"{r.attempts:,}",
            )
        )
    update = next(r for r in report.contention if r.name == "update")
    present = update.checks.get("writers_last_value_present")
    lines += [
        "",
        "- *successful/s*: successes reported by the writers / wall time from the first "
        "writer's start to the last writer's finish. The writers and the server share the "
        f"machine's {report.machine['cpu_count']} CPUs.",
        "- *lost*: successes the writers were told about minus the writes the server holds "
        "(versions gained for `update`, counter increments for `mutate` and the seed).",
        "- *attempts*: operations started; compare-and-set rounds behind them: "
        + ", ".join(f"{r.name} {r.tries:,}" for r in report.contention)
        + ".",
        f"- every `update` writer's last value present in the final document: "
        f"{'yes' if present else 'NO, missing writers ' + str(update.checks['writers_missing'])}.",
    ]
    return lines


def _latency_md(report: Report) -> list[str]:
    params = report.parameters
    lines = [
        f"## Latency: one process, one connection, {params['document_bytes']:,}-byte document, "
        f"{params['iterations']:,} calls each",
        "",
        _row("operation", "p50 µs", "p99 µs", "mean µs", "ops/s"),
        _row("---", "---:", "---:", "---:", "---:"),
    ]
    for r in report.latency:
        lines.append(
            _row(
                r.operation,
                f"{r.p50_us:.1f}",
                f"{r.p99_us:.1f}",
                f"{r.mean_us:.1f}",
                f"{r.ops_per_s:,.0f}",
            )
        )
    lines.append("")
    lines.append(
        "The four operations are interleaved call by call, so drift in the machine's speed "
        "hits them all alike. Raw GET/SET include `json.loads`/`json.dumps`; statehq figures "
        "include encoding the patch and decoding the returned snapshot."
    )
    lines.append("")
    lines.append(
        "Ratios: "
        + "; ".join(
            f"{label} = {v['p50']:.2f}x at p50, {v['mean']:.2f}x on mean"
            for label, v in report.ratios.items()
        )
        + "."
    )
    return lines


def _targets_md(report: Report) -> list[str]:
    lines = ["## Targets", "", _row("target", "measured", "status"), _row("---", "---", "---")]
    for t in report.targets():
        lines.append(_row(t.target, t.measured, "met" if t.met else "**not met**"))
    return lines


def to_markdown(report: Report) -> str:
    """The human-readable form written to ``store.md`` and printed."""
    m, p = report.machine, report.parameters
    header = [
        "# statehq store benchmarks",
        "",
        f"Run {m['date']} with `{p['command']}` on {m['platform']}, {m['cpu_count']} CPUs, "
        f"Python {m['python']}, Valkey {m['valkey']} (private embedded server over a unix "
        f"socket, appendfsync {p['appendfsync']}), redis-py {m['redis_py']}, "
        f"statehq {m['statehq']}.",
    ]
    sections = [header, _contention_md(report), _latency_md(report), _targets_md(report)]
    return "\n\n".join("\n".join(s) for s in sections) + "\n"


def write(report: Report, output: Path) -> str:
    """Write ``store.json`` and ``store.md`` under ``output``; the markdown."""
    output.mkdir(parents=True, exist_ok=True)
    text = json.dumps(report.to_json(), indent=2, ensure_ascii=False) + "\n"
    (output / "store.json").write_text(text, encoding="utf-8")
    markdown = to_markdown(report)
    (output / "store.md").write_text(markdown, encoding="utf-8")
    return markdown
