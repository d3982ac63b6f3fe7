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
class Pipeline:
    """Scripts and commands sent together, in order, in one round trip per server.

    The reply is one item per request, in order: what the request alone would have
    returned, or the :class:`~statehq.errors.StateError` it alone would have raised (a
    script that failed, a full server) in its place, so one failed request does not
    hide the others' replies. A lost connection raises for the whole pipeline.

    The server runs the requests in order. On a Cluster, consecutive requests in one
    slot go together and the groups are sent one after another, so the order holds
    there too (a ready mark after the push it announces, a lease released after the
    replies it guarded were dropped). Every request must be safe to send twice: a
    script the server forgot (NOSCRIPT) is loaded and the requests from the first one
    it refused on are sent again (the later ones ran without it, so their replies are
    replaced too), and a dropped connection resends the pipeline, as it resends a
    single call.
    """

    requests: tuple[Script | Command, ...]


@dataclass(frozen=True)
class Outcome:
    """What one operation of :func:`gather` came to: its value, or the error it raised."""

    value: Any = None
    error: Exception | None = None

    def result(self) -> Any:
        """The value; raises the operation's error instead when it failed."""
        if self.error is not None:
            raise self.error
        return self.value


def gather(*operations: Operation) -> Operation:
    """Run operations side by side: one round trip per round instead of one per request.

    Each round, the next request of every operation still running goes into one
    :class:`Pipeline` (in the order the operations were given) and each operation gets
    its own reply, or its own error thrown in, as if it had run alone (an operation that
    asks for a pipeline of its own has its requests joined to the round's, in order, and
    gets their replies). Returns one :class:`Outcome` per operation: an operation's
    failure is its own and does not stop the others. Requests a pipeline cannot carry
    (a sleep, a scan) are run one by one.
    """
    outcomes: list[Outcome | None] = [None] * len(operations)
    pending: dict[int, Request] = {}

    def step(index: int, reply: Any) -> None:
        operation = operations[index]
        try:
            if isinstance(reply, Exception):
                pending[index] = operation.throw(reply)
            else:
                pending[index] = operation.send(reply)
        except StopIteration as done:
            outcomes[index] = Outcome(done.value)
        except Exception as error:  # the operation's own failure, kept as its outcome
            outcomes[index] = Outcome(error=error)

    for index in range(len(operations)):
        step(index, None)
    while pending:
        round_ = sorted(pending.items())
        pending.clear()
        # (operation, index of its first request in the pipeline, how many; -1: not a list)
        carried: list[tuple[int, int, int]] = []
        requests: list[Script | Command] = []
        for index, request in round_:
            if isinstance(request, Script | Command):
                carried.append((index, len(requests), -1))
                requests.append(request)
            elif isinstance(request, Pipeline):  # its requests join the round's, in order
                carried.append((index, len(requests), len(request.requests)))
                requests.extend(request.requests)
            else:
                step(index, (yield request))
        if requests:
            replies = yield Pipeline(tuple(requests))
            for index, first, count in carried:
                step(index, replies[first] if count < 0 else replies[first : first + count])
    return [outcome if outcome is not None else Outcome() for outcome in outcomes]


@dataclass(frozen=True)
class Sleep:
    """Wait before the next attempt."""

    seconds: float


Request = Script | Command | Scan | Batch | Pipeline | Sleep
Operation = Generator[Request, Any, Any]


def keys_of(request: Request) -> list[str] | tuple[str, ...]:
    """The keys a request touches (for naming the session in error messages)."""
    if isinstance(request, Script):
        return request.keys
    if isinstance(request, Command):
        return request.args[1:2]
    return ()


def name_of(request: Script | Command | Scan | Batch | Pipeline) -> str:
    """A short label for metrics: the script's name or the command's verb."""
    if isinstance(request, Script):
        return request.name
    if isinstance(request, Scan):
        return "scan"
    if isinstance(request, Batch):
        return "batch"
    if isinstance(request, Pipeline):
        return "pipeline"
    return request.args[0].lower()


def names_of(request: Script | Command | Scan | Batch | Pipeline) -> list[str]:
    """The metric labels of one round trip: each request of a pipeline under its own name
    (each waited the whole round trip for its reply), else :func:`name_of`."""
    if isinstance(request, Pipeline):
        return [name_of(part) for part in request.requests]
    return [name_of(request)]
