"""``statehq``: serve the bot, chat with it, and operate its state from a terminal.

The grammar lives here; each group of commands in its own module:

    state show|history|diff|update|rollback|recover|reset, audit   :mod:`.state`
    scan, stats                                                      :mod:`.survey`
    backup, restore                                                  :mod:`.backup`
    migrate                                                          :mod:`.migrate`
    doctor                                                           :mod:`.doctor`
    dead list|show|replay|drop                                       :mod:`.dead`
    serve                                                            :mod:`.serve`
    chat                                                             :mod:`.chat`
    shell                                                            :mod:`.shell`
    health, bench, identity unbind                                   here

The shared contract (``--json``, exit codes 0/1/2, options before or after the command)
is in :mod:`.common`; which store a command opens, in :mod:`.where`.
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
    "ID is a channel identity (whatsapp:263771234567), a member id (member:m-7), a bare "
    "phone number or a @handle. Exit status: 0 on success, 1 when what was asked for does "
    "not exist or statehq refused, 2 for a malformed command line. Example: statehq state "
    "show 263771234567"
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
