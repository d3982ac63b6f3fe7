"""Webhook requests shaped and signed the way Meta sends them (for tests and benchmarks).

Meta serialises the body with every non-ASCII character escaped (``\\u00e9``) and signs
those exact bytes; :func:`signed` does the same, so a test of non-ASCII text checks the
signature over what Meta really sends.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time
from collections.abc import Sequence
from typing import Any

PHONE_NUMBER_ID = "106540352242922"
_ids = itertools.count(1)


def message_id() -> str:
    """A fresh id shaped like Meta's (``wamid.`` and base64)."""
    return f"wamid.HBgM{time.time_ns():x}{next(_ids):06d}"


def text(sender: str, body: str, *, ts: int | None = None, id: str | None = None) -> dict[str, Any]:
    """A text message from ``sender``."""
    return _message(sender, "text", {"text": {"body": body}}, ts, id)


def button(sender: str, reply_id: str, title: str = "", **kw: Any) -> dict[str, Any]:
    """A reply-button tap."""
    content = {"type": "button_reply", "button_reply": {"id": reply_id, "title": title}}
    return _message(sender, "interactive", {"interactive": content}, kw.get("ts"), kw.get("id"))


def list_reply(sender: str, row_id: str, title: str = "", **kw: Any) -> dict[str, Any]:
    """A list-row pick."""
    content = {"type": "list_reply", "list_reply": {"id": row_id, "title": title}}
    return _message(sender, "interactive", {"interactive": content}, kw.get("ts"), kw.get("id"))


def other(sender: str, kind: str, content: dict[str, Any], **kw: Any) -> dict[str, Any]:
    """Any other message type (``sticker``, ``image``, ``location``, ``reaction``...)."""
    return _message(sender, kind, {kind: content}, kw.get("ts"), kw.get("id"))


def _message(
    sender: str, kind: str, content: dict[str, Any], ts: int | None, id: str | None
) -> dict[str, Any]:
    return {
        "from": sender,
        "id": id or message_id(),
        "timestamp": str(int(time.time()) if ts is None else ts),
        "type": kind,
        **content,
    }


def status(recipient: str, about: str, state: str, *, code: int | None = None) -> dict[str, Any]:
    """A delivery status for a message we sent (``failed`` ones carry an error code)."""
    update: dict[str, Any] = {
        "id": about,
        "status": state,
        "timestamp": str(int(time.time())),
        "recipient_id": recipient,
    }
    if code is not None:
        update["errors"] = [{"code": code, "title": "Message failed", "message": "failed"}]
    return update


def payload(
    messages: Sequence[dict[str, Any]] = (),
    statuses: Sequence[dict[str, Any]] = (),
    *,
    phone_number_id: str = PHONE_NUMBER_ID,
) -> dict[str, Any]:
    """One webhook body: one change per sender's messages, plus one for the statuses."""
    changes: list[dict[str, Any]] = []
    by_sender: dict[str, list[dict[str, Any]]] = {}
    for message in messages:
        by_sender.setdefault(message["from"], []).append(message)
    metadata = {"display_phone_number": "15550000000", "phone_number_id": phone_number_id}
    for sender, items in by_sender.items():
        value = {
            "messaging_product": "whatsapp",
            "metadata": metadata,
            "contacts": [{"profile": {"name": f"Member {sender[-4:]}"}, "wa_id": sender}],
            "messages": items,
        }
        changes.append({"field": "messages", "value": value})
    if statuses:
        value = {"messaging_product": "whatsapp", "metadata": metadata, "statuses": statuses}
        changes.append({"field": "messages", "value": value})
    entry = {"id": "102290129340398", "changes": changes}
    return {"object": "whatsapp_business_account", "entry": [entry]}


def signed(body: dict[str, Any], app_secret: str) -> tuple[bytes, dict[str, str]]:
    """The raw bytes Meta would send for ``body`` and the headers that sign them."""
    raw = json.dumps(body, ensure_ascii=True, separators=(",", ":")).encode()
    signature = hmac.new(app_secret.encode(), raw, hashlib.sha256).hexdigest()
    return raw, {"Content-Type": "application/json", "X-Hub-Signature-256": f"sha256={signature}"}
