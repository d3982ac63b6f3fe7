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
import errno
import json
import shlex
import socket
import sys
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from .. import __version__
from ..config import Settings
from ..digits import is_digits
from ..errors import ConfigError, NoLiveSession, StateError
from ..flows import bot_stages, open_bot
from ..flows.loading import BotRunner, add_bot_commands
from ..redact import redact_text, redact_value
from ..state import StateManager
from ..store import AsyncStateStore, StateStore
from ..store.embedded import EmbeddedValkey
from ..store.health import check_health
from . import chat, dead

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


def _json_arg(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not valid JSON ({exc})") from None


def _add_state_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    show = sub.add_parser("show", help="print a member's document, version and TTL")
    show.add_argument("member")
    hist = sub.add_parser("history", help="list the versions kept for rollback")
    hist.add_argument("member")
    upd = sub.add_parser("update", help="apply a JSON merge patch (null deletes a field)")
    upd.add_argument("member")
    upd.add_argument("patch", type=_json_arg, help='e.g. \'{"flow_data": {"step": "amount"}}\'')
    upd.add_argument("--expect", type=int, default=None, help="only if at this version")
    rb = sub.add_parser("rollback", help="restore a version from history as a new version")
    rb.add_argument("member")
    rb.add_argument("version", type=int)
    rc = sub.add_parser("recover", help="repair corrupt or invalid state from history")
    rc.add_argument("member")
    rs = sub.add_parser("reset", help="start the session over, keeping member id and channel")
    rs.add_argument("member")
    for action in (upd, rb, rc, rs):
        action.add_argument("--reason", default="cli", help="recorded in the audit trail")
    au = sub.add_parser("audit", help="a member's audit trail, oldest first")
    au.add_argument("member")
    _add_audit_options(au)


def _add_audit_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--since", type=_since_arg, default=None, help="entry id or ISO time")
    parser.add_argument("--limit", type=int, default=100, help="entries to show (default 100)")


def _since_arg(text: str) -> datetime | str:
    if is_digits(text.replace("-", "")):
        return text
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not an audit entry id or ISO time like 2026-11-22T08:00:00+00:00: {text!r}"
        ) from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError("give the time zone, e.g. 2026-11-22T08:00:00+00:00")
    return moment


def build_parser(settings: Settings | None = None) -> argparse.ArgumentParser:
    """The full command-line grammar (with the bot's own commands, given the settings)."""
    parser, _ = _grammar(settings)
    return parser


