"""Which statehq session an aiogram :class:`~aiogram.fsm.storage.base.StorageKey` names.

aiogram keys FSM records by bot, chat, user, forum topic, business connection and
"destiny"; statehq keys a session by a channel identity. The mapping keeps the common
case readable and the same as statehq's own Telegram identity - a private chat is the
user, ``telegram:<user_id>`` - and spells out everything else, so no two aiogram keys
share a session unless aiogram's own default key builder would make them share one::

    private chat (chat_id == user_id)      telegram:42
    a user in a group or channel chat      telegram:42@-1001234567890
    ... in a forum topic                   telegram:42@-1001234567890:thread=7
    ... through a business connection      telegram:42:business=AbC123
    ... another destiny than "default"     telegram:42:destiny=poll
    with_bot_id=True (one bot's records)   telegram:42:bot=123456

Like aiogram's ``DefaultKeyBuilder``, the bot id is left out unless asked for, so bots
sharing a store share a user's state; ask for it when they must not.

aiogram takes any text as a destiny (and Telegram names business connections), so each
part is written with the characters that would change its meaning percent-encoded:
the separators (``:``, ``@``, ``=``), ``%`` itself, and what an identity cannot hold
(spaces, braces, control characters). A destiny ``"my poll"`` is ``destiny=my%20poll``,
and a business id ``"A:destiny=poll"`` cannot reach the session of business ``A`` with
destiny ``poll``: no two keys share a session by spelling each other's separators.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ...errors import InvalidInput
from ...state import ChannelId, register_channel_type

if TYPE_CHECKING:
    from aiogram.fsm.storage.base import StorageKey

CHANNEL_TYPE = "telegram"
register_channel_type(CHANNEL_TYPE)
_ESCAPED = re.compile(r"[%:@={}\s\x00-\x1f\x7f\ud800-\udfff]")
"""What a part of an identity may not hold as it is: our separators, ``%`` (the escape),
and what a channel identifier refuses (whitespace, braces, controls; lone surrogates,
which no UTF-8 can store)."""


@dataclass(frozen=True)
class KeyMapper:
    """Turns aiogram storage keys into statehq channel identities (see the module doc)."""

    with_bot_id: bool = False

    def channel(self, key: StorageKey) -> ChannelId:
        """The channel identity of the session ``key`` names."""
        identifier = _part(key.user_id)
        if key.chat_id != key.user_id:
            identifier += f"@{_part(key.chat_id)}"
        extras = (
            ("thread", key.thread_id),
            ("business", key.business_connection_id),
            ("destiny", None if key.destiny == "default" else key.destiny),
            ("bot", key.bot_id if self.with_bot_id else None),
        )
        identifier += "".join(
            f":{name}={_part(value)}" for name, value in extras if value is not None
        )
        try:
            return ChannelId(CHANNEL_TYPE, identifier)
        except InvalidInput as refused:  # escaped, only the length can be wrong now
            raise InvalidInput(
                f"the aiogram key {key} cannot be a statehq session: {refused}"
            ) from None


def _part(value: object) -> str:
    """``value`` as one part of an identity: reserved characters percent-encoded (UTF-8)."""
    return _ESCAPED.sub(_percent, str(value))


def _percent(found: re.Match[str]) -> str:
    return "".join(f"%{byte:02X}" for byte in found.group().encode("utf-8", "surrogatepass"))
