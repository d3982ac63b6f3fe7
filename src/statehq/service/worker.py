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

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from .. import metrics
from ..errors import LeaseBusy, LeaseLost, StateError
from ..flows import Headquarters, Inbound, Message, Text
from ..redact import get_logger, redact_text
from ..state import ChannelId
from ..store import Lease, StateStore
from ..store.audit import AuditEvent
from ..store.operations import Outbox
from .inbox import Inbox, Taken, Update, entry

log = get_logger(__name__)

UNSUPPORTED = (
    "I can only read text and menu choices. Please type your answer, or tap one of the "
    "options I sent."
)
MAX_ATTEMPTS = 10  # an update that failed this often is set aside (audited), not retried


class Outcome(Protocol):
    """What a channel's delivery reports about one send (see :class:`GraphSender`)."""

    @property
    def ok(self) -> bool:
        """True when the channel accepted the message."""
        ...

    @property
    def failure_label(self) -> str:
        """The failure's code, for the audit trail and metrics."""
        ...

    @property
    def detail(self) -> str:
        """What went wrong, in words (no secrets)."""
        ...

    @property
    def attempts(self) -> int:
        """How many tries the send took."""
        ...


class Delivery(Protocol):
    """A channel's way out: render replies as outbox entries, and send one entry."""

    def render(self, update: Update, replies: list[Message]) -> list[str]:
        """Outbox entries for ``replies`` to ``update``'s sender (a read receipt first)."""
        ...

    def deliver(self, body: dict[str, Any]) -> Outcome:
        """Send one rendered entry body."""
        ...


@dataclass(frozen=True)
class WorkerSettings:
    """How a worker paces itself."""

    lease_ttl: float = 30.0
    max_message_age: float = 86400.0
    unsupported_window: float = 60.0
    idle_sleep: float = 0.05


