"""Channel identities and session keys.

A message arrives through a channel (``whatsapp:263771234567``, ``web:3f2c...``). Until
the backend names the member, the session is keyed by that channel identity; afterwards
by ``member:<member id>``. Both are plain store keys; this module is the one place that
builds and parses them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import InvalidInput

MEMBER_PREFIX = "member"
CHANNEL_TYPES: set[str] = {"whatsapp", "web", "terminal", "telegram"}
"""Channel types the validator accepts; add yours with :func:`register_channel_type`."""

VIA = "@"
"""Separates a member's address from the channel account it writes to (see ChannelId.via)."""
_TYPE = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
_IDENTIFIER = re.compile(r"^[^\s{}\x00-\x1f\x7f]{1,128}$")


def register_channel_type(name: str) -> None:
    """Allow a new channel type (lowercase letters, digits, ``_``/``-``, up to 32)."""
    if not isinstance(name, str) or not _TYPE.match(name) or name == MEMBER_PREFIX:
        raise InvalidInput(
            f"channel type must be 1-32 lowercase letters, digits, '_' or '-' (and not "
            f"{MEMBER_PREFIX!r}), got {name!r}"
        )
    CHANNEL_TYPES.add(name)


@dataclass(frozen=True)
class ChannelId:
    """Where a conversation happens: a channel type and that channel's identifier."""

    type: str
    identifier: str

    def __post_init__(self) -> None:
        if self.type not in CHANNEL_TYPES:
            known = ", ".join(sorted(CHANNEL_TYPES))
            raise InvalidInput(f"unknown channel type {self.type!r}; registered: {known}")
        if not isinstance(self.identifier, str) or not _IDENTIFIER.match(self.identifier):
            raise InvalidInput(
                f"channel identifier must be 1-128 characters without spaces, braces or "
                f"control characters, got {self.identifier!r:.60}"
            )

    @classmethod
    def parse(cls, text: str) -> ChannelId:
        """``"whatsapp:263771234567"`` -> ``ChannelId("whatsapp", "263771234567")``."""
        if not isinstance(text, str) or ":" not in text:
            raise InvalidInput(
                f"a channel identity looks like 'whatsapp:263771234567', got {text!r}"
            )
        kind, _, identifier = text.partition(":")
        return cls(kind, identifier)

    @property
    def key(self) -> str:
        """The session key of a conversation not yet bound to a member."""
        return f"{self.type}:{self.identifier}"

    @property
    def address(self) -> str:
        """Who the member is on the channel: the identifier up to an ``@<via>`` suffix.

        A channel that reaches members through several accounts of its own (WhatsApp's
        business numbers) names the one a conversation goes through after an ``@``
        (``whatsapp:263771234567@106540352242923``), so that each is a conversation of its
        own; replies go to the address.
        """
        return self.identifier.partition(VIA)[0] or self.identifier

    @property
    def via(self) -> str | None:
        """The channel's own account the conversation goes through (None: its default)."""
        address, sep, via = self.identifier.partition(VIA)
        return via if sep and address and via else None

    def as_dict(self) -> dict[str, str]:
        """The ``channel`` field of the state document."""
        return {"type": self.type, "identifier": self.identifier}

    def __str__(self) -> str:
        return self.key


def member_key(member_id: str) -> str:
    """The session key of a member the backend knows."""
    if not isinstance(member_id, str) or not member_id or member_id != member_id.strip():
        raise InvalidInput(f"member id must be a non-empty string, got {member_id!r}")
    return f"{MEMBER_PREFIX}:{member_id}"


def member_of_key(session_key: str) -> str | None:
    """The member id inside a member session key, or None for a channel key."""
    kind, _, rest = session_key.partition(":")
    return rest if kind == MEMBER_PREFIX and rest else None


def session_key_for(name: str) -> str:
    """A session key from what an operator types: a channel identity, ``member:<id>``,
    or a bare member id."""
    kind, sep, rest = name.partition(":")
    if sep and (kind == MEMBER_PREFIX or kind in CHANNEL_TYPES) and rest:
        return name
    return member_key(name)


def parse_who(who: ChannelId | str) -> tuple[ChannelId | None, str]:
    """The channel (None for a member's key) and session key of what a caller named."""
    if isinstance(who, ChannelId):
        return who, who.key
    key = session_key_for(who)
    if member_of_key(key) is not None:
        return None, key
    channel = ChannelId.parse(key)
    return channel, channel.key
