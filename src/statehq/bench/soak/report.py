"""The soak's report: docs/benchmarks/soak.{json,md}."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from .plan import (
    SoakPlan,
    SoakResult,
    SoakResults,
)


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
