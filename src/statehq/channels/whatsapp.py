"""WhatsApp Cloud API webhooks: the signature check and every update of a request, parsed.

Meta signs the raw body with the app secret (``X-Hub-Signature-256: sha256=<hex>``), may
batch up to 1000 updates in one request (entries → changes → messages and statuses), and
sends many kinds of update a bot must acknowledge but not act on. :func:`parse_webhook`
never fails on one of them: whatever it does not handle is listed in ``Batch.skipped``
with the reason, for the log.

What reaches the flow engine (:meth:`WhatsAppMessage.inbound`): text, reply buttons, list
replies, template quick replies and flow replies (``nfm_reply``). Stickers, images,
locations, reactions, unsupported and unknown types are ``unsupported`` (the service
answers them politely); ``system`` messages, ``deleted`` and ``edited`` messages and
statuses never move a flow and are never answered.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from typing import Any

from ..errors import InvalidInput
from ..flows import Buttons, Inbound, Message, Option, Text
from ..numbers import is_digits
from ..state import ChannelId

SIGNATURE_HEADER = "X-Hub-Signature-256"
UNDERSTOOD = ("text", "button", "list", "quick_reply", "flow")
"""Message kinds the flow engine takes."""


class SignatureError(InvalidInput):
    """The request is not signed by Meta with our app secret; ``status`` is 401 or 403."""

    def __init__(self, message: str, status: int) -> None:
        self.status = status
        super().__init__(message)


def verify_signature(body: bytes, header: str | None, app_secret: str) -> None:
    """Check ``X-Hub-Signature-256`` against the raw body (constant-time compare).

    Raises :class:`SignatureError`: 401 when the header is missing or malformed, 403
    when it does not match.
    """
    if not header or not header.startswith("sha256="):
        raise SignatureError(f"missing or malformed {SIGNATURE_HEADER} header", 401)
    expected = hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, header.removeprefix("sha256=").strip().lower()):
        raise SignatureError(f"{SIGNATURE_HEADER} does not match the body", 403)


@dataclass(frozen=True)
class WhatsAppMessage:
    """One inbound message: who sent it, its kind and what the member typed or tapped."""

    message_id: str
    sender: str
    kind: str
    timestamp: int
    text: str = ""
    choice: str | None = None
    name: str | None = None

    def inbound(self) -> Inbound | None:
        """The message for the flow engine, or None when it must not move a flow."""
        if self.kind not in UNDERSTOOD:
            return None
        channel = ChannelId("whatsapp", self.sender)
        return Inbound(channel, self.message_id, self.text, self.choice)


@dataclass(frozen=True)
class StatusUpdate:
    """Delivery news about a message we sent: sent, delivered, read, failed (with a code)."""

    message_id: str
    recipient: str
    status: str
    timestamp: int
    error_code: int | None = None
    error_title: str | None = None


@dataclass(frozen=True)
class Batch:
    """Everything one webhook request carried that is ours to handle, and what was skipped."""

    messages: tuple[WhatsAppMessage, ...] = ()
    statuses: tuple[StatusUpdate, ...] = ()
    skipped: tuple[str, ...] = field(default=())


def parse_webhook(payload: Any, phone_number_id: str | None) -> Batch:
    """Every message and status of a webhook body meant for ``phone_number_id``."""
    messages: list[WhatsAppMessage] = []
    statuses: list[StatusUpdate] = []
    skipped: list[str] = []
    if not isinstance(payload, dict) or payload.get("object") != "whatsapp_business_account":
        obj = payload.get("object") if isinstance(payload, dict) else type(payload).__name__
        return Batch(skipped=(f"object {obj!r} is not whatsapp_business_account",))
    for entry in _list(payload.get("entry")):
        for change in _list(entry.get("changes") if isinstance(entry, dict) else None):
            value = change.get("value") if isinstance(change, dict) else None
            name = change.get("field") if isinstance(change, dict) else None
            if name != "messages" or not isinstance(value, dict):
                skipped.append(f"field {name!r} is not handled")
                continue
            number = (value.get("metadata") or {}).get("phone_number_id")
            if phone_number_id is not None and number != phone_number_id:
                skipped.append(f"phone_number_id {number!r} is not ours")
                continue
            contacts = [c for c in _list(value.get("contacts")) if isinstance(c, dict)]
            for raw in _list(value.get("messages")):
                parsed = _message(raw, contacts)
                if parsed is None:
                    skipped.append("a message without an id or a sender")
                else:
                    messages.append(parsed)
            for raw in _list(value.get("statuses")):
                status = _status(raw)
                if status is None:
                    skipped.append("a status without an id")
                else:
                    statuses.append(status)
    return Batch(tuple(messages), tuple(statuses), tuple(skipped))


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _sender(raw: dict[str, Any], contacts: list[dict[str, Any]]) -> tuple[str | None, str | None]:
    """The member's identity: ``wa_id``, or ``user_id`` when there is no ``wa_id``."""
    contact = contacts[0] if len(contacts) == 1 else {}
    name = (contact.get("profile") or {}).get("name")
    for candidate in (contact.get("wa_id"), raw.get("from"), contact.get("user_id")):
        if isinstance(candidate, str) and candidate and not candidate.startswith("<"):
            return candidate, name if isinstance(name, str) else None
    user = raw.get("from_user_id")
    return (user if isinstance(user, str) and user else None), None


