"""The terminal channel: chat with a bot from a shell, options shown as numbered lines.

``statehq chat --as 263771234567`` runs :class:`TerminalChat` on stdin/stdout. The
terminal is a :class:`~statehq.channels.base.Channel` like WhatsApp (``terminal:<phone>``):
a typed line is received as an inbox :class:`~statehq.store.inbox.Update`, goes through
the same engine, state manager and store, and the replies are rendered and delivered by
the channel's :class:`TerminalDelivery`. Typing an option's number sends the option's
id, exactly as tapping it on WhatsApp would (so a number from an old menu is a stale
tap).

It is local to the process that runs it: it is not registered for a webhook.
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from ..digits import is_digits
from ..flows import Buttons, Headquarters, Message, Option, OptionList
from ..store.inbox import Update
from .base import Received, Refusal, Rejected, inbound_of, reply_entries

BOT, YOU = "bot> ", "you> "
SENDER_HEADER = "x-terminal-from"
"""The header naming who typed a line (the terminal has no signature: it is local)."""


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


@dataclass(frozen=True)
class Shown:
    """What a terminal delivery reports: it printed the reply (a terminal cannot refuse)."""

    ok: bool = True
    failure_label: str = ""
    detail: str = ""
    attempts: int = 1


class TerminalDelivery:
    """Renders replies as numbered text and prints them; remembers the options shown."""

    def __init__(self, out: TextIO | None) -> None:
        self.out = out
        self.options: list[Option] = []
        self.last = ""  # the reply shown last

    def render(self, update: Update, replies: list[Message]) -> list[str]:
        """One outbox entry: the replies as the terminal shows them, and their options."""
        text, options = render(replies)
        body = {"text": text, "options": [[o.id, o.title] for o in options]}
        return reply_entries(update, [body])

    def deliver(self, body: dict[str, Any]) -> Shown:
        """Print the reply; its options are what typed numbers refer to from now on."""
        self.options = [Option(id_, title) for id_, title in body.get("options", [])]
        self.last = body["text"]
        if self.out is not None:
            print(body["text"], file=self.out, flush=True)
            print(file=self.out)
        return Shown()


class TerminalChannel:
    """Lines typed in a terminal in, numbered text out."""

    type = "terminal"

    def __init__(self, out: TextIO | None = None) -> None:
        self._delivery = TerminalDelivery(out)

    def verify(self, params: Mapping[str, str]) -> tuple[int, str]:
        """The terminal has no subscription handshake."""
        return 404, "the terminal channel has no webhook"

    def receive(self, headers: Mapping[str, str], body: bytes) -> Received:
        """One typed line (``body``) from the phone named by :data:`SENDER_HEADER`."""
        sender = headers.get(SENDER_HEADER, "").removeprefix("+")
        if not is_digits(sender) or not 8 <= len(sender) <= 15:
            raise Refusal(400, f"{SENDER_HEADER} must be a phone number of 8-15 digits")
        try:
            text = body.decode().strip()
        except UnicodeDecodeError:
            rejected = Rejected("malformed", "the line is not UTF-8", sender=sender)
            return Received(rejected=(rejected,))
        if not text:
            return Received(skipped=("an empty line",))
        message_id = f"terminal.{uuid.uuid4().hex}"
        channel, now = f"{self.type}:{sender}", int(time.time())
        options = self._delivery.options
        if text.isascii() and text.isdigit() and 1 <= int(text) <= len(options):
            option = options[int(text) - 1]
            update = Update(message_id, channel, "button", now, option.title, option.id)
        else:
            update = Update(message_id, channel, "text", now, text)
        return Received((update,))

    @contextlib.contextmanager
    def delivery(self) -> Iterator[TerminalDelivery]:
        """The one terminal this channel prints to."""
        yield self._delivery

    def problems(self) -> list[str]:
        """Nothing to configure."""
        return []


class TerminalChat:
    """A conversation between one terminal identity and the engine, through the channel."""

    def __init__(self, engine: Headquarters, phone: str, out: TextIO | None = None) -> None:
        self.engine = engine
        self.phone = phone
        self.out = out
        self.channel = TerminalChannel(out)

    def send(self, line: str) -> str:
        """Send one line; returns the bot's rendered answer ("" for an empty line)."""
        received = self.channel.receive({SENDER_HEADER: self.phone}, line.encode())
        shown: list[str] = []
        with self.channel.delivery() as delivery:
            for update in received.updates:
                inbound = inbound_of(update)
                if inbound is None:
                    continue
                replies = self.engine.handle(inbound)
                for entry in delivery.render(update, list(replies)):
                    delivery.deliver(json.loads(entry)["body"])
                    shown.append(delivery.last)
        return "\n\n".join(shown)

    def run(self, lines: Iterable[str], *, echo: bool) -> None:
        """Chat until the input ends; ``echo`` repeats each line (for scripted input)."""
        for line in lines:
            if not line.strip():
                continue
            if echo and self.out is not None:
                print(f"{YOU}{line.strip()}", file=self.out)
            self.send(line)
