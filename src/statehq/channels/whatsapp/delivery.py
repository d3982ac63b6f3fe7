"""WhatsApp as a worker's way out: replies rendered for the Graph API, and sent."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

from ... import metrics
from ...errors import InvalidInput
from ...flows import Message
from ...state import ChannelId
from ...state.channel_ids import VIA
from ...store.inbox import Update
from ..base import FollowUp, Note, reply_entries
from . import webhook as whatsapp
from .graph import GraphSender, SendResult
from .graph_errors import report_failure
from .numbers import Lines
from .window import (
    FALLBACK,
    FROM_NUMBER,
    REENGAGEMENT,
    follow_up,
    template_body,
    template_of,
    window_closed,
)


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
        While it is open, such a reply keeps its template alongside, for a send Meta
        refuses with 131047 all the same.
        """
        channel = ChannelId.parse(update.channel)
        if channel.via is not None and channel.via not in self.numbers:
            # Queued before the number left the numbers file, or a dead letter replayed:
            # sent from the default number it would be another business writing. The
            # turn fails instead (retried, then a dead letter to replay once it is back).
            raise InvalidInput(_gone(channel.via))
        to, closed = channel.address, window_closed(update)
        bodies = [self._body(message, to, closed) for message in replies]
        if self.mark_read and update.kind != "status":
            receipt = {"messaging_product": "whatsapp", "status": "read", "message_id": update.id}
            bodies.insert(0, receipt)
        if channel.via is not None and channel.via in self.numbers:
            bodies = [{**body, FROM_NUMBER: channel.via} for body in bodies]
        return reply_entries(update, bodies)

    @staticmethod
    def _body(message: Message, to: str, closed: bool) -> dict[str, Any]:
        template = template_of(message)
        if template is None:
            return whatsapp.render(message, to)
        if closed:
            return template_body(template, to)
        return {**whatsapp.render(message, to), FALLBACK: template_body(template, to)}

    def after_status(self, update: Update) -> FollowUp | None:
        """A re-engagement template after a 131047 status, if configured (:mod:`.window`)."""
        if self.lines is None:
            return None
        via = ChannelId.parse(update.channel).via
        if via is not None and via not in self.lines.extra:
            if update.status != "failed" or update.error_code != REENGAGEMENT:
                return None
            detail = {"message_id": update.about or update.id, "number": via}
            return FollowUp("message.not_reengaged", f"{_gone(via)}: nothing was sent", detail)
        return follow_up(update, self.lines.of(update.channel))

    def deliver(self, body: dict[str, Any]) -> SendResult:
        """Send one body: a read receipt or a message.

        A failure is logged as a warning saying what to fix (a bad token, a wrong phone
        number id, ...), at most once per cause per minute (:mod:`.graph_errors`).
        """
        via, fallback = body.get(FROM_NUMBER), body.get(FALLBACK)
        sender = self.numbers.get(via, self.sender) if isinstance(via, str) else self.sender
        body = {key: value for key, value in body.items() if key not in (FROM_NUMBER, FALLBACK)}
        if body.get("status") == "read":
            result = sender.mark_read(str(body["message_id"]))
            what = "a read receipt"
        else:
            result = sender.send(body)
            what = "a reply"
            if result.code == REENGAGEMENT and isinstance(fallback, dict):
                result = self._as_template(sender, body, fallback, result, via)
        if not result.ok:
            report_failure(result, sender.base_url, what)
        elif self.lines is not None and what == "a reply":
            count_number(self.lines.of_via(via).label, "sent")
        return result

    def _as_template(
        self,
        sender: GraphSender,
        body: dict[str, Any],
        fallback: dict[str, Any],
        refused: SendResult,
        via: Any,
    ) -> SendResult:
        """The reply refused with 131047, sent again as its template (same reply id).

        Its success is audited (``message.templated``); its failure is the reply's, with
        the template named, so the trail says both were tried.
        """
        reply_id = body.get("biz_opaque_callback_data")
        template = {**fallback, "biz_opaque_callback_data": reply_id} if reply_id else fallback
        name = str(_dict(template.get("template")).get("name", "?"))
        result = sender.send(template)
        attempts = refused.attempts + result.attempts
        if not result.ok:
            detail = f"sent as template {name} after 131047, refused too: {result.detail}"
            return replace(result, detail=detail[:300], attempts=attempts)
        number = self.lines.of_via(via).label if self.lines is not None else sender.number
        reason = (
            f"the Graph API refused the reply outside the 24-hour window (131047): sent it "
            f"as its template {name}"
        )
        said = {"reply": reply_id, "number": number, "template": name, "code": REENGAGEMENT}
        return replace(result, attempts=attempts, note=Note("message.templated", reason, said))

    def close(self) -> None:
        """Close the HTTP client."""
        self.sender.close()
        for sender in self.numbers.values():
            sender.close()


def _gone(via: str) -> str:
    return (
        f"number {via} is not configured (not in STATEHQ_WHATSAPP_NUMBERS any more): "
        f"its members are answered only from it"
    )


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


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