def _message(raw: Any, contacts: list[dict[str, Any]]) -> WhatsAppMessage | None:
    if not isinstance(raw, dict) or not isinstance(raw.get("id"), str) or not raw["id"]:
        return None
    sender, name = _sender(raw, contacts)
    if sender is None:
        return None
    kind, text, choice = _content(raw)
    stamp = raw.get("timestamp")
    when = int(stamp) if isinstance(stamp, str) and is_digits(stamp) else 0
    return WhatsAppMessage(raw["id"], sender, kind, when, text, choice, name)


def _content(raw: dict[str, Any]) -> tuple[str, str, str | None]:
    """``(kind, text, choice)`` of a message."""
    kind = raw.get("type")
    body = raw.get(kind) if isinstance(kind, str) else None
    body = body if isinstance(body, dict) else {}
    if kind == "text":
        return "text", str(body.get("body", "")), None
    if kind == "button":  # a template's quick reply
        return "quick_reply", str(body.get("text", "")), _str(body.get("payload"))
    if kind == "interactive":
        reply_type = body.get("type")
        reply = body.get(reply_type) if isinstance(reply_type, str) else None
        reply = reply if isinstance(reply, dict) else {}
        if reply_type == "button_reply":
            return "button", str(reply.get("title", "")), _str(reply.get("id"))
        if reply_type == "list_reply":
            return "list", str(reply.get("title", "")), _str(reply.get("id"))
        if reply_type == "nfm_reply":
            return "flow", str(reply.get("response_json", "")), None
    if kind in ("system", "revoke", "edit"):
        # A number change, a deleted or an edited message: news, never a question.
        return {"revoke": "deleted", "edit": "edited"}.get(kind, kind), "", None
    return "unsupported", "", None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _status(raw: Any) -> StatusUpdate | None:
    if not isinstance(raw, dict) or not isinstance(raw.get("id"), str):
        return None
    errors = [e for e in _list(raw.get("errors")) if isinstance(e, dict)]
    code = errors[0].get("code") if errors else None
    title = errors[0].get("title") if errors else None
    stamp = raw.get("timestamp")
    return StatusUpdate(
        raw["id"],
        str(raw.get("recipient_id", "")),
        str(raw.get("status", "")),
        int(stamp) if isinstance(stamp, str) and is_digits(stamp) else 0,
        code if isinstance(code, int) else None,
        title if isinstance(title, str) else None,
    )


def render(message: Message, to: str) -> dict[str, Any]:
    """The Graph API ``/messages`` body that sends ``message`` to WhatsApp user ``to``.

    The limits were checked when the message was built (:mod:`statehq.flows.messages`),
    so the body is always one WhatsApp accepts.
    """
    base: dict[str, Any] = {"messaging_product": "whatsapp", "recipient_type": "individual"}
    base["to"] = to
    if isinstance(message, Text):
        return {**base, "type": "text", "text": {"body": message.body, "preview_url": False}}
    if isinstance(message, Buttons):
        buttons = [
            {"type": "reply", "reply": {"id": o.id, "title": o.title}} for o in message.options
        ]
        interactive = {
            "type": "button",
            "body": {"text": message.body},
            "action": {"buttons": buttons},
        }
        return {**base, "type": "interactive", "interactive": interactive}
    rows = [_row(option) for option in message.options]
    action = {"button": message.button, "sections": [{"rows": rows}]}
    interactive = {"type": "list", "body": {"text": message.body}, "action": action}
    return {**base, "type": "interactive", "interactive": interactive}


def _row(option: Option) -> dict[str, str]:
    row = {"id": option.id, "title": option.title}
    if option.description:
        row["description"] = option.description
    return row
