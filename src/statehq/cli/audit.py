"""``statehq audit``: a member's audit trail, or every session's, read or followed live.

    statehq audit ID [--since S] [--limit N]   the member's trail, oldest first
    statehq audit ID --follow                  new entries as they happen (Ctrl-C stops)
    statehq audit --all --follow               every session's changes, live

``statehq state audit ID`` is the same as ``statehq audit ID``.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from ..digits import is_digits
from ..redact import redact_text, redact_value
from ..state import StateManager
from ..state.diffs import summarize
from ..state.lookup import HandleResolver, Located
from .common import MISSING, OK, USAGE, SubParsers, fail, print_json
from .located import ID_FORMS, run_on_member

AUDIT_EXAMPLES = f"""{ID_FORMS}

examples:
  statehq audit whatsapp:263771234567 --limit 20
  statehq audit member:m-7 --since 2026-12-03T08:00:00+00:00
  statehq audit member:m-7 --follow           new entries as they happen (Ctrl-C stops)
  statehq audit --all --follow                every session's changes, live
"""

FOLLOW_WAIT_MS = 1000


def add_audit_options(parser: argparse.ArgumentParser) -> None:
    """``--since``, ``--limit`` and ``--follow`` (for ``audit`` and ``state audit``)."""
    parser.add_argument("--since", type=_since_arg, default=None, help="entry id or ISO time")
    parser.add_argument(
        "--limit", type=_limit_arg, default=100, help="entries to show (1-1000, default 100)"
    )
    parser.add_argument(
        "--follow", "-f", action="store_true", help="keep printing new entries (Ctrl-C stops)"
    )


def add_audit_command(commands: SubParsers, common: argparse.ArgumentParser) -> None:
    """The top-level ``audit`` command."""
    audit = commands.add_parser(
        "audit",
        parents=[common],
        help="read or follow the audit trail",
        description="A member's audit trail, oldest first; --all for every session's.",
        epilog=AUDIT_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    audit.add_argument("id", nargs="?", help="whose trail (omit with --all)")
    audit.add_argument(
        "--all", "--tail", dest="all", action="store_true", help="every session's changes"
    )
    add_audit_options(audit)


def _limit_arg(text: str) -> int:
    if not is_digits(text) or not 1 <= int(text) <= 1000:
        raise argparse.ArgumentTypeError(f"a limit is a whole number from 1 to 1000, got {text!r}")
    return int(text)


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


def run_audit(
    manager: StateManager, args: argparse.Namespace, *, handles: HandleResolver | None = None
) -> int:
    """The top-level ``audit`` command: one member's trail, or every session's."""
    if args.all:
        if args.id:
            return fail("give a member ID or --all, not both", USAGE)
        return _audit_all(manager, args)
    if not args.id:
        return fail("audit needs a member ID, or --all for every session", USAGE)
    args.action = "audit"
    return run_on_member(manager, args, show_trail, handles=handles)


def show_trail(manager: StateManager, located: Located, args: argparse.Namespace) -> int:
    """Print one member's entries (and with ``--follow``, new ones until Ctrl-C)."""
    keys = [located.named] if located.named == located.key else [located.named, located.key]
    entries = [e for key in keys for e in manager.audit.read(key, args.since, args.limit)]
    entries.sort(key=lambda entry: _order(entry.id))
    entries = entries[-args.limit :]
    if args.json and not args.follow:
        print_json([_entry_dict(entry) for entry in entries])
    else:
        _print_entries(entries, args.json, quiet=True)
    if not entries and not args.follow:
        return fail(f"no audit entries for {located.asked} ({located.key})", MISSING)
    if not args.follow:
        return OK
    positions = {key: _newest(manager, key) for key in keys}
    try:
        while True:
            for key in keys:
                fresh = manager.store.audit_follow(key, positions[key], FOLLOW_WAIT_MS // len(keys))
                if fresh:
                    positions[key] = fresh[-1].id
                    _print_entries(fresh, args.json, quiet=True)
    except KeyboardInterrupt:
        return OK


def _newest(manager: StateManager, key: str) -> str:
    newest = manager.audit.read(key, None, 1)
    return newest[-1].id if newest else "0-0"


def _audit_all(manager: StateManager, args: argparse.Namespace) -> int:
    lines = manager.audit.tail(args.since, args.limit)
    if args.json and not args.follow:
        print_json([_entry_dict(line) for line in lines])
    else:
        _print_entries(lines, args.json)
    if not args.follow:
        return OK
    positions: dict[str, str] = {}
    try:
        while True:
            lines, positions = manager.store.audit_follow_tail(positions, FOLLOW_WAIT_MS)
            _print_entries(lines, args.json, quiet=True)
    except KeyboardInterrupt:
        return OK


def _order(entry_id: str) -> tuple[int, int]:
    millis, _, seq = entry_id.partition("-")
    return int(millis or 0), int(seq or 0)


def _print_entries(entries: Sequence[Any], as_json: bool, *, quiet: bool = False) -> None:
    """Entries as text lines, or (following, under ``--json``) one JSON object per line,
    so a follower's output stays a stream a script can read line by line."""
    if as_json:
        for entry in entries:
            print(json.dumps(redact_value(_entry_dict(entry)), ensure_ascii=False), flush=True)
        return
    if not entries and not quiet:
        print("no audit entries")
    for entry in entries:
        line = f"{entry.id}  {entry.at}  {entry.session}  {entry.event}"
        if getattr(entry, "version_after", None) is not None:
            before = entry.version_before
            line += (
                f"  v{before}->v{entry.version_after}"
                if before is not None
                else (f"  ->v{entry.version_after}")
            )
        if getattr(entry, "fields", None) or getattr(entry, "removed", None):
            line += f"  changed: {', '.join(summarize(entry.fields + entry.removed))}"
        if getattr(entry, "reason", ""):
            line += f"  ({entry.reason})"
        print(redact_text(line), flush=True)


def _entry_dict(entry: Any) -> dict[str, Any]:
    if hasattr(entry, "as_dict"):
        result: dict[str, Any] = entry.as_dict()
        return result
    return {k: v for k, v in vars(entry).items() if not k.startswith("_")}
