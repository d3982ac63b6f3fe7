"""CPU time by process, read from /proc: where a benchmark's cycles went.

The service benchmark runs every part on one machine, so its throughput is bounded by
the CPU each processed message costs across all of them. Measuring that per part says
which part to make cheaper, and what the machine could do at best at that cost.
"""

from __future__ import annotations

import os
import resource
from collections.abc import Mapping
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None  # gone, or not Linux
    return text.rsplit(")", 1)[1].split()  # the name may hold spaces and parentheses


def own_seconds(pid: int) -> float:
    """User + system CPU seconds ``pid`` has used (0 when it is gone)."""
    fields = _stat(pid)
    return (int(fields[11]) + int(fields[12])) / TICKS if fields else 0.0


def children(pid: int) -> list[int]:
    """Live processes whose parent is ``pid`` (zombies, dead but not yet reaped, left out)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat(int(entry.name))
            if fields and int(fields[1]) == pid and fields[0] != "Z":
                found.append(int(entry.name))
    return found


def this_process_seconds() -> float:
    """User + system CPU seconds of this process (every thread)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class CpuMeter:
    """CPU seconds per named part between :meth:`start` and :meth:`stop`.

    ``parts`` maps a name to pids; a part's children (a server's worker processes) count
    under ``<name> children`` when ``with_children`` names it.
    """

    def __init__(self, parts: Mapping[str, list[int]], with_children: tuple[str, ...] = ()) -> None:
        self.parts = dict(parts)
        self.with_children = with_children
        self._before: dict[str, float] = {}

    def _read(self) -> dict[str, float]:
        totals = {name: sum(own_seconds(p) for p in pids) for name, pids in self.parts.items()}
        for name in self.with_children:
            kids = [kid for pid in self.parts[name] for kid in children(pid)]
            totals[f"{name} children"] = sum(own_seconds(kid) for kid in kids)
        totals["load generator"] = this_process_seconds()
        return totals

    def start(self) -> None:
        """Remember every part's CPU time now."""
        self._before = self._read()

    def stop(self) -> dict[str, float]:
        """CPU seconds each part used since :meth:`start`."""
        after = self._read()
        return {name: after[name] - self._before.get(name, 0.0) for name in after}
