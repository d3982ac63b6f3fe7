"""WhatsApp Cloud API webhooks: the signature check and every update of a request, parsed.

Meta signs the raw body with the app secret (``X-Hub-Signature-256: sha256=<hex>``), may
batch up to 1000 updates in one request (entries → changes → messages and statuses), and
sends many kinds of update a bot must acknowledge but not act on. :func:`parse_webhook`
never fails on one of them: whatever it does not handle is listed in ``Batch.skipped``
with the reason, for the log.

Every message and status becomes an inbox :class:`~statehq.store.inbox.Update`, the one
type the webhook route, the inbox and the workers know. What reaches the flow engine:
text, reply buttons, list replies, template quick replies, flow replies (``nfm_reply``:
its ``response_json`` must be a JSON object, its ``flow_token`` a string when present)
and files: images, documents, audio, video and stickers, each with its media id and
mime type (see :class:`statehq.flows.Media`; the engine audits every one and answers
politely where no step takes it). Locations, contacts, unsupported and unknown types
are ``unsupported`` (the service answers them politely); ``system`` messages, ``deleted``
and ``edited`` messages, reactions, other interactive replies
(``call_permission_reply``: a ``notice``) and statuses never move a flow and are never
answered.

Every update is validated on its own (:class:`Rejected` lists the malformed ones, with
why): a message's sender is its own ``from``, never another message's contact; ids must
be keys the store can hold; timestamps are ASCII digits within range; lone surrogates
in free text become U+FFFD.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from ...digits import is_digits
from ...errors import InvalidInput
from ...flows import MEDIA_KINDS, Buttons, FormMessage, FormReply, Media, Message, Option, Text
from ...flows.payloads import PayloadError
from ...store.inbox import Update
from ...store.keys import MAX_MESSAGE_ID_LENGTH, check_message_id
from ...text import clean_text
from ..base import Rejected

SIGNATURE_HEADER = "X-Hub-Signature-256"
NEWS = {"system": "system", "revoke": "deleted", "edit": "edited", "reaction": "reaction"}
"""Message types that are news, never a question: recorded, never answered."""
MAX_TIMESTAMP = 9_000_000_000
"""The latest timestamp (s) accepted: far beyond any real one, and exact as a score."""
_TIMESTAMP_DIGITS = 20  # leading zeros are fine; thousands of digits are not read at all
_SENDER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_STATUS = re.compile(r"[a-z_]{1,40}")
T = TypeVar("T")


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
class Batch:
    """Everything one webhook request carried that is ours to handle, and what was not.

    ``skipped``: updates that are not ours (another field or number), with the reason.
    ``rejected``: updates that are ours but malformed. ``foreign_numbers``: the phone
    number ids (quoted and cut short, for a log line) of the updates skipped for being
    another number's: a wrong ``WHATSAPP_PHONE_NUMBER_ID`` shows up here first.
    """

    messages: tuple[Update, ...] = ()
    statuses: tuple[Update, ...] = ()
    skipped: tuple[str, ...] = field(default=())
    rejected: tuple[Rejected, ...] = field(default=())
    foreign_numbers: tuple[str, ...] = field(default=())


class _Malformed(Exception):
    """One update is malformed: why, and what of it was still valid."""

    def __init__(self, reason: str, detail: str, sender: str | None = None) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail
        self.sender = sender


def parse_webhook(
    payload: Any, phone_number_id: str | None, *, vias: Mapping[str, str | None] | None = None
) -> Batch:
    """Every message and status of a webhook body meant for ``phone_number_id``.

    ``vias``, if given, names the numbers accepted instead (see :mod:`.numbers`), each
    with what its senders' identities carry after ``@`` (None: the default's, nothing).

    Each update is read on its own: a malformed one is listed in ``Batch.rejected`` and
    never stops the others. Nothing here raises for anything a body can hold.
    """
    batch = _Collector()
    if not isinstance(payload, dict) or payload.get("object") != "whatsapp_business_account":
        obj = payload.get("object") if isinstance(payload, dict) else type(payload).__name__
        return Batch(skipped=(f"object {_shown(obj)} is not whatsapp_business_account",))
    for entry in _list(payload.get("entry")):
        for change in _list(_dict(entry).get("changes")):
            value, name = _dict(change).get("value"), _dict(change).get("field")
            if name != "messages" or not isinstance(value, dict):
                batch.skipped.append(f"field {_shown(name)} is not handled")
                continue
            number = _dict(value.get("metadata")).get("phone_number_id")
            accepted = number in vias if vias is not None else phone_number_id in (None, number)
            if not accepted:
                batch.skipped.append(f"phone_number_id {_shown(number)} is not ours")
                batch.foreign_numbers.append(_shown(number))
                continue
            batch.via = vias.get(str(number)) if vias is not None else None
            contacts = [c for c in _list(value.get("contacts")) if isinstance(c, dict)]
            for raw in _list(value.get("messages")):
                batch.take(batch.messages, _message, raw, contacts)
            for raw in _list(value.get("statuses")):
                batch.take(batch.statuses, _status, raw)
    return batch.done()


class _Collector:
    def __init__(self) -> None:
        self.messages: list[Update] = []
        self.statuses: list[Update] = []
        self.skipped: list[str] = []
        self.rejected: list[Rejected] = []
        self.foreign_numbers: list[str] = []
        self.via: str | None = None  # the number the updates taken were sent to, if not the default

    def take(self, into: list[Any], parse: Callable[..., Any], raw: Any, *context: Any) -> None:
        """Parse one update into ``into``; whatever goes wrong rejects it alone."""
        via = self.via
        try:
            update = parse(raw, *context)
            if via is not None:
                update = replace(update, channel=f"{update.channel}@{via}")
            into.append(update)
        except _Malformed as bad:
            sender = f"{bad.sender}@{via}" if bad.sender and via else bad.sender
            self.rejected.append(Rejected(bad.reason, bad.detail, sender, _id_of(raw)))
        except Exception as bug:  # the last line: one update never fails the batch
            detail = f"could not be read ({type(bug).__name__}: {str(bug)[:200]})"
            self.rejected.append(Rejected("malformed", detail, None, _id_of(raw)))

    def done(self) -> Batch:
        return Batch(
            tuple(self.messages),
            tuple(self.statuses),
            tuple(self.skipped),
            tuple(self.rejected),
            tuple(self.foreign_numbers),
        )


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _shown(value: Any) -> str:
    """A value for a log line: short, and printable whatever it holds."""
    return clean_text(repr(value)[:80])


def _id_of(raw: Any) -> str | None:
    """The update's id, when it is one the store could key (for the audit trail)."""
    found = _dict(raw).get("id")
    try:
        return check_message_id(found)
    except InvalidInput:
        return None


