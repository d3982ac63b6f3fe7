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
import logging
import os
import signal
import sys
from collections.abc import Sequence
from typing import Any

from .. import __version__
from ..config import Settings
from ..errors import ConfigError, IdentityError, InvalidInput, StateError
from ..flows.loading import BotRunner, add_bot_commands
from ..redact import redact_text
from ..store import AsyncStateStore, StateStore
from ..store.health import check_health
from . import audit, backup, chat, dead, doctor, migrate, serve, shell, state, survey
from .common import (
    USAGE,
    Context,
    SubParsers,
    common_options,
    fail,
    option_defaults,
    print_json,
)
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
        description="Inspect and repair one member's state: show, history, diff, update, "
        "rollback, recover, reset, audit.",
        epilog=state.STATE_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = state_parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    state.add_state_actions(actions, common)
    audit.add_audit_command(commands, common)
    _add_identity(commands, common)
    chat.add_commands(commands, common)
    dead.add_commands(commands, common)
    serve.add_command(commands)
    commands.add_parser(
        "shell",
        parents=[common],
        help="a prompt for these same commands",
        description="A prompt for the same commands and options as the command line; the "
        "state actions work without the word 'state'. 'help' lists the commands.",
        epilog="example:\n  statehq shell\n  statehq> show 263771234567\n"
        "  statehq> scan --stage MENU --limit 5",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands.add_parser(
        "health",
        parents=[common],
        help="check the store end to end",
        description="Check the store end to end: the connection, the scripts, a lease and "
        "a state round trip, as /healthz does. Exit 0 when all pass, 1 otherwise.",
        epilog="example:\n  statehq health --url redis://10.0.0.5:6379/0",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    bench = commands.add_parser(
        "bench",
        help="run the benchmarks",
        description="Run the benchmarks against a private embedded server and write the "
        "results as JSON and Markdown.",
        epilog="example:\n  statehq bench --quick --output /tmp/bench",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
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


def _add_identity(commands: SubParsers, common: argparse.ArgumentParser) -> None:
    ident = commands.add_parser(
        "identity",
        parents=[common],
        help="unbind a channel identity from its member",
        description="Channel identities bound to members (a member who signed in on a "
        "channel). Unbind one when a number changed hands.",
        epilog="example:\n  statehq identity unbind whatsapp:263771234567 --reason "
        '"number recycled"',
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ident_actions = ident.add_subparsers(dest="action", required=True, metavar="ACTION")
    unbind = ident_actions.add_parser(
        "unbind",
        parents=[common],
        help="detach a channel from its member",
        description="Detach a channel identity from the member it is bound to: its next "
        "message starts a new session. Audited with the reason.",
        epilog="example:\n  statehq identity unbind whatsapp:263771234567 --reason "
        '"number recycled"',
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    unbind.add_argument("channel", help="e.g. whatsapp:263771234567")
    unbind.add_argument("--reason", required=True, help="why (recorded in the audit trail)")


def run_health(store: StateStore, as_json: bool = False) -> int:
    """Check connection, scripts, lease and a state round trip (as ``/healthz`` does)."""
    url = store.url

    async def check() -> tuple[bool, dict[str, Any]]:
        async with await AsyncStateStore.open(url=url, settings=store.settings) as astore:
            return await check_health(astore, timeout=max(store.settings.store_timeout, 5.0))

    ok, checks = asyncio.run(check())
    if as_json:
        print_json({"ok": ok, "checks": checks})
        return 0 if ok else 1
    for name, result in checks.items():
        said = "ok" if result["ok"] else f"FAILED: {result.get('error', '')}"
        extra = ", ".join(f"{k} {v}" for k, v in result.items() if k not in ("ok", "error"))
        print(redact_text(f"{name:<12} {said}{f' ({extra})' if extra else ''}"))
    return 0 if ok else 1


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``statehq`` console script.

    Whatever happens, the answer is a message and an exit status, never a traceback: a
    reader that stops reading (``| head``) ends the command quietly, Ctrl-C and SIGTERM
    stop it cleanly (the embedded server it started is released), and an operating
    system error (a data dir that is a file) is said in one line.
    """
    previous = signal.signal(signal.SIGTERM, _terminated)
    try:
        return _main(argv)
    except BrokenPipeError:
        # The reader went away (``statehq stats | head -3``): nothing left to say to it.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return fail("interrupted")
    except OSError as error:
        where = f"{error.filename}: " if error.filename else ""
        return fail(redact_text(f"{where}{error.strerror or error}"))
    finally:
        signal.signal(signal.SIGTERM, previous)


def _terminated(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def _main(argv: Sequence[str] | None) -> int:
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
        if settings is None and args.command == "doctor":  # doctor reports it, and goes on
            settings, args.config_problems = doctor.lenient_settings()
        if settings is None:
            raise config_error
        if bot_runner is not None:
            status = bot_runner(settings.bot_settings, args)
            if status is not None:
                return status
        if args.command == "serve":
            return serve.run(args)
        # A command says what happened itself; the library's warnings (a recovery it
        # just reported, say) would only repeat it. Errors still show.
        logging.basicConfig(level=logging.ERROR, format="statehq: %(message)s")
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
        return run_health(context.store, args.json)
    if args.command == "dead":
        return dead.run(context.store, args)
    manager = context.manager
    if args.command == "state":
        return state.run_state(manager, args, handles=context.handles)
    if args.command == "audit":
        return audit.run_audit(manager, args, handles=context.handles)
    if args.command == "identity":
        try:
            target = manager.unbind(args.channel, reason=state.audited_reason(args.reason))
        except IdentityError as refused:
            return fail(str(refused))
        except InvalidInput as bad:
            return fail(str(bad), USAGE)
        if args.json:
            print_json({"channel": args.channel, "unbound_from": target})
        else:
            print(f"{args.channel} unbound from {target}")
        return 0
    return fail(f"unknown command {args.command!r}", USAGE)


if __name__ == "__main__":
    sys.exit(main())
