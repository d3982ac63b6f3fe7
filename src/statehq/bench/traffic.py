"""Store traffic per processed message, read from the server's own counters.

``INFO stats`` and ``INFO commandstats`` are read before and after a run; the difference,
divided by the messages processed, is what each message cost the store:

- *round trips*: ``total_reads_processed``, the read events on client sockets. A request
  (or a pipeline sent in one write) is one read event, so this counts round trips,
  whichever process made them (webhook, workers, reconciler, health probes);
- *commands*: every command the server ran, including those a script runs inside
  ``EVALSHA`` (``commandstats`` counts both), and how many of them were script calls;
- *bytes*: ``total_net_input_bytes`` and ``total_net_output_bytes``.

The two ``INFO`` calls themselves are left in: three round trips over thousands of
messages.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import redis

SCRIPT_COMMANDS = ("evalsha", "eval", "evalsha_ro", "eval_ro", "fcall", "fcall_ro")
_STATS = ("total_reads_processed", "total_net_input_bytes", "total_net_output_bytes")


@dataclass(frozen=True)
class Counters:
    """The server's counters at one moment."""

    stats: dict[str, int]
    calls: dict[str, int]
    """Calls by command name (``evalsha``, ``hset``, ``client|setinfo``...)."""


@dataclass
class Traffic:
    """Store traffic per processed message between two :class:`Counters`."""

    messages: int
    round_trips: float
    commands: float
    script_calls: float
    bytes_in: float
    bytes_out: float
    by_command: dict[str, float] = field(default_factory=dict)
    """Calls per message of the busiest commands, busiest first."""


def read_counters(client: redis.Redis) -> Counters:
    """``INFO stats`` and ``INFO commandstats`` now."""
    stats: dict[str, Any] = client.info("stats")
    commandstats: dict[str, Any] = client.info("commandstats")
    calls = {
        name.removeprefix("cmdstat_"): int(values["calls"]) for name, values in commandstats.items()
    }
    return Counters({key: int(stats[key]) for key in _STATS}, calls)


def per_message(before: Counters, after: Counters, messages: int, top: int = 8) -> Traffic:
    """What ``messages`` messages cost between ``before`` and ``after``."""
    per = max(messages, 1)
    calls = {
        name: count - before.calls.get(name, 0)
        for name, count in after.calls.items()
        if count > before.calls.get(name, 0)
    }
    busiest = sorted(calls.items(), key=lambda item: item[1], reverse=True)[:top]

    def delta(key: str) -> float:
        return round((after.stats[key] - before.stats[key]) / per, 2)

    return Traffic(
        messages=messages,
        round_trips=delta("total_reads_processed"),
        commands=round(sum(calls.values()) / per, 2),
        script_calls=round(sum(calls.get(name, 0) for name in SCRIPT_COMMANDS) / per, 2),
        bytes_in=delta("total_net_input_bytes"),
        bytes_out=delta("total_net_output_bytes"),
        by_command={name: round(count / per, 2) for name, count in busiest},
    )
