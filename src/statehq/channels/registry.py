"""Where channels are registered: adding one is a module and one :func:`register_channel`.

Each registered channel gets a webhook at ``/webhooks/<type>`` and, in every worker, its
own :class:`~statehq.channels.base.Delivery`. WhatsApp and the web chat are registered by
default; Telegram too, and it is on when ``TELEGRAM_BOT_TOKEN`` is set (a factory that
answers None leaves its channel off, while its identities' type stays known, so a
member's session naming it is still valid).
"""

from __future__ import annotations

from collections.abc import Callable

from ..config import Settings
from ..errors import ConfigError
from ..importing import factory_at
from ..state import register_channel_type
from .base import Channel

ChannelFactory = Callable[[Settings], Channel | None]
"""Makes a channel from the settings; None when the settings leave it off."""

_FACTORIES: dict[str, ChannelFactory] = {}


def register_channel(type_: str, factory: ChannelFactory) -> None:
    """Register a channel (its identities' type, and how to make it from the settings)."""
    register_channel_type(type_)
    _FACTORIES[type_] = factory


def unregister_channel(type_: str) -> None:
    """Forget a registered channel (tests register throwaway ones)."""
    _FACTORIES.pop(type_, None)


def channels(settings: Settings) -> list[Channel]:
    """One of each registered channel, and of each ``STATEHQ_CHANNELS`` names.

    The variable reaches worker processes too, so a channel named there works in every
    process of ``statehq serve`` (one registered in code only where that code ran).
    """
    made = {kind: channel for kind, factory in _FACTORIES.items() if (channel := factory(settings))}
    for path in filter(None, settings.channels.split(",")):
        channel = factory_at(path, "STATEHQ_CHANNELS", "a channel")(settings)
        kind = getattr(channel, "type", None)
        if not isinstance(kind, str) or not all(
            hasattr(channel, hook) for hook in ("verify", "receive", "delivery", "problems")
        ):
            raise ConfigError(
                f"STATEHQ_CHANNELS: {path} made a {type(channel).__name__}, which is not a "
                f"channel (see statehq.channels.base.Channel)"
            )
        register_channel_type(kind)
        made[kind] = channel
    return list(made.values())


def _whatsapp(settings: Settings) -> Channel:
    from .whatsapp import WhatsAppChannel

    return WhatsAppChannel(settings.whatsapp)


def _web(settings: Settings) -> Channel:
    from .web import WebChannel

    return WebChannel(settings)


def _telegram(settings: Settings) -> Channel | None:
    if not settings.telegram_bot_token:
        return None
    from .telegram import TelegramChannel

    return TelegramChannel(settings.telegram)


register_channel("whatsapp", _whatsapp)
register_channel("web", _web)
register_channel("telegram", _telegram)
