"""Where the service's CPU goes: a py-spy recording summarised per process and per part.

Record the service benchmark with py-spy following every process, then summarise::

    py-spy record --subprocesses --format raw -r 100 -o /tmp/e2e.txt -- \\
        statehq bench --suite service --output /tmp/bench
    python -m statehq.bench.profile /tmp/e2e.txt

A raw recording is one line per distinct stack, ``frame;frame;...;frame count``, where
py-spy puts ``process <pid>:"<command line>"`` frames in front. Each sample is counted
under the process that took it (a worker, the webhook server, the load generator), and
within it under the *part* of its innermost frame (the store client, the Graph client,
the flow engine, ...) and under each *phase* of the worker's turn it was inside.
"""

from __future__ import annotations

import re
import sys
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

_FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^():]+):\d+\)$")

SOCKET_CALLS = frozenset(
    {
        "_HiredisParser.read_from_socket",
        "AbstractConnection.send_packed_command",
        "_Reader._fill",
        "_Connection.write",
    }
)
"""The innermost frames that are a socket's send or receive: the store's and the Graph's.

py-spy samples by the clock, so time here is the system call plus any wait for a CPU:
on a loopback socket the woken server often runs first on the same core.
"""
SOCKET_PART = "socket send/receive (store and Graph; includes waiting for a CPU)"

PARTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("store client (redis-py, hiredis)", ("redis/", "hiredis")),
    ("Graph client (statehq.channels.http11)", ("statehq/channels/http11.py",)),
    ("flow engine and bot", ("statehq/flows/", "statehq/credex/", "examples/")),
    ("state layer", ("statehq/state/",)),
    ("store layer (statehq.store)", ("statehq/store/",)),
    ("channels (WhatsApp parsing, rendering)", ("statehq/channels/",)),
    ("service (webhook, worker loop)", ("statehq/service/",)),
    ("metrics", ("prometheus_client/", "statehq/metrics")),
    ("logging", ("logging/",)),
    ("JSON", ("json/",)),
    ("asyncio, uvicorn, starlette", ("asyncio/", "uvicorn/", "starlette/", "uvloop")),
    ("imports (start-up)", ("<frozen importlib",)),
)
"""A sample's part: the first whose file prefix its innermost frame's file starts with."""

PHASES: tuple[tuple[str, str], ...] = (
    ("claim, read inbox and session (one pipeline)", "StateStore._pipeline"),
    ("open the session", "StateManager.open"),
    ("flow engine turn", "Headquarters.process"),
    ("commit state + replies (one script)", "StateStore.commit"),
    ("send replies to the Graph API", "Worker._deliver_all"),
)
"""Phases of a worker's turn, by the function each runs inside (inclusive samples)."""


@dataclass
class ProcessProfile:
    """One kind of process: its samples, by part (innermost frame) and by phase."""

    name: str
    samples: int = 0
    parts: Counter[str] = field(default_factory=Counter)
    phases: Counter[str] = field(default_factory=Counter)


def process_kind(command: str) -> str:
    """A readable name for the process a command line started."""
    if "statehq.service.processes" in command:
        return "worker"
    if " serve" in command:
        return "webhook (statehq serve)"
    if "bench" in command:
        return "load generator and fake Graph API"
    return command[:60] or "?"


def part_of(frame: str) -> str:
    """The part an innermost frame belongs to."""
    match = _FRAME.match(frame)
    file = match.group("file") if match else frame
    if match and match.group("function") in SOCKET_CALLS:
        return SOCKET_PART
    for name, prefixes in PARTS:
        if file.startswith(prefixes):
            return name
    return "other (Python runtime, threads)"


def summarise(lines: Iterable[str]) -> dict[str, ProcessProfile]:
    """Profiles by process kind from the lines of a py-spy raw recording."""
    profiles: dict[str, ProcessProfile] = defaultdict(lambda: ProcessProfile(""))
    for line in lines:
        stack, _, count = line.rstrip("\n").rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        commands = [f for f in frames if f.startswith("process ")]
        code = [f for f in frames if not f.startswith("process ")]
        if not code:
            continue
        kind = process_kind(commands[-1].partition(":")[2].strip('"') if commands else "")
        profile = profiles[kind]
        profile.name = kind
        samples = int(count)
        profile.samples += samples
        profile.parts[part_of(code[-1])] += samples
        for phase, function in PHASES:
            if any(frame.startswith(function + " (") for frame in code):
                profile.phases[phase] += samples
    return dict(profiles)


def render(profiles: dict[str, ProcessProfile]) -> str:
    """The summary as Markdown tables: processes, then parts and phases of each."""
    total = sum(p.samples for p in profiles.values()) or 1
    ordered = sorted(profiles.values(), key=lambda p: -p.samples)
    lines = ["| process | samples | share |", "| --- | ---: | ---: |"]
    lines += [f"| {p.name} | {p.samples:,} | {100 * p.samples / total:.0f}% |" for p in ordered]
    for p in ordered:
        lines += ["", f"**{p.name}**: where its samples were (innermost frame)", ""]
        lines += ["| part | share |", "| --- | ---: |"]
        for name, samples in p.parts.most_common():
            lines.append(f"| {name} | {100 * samples / p.samples:.1f}% |")
        if p.phases:
            lines += ["", "| phase of a turn (inclusive) | share |", "| --- | ---: |"]
            for phase, _ in PHASES:
                lines.append(f"| {phase} | {100 * p.phases[phase] / p.samples:.1f}% |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """``python -m statehq.bench.profile RECORDING``: print the summary."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m statehq.bench.profile RECORDING (py-spy --format raw)")
        return 2
    try:
        with Path(args[0]).open(encoding="utf-8", errors="replace") as recording:
            profiles = summarise(recording)
    except OSError as error:
        print(f"cannot read {args[0]}: {error.strerror or error}")
        return 1
    if not profiles:
        print(f"{args[0]} holds no samples (record with py-spy --format raw)")
        return 1
    print(render(profiles), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
