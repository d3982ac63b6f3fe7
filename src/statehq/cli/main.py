"""``statehq``: operate the store from a terminal.

    statehq state show|history|update|rollback|cleanup|reset MEMBER ...
    statehq shell          an interactive prompt for the same state commands
    statehq health         check the store: connection, scripts, lease, state round trip
    statehq bench          run the benchmarks and write docs/benchmarks/

Exit status: 0 on success, 1 when statehq refused or failed (the message says why),
2 for a malformed command line.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections.abc import Sequence
from typing import Any

from .. import __version__
from ..errors import StateError
from ..store import StateStore
from ..store.embedded import EmbeddedValkey

PROMPT = "statehq> "


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
    cl = sub.add_parser("cleanup", help="drop all but the preserved top-level fields")
    cl.add_argument("member")
    cl.add_argument("--keep", nargs="*", default=None, help="fields to keep (default: identity)")
    rs = sub.add_parser("reset", help="forget a member's session and history")
    rs.add_argument("member")


def build_parser() -> argparse.ArgumentParser:
    """The full command-line grammar."""
    parser = argparse.ArgumentParser(prog="statehq", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="version", version=f"statehq {__version__}")
    parser.add_argument("--url", help="Redis/Valkey URL (default: STATEHQ_REDIS_URL or embedded)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    state = commands.add_parser("state", help="inspect and repair one member's state")
    _add_state_commands(state.add_subparsers(dest="action", required=True, metavar="ACTION"))
    commands.add_parser("shell", help="interactive prompt for state commands")
    commands.add_parser("health", help="check the store end to end")
    bench = commands.add_parser("bench", help="run the benchmarks")
    bench.add_argument("--output", default="docs/benchmarks", help="where to write results")
    bench.add_argument("--quick", action="store_true", help="short runs, for a smoke test")
    return parser


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True))


def run_state(store: StateStore, args: argparse.Namespace) -> int:
    """Carry out one ``state`` action; returns the exit status."""
    member = args.member
    if args.action == "show":
        snap = store.get(member)
        if snap is None:
            print(f"no live session for {member} ({store.status(member).value})")
            return 1
        print(f"version {snap.version}, expires in {snap.ttl:.0f} s" if snap.ttl else "")
        _print_json(snap.doc)
    elif args.action == "history":
        entries = store.history(member)
        if not entries:
            print(f"no history for {member}")
        for entry in entries:
            fields = ", ".join(sorted(k for k in entry.doc if not k.startswith("_")))
            print(f"v{entry.version}  {entry.last_updated}  {{{fields}}}")
    elif args.action == "update":
        snap = store.update(member, args.patch, expected_version=args.expect)
        print(f"{member} is now at version {snap.version}")
    elif args.action == "rollback":
        snap = store.rollback(member, args.version)
        print(f"restored version {args.version} of {member} as version {snap.version}")
    elif args.action == "cleanup":
        result = store.cleanup(member) if args.keep is None else store.cleanup(member, args.keep)
        print(
            f"no live session for {member}"
            if result is None
            else f"{member} cleaned up at version {result.version}"
        )
    elif args.action == "reset":
        gone = store.delete(member)
        print(f"{member}: {'session and history removed' if gone else 'nothing to remove'}")
    return 0


def run_health(store: StateStore) -> int:
    """Check connection, scripts, lease and a state round trip."""
    probe = "statehq-health-probe"
    store.ping()
    print("connection   ok")
    snap = store.update(probe, {"probe": True})
    assert store.get(probe) is not None
    print(f"state        ok (round trip at version {snap.version})")
    with store.lease(probe, ttl=5) as lease:
        print(f"lease        ok (token {lease.token})")
    store.delete(probe)
    return 0


def run_shell(store: StateStore, parser: argparse.ArgumentParser) -> int:
    """A prompt that accepts the ``state`` actions: show, history, update, ..."""
    state_parser = argparse.ArgumentParser(prog="", add_help=False, exit_on_error=False)
    _add_state_commands(state_parser.add_subparsers(dest="action", required=True))
    print(
        "Type a state command (show, history, update, rollback, cleanup, reset), 'help' or 'quit'."
    )
    print('Try: update whatsapp:263771234567 \'{"flow_data": {"id": "offer", "step": 1}}\'')
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
            run_state(store, state_parser.parse_args(words))
        except (argparse.ArgumentError, SystemExit) as exc:
            print(f"error: {exc}" if isinstance(exc, argparse.ArgumentError) else "", end="")
            print()
        except StateError as exc:
            print(f"error: {exc}")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``statehq`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "bench":
        from ..bench import main as bench_main

        return bench_main(output=args.output, quick=args.quick)
    try:
        with StateStore.open(url=args.url) as store:
            if store.settings.redis_url is None and args.command == "shell":
                where = EmbeddedValkey(store.settings)
                print(
                    f"statehq {__version__}: embedded Valkey at {where.socket_path} "
                    f"(data in {where.data_dir}, appendfsync {store.settings.appendfsync})"
                )
            if args.command == "state":
                return run_state(store, args)
            if args.command == "health":
                return run_health(store)
            return run_shell(store, parser)
    except StateError as exc:
        print(f"statehq: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
