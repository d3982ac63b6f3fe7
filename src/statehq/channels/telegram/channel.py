"""Telegram as a :class:`~statehq.channels.base.Channel`: the Bot API's webhook in, its
methods out.

In: the ``secret_token`` of every POST (``X-Telegram-Bot-Api-Secret-Token``, constant-time
compare), its JSON, and its one update parsed and validated
(:func:`~statehq.channels.telegram.parse_update`). Out: replies rendered as Bot API calls
and made by a :class:`~statehq.channels.telegram.BotApi`. Identities are
``telegram:<user id>``; a member who binds Telegram and WhatsApp to one member id has one
session, so a conversation goes on from either.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator, Mapping

from ...config import TelegramSettings
from ..base import Received, Refusal, Rejected
from .bot_api import BotApi
from .delivery import TelegramDelivery
from .updates import SECRET_HEADER, SecretError, check_secret, parse_update


class TelegramChannel:
    """The Telegram Bot API channel, configured by the ``TELEGRAM_*`` settings.

    ``clock`` says when a tap arrived (a callback query carries no date of its own).
    """

    type = "telegram"

    def __init__(
        self, settings: TelegramSettings, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.settings = settings
        self.clock = clock

    def verify(self, params: Mapping[str, str]) -> tuple[int, str]:
        """Telegram has no GET handshake: the webhook is set with ``setWebhook``."""
        return 405, (
            "Telegram sends updates by POST only; set this URL with the Bot API's setWebhook, "
            "giving TELEGRAM_SECRET_TOKEN as secret_token"
        )

    def receive(self, headers: Mapping[str, str], body: bytes) -> Received:
        """The update of a POST carrying our secret token; Refusal when it is not Telegram's
        (or not JSON)."""
        secret = self.settings.secret_token
        if not secret:
            raise Refusal(503, "TELEGRAM_SECRET_TOKEN is not set, so no update can be trusted")
        try:
            check_secret(headers.get(SECRET_HEADER.lower()), secret)
        except SecretError as refused:
            raise Refusal(refused.status, str(refused)) from None
        try:
            payload = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise Refusal(400, f"the body is not valid JSON: {exc}") from None
        except (ValueError, RecursionError) as exc:
            # JSON with our secret that Python will not hold (nested thousands deep, an
            # integer of thousands of digits): recorded and acknowledged, since
            # redelivering it forever would help nobody.
            unreadable = f"the body cannot be read: {type(exc).__name__}"
            return Received(rejected=(Rejected("unreadable", unreadable),))
        return parse_update(payload, int(self.clock()))

    @contextlib.contextmanager
    def delivery(self) -> Iterator[TelegramDelivery]:
        """Replies through the Bot API with ``TELEGRAM_BOT_TOKEN``."""
        s = self.settings
        delivery = TelegramDelivery(BotApi(s.api_url, s.bot_token or ""))
        try:
            yield delivery
        finally:
            delivery.close()

    def problems(self) -> list[str]:
        """The settings whose absence stops the webhook or the replies."""
        missing = []
        if not self.settings.secret_token:
            missing.append(
                "TELEGRAM_SECRET_TOKEN is not set: the webhook answers 503 to every POST "
                "(give the same value to setWebhook as secret_token)"
            )
        if not self.settings.bot_token:
            missing.append("TELEGRAM_BOT_TOKEN is not set: replies cannot be sent")
        return missing
