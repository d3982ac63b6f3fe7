"""``statehq chat`` and ``statehq ledger``: talk to the credex bot, run its ledger."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator

from ..channels.terminal import TerminalChat
from ..config import Settings
from ..credex.app import build_engine, open_backend, open_ledger
from ..numbers import is_digits
from ..store import StateStore

INTRO = (
    "Chatting with the credex bot as {phone} (state: {store}; ledger: {ledger}).\n"
    "Type a message; pick an option by its number; “menu” goes home; Ctrl-D ends.\n"
)


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``chat`` and ``ledger`` to the ``statehq`` grammar."""
    chat = commands.add_parser("chat", help="chat with the credex bot in this terminal")
    chat.add_argument(
        "--as", dest="phone", required=True, help="your phone number, e.g. 263771234567"
    )
    ledger = commands.add_parser("ledger", help="the built-in credex ledger")
    actions = ledger.add_subparsers(dest="action", required=True, metavar="ACTION")
    actions.add_parser("seed", help="create the demo members of the README tour (idempotent)")
    serve = actions.add_parser("serve", help="serve the ledger as a credex-core compatible API")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8100)


def run_chat(store: StateStore, phone: str) -> int:
    """Chat on stdin/stdout; scripted when stdin is not a terminal."""
    digits = phone.removeprefix("+")
    if not is_digits(digits) or not 8 <= len(digits) <= 15:
        print(f"statehq: --as takes a phone number of 8-15 digits, got {phone!r}", file=sys.stderr)
        return 2
    settings = store.settings
    with open_backend(settings) as backend:
        chat = TerminalChat(build_engine(store, backend), digits)
        interactive = sys.stdin.isatty()
        if interactive:
            where = settings.redis_url or f"embedded Valkey in {settings.data_dir}"
            ledger = settings.backend_url or f"built-in, {settings.data_dir / 'ledger.sqlite3'}"
            print(INTRO.format(phone=digits, store=where, ledger=ledger))
        try:
            chat.run(_lines(interactive), sys.stdout, echo=not interactive)
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


def run_ledger(settings: Settings, args: argparse.Namespace) -> int:
    """``ledger seed`` or ``ledger serve``."""
    from ..credex.demo import seed_demo

    with open_ledger(settings) as ledger:
        if args.action == "seed":
            for name, phone, handle in seed_demo(ledger):
                print(f"  {name:<14} {phone}  @{handle}")
            print(f"demo members ready in {ledger.path}")
            return 0
        import uvicorn

        from ..credex.api import create_app

        app = create_app(ledger, api_key=settings.backend_api_key)
        print(f"credex ledger API on http://{args.host}:{args.port} (ledger {ledger.path})")
        uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0
