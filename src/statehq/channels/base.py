"""What a channel is to statehq: one protocol, so adding a channel is one module.

A :class:`Channel` turns its inbound requests into inbox updates (:meth:`Channel.receive`:
which are conversation input, which are rejected as malformed, which are not ours) and
opens, per worker, a :class:`Delivery` that renders replies and sends them. The webhook
route (``/webhooks/<type>``), the inbox and the workers know nothing else about it;
:mod:`statehq.channels.registry` is where a channel is registered. WhatsApp is one
(:mod:`statehq.channels.whatsapp`).
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..flows import MEDIA_KINDS, Inbound, Message, inbound_from
from ..state import ChannelId
from ..store.inbox import Update, entry

UNDERSTOOD = ("text", "button", "list", "quick_reply", "flow", *MEDIA_KINDS)
"""Update kinds the flow engine takes (files too: it audits them, and answers politely
where no step takes one); ``unsupported`` gets a polite reply, the rest none."""


def inbound_of(update: Update) -> Inbound | None:
    """The message for the flow engine, or None when the update must not move a flow."""
    if update.kind not in UNDERSTOOD:
        return None
    channel = ChannelId.parse(update.channel)
    return inbound_from(channel, update.id, update.kind, update.text, update.choice)


@dataclass(frozen=True)
class Rejected:
    """An inbound update that is ours but malformed: recorded (log, audit, metric), skipped.

    ``reason`` is a short label for metrics (``bad_id``, ``bad_sender``,
    ``bad_timestamp``, ``malformed``); ``detail`` says what was wrong. ``sender`` (the
    identifier within the channel) and ``message_id`` are given when they were valid.
    """

    reason: str
    detail: str
    sender: str | None = None
    message_id: str | None = None


@dataclass(frozen=True)
class Received:
    """What a channel made of one inbound request."""

    updates: tuple[Update, ...] = ()
    rejected: tuple[Rejected, ...] = field(default=())
    skipped: tuple[str, ...] = field(default=())


class Refusal(Exception):
    """The request is not the channel's (unsigned, not its format): answered ``status``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


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


class Channel(Protocol):
    """A messaging channel: its identities' type, its inbound side and its way out."""

    @property
    def type(self) -> str:
        """The channel type of its identities (``whatsapp`` in ``whatsapp:263...``)."""
        ...

    def verify(self, params: Mapping[str, str]) -> tuple[int, str]:
        """Answer a GET on the webhook (a subscription handshake): (status, plain text)."""
        ...

    def receive(self, headers: Mapping[str, str], body: bytes) -> Received:
        """The updates of one POST; :class:`Refusal` when the request is not the channel's."""
        ...

    def delivery(self) -> AbstractContextManager[Delivery]:
        """A worker's own way out (its own connections), closed with the worker."""
        ...

    def problems(self) -> list[str]:
        """What is missing from its configuration, in words (logged when serving starts)."""
        ...


def reply_entries(update: Update, bodies: list[dict[str, Any]]) -> list[str]:
    """Outbox entries for rendered bodies answering ``update``.

    Each reply's id (``<message id>#<n>``) also travels as the Graph API's
    ``biz_opaque_callback_data``, so the delivery statuses Meta sends back, and a resend
    after a crash, name the message it answered.
    """
    to = ChannelId.parse(update.channel).address
    entries = []
    for n, body in enumerate(bodies):
        reply_id = f"{update.id}#{n}"
        if body.get("status") != "read":
            body = {**body, "biz_opaque_callback_data": reply_id}
        entries.append(entry(reply_id, to, body))
    return entries


@dataclass(frozen=True)
class FollowUp:
    """What a channel's delivery makes of a delivery status (its optional
    ``after_status(update)``): replies to send, and the audit event that says why.

    ``entries`` are rendered outbox entries (none: nothing to send, ``event`` is audited
    all the same). With ``once_per`` (seconds), when the member's trail already holds
    ``event`` that recent, nothing is sent and ``instead`` is audited with
    ``instead_reason`` (WhatsApp sends one re-engagement template per window).
    """

    event: str
    reason: str
    detail: Mapping[str, Any]
    entries: tuple[str, ...] = ()
    once_per: float = 0.0
    instead: str = ""
    instead_reason: str = ""


@dataclass(frozen=True)
class Note:
    """An audit entry a delivery asks for about one send (its report's optional ``note``):
    WhatsApp's reply refused with 131047 and sent as its template, say."""

    event: str
    reason: str
    detail: Mapping[str, Any]
