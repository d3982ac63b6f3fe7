"""Telegram updates shaped as the Bot API sends them, and a member who chats through them.

:class:`TelegramMember` posts each update to the real service's ``/webhooks/telegram``
with the secret token, waits until the service processed it and made every call, and
reads the replies where Telegram would show them: at the fake Bot API server.
"""

from __future__ import annotations

import itertools
import random
import time
from typing import Any

import httpx

from statehq.channels.telegram import SECRET_HEADER
from statehq.testing.fake_telegram import Call, FakeTelegram
from tests.service.service_kit import Running, settle

TOKEN = "7000000001:AAH-test-token-never-logged-0123456789"
SECRET = "test-telegram-secret_1"
WEBHOOK = "/webhooks/telegram"
_update_ids = itertools.count(random.randrange(10**6, 10**8))
_query_ids = itertools.count(random.randrange(10**12, 10**13))


def new_user_id() -> int:
    """A Telegram user id no other test uses."""
    return random.randrange(10**8, 10**10)


def user(user_id: int, first_name: str = "Tendai") -> dict[str, Any]:
    return {"id": user_id, "is_bot": False, "first_name": first_name, "language_code": "en"}


def private_chat(user_id: int, first_name: str = "Tendai") -> dict[str, Any]:
    return {"id": user_id, "first_name": first_name, "type": "private"}


def text_update(user_id: int, text: str, *, update_id: int | None = None) -> dict[str, Any]:
    """A member's text message, as an ``Update``."""
    message = {
        "message_id": random.randrange(1, 10**6),
        "from": user(user_id),
        "chat": private_chat(user_id),
        "date": int(time.time()),
        "text": text,
    }
    return {"update_id": update_id or next(_update_ids), "message": message}


def message_update(user_id: int, **content: Any) -> dict[str, Any]:
    """A message with any other content (``sticker={...}``, ``photo=[...]``...)."""
    update = text_update(user_id, "")
    del update["message"]["text"]
    update["message"].update(content)
    return update


def callback_update(
    user_id: int, message: dict[str, Any], data: str, *, query_id: str | None = None
) -> dict[str, Any]:
    """A tap on a button of ``message`` (as the bot sent it) that carries ``data``."""
    query = {
        "id": query_id or str(next(_query_ids)),
        "from": user(user_id),
        "message": message,
        "chat_instance": "-4242",
        "data": data,
    }
    return {"update_id": next(_update_ids), "callback_query": query}


def buttons(message: dict[str, Any]) -> list[tuple[str, str]]:
    """``(label, callback data)`` of a message's inline keyboard."""
    rows = message.get("reply_markup", {}).get("inline_keyboard", [])
    return [(b["text"], b["callback_data"]) for row in rows for b in row]


def with_markup(text: str, entities: list[dict[str, Any]]) -> str:
    """``text`` with its bold entities written back as WhatsApp's ``*bold*`` (offsets in
    UTF-16 code units, as Telegram counts them): what the flows wrote, if they are right."""
    units = text.encode("utf-16-le")
    for entity in sorted(entities, key=lambda e: e["offset"], reverse=True):
        assert entity["type"] == "bold", entity
        start, end = 2 * entity["offset"], 2 * (entity["offset"] + entity["length"])
        units = (
            units[:start]
            + "*".encode("utf-16-le")
            + units[start:end]
            + "*".encode("utf-16-le")
            + units[end:]
        )
    return units.decode("utf-16-le")


class TelegramMember:
    """One member's Telegram: ``say`` types, ``tap`` taps a button of the last menu."""

    def __init__(self, service: Running, telegram: FakeTelegram, user_id: int) -> None:
        self.service = service
        self.telegram = telegram
        self.user_id = user_id
        self.calls: list[Call] = []  # the calls the last update caused
        self.menu: dict[str, Any] | None = None  # the last message sent with a keyboard
        self.last: dict[str, Any] | None = None  # the last update sent

    def post(self, update: dict[str, Any], secret: str | None = SECRET) -> httpx.Response:
        headers = {SECRET_HEADER: secret} if secret is not None else {}
        return self.service.http.post(WEBHOOK, json=update, headers=headers)

    def say(self, text: str) -> str:
        """Type ``text``; returns what the bot answered."""
        return self.send(text_update(self.user_id, text))

    def tap(self, label: str) -> str:
        """Tap the button labelled ``label`` on the last menu."""
        assert self.menu is not None, "no menu was shown"
        shown = self.telegram.message(self.user_id, self.menu["message_id"])
        data = dict(buttons(shown)).get(label)
        assert data is not None, f"no button {label!r} in {self.options}"
        return self.send(callback_update(self.user_id, shown, data))

    def send(self, update: dict[str, Any]) -> str:
        """POST ``update``; wait until it is processed; the replies as text."""
        before = len(self.telegram.calls())
        answer = self.post(update)
        assert answer.json() == {"queued": 1, "duplicates": 0, "ignored": 0, "rejected": 0}
        self.last = update
        settle(self.service)
        self.calls = [c for c in self.telegram.calls()[before:] if self._mine(c)]
        menus = [c.answer["result"] for c in self.replies if "reply_markup" in c.params]
        if menus:
            self.menu = menus[-1]
        assert self.replies, f"no reply to {update}"
        return self.text

    def _mine(self, call: Call) -> bool:
        chat = call.params.get("chat_id")
        return chat == self.user_id or (chat is None and call.method == "answerCallbackQuery")

    @property
    def replies(self) -> list[Call]:
        """The messages the last update was answered with."""
        return [c for c in self.calls if c.method == "sendMessage" and c.ok]

    @property
    def text(self) -> str:
        """The last replies, readable: each text, then its buttons' labels."""
        lines: list[str] = []
        for call in self.replies:
            lines.append(with_markup(call.params["text"], call.params.get("entities", [])))
            lines += [f"[{label}]" for label, _ in buttons(call.params)]
        return "\n".join(lines)

    @property
    def options(self) -> list[str]:
        """Labels of the last menu's buttons."""
        return [label for label, _ in buttons(self.menu)] if self.menu else []