def _grammar(settings: Settings | None) -> tuple[argparse.ArgumentParser, BotRunner | None]:
    parser = argparse.ArgumentParser(prog="statehq", description=DESCRIPTION, epilog=EPILOG)
    parser.add_argument("--version", action="version", version=f"statehq {__version__}")
    parser.add_argument("--url", help="Redis/Valkey URL (default: STATEHQ_REDIS_URL or embedded)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    state = commands.add_parser("state", help="inspect and repair one member's state")
    _add_state_commands(state.add_subparsers(dest="action", required=True, metavar="ACTION"))
    audit = commands.add_parser("audit", help="read the audit trail")
    audit.add_argument("member", nargs="?", help="whose trail (omit with --tail)")
    audit.add_argument("--tail", action="store_true", help="every session's latest events")
    _add_audit_options(audit)
    ident = commands.add_parser("identity", help="bind and unbind channel identities")
    ident_actions = ident.add_subparsers(dest="action", required=True, metavar="ACTION")
    unbind = ident_actions.add_parser("unbind", help="detach a channel from its member")
    unbind.add_argument("channel", help="e.g. whatsapp:263771234567")
    unbind.add_argument("--reason", required=True, help="why (recorded in the audit trail)")
    chat.add_commands(commands)
    dead.add_commands(commands)
    serve = commands.add_parser("serve", help="run the service: webhook, workers, health, admin")
    serve.add_argument("--host", default=None, help="listen address (default STATEHQ_HOST)")
    serve.add_argument("--port", type=int, default=None, help="port (default STATEHQ_PORT)")
    serve.add_argument("--workers", type=int, default=None, help="worker processes")
    commands.add_parser("shell", help="interactive prompt for state commands")
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
    runner = add_bot_commands(settings, commands) if settings is not None else None
    return parser, runner


def _print_json(value: Any) -> None:
    print(json.dumps(redact_value(value), indent=2, ensure_ascii=False, sort_keys=True))


def run_state(manager: StateManager, args: argparse.Namespace) -> int:
    """Carry out one ``state`` action; returns the exit status."""
    if args.action == "audit":
        return _print_audit(manager.audit.read(args.member, args.since, args.limit))
    try:
        return _run_state_action(manager, args)
    except NoLiveSession as none:
        print(none)
        return 1


def _run_state_action(manager: StateManager, args: argparse.Namespace) -> int:
    who = args.member
    key = manager.session_key(who)
    if args.action == "show":
        key, snap = manager.show(who)
        print(f"{key}: version {snap.version}, expires in {snap.ttl:.0f} s" if snap.ttl else key)
        _print_json(snap.doc)
    elif args.action == "history":
        key, entries = manager.history(who)
        if not entries:
            print(f"no history for {who}")
        for entry in entries:
            fields = ", ".join(sorted(k for k in entry.doc if not k.startswith("_")))
            print(f"v{entry.version}  {entry.last_updated}  {{{fields}}}")
    elif args.action == "update":
        key, snap = manager.update(who, args.patch, expect=args.expect, reason=args.reason)
        print(f"{key} is now at version {snap.version}")
    elif args.action == "rollback":
        snap = manager.rollback(who, args.version, reason=args.reason)
        print(f"restored version {args.version} of {key} as version {snap.version}")
    elif args.action == "recover":
        result = manager.recover(who, reason=args.reason)
        if result.outcome == "healthy":
            print(f"{key} is healthy at version {result.version}; nothing to do")
        else:
            problem = redact_text(result.problem)
            print(f"{key} {result.outcome} at version {result.version}: {problem}")
    elif args.action == "reset":
        snap = manager.reset(who, reason=args.reason)
        print(f"{key} reset to stage INIT at version {snap.version} (identity kept)")
    return 0


def _key(who: str) -> str:
    from ..state.channel_ids import session_key_for

    return session_key_for(who)


def _print_audit(entries: Sequence[Any]) -> int:
    if not entries:
        print("no audit entries")
    for entry in entries:
        line = f"{entry.id}  {entry.at}  {entry.session}  {entry.event}"
        if getattr(entry, "version_after", None) is not None:
            line += f"  v{entry.version_before}->v{entry.version_after}"
        if getattr(entry, "fields", None) or getattr(entry, "removed", None):
            line += f"  changed: {', '.join(entry.fields + entry.removed)}"
        if getattr(entry, "reason", ""):
            line += f"  ({entry.reason})"
        print(redact_text(line))
    return 0


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


READS_EXISTING = {"state", "audit", "identity", "dead"}
"""Commands about state that must already exist: in a fresh data dir they find nothing."""


def _no_store_here(settings: Settings, args: argparse.Namespace) -> str | None:
    """Why a command reading existing state would only find an empty new store, if it would.

    Without ``STATEHQ_REDIS_URL`` the store is the embedded server of the data dir,
    ``./.statehq`` relative to where the command runs: from another directory a
    command would silently start a new, empty store there.
    """
    if args.url or settings.redis_url or args.command not in READS_EXISTING:
        return None
    if args.command == "state" and args.action == "update":
        return None  # an update may start a member's session
    data_dir = settings.data_dir.expanduser().resolve()
    if data_dir.exists():
        return None
    return (
        f"there is no statehq data in {data_dir} (the embedded store lives in "
        f"STATEHQ_DATA_DIR, ./.statehq by default). Run this where you ran `make run` or "
        f"`statehq serve`, or set STATEHQ_DATA_DIR or STATEHQ_REDIS_URL"
    )


def _port_taken(host: str, port: int) -> bool:
    """True when something already listens on ``host:port`` (checked before saying
    "serving on"; other bind errors are left for the server to report)."""
    if port == 0:
        return False
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            return error.errno == errno.EADDRINUSE
    return False


def run_serve(args: argparse.Namespace) -> int:
    """``statehq serve``: the service in the foreground, until Ctrl-C."""
    from ..service.app import serve

    changes = {
        name: value
        for name, value in (("host", args.host), ("port", args.port), ("workers", args.workers))
        if value is not None
    }
    if args.url:
        changes["redis_url"] = args.url
    settings = Settings.from_env().override(**changes)
    shown = f"[{settings.host}]" if ":" in settings.host else settings.host
    base = f"http://{shown}:{settings.port}"
    if _port_taken(settings.host, settings.port):
        print(
            f"statehq: {settings.host}:{settings.port} is already in use (another statehq "
            f"serve?); stop it, or choose another port with --port or STATEHQ_PORT",
            file=sys.stderr,
        )
        return 1
    print(f"statehq {__version__} serving on {base}", flush=True)
    print(f"  the page          {base}/  (web chat and live state inspector)", flush=True)
    print(f"  WhatsApp webhook  {base}/webhooks/whatsapp", flush=True)
    print(f"  health, metrics   {base}/healthz  {base}/metrics", flush=True)
    print(f"  probes            {base}/livez  {base}/readyz", flush=True)
    admin = "on" if settings.admin_token else "off (set STATEHQ_ADMIN_TOKEN)"
    print(f"  admin API         {base}/admin/  {admin}", flush=True)
    print("  chat from a terminal:  statehq chat --as 263771111111   (Ctrl-C stops)", flush=True)
    serve(settings)
    return 0


def run_shell(manager: StateManager, parser: argparse.ArgumentParser) -> int:
    """A prompt that accepts the ``state`` actions: show, history, update, ..."""
    state_parser = argparse.ArgumentParser(prog="", add_help=False, exit_on_error=False)
    _add_state_commands(state_parser.add_subparsers(dest="action", required=True))
    print(
        "Type a state command (show, history, update, rollback, recover, reset, audit), "
        "'help' or 'quit'."
    )
    print('Try: update whatsapp:263771234567 \'{"profile": {"name": "Ann"}}\'')
    while True:
        try:
            line = input(PROMPT)
        except EOFError:
            print()
            return 0
        words = shlex.split(line)
        if not words:
            continue
        if words[0] in ("quit", "exit"):
            return 0
        if words[0] == "help":
            state_parser.print_usage()
            continue
        try:
            run_state(manager, state_parser.parse_args(words))
        except (argparse.ArgumentError, SystemExit) as exc:
            print(f"error: {exc}" if isinstance(exc, argparse.ArgumentError) else "", end="")
            print()
        except StateError as exc:
            print(f"error: {redact_text(str(exc))}")


def _run_audit(manager: StateManager, args: argparse.Namespace) -> int:
    if args.tail:
        return _print_audit(manager.audit.tail(args.since, args.limit))
    if not args.member:
        print("statehq: audit needs a MEMBER, or --tail for every session", file=sys.stderr)
        return 2
    status = _print_audit(manager.audit.read(args.member, args.since, args.limit))
    bound_to = manager.store.route(_key(args.member))
    if bound_to is not None:  # the conversation continued under the member's key
        print(f"-- {args.member} is bound to {bound_to}; its trail continues there:")
        status = _print_audit(manager.audit.read(bound_to, args.since, args.limit))
    return status


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``statehq`` console script."""
    try:
        settings: Settings | None = Settings.from_env()
    except ConfigError as bad:
        settings = None  # said when a command needs the settings
        config_error = bad
    parser, bot_runner = _grammar(settings)
    args = parser.parse_args(argv)
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
            return run_serve(args)
        missing = _no_store_here(settings, args)
        if missing:
            print(f"statehq: {missing}", file=sys.stderr)
            return 1
        with StateStore.open(url=args.url, settings=settings) as store:
            if store.settings.redis_url is None and args.command == "shell":
                where = EmbeddedValkey(store.settings)
                print(
                    f"statehq {__version__}: embedded Valkey at {where.socket_path} "
                    f"(data in {where.data_dir}, appendfsync {store.settings.appendfsync})"
                )
            if args.command == "chat":
                return chat.run_chat(store, settings.bot_settings, args.phone)
            with open_bot(settings) as bot:
                manager = StateManager(store, stages=bot_stages(bot))
            if args.command == "state":
                return run_state(manager, args)
            if args.command == "audit":
                return _run_audit(manager, args)
            if args.command == "identity":
                target = manager.unbind(args.channel, reason=args.reason)
                print(f"{args.channel} unbound from {target}")
                return 0
            if args.command == "health":
                return run_health(store)
            if args.command == "dead":
                return dead.run(store, args)
            return run_shell(manager, parser)
    except StateError as exc:
        print(f"statehq: {redact_text(str(exc))}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
