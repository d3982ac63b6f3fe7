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
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ...state import ChannelId, register_channel_type

if TYPE_CHECKING:
    from aiogram.fsm.storage.base import StorageKey

CHANNEL_TYPE = "telegram"
register_channel_type(CHANNEL_TYPE)


@dataclass(frozen=True)
class KeyMapper:
    """Turns aiogram storage keys into statehq channel identities (see the module doc)."""

    with_bot_id: bool = False

    def channel(self, key: StorageKey) -> ChannelId:
        """The channel identity of the session ``key`` names."""
        identifier = str(key.user_id)
        if key.chat_id != key.user_id:
            identifier += f"@{key.chat_id}"
        extras = (
            ("thread", key.thread_id),
            ("business", key.business_connection_id),
            ("destiny", None if key.destiny == "default" else key.destiny),
            ("bot", key.bot_id if self.with_bot_id else None),
        )
        identifier += "".join(f":{name}={value}" for name, value in extras if value is not None)
        return ChannelId(CHANNEL_TYPE, identifier)
