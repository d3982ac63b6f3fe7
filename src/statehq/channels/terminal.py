"""The terminal channel: chat with a bot from a shell, options shown as numbered lines.

``statehq chat --as 263771234567`` runs :class:`TerminalChat` on stdin/stdout. It is a
channel like any other (``terminal:<phone>``): every line becomes an
:class:`~statehq.flows.Inbound` that goes through the same engine, state manager and
store as a WhatsApp message. Typing an option's number sends the option's id, exactly
as tapping it on WhatsApp would (so a number from an old menu is a stale tap).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import TextIO

from ..flows import Buttons, Headquarters, Inbound, Message, Option, OptionList
from ..state import ChannelId

BOT, YOU = "bot> ", "you> "


def render(messages: Sequence[Message]) -> tuple[str, list[Option]]:
    """The replies as terminal text, and the options the numbers refer to (the last menu's)."""
    blocks: list[str] = []
    options: list[Option] = []
    for message in messages:
        lines = [message.body]
        if isinstance(message, Buttons | OptionList):
            options = list(message.options)
            label = f"[{message.button}]" if isinstance(message, OptionList) else ""
            if label:
                lines.append(label)
            for number, option in enumerate(options, 1):
                described = f" - {option.description}" if option.description else ""
                lines.append(f"  {number}. {option.title}{described}")
        blocks.append("\n".join(lines))
    text = "\n\n".join(blocks)
    indented = "\n".join(
        ("" if i == 0 else " " * len(BOT)) + line for i, line in enumerate(text.splitlines())
    )
    return BOT + indented, options


class TerminalChat:
    """A conversation between one terminal identity and the engine."""

    def __init__(self, engine: Headquarters, phone: str) -> None:
        self.engine = engine
        self.channel = ChannelId("terminal", phone)
        self._options: list[Option] = []

    def inbound(self, line: str) -> Inbound:
        """The message a typed line sends: a number picks an option of the last menu."""
        text = line.strip()
        message_id = f"terminal.{uuid.uuid4().hex}"
        if text.isascii() and text.isdigit() and 1 <= int(text) <= len(self._options):
            option = self._options[int(text) - 1]
            return Inbound(self.channel, message_id, option.title, choice=option.id)
        return Inbound(self.channel, message_id, text)

    def send(self, line: str) -> str:
        """Send one line; returns the bot's rendered answer."""
        replies = self.engine.handle(self.inbound(line))
        text, self._options = render(replies)  # numbers refer to what is on screen now
        return text

    def run(self, lines: Iterable[str], out: TextIO, *, echo: bool) -> None:
        """Chat until the input ends; ``echo`` repeats each line (for scripted input)."""
        for line in lines:
            if not line.strip():
                continue
            if echo:
                print(f"{YOU}{line.strip()}", file=out)
            print(self.send(line), file=out, flush=True)
            print(file=out)
