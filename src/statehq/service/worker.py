"""Inbox workers: each sender's updates processed one at a time, in order, exactly once.

A worker claims senders with work, takes each one's lease (a fencing token the store
checks on every write to the sender's keys) and drains each sender's inbox oldest first:

1. replies left in the outbox by a worker that died after its commit go out first;
2. an update taken before and not acknowledged is checked against its dedup mark: if
   its turn was committed, it is only acknowledged (its replies are in the outbox);
3. a message runs through the flow engine as one turn, committed by one script with
   its dedup mark and its replies (:meth:`Headquarters.process`);
4. the turn's replies are sent, in order; then one call drops them from the outbox,
   acknowledges the update and takes the sender's next one with its session document.

Up to ``batch`` senders are drained side by side, one update of each per round, and
each step is one round trip for all of them (:mod:`statehq.store.drain`): the claim
also lets the senders drained before go, the leases come with the first updates and
sessions, a round's acknowledgements ride with its next updates, and a turn needs no
read of its own; only each turn's commit is a round trip of its own. Other senders are
processed concurrently by other workers, threads or processes.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from .. import metrics
from ..channels.base import Delivery, inbound_of
from ..errors import (
    LeaseLost,
    SessionMoved,
    StateError,
    StoreRefused,
    StoreUnavailable,
)
from ..flows import Inbound, Message
from ..redact import get_logger, mask_identity, redact_text
from ..store import Lease, StateStore
from ..store.audit import AuditEvent
from ..store.drain import Advance, Advanced, Drain, Finish, Read, Start
from ..store.inbox import Claim, Taken, Update
from ..store.operations import Outbox
from .bots import Engine
from .notices import Notices
from .replies import ReplySender

log = get_logger(__name__)


@dataclass(frozen=True)
class WorkerSettings:
    """How a worker paces itself, and how often an update may fail before it is set aside."""

    lease_ttl: float = 30.0
    max_message_age: float = 86400.0
    unsupported_window: float = 60.0
    idle_sleep: float = 0.05
    max_attempts: int = 5
    retry_base: float = 0.5  # the first retry's delay (s); it doubles with each attempt
    retry_cap: float = 30.0
    store_retry: float = 1.0  # a sender whose drain the store broke is due again after this
    batch: int = 8  # the most senders one claim takes (see Worker.step)
    share: int = 2  # ...and at most the due ones divided by this: the rest is for others

    def backoff(self, attempts: int) -> float:
        """Seconds before a failed update's next attempt (jittered, capped)."""
        delay = min(self.retry_base * 2.0 ** min(attempts - 1, 20), self.retry_cap)
        return delay * random.uniform(0.8, 1.2)


class _Sender:
    """One claimed sender of a worker's batch, while its inbox is drained."""

    def __init__(self, claim: Claim, lease: Lease, start: Start) -> None:
        self.claim = claim
        self.sender = claim.sender
        self.lease = lease
        self.pending = start.pending
        self.session_key = start.session_key
        self.taken: Taken | None = start.taken  # the update in hand, taken and not yet acked
        self.reads = start.reads


def _session_of(sender: str, reads: dict[str, Read], known: str) -> str:
    """Where ``sender``'s conversation lives, as its latest read says (else ``known``)."""
    read = reads.get(sender, known)
    if isinstance(read, SessionMoved):
        return read.target
    return sender if sender in reads else known


def _not_the_message(error: Exception) -> bool:
    """True for failures of the store or of the lease, which never count against an update.

    A store that answered with an error (:class:`StoreRefused`: a script failed on what
    the update carried) is the update's failure like any other.
    """
    if isinstance(error, StoreRefused):
        return False
    return isinstance(error, StoreUnavailable | LeaseLost)


