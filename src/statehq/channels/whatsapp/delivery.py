"""WhatsApp as a worker's way out: replies rendered for the Graph API, and sent."""

from __future__ import annotations

from typing import Any

from ...flows import Message
from ...state import ChannelId
from ...store.inbox import Update
from ..base import reply_entries
from . import webhook as whatsapp
from .graph import GraphSender, SendResult
from .graph_errors import report_failure


class WhatsAppDelivery:
    """Renders replies as Graph API bodies (a read receipt first, if asked) and sends them."""

    def __init__(self, sender: GraphSender, *, mark_read: bool = False) -> None:
        self.sender = sender
        self.mark_read = mark_read

    def render(self, update: Update, replies: list[Message]) -> list[str]:
        """Outbox entries answering ``update``: its read receipt, then each reply."""
        to = ChannelId.parse(update.channel).identifier
        bodies = [whatsapp.render(message, to) for message in replies]
        if self.mark_read and update.kind != "status":
            receipt = {"messaging_product": "whatsapp", "status": "read", "message_id": update.id}
            bodies.insert(0, receipt)
        return reply_entries(update, bodies)

    def deliver(self, body: dict[str, Any]) -> SendResult:
        """Send one body: a read receipt or a message.

        A failure is logged as a warning saying what to fix (a bad token, a wrong phone
        number id, ...), at most once per cause per minute (:mod:`.graph_errors`).
        """
        if body.get("status") == "read":
            result = self.sender.mark_read(str(body["message_id"]))
            what = "a read receipt"
        else:
            result = self.sender.send(body)
            what = "a reply"
        if not result.ok:
            report_failure(result, self.sender.base_url, what)
        return result

    def close(self) -> None:
        """Close the HTTP client."""
        self.sender.close()
