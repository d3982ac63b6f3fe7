"""Telegram webhooks: the secret token check and one Bot API ``Update`` parsed.

Telegram posts one ``Update`` per request, with the ``secret_token`` given to
``setWebhook`` in ``X-Telegram-Bot-Api-Secret-Token`` (:func:`check_secret` compares it
in constant time). Its ``update_id`` is the inbox id (``tg.<update_id>``): a redelivery
is queued once and applied once, like a WhatsApp message id.

What becomes an inbox :class:`~statehq.store.inbox.Update`, in private chats only:

    message         text                  ``text``; ``/start`` is read as "hi" (Telegram's
                                          first message and its restart), a command's
                                          ``@botname`` is dropped (``/menu@bot`` is ``/menu``)
                    photo, document,      the file as the flows' ``Media`` (kind ``image``,
                    voice, audio, video,  ``document``, ``audio``, ``video``, ``sticker``;
                    sticker               see :mod:`.media`): a step may take it
                    location, poll, ...   ``unsupported`` (answered politely)
                    a service message     ``notice`` (recorded, never answered)
    edited_message                        ``edited`` (recorded, never answered)
    callback_query  a keyboard tap        ``button``: ``choice`` is its callback data, ``text``
                                          the tapped button's label; ``about`` carries the
                                          query id and the tapped message (:func:`callback_of`)

Anything else (channel posts, inline queries, group chats, member updates, ...) is
skipped with the reason. A malformed update is rejected with what was wrong; nothing
here raises for anything a body can hold.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ...flows import PayloadError
from ...store.inbox import MAX_TIMESTAMP, Update
from ...text import clean_text
from ..base import Received, Rejected
from .media import media_of
from .render import button_of

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
ID_PREFIX = "tg."
"""Inbox ids are ``tg.<update_id>``: never a WhatsApp id, and no ``type:<digits>`` shape
that log redaction would take for a member's identity."""
START_TEXT = "hi"
MAX_ID = 2**53 - 1  # Telegram's ids fit in 52 bits; anything beyond is not one of its ids
CONTENT = frozenset(
    {
        "animation",
        "audio",
        "contact",
        "dice",
        "document",
        "game",
        "giveaway",
        "invoice",
        "location",
        "paid_media",
        "photo",
        "poll",
        "sticker",
        "story",
        "venue",
        "video",
        "video_note",
        "voice",
    }
)
"""Message contents a member sends that are not text: answered "I can only read text"."""
_COMMAND = re.compile(r"^/([A-Za-z0-9_]{1,64})(@[A-Za-z0-9_]{1,64})?(?=\s|$)")
_CALLBACK_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


class SecretError(Exception):
    """The request does not carry our webhook secret; ``status`` is 401 or 403."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def check_secret(header: str | None, secret: str) -> None:
    """Check ``X-Telegram-Bot-Api-Secret-Token`` against the secret (constant-time).

    Raises :class:`SecretError`: 401 when the header is missing, 403 when it differs.
    """
    if not header:
        raise SecretError(f"missing {SECRET_HEADER} header", 401)
    if not hmac.compare_digest(header.encode("utf-8", "replace"), secret.encode()):
        raise SecretError(f"{SECRET_HEADER} does not match TELEGRAM_SECRET_TOKEN", 403)


@dataclass(frozen=True)
class Callback:
    """What answering a tap needs: the query's id, and the tapped message (if editable)."""

    query_id: str
    message_id: int | None


def callback_of(update: Update) -> Callback | None:
    """The callback query an inbox update came from, or None for any other update."""
    if update.kind != "button" or not update.about or not update.about.startswith("callback:"):
        return None
    query_id, _, message = update.about.removeprefix("callback:").partition(":")
    return Callback(query_id, int(message) if message.isdigit() else None)


class _Malformed(Exception):
    def __init__(self, reason: str, detail: str, sender: str | None = None) -> None:
        super().__init__(detail)
        self.reason, self.detail, self.sender = reason, detail, sender


class _Skip(Exception):
    """The update is not one statehq handles: acknowledged, with the reason."""


def parse_update(payload: Any, now: int) -> Received:
    """The inbox update of one Bot API ``Update`` (``now``: when a tap arrived, seconds)."""
    if not isinstance(payload, dict):
        detail = f"the body is a JSON {type(payload).__name__}, not an Update object"
        return Received(rejected=(Rejected("malformed", detail),))
    update_id = payload.get("update_id")
    if not _is_id(update_id, lowest=0):
        detail = f"update_id {_shown(update_id)} is not a whole number from 0 to {MAX_ID}"
        return Received(rejected=(Rejected("bad_id", detail),))
    inbox_id = f"{ID_PREFIX}{update_id}"
    kinds = [key for key in payload if key != "update_id"]
    kind = kinds[0] if kinds else None
    try:
        if kind in ("message", "edited_message"):
            update = _message(payload[kind], inbox_id, edited=kind == "edited_message")
        elif kind == "callback_query":
            update = _callback(payload[kind], inbox_id, now)
        else:
            raise _Skip(f"update {update_id}: {_shown(kind)} updates are not handled")
    except _Skip as skipped:
        return Received(skipped=(str(skipped),))
    except _Malformed as bad:
        return Received(rejected=(Rejected(bad.reason, bad.detail, bad.sender, inbox_id),))
    except Exception as bug:  # the last line: a body never becomes a traceback
        detail = f"{kind} could not be read ({type(bug).__name__}: {str(bug)[:200]})"
        return Received(rejected=(Rejected("malformed", clean_text(detail), None, inbox_id),))
    return Received(updates=(update,))


