"""What an operation asks its driver to do: run a script, run commands, scan, or sleep.

Operations (:mod:`statehq.store.operations`, :mod:`.audit`, :mod:`.routes`) are
generators yielding these; :class:`StateStore` and :class:`AsyncStateStore` perform them.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Script:
    """Run the named ``.lua`` script with these keys and arguments."""

    name: str
    keys: list[str]
    args: list[bytes | str | int]


@dataclass(frozen=True)
class Command:
    """Run one plain Redis command."""

    args: tuple[str, ...]


@dataclass(frozen=True)
class Scan:
    """One page of a SCAN over every master (on a Cluster, node after node).

    ``cursor`` is ``"0"`` to start; the reply is ``(next cursor, keys)``, and a next
    cursor of ``"0"`` means done. SCAN, never KEYS: the server is never blocked.
    """

    cursor: str
    match: str
    count: int
    type: str | None = None

    def command(self, cursor: int | str) -> tuple[str, ...]:
        """The SCAN command for one node at its own ``cursor``."""
        typed = ("TYPE", self.type) if self.type else ()
        return ("SCAN", str(cursor), "MATCH", self.match, "COUNT", str(self.count), *typed)


@dataclass(frozen=True)
class Batch:
    """Plain commands sent together as one pipeline (not a transaction), replies in order.

    One round trip per server instead of one per command, for reading many keys at once
    (a survey reads a SCAN page's sessions this way). Each command stands alone: one the
    server refuses (a key holding the wrong type) gets a :class:`Refused` in place of its
    reply, so one odd key does not sink the rest; a lost connection fails the whole batch.
    On a Cluster each command goes to the node owning its key.
    """

    commands: tuple[Command, ...]


@dataclass(frozen=True)
class Refused:
    """The reply of a command in a :class:`Batch` that the server refused, and why."""

    reason: str


def batch_replies(replies: list[Any]) -> list[Any]:
    """A pipeline's replies as a :class:`Batch` hands them back (errors as :class:`Refused`)."""
    return [Refused(str(reply)) if isinstance(reply, Exception) else reply for reply in replies]


@dataclass(frozen=True)
class Sleep:
    """Wait before the next attempt."""

    seconds: float


Request = Script | Command | Scan | Batch | Sleep
Operation = Generator[Request, Any, Any]


def keys_of(request: Request) -> list[str] | tuple[str, ...]:
    """The keys a request touches (for naming the session in error messages)."""
    if isinstance(request, Script):
        return request.keys
    if isinstance(request, Command):
        return request.args[1:2]
    return ()


def name_of(request: Script | Command | Scan | Batch) -> str:
    """A short label for metrics: the script's name or the command's verb."""
    if isinstance(request, Script):
        return request.name
    if isinstance(request, Scan):
        return "scan"
    if isinstance(request, Batch):
        return "batch"
    return request.args[0].lower()