class Worker:
    """One inbox worker: run :meth:`run` in a thread, stop it with ``stop``.

    No update can stop a worker: whatever handling one raises is counted, logged once
    with its context, and retried with backoff; after ``max_attempts`` the update is
    set aside as a dead letter (:mod:`statehq.store.dead_letters`) and the sender's next
    update goes on. Store trouble is not an update's fault: the worker pauses and
    carries on when the store is back, finishing first what the outage interrupted.
    """

    def __init__(
        self,
        store: StateStore,
        engine: Engine,
        delivery: Delivery | Mapping[str, Delivery],
        settings: WorkerSettings,
        stop: threading.Event,
        *,
        name: str = "worker",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.engine = engine
        self.replies = ReplySender(store, delivery, name)
        self.notices = Notices(store, self.replies, settings.unsupported_window, clock)
        self.settings = settings
        self.stop = stop
        self.name = name
        self.clock = clock
        self.inbox = Drain(store.settings)
        # Senders drained (or given up on) and not yet let go: the next claim lets them go.
        self._unfinished: list[Finish] = []
        self._lease_checked: dict[str, float] = {}  # sender -> when its lease was known ours
        # Replies delivered whose removal from the outbox failed, with (session key,
        # sender): removed before the sender's lease is given up, so never sent again.
        self._delivered: dict[str, tuple[str, str]] = {}

    def run(self) -> None:
        """Work until ``stop`` is set; neither a store outage nor a bug ends the worker."""
        try:
            self._loop()
        finally:
            with contextlib.suppress(Exception):  # stopping: what is left waits for its timeout
                self._finish_interrupted()

    def _loop(self) -> None:
        pause = self.settings.idle_sleep
        while not self.stop.is_set():
            try:
                worked = self.step()
            except Exception as error:
                metrics.WORKER_ERRORS.labels(type(error).__name__).inc()
                if isinstance(error, StateError):
                    log.warning("%s: %s; retrying shortly", self.name, redact_text(str(error)))
                else:
                    log.error("%s: unexpected error; retrying shortly", self.name, exc_info=error)
                worked = False
                pause = min(max(pause * 2, 0.1), 2.0)
            else:
                pause = 0.001 if worked else min(pause * 2 if pause > 0.001 else 0.002, 0.05)
            if not worked:
                self.stop.wait(pause)

    def step(self) -> bool:
        """Claim senders with work and drain their inboxes; False when nobody had work.

        Up to ``batch`` senders are drained side by side, one update of each per round:
        the round's acknowledgements, next updates and session reads go to the store in
        one round trip for all of them (see :mod:`statehq.store.drain`).
        """
        s = self.settings
        self._drop_delivered()
        claims, self._unfinished = self.store.execute(
            self.inbox.claim_next(s.lease_ttl, self._unfinished, most=s.batch, share=s.share)
        )
        if not claims:
            return False
        try:
            starts = self.store.execute(
                self.inbox.take_all([claim.sender for claim in claims], self.name, s.lease_ttl)
            )
        except BaseException:  # the store failed: the claims are finished once it is back
            self._unfinished.extend(Finish(claim, None, s.store_retry) for claim in claims)
            raise
        batch: list[_Sender] = []
        failure: Exception | None = None
        for claim, outcome in zip(claims, starts, strict=True):
            start: Start | None = outcome.value
            if start is None or start.failure is not None:
                lease = start.lease if start is not None else None  # else: lost, until its TTL
                self._unfinished.append(Finish(claim, lease, s.store_retry))
                failure = failure or outcome.error or (start.failure if start else None)
            elif start.lease is None:
                metrics.LEASE_WAITS.inc()
                delay = min(max(start.retry_after, 0.01), 0.2)
                self._unfinished.append(Finish(claim, None, delay))  # deferred by the next claim
            else:
                self._lease_checked[claim.sender] = time.monotonic()
                batch.append(_Sender(claim, start.lease, start))
        try:
            self._drain(batch)
        except BaseException:
            self._abandon(batch)
            raise
        if failure is not None:
            raise failure
        return True

    def _finish_interrupted(self) -> None:
        """Let go now of the senders this worker is done with (raises while the store fails).

        What :meth:`step` otherwise leaves to its next claim: replies delivered but
        still in the outbox are removed, then leases released and senders finished.
        """
        self._drop_delivered()
        if self._unfinished:
            self.store.execute(self.inbox.let_go(self._unfinished))
            self._unfinished = []

    def _drop_delivered(self) -> None:
        """Remove replies delivered whose removal from the outbox failed.

        Done while their sender's lease is still ours, before any lease is released:
        once it is, another worker would send them again. Timeline this prevents: w1
        delivers reply r; the store dies before w1 drops r; w1 releases the lease once
        the store is back; w2 claims the sender and sends r a second time.
        """
        for raw, (session_key, sender) in list(self._delivered.items()):
            self.store.execute(self.inbox.sent(session_key, sender, raw))
            del self._delivered[raw]

    # -- a batch of senders -----------------------------------------------------------

    def _drain(self, batch: list[_Sender]) -> None:
        """Process the batch's updates, each sender's in order, until every one is done.

        A sender leaves the batch (and is let go by the next claim) when its inbox is
        empty, its lease was lost, an update failed and waits for its retry, or the
        worker is stopping. A store failure raises with the rest still in the batch.
        """
        for one in list(batch):
            try:
                for key, unsent in one.pending:
                    self._send_pending(key, one.sender, one.lease, unsent)
            except LeaseLost:
                self._lost(one, batch)
                continue
            if one.taken is None:  # nothing queued after all (a mark that outlived its work)
                self._let_go(one, batch, drained=True)
        while batch:
            steps = [step for one in list(batch) if (step := self._turn(one, batch))]
            if not steps:
                return
            outcomes = self.store.execute(self.inbox.advance_all(steps))
            failure: Exception | None = None
            for step, outcome in zip(steps, outcomes, strict=True):
                one = next(x for x in batch if x.sender == step.sender)
                if isinstance(outcome.error, LeaseLost):
                    self._lost(one, batch)
                elif outcome.error is not None:
                    failure = failure or outcome.error
                else:
                    failure = failure or self._advanced(one, batch, step, outcome.value)
            if failure is not None:
                raise failure

    def _turn(self, one: _Sender, batch: list[_Sender]) -> Advance | None:
        """Process the sender's update in hand and send its replies: the step that
        acknowledges it, or None when the sender stopped (it left the batch)."""
        sender, taken = one.sender, one.taken
        assert taken is not None
        done: str | None = taken.id
        sent: list[str] = []
        one.session_key = _session_of(sender, one.reads, one.session_key)
        try:
            one.session_key, entries = self._handle(
                sender, taken, one.lease, one.session_key, one.reads
            )
        except Exception as error:
            if _not_the_message(error):  # the store or the lease failed, not the update
                with contextlib.suppress(StateError):
                    self.store.execute(self.inbox.untake(sender, taken.id))
                one.taken = None
                if isinstance(error, LeaseLost):
                    self._lost(one, batch)
                    return None
                raise
            one.taken = None
            retry_in = self._failed(sender, taken, error)
            if retry_in is not None:  # the sender's later updates wait behind this one
                self._let_go(one, batch, retry_in)
                return None
            done = None  # set aside: go on with the next
        else:
            one.taken = None  # handled: the step acknowledges it
            try:
                sent = self._deliver_all(one.session_key, sender, one.lease, entries)
            except LeaseLost:
                self._lost(one, batch)
                return None
        more = not self.stop.is_set()
        return Advance(sender, one.session_key, one.lease, done, sent, more)

    def _advanced(
        self, one: _Sender, batch: list[_Sender], step: Advance, advanced: Advanced
    ) -> StateError | None:
        """Take in what the store did with one sender's step; an error to raise once the
        round is taken in (a reply that could not be dropped stays remembered)."""
        one.taken = advanced.taken
        for raw, dropped in zip(step.sent, advanced.dropped, strict=True):
            if dropped:
                self._delivered.pop(raw, None)
        if advanced.failure is not None:
            return advanced.failure  # the update taken is put back by _abandon
        if not step.more or advanced.taken is None:
            self._let_go(one, batch, drained=step.more)
            return None
        one.reads = advanced.reads
        try:
            self._keep_lease(one.lease)
        except LeaseLost:
            self._lost(one, batch)
        return None

    def _let_go(
        self, one: _Sender, batch: list[_Sender], delay: float = 0.0, *, drained: bool = False
    ) -> None:
        """Done with a sender: its lease and claim are let go by the next claim."""
        batch.remove(one)
        self._lease_checked.pop(one.sender, None)
        self._unfinished.append(Finish(one.claim, one.lease, delay, drained))

    def _lost(self, one: _Sender, batch: list[_Sender]) -> None:
        """Another worker took the sender over: give back the update in hand, if any."""
        log.warning(
            "%s lost the lease on %s; another goes on", self.name, mask_identity(one.sender)
        )
        if one.taken is not None:  # not handled here: its attempt does not count
            with contextlib.suppress(StateError):
                self.store.execute(self.inbox.untake(one.sender, one.taken.id))
        self._let_go(one, batch)

    def _abandon(self, batch: list[_Sender]) -> None:
        """The store failed mid-batch: put back the updates taken and not handled (their
        attempts do not count), and let every sender go once the store is back."""
        for one in list(batch):
            if one.taken is not None:
                with contextlib.suppress(StateError):
                    self.store.execute(self.inbox.untake(one.sender, one.taken.id))
            self._let_go(one, batch, self.settings.store_retry)

    def _keep_lease(self, lease: Lease) -> None:
        """Renew the lease once a third of it is gone; LeaseLost if another took over.

        Not after every update: the store checks the fencing token on every write, so a
        lapse is caught there. But a reply is no write: before each one goes out the
        lease must still be ours with time to spare, or a worker that was paused (a
        slow Graph API, a stopped process) would send what its successor sends too.
        """
        checked = self._lease_checked.get(lease.member_id, 0.0)
        if time.monotonic() - checked > self.settings.lease_ttl / 3:
            self.store.renew_lease(lease)
            self._lease_checked[lease.member_id] = time.monotonic()

    def _handle(
        self, sender: str, taken: Taken, lease: Lease, session_key: str, reads: dict[str, Read]
    ) -> tuple[str, list[str] | None]:
        """Process one update; ``session_key`` and ``reads`` came with it (:class:`Start`).

        Returns the session key its replies were queued under, and the replies when they
        are known without reading the outbox (None: read it).
        """
        update = taken.update
        inbound = inbound_of(update) if update is not None else None
        fresh = (
            update is not None and self.clock() - update.timestamp <= self.settings.max_message_age
        )
        if update is not None and inbound is not None and fresh and taken.attempts == 1:
            return self._run(sender, update, inbound, lease, reads)  # the hot path
        if taken.problem is not None:
            self._bury(sender, taken, taken.problem)
            return session_key, []
        if update is None:
            return session_key, None
        if taken.attempts > 1 and self.store.execute(self.inbox.applied(session_key, update.id)):
            metrics.DEDUP_HITS.labels("applied").inc()
            return session_key, None
        if taken.attempts > self.settings.max_attempts:
            # Taken this often without a recorded outcome: it stops the worker (a crash,
            # a kill) before its failure could be written. Set it aside.
            last = self.store.execute(self.inbox.last_error(sender, taken.id))
            self._bury(sender, taken, last or "the worker stopped while handling it")
            return session_key, []
        # No turn below queues a reply but the polite one and a status's follow-up, both
        # returned, so the outbox need not be read:
        # what a worker that died left there went out when this drain began.
        if update.kind == "status":
            self.notices.record(session_key, sender, "message.status", update)
            return session_key, self.notices.follow_up(session_key, sender, update)
        if not fresh:
            metrics.OLD_MESSAGES.inc()
            self.notices.record(session_key, sender, "message.old", update, "too old to answer")
            return session_key, []
        if inbound is None:
            return session_key, self.notices.not_understood(session_key, sender, update)
        return self._run(sender, update, inbound, lease, reads)

    def _failed(self, sender: str, taken: Taken, error: Exception) -> float | None:
        """Count and log a failed attempt; the retry delay, or None once set aside."""
        s = self.settings
        metrics.MESSAGE_FAILURES.labels(type(error).__name__).inc()
        text = redact_text(f"{type(error).__name__}: {error}")[:500]
        log.error(
            "%s: update %s from %s failed (attempt %d of %d): %s",
            self.name,
            taken.id[:80],
            mask_identity(sender),
            taken.attempts,
            s.max_attempts,
            text,
            exc_info=error,
        )
        if taken.attempts >= s.max_attempts:
            self._bury(sender, taken, text)
            return None
        self.store.execute(self.inbox.failed(sender, taken.id, text))
        return s.backoff(taken.attempts)

    def _bury(self, sender: str, taken: Taken, error: str) -> None:
        """Set an update aside as a dead letter, audited and counted."""
        why = {
            "error": error,
            "attempts": taken.attempts,
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
            "worker": self.name,
        }
        if not self.store.execute(self.inbox.bury(sender, taken.id, why)):
            return  # another worker finished with it meanwhile
        metrics.DEAD_LETTERS.inc()
        log.error(
            "%s: update %s from %s set aside as a dead letter",
            self.name,
            taken.id,
            mask_identity(sender),
        )
        kind = taken.update.kind if taken.update is not None else "unreadable"
        detail = {"message_id": taken.id, "kind": kind, "attempts": taken.attempts}
        event = AuditEvent("message.dead", sender, error[:300], detail)
        self.store.audit_append(self._session_key(sender), event)

    def _run(
        self, sender: str, update: Update, inbound: Inbound, lease: Lease, reads: dict[str, Read]
    ) -> tuple[str, list[str] | None]:
        """One message through the flow engine, committed with its mark and replies."""
        queued: list[str] = []

        def outbox(replies: list[Message]) -> Outbox:
            # The last attempt's are kept.
            queued[:] = self.replies.delivery_for(update.channel).render(update, replies)
            return Outbox(sender, tuple(queued))

        started = time.perf_counter()
        done = self.engine.process(inbound, lease=lease, outbox=outbox, prefetched=reads)
        if log.isEnabledFor(logging.INFO):  # masking costs only when the line is written
            log.info(
                "message in from=%s id=%s kind=%s version=%d%s ms=%.1f",
                mask_identity(sender),
                update.id,
                update.kind,
                done.version,
                " (already applied)" if done.duplicate else "",
                (time.perf_counter() - started) * 1000,
            )
        if done.duplicate:
            metrics.DEDUP_HITS.labels("applied").inc()
            return done.session_key, None  # committed before: its replies are in the outbox
        return done.session_key, queued

    def _send_pending(
        self, session_key: str, sender: str, lease: Lease, entries: list[str]
    ) -> None:
        """Send replies a worker that died left in the outbox; each is dropped once sent."""
        for raw in self._deliver_all(session_key, sender, lease, entries):
            self.store.execute(self.inbox.sent(session_key, sender, raw))
            del self._delivered[raw]

    def _deliver_all(
        self, session_key: str, sender: str, lease: Lease, entries: list[str] | None
    ) -> list[str]:
        """Send replies in order (``None``: those in the outbox); the ones to drop from it.

        Each is remembered as delivered until the store drops it: a reply whose removal
        failed is only removed when the store is back, never sent twice by this worker,
        and removed before the lease is given up (see :meth:`_drop_delivered`).
        """
        if entries is None:
            entries = self.store.execute(self.inbox.outbox(session_key, sender))
        for raw in entries:
            if raw not in self._delivered:
                self._keep_lease(lease)
                self.replies.send(session_key, sender, raw)
                self._delivered[raw] = (session_key, sender)
        return list(entries)

    def _session_key(self, sender: str) -> str:
        return self.store.resolve(sender)
