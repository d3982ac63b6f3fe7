"""``results.json`` rendered: ``README.md`` (tables) and ``contention.png`` (matplotlib).

Everything here reads the plain data of :func:`statehq.bench.results.build`, so a report
can be rendered again from a saved ``results.json`` without measuring anything.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

PLOT = "contention.png"
HEADLINE_START = "<!-- bench:headline -->"
HEADLINE_END = "<!-- /bench:headline -->"


def _row(*cells: object) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def _table(head: Sequence[str], align: str, rows: Iterable[Sequence[object]]) -> list[str]:
    """A markdown table; ``align`` is one character per column, ``l`` or ``r``."""
    rule = ["---" if a == "l" else "---:" for a in align]
    return [_row(*head), _row(*rule), *(_row(*r) for r in rows)]


def _met(figure: dict[str, Any]) -> str:
    met = figure.get("met")
    return "" if met is None else ("met" if met else "**not met**")


def _n(value: float | None, digits: int = 0) -> str:
    return "" if value is None else f"{value:,.{digits}f}"


# -- the sections -------------------------------------------------------------------------


def headline_table(results: dict[str, Any]) -> list[str]:
    """The goals: figure, goal, what this run measured, met or not."""
    rows = [(g["figure"], g["goal"], g["shown"], _met(g)) for g in results["goals"]]
    return _table(("figure", "goal", "measured", "status"), "llll", rows)


def _header(results: dict[str, Any]) -> list[str]:
    run, machine, versions = results["run"], results["machine"], results["versions"]
    peers = ", ".join(f"{name} {version}" for name, version in versions.items())
    lines = [
        "# statehq benchmarks",
        "",
        f"Measured in one run of `{run['command']}` ({run['seconds']:,.0f} s) on {run['date']}: "
        f"{machine['platform']}, {machine['cpu_count']} CPUs, {machine['cpu_model']}. "
        f"Every figure comes from the same private Valkey server, {machine['store']}; "
        f"every comparison is a ratio between figures of this run. Versions: {peers}.",
        "",
        "Where the service's CPU goes, profiled with py-spy before and after the work on "
        "speed: [profile.md](profile.md).",
    ]
    if run["quick"]:
        lines += ["", "**A `--quick` smoke run: too short for figures worth quoting.**"]
    if run.get("suite") != "all":
        lines += [
            "",
            f"**A partial run (`--suite {run['suite']}`): sections not measured are left out.**",
        ]
    if run.get("load_average"):
        lines += [
            "",
            f"Load average when the run started: {run['load_average']} (near 0 on an idle "
            "machine; above that, other work shared the CPUs and the figures are lower and "
            "noisier).",
        ]
    return lines


def _goals(results: dict[str, Any]) -> list[str]:
    return ["## Goals", "", *headline_table(results)]


def _contention(section: dict[str, Any], results: dict[str, Any]) -> list[str]:
    rows = section["rows"]
    ratio = {(r["versus"], r["writers"]): r["update_ratio"] for r in section["ratios"]}
    table = _table(
        (
            "implementation",
            "writers",
            "successful/s",
            "failed",
            "lost",
            "attempts",
            "update ÷ this",
        ),
        "lrrrrrr",
        (
            (
                r["label"],
                r["writers"],
                _n(r["per_second"]),
                f"{r['failed']:,}",
                f"{r['lost']:,}",
                f"{r['attempts']:,}",
                "" if r["name"] == "update" else f"{ratio.get((r['name'], r['writers']), 0):.1f}x",
            )
            for r in rows
        ),
    )
    seconds = results["plan"]["contention_s"]
    return [
        f"## Contention: writer processes on one member, {seconds:g} s each",
        "",
        *table,
        "",
        f"![successful updates/s by writers]({PLOT})",
        "",
        "- *successful/s*: successes the writers counted / wall time from the first writer's "
        "start to the last one's finish; writers and server share the machine's CPUs.",
        "- *lost*: successes the writers were told about, less the writes the server holds "
        "(versions gained for `update`, counter increments for the others).",
        "- aiogram: a counting handler (`get_data`, then `update_data` with the counter + 1), "
        "bare or under `RedisEventIsolation` (aiogram's Redis lock, its defaults), as the "
        "dispatcher runs handlers; and the same handler on statehq's aiogram storage "
        "(`statehq.integrations.aiogram`) under its isolation, the session's fenced lease.",
    ]


def _latency(section: dict[str, Any]) -> list[str]:
    ops = section["operations"]
    table = _table(
        ("operation", "p50 µs", "p99 µs", "mean µs", "ops/s"),
        "lrrrr",
        (
            (
                o["operation"],
                f"{o['p50_us']:.1f}",
                f"{o['p99_us']:.1f}",
                f"{o['mean_us']:.1f}",
                _n(o["ops_per_s"]),
            )
            for o in ops
        ),
    )
    ratios = "; ".join(
        f"{r['ratio']} = {r['p50']:.2f}x at p50, {r['mean']:.2f}x on mean"
        for r in section["ratios"]
    )
    return [
        f"## Single-operation latency: one connection, a {section['document_bytes']:,}-byte "
        f"document, {ops[0]['iterations']:,} calls each",
        "",
        *table,
        "",
        f"Ratios: {ratios}. The operations are interleaved call by call so drift in the "
        "machine's speed hits them alike; raw GET/SET include `json.loads`/`json.dumps`.",
    ]


def _round_trips(rows: list[dict[str, Any]]) -> list[str]:
    table = _table(
        (
            "serve processes",
            "round trips",
            "commands",
            "script calls",
            "bytes in",
            "bytes out",
            "busiest commands (calls per message)",
        ),
        "rrrrrrl",
        (
            (
                r["processes"],
                f"{r['round_trips']:.2f}",
                f"{r['commands']:.2f}",
                f"{r['script_calls']:.2f}",
                _n(r["bytes_in"]),
                _n(r["bytes_out"]),
                ", ".join(f"{k} {v:g}" for k, v in list(r["by_command"].items())[:6]),
            )
            for r in rows
        ),
    )
    return [
        "## Store round trips and bytes per processed message",
        "",
        *table,
        "",
        "From the server's `INFO stats` and `INFO commandstats` before and after each "
        "throughput run, over the messages processed: *round trips* are read events on client "
        "sockets (`total_reads_processed`: a pipeline sent at once is one), *commands* include "
        "the ones scripts run inside `EVALSHA`. Everything the service did in that window "
        "counts (webhook, workers, reconciler, probes).",
    ]


def _end_to_end(section: dict[str, Any]) -> list[str]:
    table = _table(
        (
            "target",
            "processes",
            "phase",
            "requests",
            "acks/s",
            "ack p50 ms",
            "ack p99 ms",
            "processed/s",
            "lost",
            "duplicated",
            "status",
        ),
        "lrlrrrrrrrl",
        (
            (
                p["target"],
                p["processes"],
                p["phase"],
                f"{p['requests']:,}",
                _n(p["acks_per_second"]),
                p["ack_p50_ms"],
                p["ack_p99_ms"],
                _n(p["processed_per_second"]),
                "" if p["lost"] is None else p["lost"],
                "" if p["duplicated"] is None else p["duplicated"],
                _met(p),
            )
            for p in section["phases"]
        ),
    )
    ratios = _table(
        ("statehq serve versus", "phase", "acks/s ratio", "ack p99 ratio"),
        "llrr",
        (
            (
                r["versus"],
                r["phase"],
                f"{r['acks_per_second_ratio']:.2f}x",
                f"{r['ack_p99_ratio']:.2f}x",
            )
            for r in section["ratios"]
        ),
    )
    handled = next((p["handled"] for p in section["phases"] if p.get("handled")), None)
    lines = [
        "## End to end: signed webhook requests in, replies out",
        "",
        *table,
        "",
        *ratios,
        "",
        "statehq acknowledges after the update is durably queued and counts as *processed* "
        "only once the flow ran, the state was committed and the reply reached the fake "
        "Graph API. The bare endpoint only reads the body; pywa checks the signature, "
        "answers, then parses and hands each update to a handler that counts it"
        + (f" ({handled:,} handled)." if handled else "."),
    ]
    return lines + _cpu(section)


def _cpu(section: dict[str, Any]) -> list[str]:
    ours = next((p for p in section["phases"] if p.get("cpu_ms_per_message")), None)
    if ours is None:
        return []
    cpu = ours["cpu_ms_per_message"]
    total = cpu["total"] or 1.0
    rows = [(k, f"{v:.3f}", f"{v / total:.0%}") for k, v in cpu.items() if k != "total"]
    return [
        "",
        "CPU time per processed message in that throughput run (user + system, every "
        "process that took part):",
        "",
        *_table(
            ("part", "CPU ms per message", "share"),
            "lrr",
            [*rows, ("**total**", f"**{total:.3f}**", "")],
        ),
    ]


def _scaling(rows: list[dict[str, Any]]) -> list[str]:
    table = _table(
        (
            "serve processes",
            "workers each",
            "processed/s",
            "vs the first",
            "acks/s",
            "ack p99 ms",
            "lost",
            "duplicated",
            "status",
        ),
        "rrrrrrrrl",
        (
            (
                r["processes"],
                r["workers_per_process"],
                _n(r["processed_per_second"]),
                f"{r['versus_first']:.2f}x",
                _n(r["acks_per_second"]),
                r["ack_p99_ms"],
                r["lost"],
                r["duplicated"],
                _met(r),
            )
            for r in rows
        ),
    )
    return ["## Scaling: 1, 2 and 4 `statehq serve` processes", "", *table]


def _breakdown(m: dict[str, Any]) -> str:
    """The keys counted in the figure, then (statehq) what a worker leaves beside them."""
    per = m["breakdown"]
    if m["layout"] != "statehq":
        return ", ".join(f"{k} {v:,.0f}" for k, v in per.items())
    counted = ", ".join(f"{k} {per[k]:,.0f}" for k in ("doc", "history", "markers") if k in per)
    beside = ", ".join(
        f"{k.replace('_', ' ')} {per[k]:,.0f}"
        for k in ("dedup", "audit", "audit_tail")
        if per.get(k)
    )
    total = f"; {per['total']:,.0f} in all" if "total" in per else ""
    return f"{counted} (beside it: {beside}{total})" if beside else counted


def _memory(section: dict[str, Any]) -> list[str]:
    ratio = {r["versus"]: r["ratio"] for r in section["ratios"]}
    rows = []
    for m in section["layouts"]:
        versus = "" if m["layout"] == "statehq" else f"{ratio.get(m['layout'], 0):.1f}x"
        rows.append(
            (
                m["label"],
                f"{m['sessions']:,}",
                _n(m["bytes_per_session"]),
                versus,
                _breakdown(m),
                _met(m),
            )
        )
    table = _table(
        (
            "layout",
            "sessions",
            "bytes per session",
            "statehq ÷ this",
            "by kind of key (bytes)",
            "status",
        ),
        "lrrrll",
        rows,
    )
    return [
        "## Memory per session",
        "",
        *table,
        "",
        "`MEMORY USAGE` (every element counted) of each layout's keys after the same "
        "twelve-write credex conversation, divided by the sessions. statehq's figure is the "
        "session itself (document, history ring, markers); the dedup marks and the audit "
        "stream a worker leaves beside it are listed, not counted: the peers keep neither. "
        "The peers keep the final document only, no history.",
    ]


def _cold_start(rows: list[dict[str, Any]]) -> list[str]:
    table = _table(
        ("store", "starts", "median s", "worst s"),
        "lrrr",
        (
            (r["store"], len(r["seconds"]), f"{r['median_s']:.2f}", f"{r['worst_s']:.2f}")
            for r in rows
        ),
    )
    return [
        "## Cold start: `statehq serve` exec to `/readyz` 200",
        "",
        *table,
    ]


def to_markdown(results: dict[str, Any]) -> str:
    """The whole report."""
    sections = [_header(results), _goals(results)]
    renderers = (
        ("contention", lambda s: _contention(s, results)),
        ("latency", _latency),
        ("end_to_end", _end_to_end),
        ("round_trips", _round_trips),
        ("scaling", _scaling),
        ("memory", _memory),
        ("cold_start", _cold_start),
    )
    for key, render in renderers:
        if results.get(key):
            sections.append(render(results[key]))
    return "\n\n".join("\n".join(s) for s in sections) + "\n"


# -- the plot -----------------------------------------------------------------------------


def plot_contention(results: dict[str, Any], path: Path) -> bool:
    """Successful updates/s by writer count, one bar per implementation; False if no data.

    Bars of runs that lost or failed updates are hatched: their rate is not the same thing.
    """
    section = results.get("contention")
    if not section:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = {(r["name"], r["writers"]): r for r in section["rows"]}
    names = list(dict.fromkeys(name for name, _ in rows))
    labels = {name: r["label"] for (name, _), r in rows.items()}
    writers = sorted({w for _, w in rows})
    figure, axes = plt.subplots(figsize=(9, 5.6), dpi=110)
    width = 0.8 / len(names)
    for i, name in enumerate(names):
        for x, w in enumerate(writers):
            r = rows.get((name, w))
            if r is None:
                continue
            spoiled = r["lost"] or r["failed"]
            axes.bar(
                x + (i - (len(names) - 1) / 2) * width,
                max(r["per_second"], 1.0),
                width,
                color=f"C{i}",
                hatch="//" if spoiled else None,
                edgecolor="white" if spoiled else None,
                label=labels[name] if x == 0 else None,
            )
    axes.set_xticks(range(len(writers)), [f"{w} writer{'s' if w > 1 else ''}" for w in writers])
    axes.set_yscale("log")
    axes.set_ylabel("successful updates/s (log scale)")
    axes.axhline(10_000, color="grey", linestyle="--", linewidth=1)
    axes.text(
        len(writers) - 0.5,
        10_500,
        "goal: 10,000/s",
        ha="right",
        va="bottom",
        fontsize=8,
        color="grey",
    )
    run, machine = results["run"], results["machine"]
    axes.set_title(
        f"Contention on one member: {run['date'][:10]}, {machine['cpu_count']} CPUs "
        "(hatched: updates lost or failed)",
        fontsize=10,
    )
    axes.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=2)
    figure.tight_layout()
    figure.savefig(path, metadata={"Software": None})
    plt.close(figure)
    return True


def update_readme(readme: Path, results: dict[str, Any], report: str) -> bool:
    """Put the headline table between the README's bench markers; False without markers."""
    text = readme.read_text(encoding="utf-8")
    if HEADLINE_START not in text or HEADLINE_END not in text:
        return False
    head, rest = text.split(HEADLINE_START, 1)
    tail = rest.split(HEADLINE_END, 1)[1]
    run = results["run"]
    body = [
        f"Last run: {run['date'][:10]}, `{run['command']}`, {results['machine']['cpu_count']} "
        f"CPUs (full report: [{report}]({report})).",
        "",
        *headline_table(results),
    ]
    readme.write_text(
        f"{head}{HEADLINE_START}\n" + "\n".join(body) + f"\n{HEADLINE_END}{tail}", encoding="utf-8"
    )
    return True