class Worker:
    """One inbox worker: run :meth:`run` in a thread, stop it with ``stop``."""

    def __init__(
        self,
        store: StateStore,
        engine: Headquarters,
        delivery: Delivery,
        settings: WorkerSettings,
        stop: threading.Event,
        *,
        name: str = "worker",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.engine = engine
        self.delivery = delivery
        self.settings = settings
        self.stop = stop
        self.name = name
        self.clock = clock
        self.inbox = Inbox(store.settings)

    def run(self) -> None:
        """Work until ``stop`` is set; a store outage pauses the worker, it never ends it."""
        pause = self.settings.idle_sleep
        while not self.stop.is_set():
            try:
                worked = self.step()
            except StateError as error:
                log.warning("%s: %s; retrying shortly", self.name, redact_text(str(error)))
                worked = False
                pause = min(max(pause * 2, 0.1), 2.0)
            else:
                pause = 0.001 if worked else min(pause * 2 if pause > 0.001 else 0.002, 0.05)
            if not worked:
                self.stop.wait(pause)

    def step(self) -> bool:
        """Claim one sender with work and drain its inbox; False when nobody had work."""
        s = self.settings
        sender = self.store.execute(self.inbox.claim(s.lease_ttl))
        if sender is None:
            return False
        try:
            lease = self.store.lease(sender, ttl=s.lease_ttl, holder=self.name)
        except LeaseBusy as busy:
            metrics.LEASE_WAITS.inc()
            self.store.execute(self.inbox.defer(sender, min(max(busy.retry_after, 0.01), 0.2)))
            return True
        try:
            self._drain(sender, lease)
        finally:
            try:
                self.store.release_lease(lease)
            finally:
                self.store.execute(self.inbox.finish(sender))
        return True

    # -- one sender --------------------------------------------------------------------

    def _drain(self, sender: str, lease: Lease) -> None:
        self._send_pending(sender, sender)
        session_key = self._session_key(sender)
        if session_key != sender:
            self._send_pending(session_key, sender)
        renewed = time.monotonic()
        done: str | None = None  # processed, replies sent, acknowledged by the next call
        while not self.stop.is_set():
            taken = self.store.execute(self.inbox.next(sender, done=done))
            done = None
            if taken is None:
                return
            session_key, entries = self._handle(sender, taken, lease)
            self._send_pending(session_key, sender, entries)
            done = taken.id
            # Renew once a third of the lease is gone, not after every update: the store
            # checks the fencing token on every write, so a lapse is caught either way.
            if time.monotonic() - renewed > self.settings.lease_ttl / 3:
                try:
                    self.store.renew_lease(lease)
                except LeaseLost:
                    log.warning("%s lost the lease on %s; another goes on", self.name, sender)
                    return
                renewed = time.monotonic()
        if done is not None:
            self.store.execute(self.inbox.ack(sender, done))

    def _handle(self, sender: str, taken: Taken, lease: Lease) -> tuple[str, list[str] | None]:
        """Process one update.

        Returns the session key its replies were queued under, and the replies when they
        are known without reading the outbox (None: read it).
        """
        update = taken.update
        inbound = update.inbound() if update is not None else None
        fresh = (
            update is not None and self.clock() - update.timestamp <= self.settings.max_message_age
        )
        if update is not None and inbound is not None and fresh and taken.attempts == 1:
            return self._run(sender, update, inbound, lease)  # the hot path: no route lookup
        session_key = self._session_key(sender)
        if update is None:
            return session_key, None
        if taken.attempts > 1 and self.store.execute(self.inbox.applied(session_key, update.id)):
            metrics.DEDUP_HITS.labels("applied").inc()
            return session_key, None
        if taken.attempts > MAX_ATTEMPTS:
            self._record(session_key, sender, "message.failed", update, f"{taken.attempts} tries")
            return session_key, None
        if update.kind == "status":
            self._record(session_key, sender, "message.status", update)
            return session_key, None
        if self.clock() - update.timestamp > self.settings.max_message_age:
            metrics.OLD_MESSAGES.inc()
            self._record(session_key, sender, "message.old", update, "too old to answer")
            return session_key, None
        if inbound is None:
            self._not_understood(session_key, sender, update)
            return session_key, None
        return self._run(sender, update, inbound, lease)

    def _run(
        self, sender: str, update: Update, inbound: Inbound, lease: Lease
    ) -> tuple[str, list[str] | None]:
        """One message through the flow engine, committed with its mark and replies."""
        queued: list[str] = []

        def outbox(replies: list[Message]) -> Outbox:
            queued[:] = self.delivery.render(update, replies)  # the last attempt's are kept
            return Outbox(sender, tuple(queued))

        done = self.engine.process(inbound, lease=lease, outbox=outbox)
        if done.duplicate:
            metrics.DEDUP_HITS.labels("applied").inc()
            return done.session_key, None  # committed before: its replies are in the outbox
        return done.session_key, queued

    def _not_understood(self, session_key: str, sender: str, update: Update) -> None:
        self._record(session_key, sender, "message.ignored", update, update.kind)
        if update.kind != "unsupported":
            return  # system notices, deletions and edits are news, never questions
        if self.store.execute(self.inbox.first_reply(sender, self.settings.unsupported_window)):
            entries = self.delivery.render(update, [Text(UNSUPPORTED)])
            self.store.execute(self.inbox.queue_replies(session_key, sender, entries))

    def _send_pending(
        self, session_key: str, sender: str, entries: list[str] | None = None
    ) -> None:
        """Send the outbox's replies in order; each leaves the outbox once sent or given up.

        ``entries``: the replies the turn just committed, when known (the outbox is then
        not read back).
        """
        if entries is None:
            entries = self.store.execute(self.inbox.outbox(session_key, sender))
        for raw in entries:
            queued = json.loads(raw)
            outcome = self.delivery.deliver(queued["body"])
            if not outcome.ok:
                detail = {
                    "reply": queued["id"],
                    "code": outcome.failure_label,
                    "error": redact_text(outcome.detail)[:300],
                    "attempts": outcome.attempts,
                }
                event = AuditEvent("message.failed", sender, "the reply could not be sent", detail)
                self.store.audit_append(session_key, event)
            self.store.execute(self.inbox.sent(session_key, sender, raw))

    def _record(
        self, session_key: str, sender: str, event: str, update: Update, reason: str = ""
    ) -> None:
        detail: dict[str, Any] = {"message_id": update.about or update.id, "kind": update.kind}
        if update.status is not None:
            detail["status"] = update.status
        if update.error_code is not None:
            detail.update(code=update.error_code, error=update.error_title)
        self.store.audit_append(session_key, AuditEvent(event, sender, reason, detail))

    def _session_key(self, sender: str) -> str:
        return self.store.route(sender) or sender


def reply_entries(update: Update, bodies: list[dict[str, Any]]) -> list[str]:
    """Outbox entries for rendered bodies answering ``update``.

    Each reply's id (``<message id>#<n>``) also travels as the Graph API's
    ``biz_opaque_callback_data``, so the delivery statuses Meta sends back, and a resend
    after a crash, name the message it answered.
    """
    to = ChannelId.parse(update.channel).identifier
    entries = []
    for n, body in enumerate(bodies):
        reply_id = f"{update.id}#{n}"
        if body.get("status") != "read":
            body = {**body, "biz_opaque_callback_data": reply_id}
        entries.append(entry(reply_id, to, body))
    return entries
