"""``statehq chat``: talk to the bot (``STATEHQ_BOT``) in this terminal."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator

from ..channels.terminal import TerminalChat
from ..config import BotSettings
from ..digits import is_digits
from ..flows import build_engine, open_bot
from ..store import StateStore

INTRO = (
    "Chatting with {bot} as {phone} (state: {store}).\n"
    "Type a message; pick an option by its number; “menu” goes home; Ctrl-D ends.\n"
)


def add_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """Add ``chat`` to the ``statehq`` grammar."""
    chat = commands.add_parser(
        "chat",
        parents=[common],
        help="chat with the bot (STATEHQ_BOT) in this terminal",
        description="Chat with the bot as a member on the terminal channel: the same "
        "engine, state and store as WhatsApp. Options are numbered: type the number. "
        "Reads stdin as a script when it is not a terminal.",
        epilog="examples:\n  statehq chat --as 263771234567\n"
        "  printf 'hi\\n2\\n' | statehq chat --as 263772222222",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    chat.add_argument(
        "--as", dest="phone", required=True, help="your phone number, e.g. 263771234567"
    )


def run_chat(store: StateStore, bot_settings: BotSettings, phone: str) -> int:
    """Chat on stdin/stdout; scripted when stdin is not a terminal."""
    digits = phone.removeprefix("+")
    if not is_digits(digits) or not 8 <= len(digits) <= 15:
        print(f"statehq: --as takes a phone number of 8-15 digits, got {phone!r}", file=sys.stderr)
        return 2
    with open_bot(bot_settings) as bot:
        chat = TerminalChat(build_engine(store, bot), digits, sys.stdout)
        interactive = sys.stdin.isatty()
        if interactive:
            where = store.settings.redis_url or f"embedded Valkey in {store.settings.data_dir}"
            print(INTRO.format(bot=bot_settings.bot, phone=digits, store=where))
        try:
            chat.run(_lines(interactive), echo=not interactive)
        except KeyboardInterrupt:
            print()
    return 0


def _lines(interactive: bool) -> Iterator[str]:
    if not interactive:
        yield from sys.stdin
        return
    while True:
        try:
            yield input("you> ")
        except EOFError:
            print()
            return