def _sender_id(value: Any, what: str) -> str:
    if not isinstance(value, str) or not _SENDER.fullmatch(value):
        raise _Malformed("bad_sender", f"{what} {_shown(value)} is not a WhatsApp user id")
    return value


def _timestamp(raw: dict[str, Any], sender: str | None) -> int:
    stamp = raw.get("timestamp")
    if isinstance(stamp, str) and is_digits(stamp) and len(stamp) <= _TIMESTAMP_DIGITS:
        when = int(stamp)
        if when <= MAX_TIMESTAMP:
            return when
    raise _Malformed(
        "bad_timestamp",
        f"timestamp {_shown(stamp)} is not a number of seconds up to {MAX_TIMESTAMP}",
        sender,
    )


def _message_id(raw: dict[str, Any], sender: str | None) -> str:
    try:
        return check_message_id(raw.get("id"))
    except InvalidInput as bad:
        raise _Malformed("bad_id", clean_text(str(bad)), sender) from None


def _message(raw: Any, contacts: list[dict[str, Any]]) -> Update:
    """One message; its sender is its own ``from`` (or ``from_user_id``), never a contact's."""
    raw = _dict(raw)
    if "from" in raw or "from_user_id" not in raw:
        sender = _sender_id(raw.get("from"), "from")
        contact = next((c for c in contacts if c.get("wa_id") == sender), {})
    else:
        sender = _sender_id(raw.get("from_user_id"), "from_user_id")
        contact = next((c for c in contacts if c.get("user_id") == sender), {})
    message_id = _message_id(raw, sender)
    when = _timestamp(raw, sender)
    kind, text, choice = _content(raw, sender)
    name = _dict(contact.get("profile")).get("name")
    shown_name = clean_text(name) if isinstance(name, str) and name else None
    channel = f"whatsapp:{sender}"
    return Update(message_id, channel, kind, when, text, choice, name=shown_name)


def _content(raw: dict[str, Any], sender: str) -> tuple[str, str, str | None]:
    """``(kind, text, choice)`` of a message."""
    kind = raw.get("type")
    body = _dict(raw.get(kind)) if isinstance(kind, str) else {}
    if kind == "text":
        return "text", _text(body.get("body"), "text.body", sender), None
    if kind == "button":  # a template's quick reply
        text = _text(body.get("text", ""), "button.text", sender)
        return "quick_reply", text, _choice(body.get("payload"))
    if kind == "interactive":
        reply_type = body.get("type")
        reply = _dict(body.get(reply_type)) if isinstance(reply_type, str) else {}
        if reply_type == "button_reply":
            text = _text(reply.get("title", ""), "button_reply.title", sender)
            return "button", text, _choice(reply.get("id"))
        if reply_type == "list_reply":
            text = _text(reply.get("title", ""), "list_reply.title", sender)
            return "list", text, _choice(reply.get("id"))
        if reply_type == "nfm_reply":
            text = _text(reply.get("response_json"), "nfm_reply.response_json", sender)
            _checked(lambda: FormReply.parse(text), sender)
            return "flow", text, None
        # call_permission_reply and the like: the member answered WhatsApp, not us.
        return "notice", "", None
    if kind in NEWS:
        return NEWS[kind], "", None
    if kind in MEDIA_KINDS:
        return kind, _media(kind, raw.get(kind), sender).encode(), None
    return "unsupported", "", None


