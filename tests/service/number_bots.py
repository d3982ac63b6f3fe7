"""Two tiny bots for the several-numbers and template tests: each says who it is.

``salon_bot`` answers every message with its greeting, which carries a template for a
closed 24-hour window; ``plain_bot`` answers with a greeting that carries none.
"""

from __future__ import annotations

from statehq import BotSettings
from statehq.flows import Message, SimpleBot, Template, Text, Turn

SALON_GREETING = "Welcome to the salon."
PLAIN_GREETING = "Welcome to the plain bot."
REMINDER = Template("salon_reminder", "en_US", ("your booking",))


class Salon(SimpleBot):
    """Home is one text; once the window has closed, the reminder template instead."""

    def menu(self, turn: Turn) -> Message:
        """The greeting, with its template for a closed window."""
        return Text(SALON_GREETING, template=REMINDER)


class Plain(SimpleBot):
    """Home is one text, without a template."""

    def menu(self, turn: Turn) -> Message:
        """The greeting."""
        return Text(PLAIN_GREETING)


def salon_bot(settings: BotSettings) -> Salon:
    """The salon bot (``number_bots:salon_bot``)."""
    return Salon()


def plain_bot(settings: BotSettings) -> Plain:
    """The plain bot (``number_bots:plain_bot``)."""
    return Plain()
