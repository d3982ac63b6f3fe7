"""A bot with no login: a menu of its flows, for teams whose backend needs no member token.

    class Booking(SimpleBot):
        greeting = "Welcome to the salon. What would you like to do?"
        flows = (BOOK, MY_BOOKINGS)

Home moves a new conversation INIT → AUTH → MENU (nothing to log in to) and shows the
greeting with one option per flow: buttons for up to three flows, else a list. Override
:meth:`SimpleBot.menu` for another home screen and :meth:`SimpleBot.explain` to turn
your backend's errors into messages a member can act on.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import StateError
from ..state.model import STAGE_AUTH, STAGE_INIT, STAGE_MENU
from .components import Flow
from .messages import MAX_BUTTONS, Buttons, Message, Option, OptionList
from .turn import Turn


class NoLogin(StateError):
    """A bot without a login was asked to log a member in."""


class SimpleBot:
    """The engine's :class:`~statehq.flows.Bot` hooks, for a bot whose home is its menu."""

    flows: Sequence[Flow] = ()
    token_rejected: tuple[type[Exception], ...] = ()
    greeting = "Hello! What would you like to do?"
    menu_button = "Choose"

    def home(self, turn: Turn) -> list[Message]:
        """Enter the menu stage (first time: INIT → AUTH → MENU) and show the menu."""
        session = turn.session
        if session.get_stage() == STAGE_INIT:
            session.transition(STAGE_AUTH, reason="this bot needs no login")
        if session.get_stage() != STAGE_MENU:
            session.transition(STAGE_MENU, reason="home")
        return [self.menu(turn)]

    def menu(self, turn: Turn) -> Message:
        """The greeting and one option per flow."""
        options = tuple(Option(flow.id, flow.title) for flow in self.flows)
        if len(options) <= MAX_BUTTONS:
            return Buttons(self.greeting, options)
        return OptionList(self.greeting, options, button=self.menu_button)

    def choose(self, turn: Turn, option: str) -> str | list[Message] | None:
        """A menu pick starts the flow of that id."""
        return option if option in {flow.id for flow in self.flows} else None

    def relogin(self, turn: Turn) -> str:
        """There is no login: a bot that needs one implements this itself."""
        raise NoLogin(f"{type(self).__name__} has no login (token_rejected is empty)")

    def explain(self, error: Exception) -> str | None:
        """No bot-specific errors by default: the engine's own apology is used."""
        return None
