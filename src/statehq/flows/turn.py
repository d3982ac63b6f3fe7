"""One turn of a conversation: the inbound message, its session and the bot's services."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from ..state import MemberSession
from .inbound import Inbound

if TYPE_CHECKING:
    from .engine import Bot, Headquarters

T = TypeVar("T")


class Turn:
    """What a step sees while handling one message.

    Steps read through the session's accessors and change state only through the engine
    (their outcomes) or the session's validated writes; nothing is kept on the turn
    between messages.
    """

    def __init__(self, engine: Headquarters, session: MemberSession, inbound: Inbound) -> None:
        self.engine = engine
        self.session = session
        self.inbound = inbound

    @property
    def bot(self) -> Bot:
        """The bot this engine runs (its backend and home menu)."""
        return self.engine.bot

    @property
    def data(self) -> dict[str, Any]:
        """A copy of the active flow's data (empty outside a flow)."""
        flow = self.session.get_flow()
        return dict(flow.get("data") or {}) if flow else {}

    def page(self, step: str) -> int:
        """The page a paginated :class:`~statehq.flows.components.Display` step is on."""
        pages = self.data.get("page")
        value = pages.get(step, 0) if isinstance(pages, dict) else 0
        return value if isinstance(value, int) else 0

    def idempotency_key(self, action: str) -> str:
        """A key for a backend call that is the same every time this message is processed.

        It is derived from the channel, the inbound message id and the action, so a
        redelivered message (or one a dead worker had half processed) repeats the call
        with the same key and the backend answers it with the first result.
        """
        seed = f"{self.inbound.channel.key}|{self.inbound.message_id}|{action}"
        return hashlib.sha256(seed.encode()).hexdigest()[:40]

    def token(self) -> str:
        """The member's backend token: the stored one while valid, else a fresh login."""
        token = self.session.get_jwt()
        return token if token is not None else self.bot.relogin(self)

    def call(self, request: Callable[[str], T]) -> T:
        """Run a backend ``request(token)`` with the member's JWT.

        When the backend rejects the token (it expired, or the backend restarted with a
        new key), log in again once and repeat the request: the member keeps their place.
        """
        try:
            return request(self.token())
        except self.bot.token_rejected:
            return request(self.bot.relogin(self))
