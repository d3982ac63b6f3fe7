"""A stand-in for Telegram's Bot API server, speaking its protocol over real HTTP.

Telegram cannot be called from a test, so this is the one fake of the Telegram tests:
point ``TELEGRAM_API_URL`` (or :class:`~statehq.channels.telegram.BotApi`) at
:attr:`FakeTelegram.url` and calls come to ``POST {url}/bot<token>/<method>`` with JSON:

    with FakeTelegram(TOKEN) as telegram:
        telegram.fail_next(1, error_code=429, retry_after=1)   # the next call is throttled
        ...                                                    # run the service
        telegram.wait_for(2, method="sendMessage")
        assert telegram.sent_to(42)[0]["text"] == "Hello"

Answers have the Bot API's shapes: ``{"ok": true, "result": ...}`` (a ``Message`` for
``sendMessage`` and ``editMessageReplyMarkup``, ``true`` for ``answerCallbackQuery``,
the bot for ``getMe``, the webhook for ``getWebhookInfo``), or ``{"ok": false,
"error_code", "description"}`` as Telegram words them: 401 ``Unauthorized`` for another
token, 404 ``Not Found`` for a method it does not know, 400 for a missing parameter, a
``callback_data`` over 64 bytes, a message to edit it never sent, a keyboard that is
already the one shown, or a callback query answered twice; 403 ``Forbidden: bot was
blocked by the user`` for a chat in :attr:`FakeTelegram.blocked`; and a failure queued
with :meth:`FakeTelegram.fail_next` (a 429 with ``parameters.retry_after``).
"""

from __future__ import annotations

import itertools
import json
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .asgi import BackgroundServer, Receive, Scope, Send, listen, read_body, respond

BOT_ID = 7000000001
NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup "
    "are exactly the same as a current content and reply markup of the message"
)


@dataclass(frozen=True)
class Call:
    """One call to the Bot API and the answer the fake gave it."""

    method: str
    params: dict[str, Any]
    status: int
    answer: dict[str, Any]
    at: float

    @property
    def ok(self) -> bool:
        """Whether the fake accepted it."""
        return self.status == 200


@dataclass
class _Failure:
    error_code: int
    description: str
    retry_after: int | None
    method: str | None


