"""Telegram as a worker's way out: replies rendered as Bot API calls, and made.

A tap is answered before anything else: ``answerCallbackQuery`` (Telegram shows the
member a spinner until it comes), then ``editMessageReplyMarkup`` takes the keyboard off
the tapped message, then the replies. That is how a menu leaves the chat: **a keyboard
is removed when it is tapped**, whether the tap was applied or found stale (the engine
then answers "That menu has expired" with the current menu). Every turn that draws a
menu stamps it with the session's version, so only the newest keyboard is ever live;
an older one the member never tapped stays on screen until they do, and that tap
removes it. Nothing about sent messages is kept anywhere for this: the tap itself
names the message.
"""

from __future__ import annotations

from typing import Any

from ...flows import Message
from ...state import ChannelId
from ...store.inbox import Update, entry
from .bot_api import BotApi, CallResult
from .problems import report_failure
from .render import render
from .updates import callback_of

NOT_MODIFIED = "message is not modified"
"""Telegram's answer to removing a keyboard that is already gone: the goal is met."""


class TelegramDelivery:
    """Renders replies as Bot API calls (a tap's answer first) and makes them."""

    def __init__(self, api: BotApi) -> None:
        self.api = api

    def render(self, update: Update, replies: list[Message]) -> list[str]:
        """Outbox entries answering ``update``: a tap's answer and keyboard removal, then
        each reply. Each entry's id is ``<update id>#<n>``, so a resend is recognised."""
        to = ChannelId.parse(update.channel).identifier
        chat_id = int(to)
        bodies: list[dict[str, Any]] = []
        tap = callback_of(update)
        if tap is not None:
            bodies.append({"method": "answerCallbackQuery", "callback_query_id": tap.query_id})
            if tap.message_id is not None:
                bodies.append(
                    {
                        "method": "editMessageReplyMarkup",
                        "chat_id": chat_id,
                        "message_id": tap.message_id,
                        "reply_markup": {"inline_keyboard": []},
                    }
                )
        bodies += [render(message, chat_id) for message in replies]
        return [entry(f"{update.id}#{n}", to, body) for n, body in enumerate(bodies)]

    def deliver(self, body: dict[str, Any]) -> CallResult:
        """Make one call; a failure is logged as a warning saying what to fix (throttled)."""
        params = dict(body)
        method = str(params.pop("method", "sendMessage"))
        result = self.api.call(method, params)
        if (
            not result.ok
            and method == "editMessageReplyMarkup"
            and NOT_MODIFIED in result.description
        ):
            return CallResult(True, method, None, result.status, attempts=result.attempts)
        if not result.ok:
            report_failure(result, self.api.base_url)
        return result

    def close(self) -> None:
        """Close the HTTP client."""
        self.api.close()