def _media(kind: str, body: Any, sender: str) -> Media:
    """A file's description; its bytes stay at Meta, fetched by id when a bot wants them."""
    if not isinstance(body, dict):
        raise _Malformed("malformed", f"{kind} is {type(body).__name__}, not an object", sender)

    def text(name: str) -> str | None:
        value = body.get(name)
        return None if value is None else _text(value, f"{kind}.{name}", sender)

    media_id, mime_type = text("id"), text("mime_type")
    if not media_id or not mime_type:
        missing = "id" if not media_id else "mime_type"
        raise _Malformed("malformed", f"{kind}.{missing} is missing", sender)
    voice = body.get("voice") is True
    caption, filename = text("caption"), text("filename")
    return _checked(
        lambda: Media(kind, media_id, mime_type, text("sha256"), caption, filename, voice), sender
    )


def _checked(read: Callable[[], T], sender: str) -> T:
    """``read()``, its :class:`PayloadError` turned into this update's rejection."""
    try:
        return read()
    except PayloadError as bad:
        raise _Malformed("malformed", clean_text(str(bad)), sender) from None


def _text(value: Any, what: str, sender: str) -> str:
    if not isinstance(value, str):
        raise _Malformed("malformed", f"{what} is {type(value).__name__}, not text", sender)
    return clean_text(value)


def _choice(value: Any) -> str | None:
    return clean_text(value) if _is_str(value) else None


def _is_str(value: Any) -> bool:
    return isinstance(value, str) and bool(value)


def _status(raw: Any) -> Update:
    raw = _dict(raw)
    recipient = _sender_id(raw.get("recipient_id"), "recipient_id")
    message_id = _message_id(raw, recipient)
    status = raw.get("status")
    if not isinstance(status, str) or not _STATUS.fullmatch(status):
        raise _Malformed("malformed", f"status {_shown(status)} is not a status name", recipient)
    errors = [e for e in _list(raw.get("errors")) if isinstance(e, dict)]
    code = errors[0].get("code") if errors else None
    title = errors[0].get("title") if errors else None
    return Update(
        status_id(message_id, status),
        f"whatsapp:{recipient}",
        "status",
        _timestamp(raw, recipient),
        status=status,
        error_code=code if type(code) is int and abs(code) < 2**53 else None,
        error_title=clean_text(title)[:300] if isinstance(title, str) else None,
        about=message_id,
    )


def status_id(message_id: str, status: str) -> str:
    """The inbox id of a status: one per message and status, and always a valid id."""
    joined = f"status:{message_id}:{status}"
    if len(joined) <= MAX_MESSAGE_ID_LENGTH:
        return joined
    digest = hashlib.sha256(message_id.encode()).hexdigest()[:40]
    return f"status:{digest}:{status}"


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
    if isinstance(message, FormMessage):
        return {**base, "type": "interactive", "interactive": _form(message)}
    rows = [_row(option) for option in message.options]
    action = {"button": message.button, "sections": [{"rows": rows}]}
    interactive = {"type": "list", "body": {"text": message.body}, "action": action}
    return {**base, "type": "interactive", "interactive": interactive}


def _row(option: Option) -> dict[str, str]:
    row = {"id": option.id, "title": option.title}
    if option.description:
        row["description"] = option.description
    return row


def _form(message: FormMessage) -> dict[str, Any]:
    """A Flow message: the button opens the Flow at ``screen``; ``flow_token`` comes back."""
    payload: dict[str, Any] = {"screen": message.screen}
    if message.data:  # Graph refuses an empty data object: it is left out instead
        payload["data"] = dict(message.data)
    parameters: dict[str, Any] = {
        "flow_message_version": "3",
        "flow_token": message.token,
        "flow_id": message.flow_id,
        "flow_cta": message.cta,
        "flow_action": "navigate",
        "flow_action_payload": payload,
    }
    if message.draft:
        parameters["mode"] = "draft"
    action = {"name": "flow", "parameters": parameters}
    return {"type": "flow", "body": {"text": message.body}, "action": action}
