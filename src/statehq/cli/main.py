"""``statehq``: operate the store from a terminal.

    statehq state show|history|update|rollback|recover|reset MEMBER ...
    statehq audit MEMBER [--since ID|TIME] [--limit N]     statehq audit --tail
    statehq identity unbind CHANNEL --reason TEXT
    statehq dead list|show|replay|drop [ID]    updates workers set aside after failing
    statehq serve          the service: WhatsApp webhook, inbox workers, /healthz, /metrics
    statehq chat --as PHONE   chat with the bot (numbered options; scriptable on stdin)
    statehq ledger seed|serve the reference bot's ledger (a command its module adds)
    statehq shell          an interactive prompt for the same state commands
    statehq health         check the store: connection, scripts, lease, state round trip
    statehq bench          run the benchmarks and write docs/benchmarks/

MEMBER is a channel identity (``whatsapp:263771234567``), ``member:<id>`` or a bare
member id. Writes go through the state manager: validated, versioned and audited
(reason ``cli``). Tokens are redacted from everything printed.

Exit status: 0 on success, 1 when statehq refused or failed (the message says why),
2 for a malformed command line.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from typing import Any

from .. import __version__
from ..config import Settings
from ..errors import ConfigError, StateError
from ..flows.loading import BotRunner, add_bot_commands
from ..redact import redact_text
from ..store import AsyncStateStore, StateStore
from ..store.health import check_health
from . import backup, chat, dead, doctor, migrate, serve, shell, state, survey
from .common import USAGE, Context, common_options, fail, option_defaults
from .where import choose_store

MODULES = (survey, backup, migrate, doctor)
"""Command modules following :class:`statehq.cli.common.CommandModule`."""

PROMPT = "statehq> "

DESCRIPTION = (
    "statehq: durable, atomic, versioned conversation state for messaging bots, on "
    "Redis/Valkey. Serve the bot (serve), chat with it (chat), and inspect, repair and "
    "audit members' state from a terminal."
)
EPILOG = (
    "MEMBER is a channel identity (whatsapp:263771234567), member:<id> or a bare member "
    "id. Exit status: 0 on success, 1 when statehq refused or failed, 2 for a malformed "
    "command line. Example: statehq state show whatsapp:263771234567"
)


def build_parser(settings: Settings | None = None) -> argparse.ArgumentParser:
    """The full command-line grammar (with the bot's own commands, given the settings)."""
    parser, _ = _grammar(settings)
    return parser


def _grammar(settings: Settings | None) -> tuple[argparse.ArgumentParser, BotRunner | None]:
    parser = argparse.ArgumentParser(prog="statehq", description=DESCRIPTION, epilog=EPILOG)
    parser.add_argument("--version", action="version", version=f"statehq {__version__}")
    common = common_options()
    for action in common._actions:
        parser._add_action(action)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    state_parser = commands.add_parser(
        "state",
        parents=[common],
        help="inspect and repair one member's state",
        description=state.__doc__.split("\n\n")[0] if state.__doc__ else None,
        epilog=state.STATE_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = state_parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    state.add_state_actions(actions, common)
    state.add_audit_command(commands, common)
    ident = commands.add_parser("identity", help="bind and unbind channel identities")
    ident_actions = ident.add_subparsers(dest="action", required=True, metavar="ACTION")
    unbind = ident_actions.add_parser("unbind", help="detach a channel from its member")
    unbind.add_argument("channel", help="e.g. whatsapp:263771234567")
    unbind.add_argument("--reason", required=True, help="why (recorded in the audit trail)")
    chat.add_commands(commands)
    dead.add_commands(commands)
    serve.add_command(commands)
    commands.add_parser("shell", parents=[common], help="a prompt for these same commands")
    commands.add_parser("health", help="check the store end to end")
    bench = commands.add_parser("bench", help="run the benchmarks")
    bench.add_argument("--output", default="docs/benchmarks", help="where to write results")
    bench.add_argument("--quick", action="store_true", help="short runs, for a smoke test")
    bench.add_argument(
        "--suite",
        choices=("all", "store", "service", "faults", "soak"),
        default="all",
        help="what to measure (faults: hostile input and a failing store; soak: many members "
        "and a failover on a Cluster and Sentinel, about 10 minutes, not part of all)",
    )
    for module in MODULES:
        module.add_commands(commands, common)
    runner = add_bot_commands(settings, commands) if settings is not None else None
    return parser, runner


def run_health(store: StateStore) -> int:
    """Check connection, scripts, lease and a state round trip (as ``/healthz`` does)."""
    url = store.url

    async def check() -> tuple[bool, dict[str, Any]]:
        async with await AsyncStateStore.open(url=url, settings=store.settings) as astore:
            return await check_health(astore, timeout=max(store.settings.store_timeout, 5.0))

    ok, checks = asyncio.run(check())
    for name, result in checks.items():
        said = "ok" if result["ok"] else f"FAILED: {result.get('error', '')}"
        extra = ", ".join(f"{k} {v}" for k, v in result.items() if k not in ("ok", "error"))
        print(redact_text(f"{name:<12} {said}{f' ({extra})' if extra else ''}"))
    return 0 if ok else 1


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``statehq`` console script."""
    try:
        settings: Settings | None = Settings.from_env()
    except ConfigError as bad:
        settings = None  # said when a command needs the settings
        config_error = bad
    parser, bot_runner = _grammar(settings)
    args = option_defaults(parser.parse_args(argv))
    if args.command == "bench":
        from ..bench import main as bench_main

        return bench_main(output=args.output, quick=args.quick, suite=args.suite)
    try:
        if settings is None:
            raise config_error
        if bot_runner is not None:
            status = bot_runner(settings.bot_settings, args)
            if status is not None:
                return status
        if args.command == "serve":
            return serve.run(args)
        settings, refusal = choose_store(settings, args)
        if refusal:
            return fail(refusal)
        with Context(settings, args) as context:
            if args.command == "shell":
                return shell.run(context, parser, dispatch)
            return dispatch(context, args)
    except StateError as exc:
        return fail(redact_text(str(exc)))


def dispatch(context: Context, args: argparse.Namespace) -> int:
    """Run one parsed command (from the command line or the shell) in ``context``."""
    for module in MODULES:
        if args.command in module.NAMES:
            outcome: int = module.run(context, args)
            return outcome
    if args.command == "chat":
        return chat.run_chat(context.store, context.settings.bot_settings, args.phone)
    if args.command == "health":
        return run_health(context.store)
    if args.command == "dead":
        return dead.run(context.store, args)
    manager = context.manager
    if args.command == "state":
        return state.run_state(manager, args, handles=context.handles)
    if args.command == "audit":
        return state.run_audit(manager, args, handles=context.handles)
    if args.command == "identity":
        target = manager.unbind(args.channel, reason=args.reason)
        print(f"{args.channel} unbound from {target}")
        return 0
    return fail(f"unknown command {args.command!r}", USAGE)


if __name__ == "__main__":
    sys.exit(main())
