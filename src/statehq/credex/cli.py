"""``statehq ledger seed|serve``: the credex bot's built-in ledger, from the command line.

The credex bot's module (:mod:`statehq.credex.app`) offers these to ``statehq`` through
the bot hooks (``cli_commands``, ``run_cli``), so they exist while it is the bot.
"""

from __future__ import annotations

import argparse

from ..config import BotSettings
from .app import open_ledger


def cli_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``ledger`` to the ``statehq`` grammar."""

    def parser(
        within: argparse._SubParsersAction[argparse.ArgumentParser],
        name: str,
        help: str,
        example: str,
    ) -> argparse.ArgumentParser:
        return within.add_parser(
            name,
            help=help,
            description=help[0].upper() + help[1:] + ".",
            epilog=f"example:\n  {example}",
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )

    ledger = parser(commands, "ledger", "the credex bot's built-in ledger", "statehq ledger seed")
    actions = ledger.add_subparsers(dest="action", required=True, metavar="ACTION")
    parser(
        actions,
        "seed",
        "create the demo members of the README tour (idempotent)",
        "statehq ledger seed",
    )
    serve = parser(
        actions,
        "serve",
        "serve the ledger as a credex-core compatible API",
        "statehq ledger serve --port 8100",
    )
    serve.add_argument("--host", default="127.0.0.1", help="listen address")
    serve.add_argument("--port", type=int, default=8100, help="port (default 8100)")


def run_cli(settings: BotSettings, args: argparse.Namespace) -> int | None:
    """Run ``ledger seed`` or ``ledger serve``; None for any other command."""
    if args.command != "ledger":
        return None
    from .demo import seed_demo

    with open_ledger(settings) as ledger:
        if args.action == "seed":
            for name, phone, handle in seed_demo(ledger):
                print(f"  {name:<14} {phone}  @{handle}")
            print(f"demo members ready in {ledger.path}")
            return 0
        import uvicorn

        from .api import create_app

        app = create_app(ledger, api_key=settings.backend_api_key)
        print(f"credex ledger API on http://{args.host}:{args.port} (ledger {ledger.path})")
        uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0
