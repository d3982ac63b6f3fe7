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


def looks_like_token(text: str) -> bool:
    """True when ``text`` contains something shaped like a JWT."""
    return _JWT.search(text) is not None


def redact_text(text: str) -> str:
    """``text`` with every JWT-shaped substring and bearer credential replaced."""
    if "eyJ" in text:
        text = _JWT.sub(REDACTED, text)
    if "earer" in text or "EARER" in text:
        text = _BEARER.sub(lambda m: m.group(1) + REDACTED, text)
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


class RedactingFilter(logging.Filter):
    """A logging filter that redacts the formatted message (and exception text) of a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact_text(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and record.exc_info[1] is not None:
            exc_text = logging.Formatter().formatException(record.exc_info)
            record.exc_text = redact_text(exc_text)
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
