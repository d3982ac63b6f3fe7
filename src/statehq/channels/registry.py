"""Where channels are registered: adding one is a module and one :func:`register_channel`.

Each registered channel gets a webhook at ``/webhooks/<type>`` and, in every worker, its
own :class:`~statehq.channels.base.Delivery`. WhatsApp is registered by default.
"""

from __future__ import annotations

from collections.abc import Callable

from ..config import Settings
from ..state import register_channel_type
from .base import Channel

ChannelFactory = Callable[[Settings], Channel]

_FACTORIES: dict[str, ChannelFactory] = {}


def register_channel(type_: str, factory: ChannelFactory) -> None:
    """Register a channel (its identities' type, and how to make it from the settings)."""
    register_channel_type(type_)
    _FACTORIES[type_] = factory


def unregister_channel(type_: str) -> None:
    """Forget a registered channel (tests register throwaway ones)."""
    _FACTORIES.pop(type_, None)


def channels(settings: Settings) -> list[Channel]:
    """One of each registered channel, configured by ``settings``."""
    return [factory(settings) for factory in _FACTORIES.values()]


def _whatsapp(settings: Settings) -> Channel:
    from .whatsapp import WhatsAppChannel

    return WhatsAppChannel(settings)


register_channel("whatsapp", _whatsapp)
