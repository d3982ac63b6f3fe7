"""The inbox as a worker drains it: one round trip per step, for many senders at once.

::

    claim_next   claim up to N senders; let the ones drained before go    one pipeline
    take_all     for each: the lease, unsent replies, oldest update, session
    (the turns)  each commit is one script (Headquarters.process); replies go out
    advance_all  for each: drop the replies sent, ack, next update, session
    ... advance_all until every inbox is empty; the next claim_next lets them go

So N senders with ``k`` queued messages each cost the worker ``2 + k`` round trips
for all of them plus one commit per message (before: ``8 + 4k`` each, with one reply
per message); a sender whose session moved to its member's key costs one more
round trip at its take. Each pipeline keeps the order the invariants of
:mod:`statehq.store.inbox` need: a reply is dropped from the outbox before its update
is acknowledged, a lease is released before its sender leaves the ready set, and a
sender leaves it only when its inbox was seen empty and nobody marked it since.

Letting a drained sender go rides on the worker's next claim, which comes at once
while there is work and within ``idle_sleep`` otherwise. Until then the sender stays
hidden and leased: a message for it that arrives meanwhile is marked as always, and a
worker that claims it finds the lease busy and tries again shortly after.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TypeAlias

from ..config import Settings, StoreSettings
from ..errors import LeaseLost, SessionMoved, StateError
from .inbox import Claim, Inbox, Taken, taken_of
from .models import Lease, Snapshot
from .operations import FENCE_TTL_MS, Operations
from .requests import Operation, Outcome, Pipeline, Request, Script, gather


@dataclass(frozen=True)
class Finish:
    """A sender a worker is done with, let go by the worker's next claim (:meth:`Drain.claim_next`).

    ``lease`` is released first (None: none was taken). ``drained``: the inbox was seen
    empty, so the sender leaves the ready set unless someone marked it since its claim;
    otherwise it is due again in ``delay`` seconds (work is left: a retry's backoff).
    """

    claim: Claim
    lease: Lease | None
    delay: float = 0.0
    drained: bool = False


Read: TypeAlias = Snapshot | StateError | None
"""What ``StateStore.get`` returned for a session key, or the error it raised."""


@dataclass(frozen=True)
class Start:
    """What a worker learns in the round trip after its claim (:meth:`Drain.take`).

    ``lease`` is None when another worker holds the sender (due again after
    ``retry_after`` s). ``session_key`` is where the sender's conversation lives now;
    ``pending`` the replies a worker that died after its commit left unsent, per session
    key; ``taken`` the oldest queued update; ``reads`` the sender's session read with
    it (for :meth:`~statehq.flows.Headquarters.process`).
    """

    lease: Lease | None
    retry_after: float = 0.0
    session_key: str = ""
    pending: list[tuple[str, list[str]]] = field(default_factory=list)
    taken: Taken | None = None
    reads: dict[str, Read] = field(default_factory=dict)
    failure: StateError | None = None
    """The store failed after the lease was won: release it, and try again later."""


@dataclass(frozen=True)
class Advanced:
    """What :meth:`Drain.advance` did: replies dropped, the next update and its reads.

    ``dropped`` holds one flag per reply sent (False: its removal failed, see
    ``failure``); ``failure`` is the first error that is not the next update's own.
    """

    dropped: list[bool]
    taken: Taken | None
    reads: dict[str, Read]
    failure: StateError | None = None


@dataclass(frozen=True)
class Advance:
    """One sender's step of :meth:`Drain.advance_all` (see :meth:`Drain.advance`)."""

    sender: str
    session_key: str
    lease: Lease
    done: str | None
    sent: Sequence[str] = ()
    more: bool = True


def _one(request: Request) -> Operation:
    """An operation of one request, to run beside others in :func:`gather`."""
    return (yield request)


def _advanced(
    drops: list[Outcome], others: list[Outcome], taken: Taken | None, reads: dict[str, Read]
) -> Advanced:
    failure = next((o.error for o in [*drops, *others] if o.error is not None), None)
    if failure is not None and not isinstance(failure, StateError):
        raise failure  # a bug, not the store
    return Advanced([o.error is None for o in drops], taken, reads, failure)


def _read(outcome: Outcome) -> Read:
    """A session read's outcome as :class:`Read`; a bug's error is raised, not handed on."""
    if outcome.error is None:
        value: Snapshot | None = outcome.value
        return value
    if isinstance(outcome.error, StateError):
        return outcome.error
    raise outcome.error


class Drain(Inbox):
    """The inbox operations of a worker's drain (see the module docstring)."""

    def __init__(self, settings: Settings | StoreSettings) -> None:
        super().__init__(settings)
        self._ops = Operations(self.settings)  # the session reads that ride with a take

    def claim_next(
        self, visibility: float, after: Sequence[Finish] = (), *, most: int = 1, share: int = 1
    ) -> Operation:
        """Let the senders ``after`` go, then claim up to ``most`` senders (as :meth:`claim`).

        ``share``: take at most the due senders divided by this, so that when few are
        due a worker taking several does not leave the other workers idle. Returns
        ``(claims, the finishes that failed)``: a failed finish is tried again with the
        next claim, and never costs a claim that succeeded (that sender would stay
        hidden until its visibility timeout).
        """
        args: list[bytes | str | int] = [max(1, round(visibility * 1000)), most, share]
        order = self._pieces()
        # The claim goes first: the only request here that must not run twice (a resend
        # after NOSCRIPT repeats what follows the request refused, never what precedes).
        # A sender let go after it is already due or hidden, so the order costs nothing.
        first = _one(Script("ready_claim", [order[0]], args))
        claimed, *done = yield from gather(first, *(self._let_go(f) for f in after))
        failed = [f for f, outcome in zip(after, done, strict=True) if outcome.error]
        reply = claimed.result()
        for key in order[1:]:
            if reply:
                break
            reply = yield Script("ready_claim", [key], args)
        pairs = zip(reply[::2], reply[1::2], strict=True) if reply else ()
        return [Claim(sender.decode(), until.decode()) for sender, until in pairs], failed

    def let_go(self, finishes: Sequence[Finish]) -> Operation:
        """Release and finish senders now (a worker stopping); raises if any failed."""
        for outcome in (yield from gather(*(self._let_go(f) for f in finishes))):
            outcome.result()

    def _let_go(self, finish: Finish) -> Operation:
        """Release the lease, then finish the sender (see :meth:`finish`), in one pipeline."""
        sender, ready = finish.claim.sender, self.keys.ready_of(finish.claim.sender)
        if finish.drained and finish.delay <= 0:
            done: Script = Script("ready_done", [ready], [sender, finish.claim.hidden_until])
        else:
            millis = str(max(1, round(finish.delay * 1000))) if finish.delay > 0 else "0"
            done = Script("ready_mark", [ready], [millis, sender])
        if finish.lease is None:
            yield done
            return
        release = Script("lease_release", [self._member(sender).lease], [finish.lease.token])
        replies = yield Pipeline((release, done))
        for reply in replies:
            if isinstance(reply, StateError):
                raise reply

    def take(self, sender: str, holder: str, ttl: float) -> Operation:
        """Lease ``sender`` and read what its drain starts from, in one round trip.

        One pipeline, all in the sender's slot: the lease (``holder`` names the worker),
        the replies a worker that died after its commit left in the outbox, the oldest
        queued update (taken only if the lease was won) and the sender's session. A
        sender whose conversation moved to its member's key costs one more round trip
        (that key's outbox and session). Returns a :class:`Start`.
        """
        k = self._member(sender)
        attempt = f"{holder}#{secrets.token_hex(4)}"  # unique: see lease_acquire.lua
        ms = max(1, round(ttl * 1000))
        acquire = Script("lease_acquire", [k.lease, k.fence], [attempt, ms, FENCE_TTL_MS])
        won, pending, taken, read = yield from gather(
            _one(acquire),
            self.outbox(sender, sender),
            self._next(sender, None, f":{attempt}"),
            self._ops.get(sender),
        )
        granted, value = won.result()
        if granted != 1:
            return Start(None, retry_after=max(int(value), 0) / 1000)
        lease = Lease(sender, int(value), holder, float(ttl))
        try:
            unsent = [(sender, pending.result())]
            reads = {sender: _read(read)}
            session_key = sender
            if isinstance(read.error, SessionMoved):
                session_key = read.error.target
                moved_pending, moved_read = yield from gather(
                    self.outbox(session_key, sender), self._ops.get(session_key)
                )
                unsent.append((session_key, moved_pending.result()))
                reads[session_key] = _read(moved_read)
            return Start(lease, 0.0, session_key, unsent, taken.result(), reads)
        except StateError as error:  # the lease is ours all the same: the worker releases it
            return Start(lease, failure=error)

    def take_all(self, senders: Sequence[str], holder: str, ttl: float) -> Operation:
        """:meth:`take` for several senders at once: one round trip for all of them.

        Returns one :class:`~statehq.store.requests.Outcome` of a :class:`Start` per
        sender, in order.
        """
        return (yield from gather(*(self.take(sender, holder, ttl) for sender in senders)))

    def advance_all(self, steps: Sequence[Advance]) -> Operation:
        """:meth:`advance` for several senders at once: one round trip for all of them.

        Returns one :class:`~statehq.store.requests.Outcome` of an :class:`Advanced` per
        step, in order: a sender whose lease was lost fails alone.
        """
        return (
            yield from gather(
                *(
                    self.advance(a.sender, a.session_key, a.lease, a.done, a.sent, more=a.more)
                    for a in steps
                )
            )
        )

    def advance(
        self,
        sender: str,
        session_key: str,
        lease: Lease,
        done: str | None,
        sent: Sequence[str] = (),
        *,
        more: bool = True,
    ) -> Operation:
        """Drop the replies ``sent``, acknowledge ``done`` and take the next update with
        the session it will run on: one round trip (an :class:`Advanced`).

        The replies are dropped first (they were delivered while the lease was ours),
        then ``done`` is acknowledged. The next update is taken only while the lease is
        still ours (else :class:`LeaseLost` is raised) and only if ``more``: a stopping
        worker only acknowledges. The session is read under both keys when it moved, so
        the engine follows the move without a round trip of its own.
        """
        drops = [self.sent(session_key, sender, raw) for raw in sent]
        if not more:
            acks = [_one(Script("inbox_ack", self._queue_keys(sender), [done]))] if done else []
            outcomes = yield from gather(*drops, *acks)
            return _advanced(outcomes[: len(drops)], outcomes[len(drops) :], None, {})
        keys = [sender] if session_key == sender else [sender, session_key]
        outcomes = yield from gather(
            *drops,
            self._next(sender, done, str(lease.token)),
            *(self._ops.get(key) for key in keys),
        )
        nxt, *reads = outcomes[len(drops) :]
        taken = nxt.result()  # LeaseLost, or the store's error: the update is not taken
        read = {key: _read(outcome) for key, outcome in zip(keys, reads, strict=True)}
        return _advanced(outcomes[: len(drops)], [], taken, read)

    def _next(self, sender: str, done: str | None, owner: str) -> Operation:
        """:meth:`next` while the lease is ``owner``'s (a token, or ``:holder``)."""
        keys = [*self._queue_keys(sender), self._member(sender).lease]
        reply = yield Script("inbox_next", keys, [done or "", owner])
        if reply == b"LEASE":
            raise LeaseLost(sender, int(owner) if owner.isdigit() else -1, None)
        return taken_of(reply)
