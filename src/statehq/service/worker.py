"""Inbox workers: each sender's updates processed one at a time, in order, exactly once.

A worker claims a sender with work, takes that sender's lease (a fencing token the store
checks on every write to the sender's keys) and drains the sender's inbox oldest first:

1. replies left in the outbox by a worker that died after its commit go out first;
2. an update taken before and not acknowledged is checked against its dedup mark: if
   its turn was committed, it is only acknowledged (its replies are in the outbox);
3. a message runs through the flow engine as one turn, committed by one script with
   its dedup mark and its replies (:meth:`Headquarters.process`);
4. the turn's replies are sent, in order; then the update is acknowledged by the same
   call that takes the sender's next one (one round trip for both).

Different senders are processed concurrently by other workers, threads or processes.
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .. import metrics
from ..channels.base import Delivery, DeliveryReport, inbound_of
from ..errors import (
    InvalidInput,
    LeaseBusy,
    LeaseError,
    LeaseLost,
    StateError,
    StoreRefused,
    StoreUnavailable,
)
from ..flows import Headquarters, Inbound, Message, Text
from ..redact import get_logger, mask_identity, redact_text
from ..store import Lease, StateStore
from ..store.audit import AuditEvent
from ..store.inbox import Claim, Inbox, Taken, Update
from ..store.operations import Outbox

log = get_logger(__name__)

UNSUPPORTED = (
    "I can only read text and menu choices. Please type your answer, or tap one of the "
    "options I sent."
)


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

    def backoff(self, attempts: int) -> float:
        """Seconds before a failed update's next attempt (jittered, capped)."""
        delay = min(self.retry_base * 2.0 ** min(attempts - 1, 20), self.retry_cap)
        return delay * random.uniform(0.8, 1.2)


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
        engine: Headquarters,
        delivery: Delivery | Mapping[str, Delivery],
        settings: WorkerSettings,
        stop: threading.Event,
        *,
        name: str = "worker",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.engine = engine
        # One way out per channel type (a single one serves every channel).
        self.deliveries = delivery if isinstance(delivery, Mapping) else None
        self.delivery = delivery if not isinstance(delivery, Mapping) else None
        self.settings = settings
        self.stop = stop
        self.name = name
        self.clock = clock
        self.inbox = Inbox(store.settings)
        # Senders whose lease release and finish the store refused: retried first.
        self._unfinished: list[tuple[Claim, Lease | None, float]] = []
        self._lease_checked = 0.0  # when the current lease was last known to be ours
        # Replies delivered whose removal from the outbox failed, with (session key,
        # sender): removed before the sender's lease is given up, so never sent again.
        self._delivered: dict[str, tuple[str, str]] = {}

    def run(self) -> None:
        """Work until ``stop`` is set; neither a store outage nor a bug ends the worker."""
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
        """Claim one sender with work and drain its inbox; False when nobody had work."""
        self._finish_interrupted()
        s = self.settings
        claim = self.store.execute(self.inbox.claim(s.lease_ttl))
        if claim is None:
            return False
        try:
            lease = self.store.lease(claim.sender, ttl=s.lease_ttl, holder=self.name)
        except LeaseBusy as busy:
            metrics.LEASE_WAITS.inc()
            delay = min(max(busy.retry_after, 0.01), 0.2)
            self.store.execute(self.inbox.defer(claim.sender, delay))
            return True
        except BaseException:  # the store failed: the claim is still finished once it is back
            self._unfinished.append((claim, None, s.store_retry))
            raise
        self._lease_checked = time.monotonic()
        try:
            delay = self._drain(claim.sender, lease)
        except BaseException:
            self._unfinished.append((claim, lease, s.store_retry))
            raise
        self._unfinished.append((claim, lease, delay))
        self._finish_interrupted()
        return True

    def _finish_interrupted(self) -> None:
        """Release the leases and finish the senders left (raises while the store fails).

        Replies delivered but still in the outbox are removed first, while their
        sender's lease is still ours: once it is released another worker would send
        them again. Timeline this prevents: w1 delivers reply r; the store dies before
        w1 drops r; w1 releases the lease once the store is back; w2 claims the sender
        and sends r a second time.
        """
        for raw, (session_key, sender) in list(self._delivered.items()):
            self.store.execute(self.inbox.sent(session_key, sender, raw))
            del self._delivered[raw]
        while self._unfinished:
            claim, lease, delay = self._unfinished[0]
            if lease is not None:
                with contextlib.suppress(LeaseError):
                    self.store.release_lease(lease)
            self.store.execute(self.inbox.finish(claim, delay))
            self._unfinished.pop(0)

    # -- one sender --------------------------------------------------------------------

    def _drain(self, sender: str, lease: Lease) -> float:
        """Process the sender's updates in order; the delay before it is due again."""
        try:
            return self._drain_leased(sender, lease)
        except LeaseLost:
            log.warning(
                "%s lost the lease on %s; another goes on", self.name, mask_identity(sender)
            )
            return 0.0

    def _drain_leased(self, sender: str, lease: Lease) -> float:
        self._send_pending(sender, sender, lease)
        session_key = self._session_key(sender)
        if session_key != sender:
            self._send_pending(session_key, sender, lease)
        done: str | None = None  # processed, replies sent, acknowledged by the next call
        while not self.stop.is_set():
            taken = self.store.execute(self.inbox.next(sender, done=done))
            done = None
            if taken is None:
                return 0.0
            try:
                session_key, entries = self._handle(sender, taken, lease)
            except Exception as error:
                if _not_the_message(error):
                    with contextlib.suppress(StateError):
                        self.store.execute(self.inbox.untake(sender, taken.id))
                    raise
                retry_in = self._failed(sender, taken, error)
                if retry_in is not None:
                    return retry_in  # the sender's later updates wait behind this one
                continue  # set aside: go on with the next
            self._send_pending(session_key, sender, lease, entries)
            done = taken.id
            self._keep_lease(lease)
        if done is not None:
            self.store.execute(self.inbox.ack(sender, done))
        return 0.0

    def _keep_lease(self, lease: Lease) -> None:
        """Renew the lease once a third of it is gone; LeaseLost if another took over.

        Not after every update: the store checks the fencing token on every write, so a
        lapse is caught there. But a reply is no write: before each one goes out the
        lease must still be ours with time to spare, or a worker that was paused (a
        slow Graph API, a stopped process) would send what its successor sends too.
        """
        if time.monotonic() - self._lease_checked > self.settings.lease_ttl / 3:
            self.store.renew_lease(lease)
            self._lease_checked = time.monotonic()

    def _handle(self, sender: str, taken: Taken, lease: Lease) -> tuple[str, list[str] | None]:
        """Process one update.

        Returns the session key its replies were queued under, and the replies when they
        are known without reading the outbox (None: read it).
        """
        update = taken.update
        inbound = inbound_of(update) if update is not None else None
        fresh = (
            update is not None and self.clock() - update.timestamp <= self.settings.max_message_age
        )
        if update is not None and inbound is not None and fresh and taken.attempts == 1:
            return self._run(sender, update, inbound, lease)  # the hot path: no route lookup
        session_key = self._session_key(sender)
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
        if update.kind == "status":
            self._record(session_key, sender, "message.status", update)
            return session_key, None
        if not fresh:
            metrics.OLD_MESSAGES.inc()
            self._record(session_key, sender, "message.old", update, "too old to answer")
            return session_key, None
        if inbound is None:
            self._not_understood(session_key, sender, update)
            return session_key, None
        return self._run(sender, update, inbound, lease)

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
        self, sender: str, update: Update, inbound: Inbound, lease: Lease
    ) -> tuple[str, list[str] | None]:
        """One message through the flow engine, committed with its mark and replies."""
        queued: list[str] = []

        def outbox(replies: list[Message]) -> Outbox:
            # The last attempt's are kept.
            queued[:] = self._delivery(update.channel).render(update, replies)
            return Outbox(sender, tuple(queued))

        started = time.perf_counter()
        done = self.engine.process(inbound, lease=lease, outbox=outbox)
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

    def _not_understood(self, session_key: str, sender: str, update: Update) -> None:
        self._record(session_key, sender, "message.ignored", update, update.kind)
        if update.kind != "unsupported":
            return  # notices, deletions, edits and reactions are news, never questions
        if self.store.execute(self.inbox.first_reply(sender, self.settings.unsupported_window)):
            entries = self._delivery(update.channel).render(update, [Text(UNSUPPORTED)])
            self.store.execute(self.inbox.queue_replies(session_key, sender, entries))

    def _send_pending(
        self, session_key: str, sender: str, lease: Lease, entries: list[str] | None = None
    ) -> None:
        """Send the outbox's replies in order; each leaves the outbox once sent or given up.

        ``entries``: the replies the turn just committed, when known (the outbox is then
        not read back). A reply delivered whose removal the store refused is remembered,
        and only removed when the store is back: a store outage never sends one twice.
        """
        if entries is None:
            entries = self.store.execute(self.inbox.outbox(session_key, sender))
        for raw in entries:
            if raw not in self._delivered:
                self._keep_lease(lease)
                self._deliver(session_key, sender, raw)
                self._delivered[raw] = (session_key, sender)
            self.store.execute(self.inbox.sent(session_key, sender, raw))
            del self._delivered[raw]

    def _deliver(self, session_key: str, sender: str, raw: str) -> None:
        """Send one outbox entry; a failure is audited (the entry is not retried)."""
        try:
            queued = json.loads(raw)
            reply_id, body = str(queued["id"]), queued["body"]
            outcome: DeliveryReport = self._delivery(sender).deliver(body)
        except Exception as error:  # an entry that cannot be read or sent must not block
            log.error(
                "%s: a reply to %s could not be sent",
                self.name,
                mask_identity(sender),
                exc_info=error,
            )
            detail: dict[str, Any] = {
                "code": "internal",
                "error": redact_text(f"{type(error).__name__}: {error}")[:300],
            }
            event = AuditEvent("message.failed", sender, "the reply could not be sent", detail)
            self.store.audit_append(session_key, event)
            return
        self._log_reply(sender, reply_id, body, outcome)
        if not outcome.ok:
            detail = {
                "reply": reply_id,
                "code": outcome.failure_label,
                "error": redact_text(outcome.detail)[:300],
                "attempts": outcome.attempts,
            }
            event = AuditEvent("message.failed", sender, "the reply could not be sent", detail)
            self.store.audit_append(session_key, event)

    @staticmethod
    def _log_reply(sender: str, reply_id: str, body: Any, outcome: DeliveryReport) -> None:
        """One line per reply sent (a read receipt's only at debug: one per message)."""
        level = logging.DEBUG if body.get("status") == "read" else logging.INFO
        if not log.isEnabledFor(level):
            return
        said = "sent" if outcome.ok else f"failed code={outcome.failure_label}"
        kind = "receipt" if level == logging.DEBUG else "reply"
        log.log(
            level,
            "%s out to=%s id=%s %s attempts=%d",
            kind,
            mask_identity(sender),
            reply_id,
            said,
            outcome.attempts,
        )

    def _record(
        self, session_key: str, sender: str, event: str, update: Update, reason: str = ""
    ) -> None:
        """Audit an update that ran no turn (a status, an old or ignored message); log it.

        A status is logged only at debug: every reply brings back two or three.
        """
        if event == "message.status":
            if log.isEnabledFor(logging.DEBUG):
                who, about = mask_identity(sender), update.about or update.id
                log.debug("status in from=%s id=%s status=%s", who, about, update.status)
        elif log.isEnabledFor(logging.INFO):
            said = "not answered (too old)" if event == "message.old" else "ignored"
            who = mask_identity(sender)
            log.info("message in from=%s id=%s kind=%s %s", who, update.id, update.kind, said)
        detail: dict[str, Any] = {"message_id": update.about or update.id, "kind": update.kind}
        if update.status is not None:
            detail["status"] = update.status
        if update.error_code is not None:
            detail.update(code=update.error_code, error=update.error_title)
        self.store.audit_append(session_key, AuditEvent(event, sender, reason, detail))

    def _delivery(self, channel: str) -> Delivery:
        """The way out to ``channel`` (an identity such as ``whatsapp:263...``)."""
        if self.delivery is not None:
            return self.delivery
        assert self.deliveries is not None
        kind = channel.partition(":")[0]
        found = self.deliveries.get(kind)
        if found is None:
            raise InvalidInput(f"no channel is registered for {kind!r} (statehq.channels.registry)")
        return found

    def _session_key(self, sender: str) -> str:
        return self.store.resolve(sender)
