"""The web chat: the page served at ``/`` talks to the bot as a channel like WhatsApp.

In: ``POST /webhooks/web`` with ``{"from": "263771234567", "text": "hi"}`` (or
``"choice": "<option id>"`` for a tapped button or row, and an ``"id"`` the page makes
so a resent request is queued once), authorised by the admin token as a bearer token.
The message goes through the same inbox, workers and flow engine as a WhatsApp one.

Out: each reply is rendered as WhatsApp shows it (text, up to 3 buttons, a list of up
to 10 rows behind a button) and appended to the sender's reply stream in the store
(:mod:`statehq.store.replies`), which the page reads live.

Without ``STATEHQ_ADMIN_TOKEN`` the channel refuses every message: a member's state is
not for anyone who can reach the port.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from ..config import Settings, StoreSettings
from ..digits import is_digits
from ..errors import StateError
from ..flows import Buttons, Message, OptionList
from ..store import StateStore
from ..store.inbox import Update
from ..store.replies import Replies
from .base import Received, Refusal, Rejected, reply_entries

TYPE = "web"
MAX_BODY_TEXT = 4096


def authorised(token: str | None, header: str | None) -> bool:
    """True when ``header`` is ``Bearer <token>`` and a token is configured."""
    if not token or not header or not header.startswith("Bearer "):
        return False
    return hmac.compare_digest(header.removeprefix("Bearer ").encode(), token.encode())


def render(message: Message) -> dict[str, Any]:
    """One reply as the page draws it (the same shapes WhatsApp shows)."""
    if isinstance(message, Buttons | OptionList):
        options = [
            {"id": o.id, "title": o.title, "description": o.description} for o in message.options
        ]
        if isinstance(message, Buttons):
            return {"kind": "buttons", "text": message.body, "options": options}
        return {"kind": "list", "text": message.body, "options": options, "button": message.button}
    return {"kind": "text", "text": message.body}


@dataclass(frozen=True)
class Appended:
    """What a web delivery reports: the reply is in the sender's stream (or why not)."""

    ok: bool = True
    failure_label: str = ""
    detail: str = ""
    attempts: int = 1


class WebDelivery:
    """Appends rendered replies to the sender's reply stream."""

    def __init__(self, store: StateStore) -> None:
        self.store = store
        self.replies = Replies(store.settings)

    def render(self, update: Update, replies: list[Message]) -> list[str]:
        """One outbox entry per reply, each naming its recipient."""
        to = update.channel.partition(":")[2]
        return reply_entries(update, [{**render(message), "to": to} for message in replies])

    def deliver(self, body: dict[str, Any]) -> Appended:
        """Append one reply (``to`` is the phone; the stream is the web identity's)."""
        to = body.get("to")
        try:
            self.store.execute(self.replies.append(f"{TYPE}:{to}", body))
        except StateError as error:
            return Appended(False, "store", str(error))
        return Appended()


class WebChannel:
    """The web chat channel: ``web:<phone>`` identities."""

    type = TYPE

    def __init__(self, settings: Settings) -> None:
        self.token = settings.admin_token
        self.store_settings: StoreSettings = settings.store

    def verify(self, params: Mapping[str, str]) -> tuple[int, str]:
        """The web chat has no subscription handshake."""
        return 404, "the web chat has no verify step"

    def receive(self, headers: Mapping[str, str], body: bytes) -> Received:
        """One message typed or tapped on the page."""
        if not self.token:
            raise Refusal(403, "the web chat is off: set STATEHQ_ADMIN_TOKEN")
        if not authorised(self.token, headers.get("authorization")):
            raise Refusal(401, "the web chat needs the admin token as a bearer token")
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError) as bad:
            raise Refusal(400, f"the body is not JSON: {bad}") from None
        if not isinstance(data, dict):
            raise Refusal(400, "the body must be a JSON object")
        sender = str(data.get("from", "")).removeprefix("+")
        if not is_digits(sender) or not 8 <= len(sender) <= 15:
            raise Refusal(400, "'from' must be a phone number of 8-15 digits")
        text, choice = data.get("text", ""), data.get("choice")
        message_id = data.get("id") or f"web.{uuid.uuid4().hex}"
        if not isinstance(text, str) or len(text) > MAX_BODY_TEXT:
            return _rejected(sender, f"'text' must be a string of at most {MAX_BODY_TEXT}")
        if choice is not None and (not isinstance(choice, str) or not choice.strip()):
            return _rejected(sender, "'choice' must be an option id")
        if not isinstance(message_id, str) or not 1 <= len(message_id) <= 200:
            return _rejected(sender, "'id' must be a string of 1-200 characters")
        kind = "button" if choice else "text"
        if not choice and not text.strip():
            return Received(skipped=("an empty message",))
        update = Update(message_id, f"{TYPE}:{sender}", kind, int(time.time()), text, choice)
        return Received((update,))

    @contextlib.contextmanager
    def delivery(self) -> Iterator[WebDelivery]:
        """A worker's own store connection for appending replies."""
        with StateStore.open(settings=self.store_settings) as store:
            yield WebDelivery(store)

    def problems(self) -> list[str]:
        """The web chat is off without an admin token."""
        if self.token:
            return []
        return ["STATEHQ_ADMIN_TOKEN is not set: the web chat and the inspector are off"]


def _rejected(sender: str, detail: str) -> Received:
    return Received(rejected=(Rejected("malformed", detail, sender=sender),))
