"""Keeping secrets out of everything a person or a machine might read.

Backend tokens live in the state (``jwt_token``) and nowhere else. Every other way out
of statehq - logs, audit entries, error messages, metrics labels, CLI output - passes
through these helpers, which replace a secret field's value and anything shaped like a
JWT or a bearer credential with ``[redacted]``.
"""

from __future__ import annotations

import logging
import re
from typing import Any

REDACTED = "[redacted]"
SECRET_FIELDS = frozenset({"jwt_token"})
"""Top-level state fields whose values are never shown."""

# A JWT is three base64url segments; its header always starts with '{"' = "eyJ".
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
_BEARER = re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/=-]+")
# A Telegram bot token (the bot's id, a colon, 30+ characters): part of every Bot API URL
# (``/bot<token>/``), else standing alone; never the tail of a word or of a stamped menu
# choice (``v12.123456:<option id>``).
_BOT_TOKEN = re.compile(r"(?:(?<=bot)|(?<![\w.:-]))\d{6,12}:[A-Za-z0-9_-]{30,}")


def looks_like_token(text: str) -> bool:
    """True when ``text`` contains something shaped like a JWT."""
    return _JWT.search(text) is not None


def redact_text(text: str) -> str:
    """``text`` with every JWT-shaped substring, bearer credential and Telegram bot token
    replaced."""
    if "eyJ" in text:
        text = _JWT.sub(REDACTED, text)
    if "earer" in text or "EARER" in text:
        text = _BEARER.sub(lambda m: m.group(1) + REDACTED, text)
    if ":" in text:
        text = _BOT_TOKEN.sub(REDACTED, text)
    return text


def redact_value(value: Any) -> Any:
    """A copy of a JSON value with secret fields and token-shaped strings replaced."""
    if isinstance(value, dict):
        return {
            key: (REDACTED if key in SECRET_FIELDS and item is not None else redact_value(item))
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [redact_value(item) for item in value]
    if isinstance(value, str):
        return redact_text(value)
    return value


MASK_KEEP_START = 3
MASK_KEEP_END = 2
MASK_SHORTEST_SHOWN = 8
"""An identifier keeps its first 3 and last 2 characters when it has at least 8; a shorter
one is masked whole (5 of 7 characters would all but name it)."""


def mask_identity(identity: str) -> str:
    """A channel identity as log lines show it: ``whatsapp:263771234567`` ->
    ``whatsapp:263*******67``.

    The channel type stays; of the identifier only the first 3 and last 2 characters do,
    enough to tell members apart in a log and to match a number an operator already
    has, not enough to contact anyone. Every log line that names a member passes it
    through here (the README's "Privacy" paragraph says so).
    """
    kind, colon, identifier = identity.partition(":")
    if not colon:  # a bare identifier
        kind, identifier = "", identity
    if len(identifier) < MASK_SHORTEST_SHOWN:
        return f"{kind}{colon}{'*' * len(identifier)}"
    hidden = "*" * (len(identifier) - MASK_KEEP_START - MASK_KEEP_END)
    return f"{kind}{colon}{identifier[:MASK_KEEP_START]}{hidden}{identifier[-MASK_KEEP_END:]}"


# A phone-number identity inside free text, such as an error message naming a session key.
_NUMBER_IDENTITY = re.compile(r"\b([a-z][a-z0-9_-]*:)(\d{7,})\b")


def mask_identities(text: str) -> str:
    """``text`` with every ``type:<7 or more digits>`` identity masked by :func:`mask_identity`."""
    if ":" not in text:
        return text
    return _NUMBER_IDENTITY.sub(lambda found: mask_identity(found.group()), text)


class RedactingFilter(logging.Filter):
    """A logging filter for the formatted message (and exception text) of a record: secrets
    redacted, and phone-number identities masked even where a message names one in passing
    (an error's text), as a net under the lines that mask them explicitly."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = mask_identities(redact_text(message))
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and record.exc_info[1] is not None:
            exc_text = logging.Formatter().formatException(record.exc_info)
            record.exc_text = mask_identities(redact_text(exc_text))
            record.exc_info = None
        return True


_FILTER = RedactingFilter()


def get_logger(name: str) -> logging.Logger:
    """``logging.getLogger(name)`` with the redacting filter attached.

    A logger's filters do not apply to records of its children, so every statehq module
    takes its logger from here rather than relying on a filter on the ``statehq`` parent.
    """
    logger = logging.getLogger(name)
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)
    return logger
