"""Updates that run no turn: statuses, messages too old or not understood.

Each is audited (and logged); a message no turn can take gets the polite answer once
per burst, and a delivery status may bring the channel's follow-up (WhatsApp: a
re-engagement template after error 131047, :class:`~statehq.channels.base.FollowUp`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from ..channels.base import FollowUp
from ..flows import Text
from ..redact import get_logger, mask_identity
from ..store import StateStore
from ..store.audit import AuditEvent
from ..store.drain import Drain
from ..store.inbox import Update
from .replies import ReplySender

log = get_logger("statehq.service.worker")  # beside the worker's "message in" lines

UNSUPPORTED = (
    "I can only read text and menu choices. Please type your answer, or tap one of the "
    "options I sent."
)


class Notices:
    """Audits, answers and follows up the updates of one worker that run no turn."""

    def __init__(
        self,
        store: StateStore,
        replies: ReplySender,
        unsupported_window: float,
        clock: Callable[[], float],
    ) -> None:
        self.store = store
        self.inbox = Drain(store.settings)
        self.replies = replies
        self.unsupported_window = unsupported_window
        self.clock = clock

    def record(
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

    def not_understood(self, session_key: str, sender: str, update: Update) -> list[str]:
        """Audit an update no turn can take; the polite reply queued, if any."""
        self.record(session_key, sender, "message.ignored", update, update.kind)
        if update.kind != "unsupported":
            return []  # notices, deletions, edits and reactions are news, never questions
        if not self.store.execute(self.inbox.first_reply(sender, self.unsupported_window)):
            return []
        entries = self.replies.delivery_for(update.channel).render(update, [Text(UNSUPPORTED)])
        self.store.execute(self.inbox.queue_replies(session_key, sender, entries))
        return entries

    def follow_up(self, session_key: str, sender: str, update: Update) -> list[str]:
        """What the channel does about a delivery status (WhatsApp: a template after
        131047, see :class:`~statehq.channels.base.FollowUp`): audited, its replies queued."""
        hook = getattr(self.replies.delivery_for(update.channel), "after_status", None)
        follow: FollowUp | None = hook(update) if hook is not None else None
        if follow is None:
            return []
        event, reason, entries = follow.event, follow.reason, list(follow.entries)
        if entries and follow.once_per:
            since = datetime.fromtimestamp(self.clock() - follow.once_per, UTC)
            if self._audited_since(session_key, follow.event, since):
                event, reason, entries = follow.instead, follow.instead_reason, []
        if entries:
            self.store.execute(self.inbox.queue_replies(session_key, sender, entries))
        self.store.audit_append(session_key, AuditEvent(event, sender, reason, follow.detail))
        return entries

    def _audited_since(self, session_key: str, event: str, since: datetime) -> bool:
        """Whether ``event`` is in the session's trail since ``since``: every page read,
        since a chatty member's day can hold more than one (a paid template must not go
        twice for it)."""
        after: datetime | str = since
        while True:
            page = self.store.audit_read(session_key, since=after, limit=1000)
            if any(entry.event == event for entry in page):
                return True
            if len(page) < 1000:
                return False
            after = page[-1].id