class FakeTelegram(BackgroundServer):
    """The Bot API of one bot (``token``) on a local port; see the module docstring.

    The port is bound when the object is made, so :attr:`url` is known before
    :meth:`start`. Started once, stopped once; the accessors are safe from any thread.
    """

    title = "the fake Bot API"

    def __init__(self, token: str, host: str = "127.0.0.1", port: int = 0) -> None:
        self.token = token
        self.username = "statehq_test_bot"
        self.blocked: set[int] = set()
        self.webhook: dict[str, Any] = {"url": "", "pending_update_count": 0}
        self._sock = listen(host, port, socket.AF_INET)
        self.url = f"http://{host}:{self._sock.getsockname()[1]}"
        self._changed = threading.Condition()
        self._calls: list[Call] = []
        self._failures: deque[_Failure] = deque()
        self._messages: dict[tuple[int, int], dict[str, Any]] = {}
        self._answered: set[str] = set()
        self._ids = itertools.count(1)

    # -- lifecycle ------------------------------------------------------------------------

    # -- programming and inspecting -------------------------------------------------------

    def fail_next(
        self,
        times: int,
        *,
        error_code: int,
        description: str = "",
        retry_after: int | None = None,
        method: str | None = None,
    ) -> None:
        """Answer the next ``times`` calls (of ``method`` only, if given) with an error."""
        if not description:
            waits = f"Too Many Requests: retry after {retry_after}"
            description = waits if error_code == 429 else f"Error {error_code}"
        with self._changed:
            self._failures.extend(
                _Failure(error_code, description, retry_after, method) for _ in range(times)
            )

    def calls(self, method: str | None = None) -> list[Call]:
        """Every call so far (of ``method``), failed ones included, in arrival order."""
        with self._changed:
            return [c for c in self._calls if method is None or c.method == method]

    def sent_to(self, chat_id: int) -> list[dict[str, Any]]:
        """The ``sendMessage`` parameters accepted for ``chat_id``: what the member saw."""
        return [
            c.params
            for c in self.calls("sendMessage")
            if c.ok and c.params.get("chat_id") == chat_id
        ]

    def message(self, chat_id: int, message_id: int) -> dict[str, Any]:
        """A message the bot sent, as Telegram holds it now (a keyboard removed is gone)."""
        with self._changed:
            copied: dict[str, Any] = json.loads(json.dumps(self._messages[(chat_id, message_id)]))
        return copied

    def last_message(self, chat_id: int) -> dict[str, Any]:
        """The newest message the bot sent to ``chat_id``, as Telegram holds it now."""
        with self._changed:
            newest = max(n for chat, n in self._messages if chat == chat_id)
        return self.message(chat_id, newest)

    def wait_for(
        self, count: int, *, method: str | None = None, timeout: float = 10.0
    ) -> list[Call]:
        """Block until ``count`` calls (of ``method``) have arrived; AssertionError after
        ``timeout`` seconds, naming what did arrive."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = [c for c in self._calls if method is None or c.method == method]
                if len(found) >= count:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = [f"{c.status} {c.method}" for c in self._calls[-5:]]
                    raise AssertionError(f"expected {count} {method or 'calls'}, got {seen}")
                self._changed.wait(left)

    def reset(self) -> None:
        """Forget every call, message and queued failure."""
        with self._changed:
            self._calls.clear()
            self._failures.clear()
            self._messages.clear()
            self._answered.clear()
            self.blocked.clear()

    # -- the ASGI app ---------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one request (uvicorn calls this)."""
        if scope["type"] != "http":
            return
        raw = await read_body(receive)
        token, _, method = scope["path"].removeprefix("/bot").partition("/")
        try:
            params = json.loads(raw) if raw else {}
        except ValueError:
            params = None
        if not isinstance(params, dict):
            params = {}
            status, answer = _error(400, "Bad Request: the body is not a JSON object")
        elif scope["method"] != "POST" or not scope["path"].startswith("/bot"):
            status, answer = _error(404, "Not Found")
        else:
            status, answer = self._answer(token, method, params)
        with self._changed:
            self._calls.append(Call(method, params, status, answer, time.monotonic()))
            self._changed.notify_all()
        await respond(send, status, answer)

    def _answer(
        self, token: str, method: str, params: dict[str, Any]
    ) -> tuple[int, dict[str, Any]]:
        if token != self.token:
            return _error(401, "Unauthorized")
        handler: Callable[[dict[str, Any]], tuple[int, dict[str, Any]]] | None = {
            "getMe": self._get_me,
            "getWebhookInfo": lambda _p: _ok(dict(self.webhook)),
            "setWebhook": self._set_webhook,
            "sendMessage": self._send_message,
            "answerCallbackQuery": self._answer_callback,
            "editMessageReplyMarkup": self._edit_markup,
        }.get(method)
        if handler is None:
            return _error(404, "Not Found")
        failure = self._take_failure(method)
        if failure is not None:
            extra = (
                {"parameters": {"retry_after": failure.retry_after}}
                if failure.retry_after is not None
                else {}
            )
            return _error(failure.error_code, failure.description, **extra)
        return handler(params)

    def _get_me(self, _params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        bot = {
            "id": BOT_ID,
            "is_bot": True,
            "first_name": "statehq test",
            "username": self.username,
        }
        return _ok(bot)

    def _set_webhook(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        self.webhook = {"url": str(params.get("url", "")), "pending_update_count": 0}
        return _ok(True)

    def _send_message(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        chat_id, text = params.get("chat_id"), params.get("text")
        if type(chat_id) is not int:
            return _error(400, "Bad Request: chat_id is empty")
        if not isinstance(text, str) or not text.strip():
            return _error(400, "Bad Request: message text is empty")
        if len(text) > 4096:
            return _error(400, "Bad Request: message is too long")
        bad = _bad_markup(params.get("reply_markup")) or _bad_entities(text, params)
        if bad:
            return _error(400, bad)
        if chat_id in self.blocked:
            return _error(403, "Forbidden: bot was blocked by the user")
        message_id = next(self._ids)
        message: dict[str, Any] = {
            "message_id": message_id,
            "from": {"id": BOT_ID, "is_bot": True, "first_name": "statehq test"},
            "chat": {"id": chat_id, "type": "private"},
            "date": int(time.time()),
            "text": text,
        }
        if params.get("reply_markup"):
            message["reply_markup"] = params["reply_markup"]
        with self._changed:
            self._messages[(chat_id, message_id)] = message
        return _ok(message)

    def _answer_callback(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        query = params.get("callback_query_id")
        with self._changed:
            if not isinstance(query, str) or not query or query in self._answered:
                return _error(
                    400,
                    "Bad Request: query is too old and response timeout expired or query ID "
                    "is invalid",
                )
            self._answered.add(query)
        return _ok(True)

    def _edit_markup(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        chat_id, message_id = params.get("chat_id"), params.get("message_id")
        markup = params.get("reply_markup") or {}
        # Telegram's 400 for a keyboard it cannot parse, never a crash here: a 500 would
        # be retried, hiding the bug of whoever sent it.
        bad = _bad_markup(params.get("reply_markup"))
        if bad:
            return _error(400, bad)
        with self._changed:
            message = None
            if isinstance(chat_id, int) and isinstance(message_id, int):
                message = self._messages.get((chat_id, message_id))
            if message is None:
                return _error(400, "Bad Request: message to edit not found")
            current = message.get("reply_markup") or {"inline_keyboard": []}
            if current == (markup or {"inline_keyboard": []}):
                return _error(400, NOT_MODIFIED)
            if markup.get("inline_keyboard"):
                message["reply_markup"] = markup
            else:
                message.pop("reply_markup", None)
            return _ok(dict(message))

    def _take_failure(self, method: str) -> _Failure | None:
        with self._changed:
            for failure in self._failures:
                if failure.method is None or failure.method == method:
                    self._failures.remove(failure)
                    return failure
        return None


def _bad_markup(markup: Any) -> str | None:
    """Why Telegram would refuse this inline keyboard, or None."""
    if markup is None:
        return None
    rows = markup.get("inline_keyboard") if isinstance(markup, dict) else None
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        return "Bad Request: can't parse inline keyboard button: InlineKeyboardMarkup expected"
    for button in (b for row in rows for b in row):
        if not isinstance(button, dict) or not isinstance(button.get("text"), str):
            return "Bad Request: can't parse inline keyboard button: Text buttons are unallowed"
        data = button.get("callback_data")
        if not isinstance(data, str) or not 1 <= len(data.encode()) <= 64:
            return "Bad Request: BUTTON_DATA_INVALID"
    return None


def _bad_entities(text: str, params: dict[str, Any]) -> str | None:
    """Why Telegram would refuse these entities (each must lie within the text, counted in
    UTF-16 code units), or None."""
    entities = params.get("entities", [])
    size = len(text.encode("utf-16-le")) // 2
    for entity in entities if isinstance(entities, list) else [None]:
        offset = entity.get("offset") if isinstance(entity, dict) else None
        length = entity.get("length") if isinstance(entity, dict) else None
        if not (type(offset) is int and type(length) is int and length > 0):
            return "Bad Request: can't parse entities: MessageEntity expected"
        if offset < 0 or offset + length > size:
            return "Bad Request: entity beginning/end is out of the text"
    return None


def _ok(result: Any) -> tuple[int, dict[str, Any]]:
    return 200, {"ok": True, "result": result}


def _error(code: int, description: str, **extra: Any) -> tuple[int, dict[str, Any]]:
    return code, {"ok": False, "error_code": code, "description": description, **extra}
