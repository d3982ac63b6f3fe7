"""Replies out: one outbox entry sent through its channel's delivery, and what became of it.

The worker decides *when* a reply goes (in order, before the member's next message, never
twice; see :mod:`statehq.service.worker`); this module sends one and records the outcome:
a log line per reply, and an audit entry when it failed or went out other than written
(as its template, for one).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from ..channels.base import Delivery, DeliveryReport, Note
from ..errors import InvalidInput
from ..redact import get_logger, mask_identity, redact_text
from ..store import StateStore
from ..store.audit import AuditEvent

log = get_logger("statehq.service.worker")  # the reply lines sit beside the message lines


class ReplySender:
    """Sends outbox entries through the delivery of each entry's channel."""

    def __init__(
        self, store: StateStore, delivery: Delivery | Mapping[str, Delivery], name: str
    ) -> None:
        self.store = store
        self.name = name
        # One way out per channel type (a single one serves every channel).
        self.deliveries = delivery if isinstance(delivery, Mapping) else None
        self.delivery = delivery if not isinstance(delivery, Mapping) else None

    def send(self, session_key: str, sender: str, raw: str) -> None:
        """Send one outbox entry; a failure is audited (the entry is not retried)."""
        try:
            queued = json.loads(raw)
            reply_id, body = str(queued["id"]), queued["body"]
            outcome: DeliveryReport = self.delivery_for(sender).deliver(body)
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
        note: Note | None = getattr(outcome, "note", None)  # e.g. sent as its template
        if note is not None:
            event = AuditEvent(note.event, sender, note.reason, dict(note.detail))
            self.store.audit_append(session_key, event)
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

    def delivery_for(self, channel: str) -> Delivery:
        """The way out to ``channel`` (an identity such as ``whatsapp:263...``)."""
        if self.delivery is not None:
            return self.delivery
        assert self.deliveries is not None
        kind = channel.partition(":")[0]
        found = self.deliveries.get(kind)
        if found is None:
            raise InvalidInput(f"no channel is registered for {kind!r} (statehq.channels.registry)")
        return found
