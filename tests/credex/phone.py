"""A phone that chats with the credex bot through the real engine, for conversation tests."""

from __future__ import annotations

import itertools
from decimal import Decimal
from typing import Any

from statehq.credex.backend import Backend, Login
from statehq.credex.ledger import Ledger
from statehq.flows import Headquarters, Inbound, Message
from statehq.state import ChannelId

_ids = itertools.count(1)


class Phone:
    """One member's phone: ``say`` types, ``tap`` taps an option of the last menu shown."""

    def __init__(self, engine: Headquarters, number: str, channel: str = "whatsapp") -> None:
        self.engine = engine
        self.channel = ChannelId(channel, number)
        self.replies: list[Message] = []
        self.menus: list[Message] = []

    def send(self, inbound: Inbound) -> list[Message]:
        self.replies = self.engine.handle(inbound)
        menus = [m for m in self.replies if m.options]
        if menus:
            self.menus = menus
        return self.replies

    def say(self, text: str, message_id: str | None = None) -> str:
        """Type ``text``; returns everything the bot answered as one string."""
        self.send(Inbound(self.channel, message_id or f"wamid.{next(_ids)}", text))
        return self.text

    def tap(self, title: str, message_id: str | None = None) -> str:
        """Tap the option whose title starts with ``title`` in the latest menu."""
        return self.send(self.tap_inbound(title, message_id)) and self.text

    def tap_inbound(self, title: str, message_id: str | None = None) -> Inbound:
        """The inbound a tap on ``title`` sends (to send it again later, or twice)."""
        for menu in reversed(self.menus):
            for option in menu.options:
                if option.title.startswith(title):
                    mid = message_id or f"wamid.{next(_ids)}"
                    return Inbound(self.channel, mid, option.title, choice=option.id)
        raise AssertionError(f"no option {title!r} in {self.options}")

    @property
    def text(self) -> str:
        return "\n".join(m.body for m in self.replies)

    @property
    def options(self) -> list[str]:
        """Titles of the latest menu's options."""
        return [o.title for o in self.menus[-1].options] if self.menus else []

    def session(self) -> Any:
        return self.engine.manager.open(self.channel)


class Recorder:
    """A pass-through to a real backend that records which calls were made."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        target = getattr(self.backend, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(name)
            return target(*args, **kwargs)

        return call


def member(ledger: Ledger, phone: str, first: str, last: str, **deposits: str) -> Login:
    """A registered member with deposits (``USD="50"``) on their personal account."""
    login = ledger.onboard(phone, first, last, idempotency_key=f"seed-{phone}")
    for denomination, amount in deposits.items():
        ledger.deposit(login.accounts[0].id, Decimal(amount), denomination, "test deposit")
    return login
