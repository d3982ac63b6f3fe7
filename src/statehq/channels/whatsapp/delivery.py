"""WhatsApp as a worker's way out: replies rendered for the Graph API, and sent."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from ... import metrics
from ...flows import Message
from ...state import ChannelId
from ...state.channel_ids import VIA
from ...store.inbox import Update
from ..base import FollowUp, reply_entries
from . import webhook as whatsapp
from .graph import GraphSender, SendResult
from .graph_errors import report_failure
from .numbers import Lines
from .window import FROM_NUMBER, follow_up, template_body, template_of, window_closed


class WhatsAppDelivery:
    """Renders replies as Graph API bodies (a read receipt first, if asked) and sends them."""

    def __init__(
        self,
        sender: GraphSender,
        *,
        mark_read: bool = False,
        numbers: Mapping[str, GraphSender] | None = None,
        lines: Lines | None = None,
    ) -> None:
        self.sender = sender
        self.mark_read = mark_read
        self.numbers = dict(numbers or {})  # the numbers file's, by phone number id
        self.lines = lines

    def render(self, update: Update, replies: list[Message]) -> list[str]:
        """Outbox entries answering ``update``: its read receipt, then each reply.

        They go from the number the member wrote to; once the 24-hour window is closed,
        a reply that carries a template is sent as that template (:mod:`.window`).
        """
        channel = ChannelId.parse(update.channel)
        to, closed = channel.address, window_closed(update)
        bodies = [
            template_body(template, to)
            if closed and (template := template_of(message)) is not None
            else whatsapp.render(message, to)
            for message in replies
        ]
        if self.mark_read and update.kind != "status":
            receipt = {"messaging_product": "whatsapp", "status": "read", "message_id": update.id}
            bodies.insert(0, receipt)
        if channel.via is not None and channel.via in self.numbers:
            bodies = [{**body, FROM_NUMBER: channel.via} for body in bodies]
        return reply_entries(update, bodies)

    def after_status(self, update: Update) -> FollowUp | None:
        """A re-engagement template after a 131047 status, if configured (:mod:`.window`)."""
        if self.lines is None:
            return None
        return follow_up(update, self.lines.of(update.channel))

    def deliver(self, body: dict[str, Any]) -> SendResult:
        """Send one body: a read receipt or a message.

        A failure is logged as a warning saying what to fix (a bad token, a wrong phone
        number id, ...), at most once per cause per minute (:mod:`.graph_errors`).
        """
        via = body.get(FROM_NUMBER)
        sender = self.numbers.get(via, self.sender) if isinstance(via, str) else self.sender
        if via is not None:
            body = {key: value for key, value in body.items() if key != FROM_NUMBER}
        if body.get("status") == "read":
            result = sender.mark_read(str(body["message_id"]))
            what = "a read receipt"
        else:
            result = sender.send(body)
            what = "a reply"
        if not result.ok:
            report_failure(result, sender.base_url, what)
        elif self.lines is not None and what == "a reply":
            number = self.lines.extra[via].label if via in self.lines.extra else None
            count_number(number or self.lines.default.label, "sent")
        return result

    def close(self) -> None:
        """Close the HTTP client."""
        self.sender.close()
        for sender in self.numbers.values():
            sender.close()


def count_number(number: str, direction: str, count: int = 1) -> None:
    """Count WhatsApp messages by business number: ``received`` or ``sent``."""
    metrics.WHATSAPP_NUMBER_MESSAGES.labels(number, direction).inc(count)


def count_received(lines: Lines, updates: Iterable[Update]) -> None:
    """Count the messages (not statuses) a webhook request brought, by number.

    On the webhook's path: the number is read off the identity, not parsed from it.
    """
    by_via = Counter(update.channel.partition(VIA)[2] for update in updates)
    for via, count in by_via.items():
        line = lines.extra.get(via, lines.default)
        count_number(line.label, "received", count)