def _message(raw: Any, inbox_id: str, *, edited: bool) -> Update:
    what = "edited_message" if edited else "message"
    raw = _object(raw, what)
    _private(raw.get("chat"), what)
    user = _object(raw.get("from"), f"{what}.from")
    sender = _user_id(user.get("id"), f"{what}.from.id")
    when = _date(raw.get("edit_date") if edited else raw.get("date"), what, sender)
    name = _name(user)
    if edited:
        return Update(inbox_id, f"telegram:{sender}", "edited", when, name=name)
    if "text" in raw:
        text = raw["text"]
        if not isinstance(text, str):
            detail = f"{what}.text is {type(text).__name__}, not text"
            raise _Malformed("malformed", detail, sender)
        return Update(inbox_id, f"telegram:{sender}", "text", when, _command(text), name=name)
    try:
        media = media_of(raw)
    except PayloadError as bad:
        raise _Malformed("malformed", clean_text(str(bad)), sender) from None
    if media is not None:  # a file: the bot's typed input (a receipt photo), or refused politely
        return Update(inbox_id, f"telegram:{sender}", media.kind, when, media.encode(), name=name)
    kind = "unsupported" if CONTENT & raw.keys() else "notice"
    return Update(inbox_id, f"telegram:{sender}", kind, when, name=name)


def _callback(raw: Any, inbox_id: str, now: int) -> Update:
    raw = _object(raw, "callback_query")
    user = _object(raw.get("from"), "callback_query.from")
    sender = _user_id(user.get("id"), "callback_query.from.id")
    query_id = raw.get("id")
    if not isinstance(query_id, str) or not _CALLBACK_ID.fullmatch(query_id):
        detail = f"callback_query.id {_shown(query_id)} is not a callback query id"
        raise _Malformed("malformed", detail, sender)
    message = raw.get("message")
    if message is None:
        raise _Skip(f"callback query {query_id}: taps on inline messages are not handled")
    message = _object(message, "callback_query.message")
    _private(message.get("chat"), "callback_query.message")
    data = raw.get("data")
    if not isinstance(data, str) or not data:
        raise _Skip(f"callback query {query_id}: a tap without data (a game) is not handled")
    title, choice = button_of(message.get("reply_markup"), clean_text(data))
    message_id = message.get("message_id")
    # A message the bot can no longer reach (Telegram sends it with date 0: deleted, or
    # otherwise inaccessible) cannot be edited: the tap is answered, no keyboard removed.
    editable = _is_id(message_id, lowest=1) and message.get("date") != 0
    about = f"callback:{query_id}:{message_id if editable else ''}"
    name = _name(user)
    return Update(
        inbox_id, f"telegram:{sender}", "button", now, title, choice, about=about, name=name
    )


def _command(text: str) -> str:
    """A member's text, with Telegram's command conventions read as the engine reads words."""
    text = clean_text(text)
    found = _COMMAND.match(text)
    if found is None:
        return text
    if found.group(1).lower() == "start":
        return START_TEXT  # "/start <payload>" too: a deep link starts the conversation
    return f"/{found.group(1)}{text[found.end() :]}"


def _object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        shown = "missing" if value is None else f"a JSON {type(value).__name__}"
        raise _Malformed("malformed", f"{what} is {shown}, not an object")
    return value


def _private(chat: Any, what: str) -> None:
    kind = chat.get("type") if isinstance(chat, Mapping) else None
    if kind != "private":
        raise _Skip(
            f"{what} in a {_shown(kind)} chat is not handled: statehq talks with members one to one"
        )


def _user_id(value: Any, what: str) -> str:
    if not _is_id(value, lowest=1):
        raise _Malformed("bad_sender", f"{what} {_shown(value)} is not a Telegram user id")
    return str(value)


def _date(value: Any, what: str, sender: str) -> int:
    if type(value) is int and 0 <= value <= MAX_TIMESTAMP:
        return value
    detail = f"{what}.date {_shown(value)} is not a number of seconds up to {MAX_TIMESTAMP}"
    raise _Malformed("bad_timestamp", detail, sender)


def _name(user: Mapping[str, Any]) -> str | None:
    parts = [user.get("first_name"), user.get("last_name")]
    name = " ".join(part for part in parts if isinstance(part, str) and part)
    return clean_text(name)[:200] or None


def _is_id(value: Any, *, lowest: int) -> bool:
    return type(value) is int and lowest <= value <= MAX_ID


def _shown(value: Any) -> str:
    """A value for a log line: short, and printable whatever it holds."""
    return clean_text(repr(value)[:80])
