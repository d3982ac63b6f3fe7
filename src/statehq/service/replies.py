"""A channel's way out, as a worker sees it: render replies, deliver them, say how it went.

:class:`Delivery` is what a worker needs of a channel (WhatsApp's is
:class:`statehq.service.delivery.WhatsAppDelivery`); :func:`reply_entries` turns rendered
bodies into outbox entries, each with an id that names the message it answers.
"""

from __future__ import annotations

from typing import Any, Protocol

from ..flows import Message
from ..state import ChannelId
from ..store.inbox import Update, entry


class DeliveryReport(Protocol):
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

    def deliver(self, body: dict[str, Any]) -> DeliveryReport:
        """Send one rendered entry body."""
        ...


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
