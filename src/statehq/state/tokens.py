"""Reading a backend JWT's expiry, and the hook that refreshes a token.

statehq does not verify tokens (the backend that issued one does); it only reads the
``exp`` claim so that a token about to expire is refreshed before use and an expired
one is never sent.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime
from typing import Protocol


class TokenRefresher(Protocol):
    """Asks the backend for a fresh token for a member (the bot's backend client)."""

    def __call__(self, member_id: str, token: str) -> str:
        """A new token, or raise if the backend refuses."""
        ...


def token_expiry(token: str) -> datetime | None:
    """The ``exp`` claim of a JWT as a UTC time, or None when it cannot be read."""
    parts = token.split(".") if isinstance(token, str) else []
    if len(parts) != 3:
        return None
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload))
    except (binascii.Error, ValueError):
        return None
    exp = claims.get("exp") if isinstance(claims, dict) else None
    if not isinstance(exp, int | float) or isinstance(exp, bool):
        return None
    try:
        return datetime.fromtimestamp(exp, UTC)
    except (OverflowError, OSError, ValueError):
        return None
