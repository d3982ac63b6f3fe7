"""Telegram's Bot API, as one self-contained channel adapter.

- :mod:`.updates`: the secret token check, and one update parsed and validated;
- :mod:`.media`: a photo, document, voice note, ... as the flows' ``Media``;
- :mod:`.render`: replies as ``sendMessage`` calls with inline keyboards, taps read back;
- :mod:`.bot_api`: the Bot API client (retries what provably never reached Telegram, and
  a 429 after the ``retry_after`` it asks for);
- :mod:`.problems`: what a Bot API error means, and the warning that says what to fix;
- :mod:`.delivery`: a worker's way out (a tap answered and its keyboard removed first);
- :mod:`.channel`: :class:`TelegramChannel`, what the registry knows it by.
"""

from .bot_api import DEFAULT_API_URL, BotApi, CallResult
from .channel import TelegramChannel
from .delivery import TelegramDelivery
from .render import render
from .updates import SECRET_HEADER, SecretError, callback_of, check_secret, parse_update

__all__ = [
    "DEFAULT_API_URL",
    "SECRET_HEADER",
    "BotApi",
    "CallResult",
    "SecretError",
    "TelegramChannel",
    "TelegramDelivery",
    "callback_of",
    "check_secret",
    "parse_update",
    "render",
]
