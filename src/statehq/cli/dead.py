"""``statehq dead list|show|replay|drop``: the updates workers set aside, and what to do next.

An update whose handling kept failing is kept as a dead letter with its error and the
number of attempts. Once the cause is fixed, replay it (back into its sender's inbox, in
timestamp order); or drop it when it should never run. Both are audited in the sender's
trail with --reason.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ..redact import redact_text, redact_value
from ..service.admin_requests import MAX_REASON_LENGTH
from ..service.dead import (
    AmbiguousDeadLetter,
    count_and_list,
    drop_dead,
    find_dead,
    iter_dead,
    replay_dead,
)
from ..store import StateStore
from ..store.dead_letters import DeadLetter
from ..text import clean_text

EXAMPLES = """examples:
  statehq dead list
  statehq dead show wamid.HBgM...             the update, its error, its attempts
  statehq dead replay wamid.HBgM... --reason "ledger fixed"
  statehq dead replay --all --reason "after the 2 a.m. fix"
  statehq dead drop wamid.HBgM... --reason "test message"
"""


def add_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """Add ``dead`` and its actions to the top-level parser."""
    dead = commands.add_parser(
        "dead",
        parents=[common],
        help="list, show, replay or drop the updates workers set aside",
        description=__doc__.split("\n\n")[1],
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = dead.add_subparsers(dest="action", required=True, metavar="ACTION")

    def action(name: str, help: str) -> argparse.ArgumentParser:
        return actions.add_parser(
            name,
            parents=[common],
            help=help,
            description=help[0].upper() + help[1:] + ".",
            epilog=EXAMPLES,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )

    listing = action("list", "every dead letter, oldest first")
    show = action("show", "one dead letter: the update and its error")
    show.add_argument("id", help="the update's message id")
    replay = action("replay", "requeue dead letters for processing")
    replay.add_argument("id", nargs="?", help="the update's message id (or --all)")
    replay.add_argument("--all", action="store_true", help="every dead letter (of --sender)")
    drop = action("drop", "forget a dead letter for good")
    drop.add_argument("id", help="the update's message id")
    for parser in (listing, show, replay, drop):
        parser.add_argument("--sender", help="only this sender's, e.g. whatsapp:263771234567")
    replay.add_argument(
        "--reason", type=_reason, default="cli replay", help="recorded in the audit trail"
    )
    drop.add_argument("--reason", type=_reason, required=True, help="why (in the audit trail)")


def _reason(text: str) -> str:
    """A reason for the audit trail: 1-200 characters of text (as the admin API takes)."""
    reason = clean_text(text).strip()
    if not reason or len(reason) > MAX_REASON_LENGTH:
        raise argparse.ArgumentTypeError(
            f"a reason is 1 to {MAX_REASON_LENGTH} characters, got {len(reason)}"
        )
    return reason


def run(store: StateStore, args: argparse.Namespace) -> int:
    """Carry out one ``dead`` action; returns the exit status (0, 1 none found, 2 usage)."""
    try:
        if args.action == "list":
            total, letters = count_and_list(store, args.sender)
            if total > len(letters):
                print(
                    f"statehq: showing the oldest {len(letters):,} of {total:,} dead letters; "
                    f"narrow with --sender",
                    file=sys.stderr,
                )
            return _list(letters, args.json)
        if args.action == "replay" and args.all:
            return _replay_all(store, args)
        if not args.id:
            hint = ", or --all" if args.action == "replay" else ""
            print(f"statehq: dead {args.action} needs an ID{hint}", file=sys.stderr)
            return 2
        letter = find_dead(store, args.id, args.sender)
    except AmbiguousDeadLetter as ambiguous:
        print(f"statehq: {ambiguous}", file=sys.stderr)
        return 2
    if args.action == "show":
        return _show(letter, args.json)
    if args.action == "replay":
        done = replay_dead(store, letter, reason=args.reason)
        return _said(args.json, letter, "replayed" if done else "gone", done)
    done = drop_dead(store, letter, reason=args.reason)
    return _said(args.json, letter, "dropped" if done else "gone", done)


def _list(letters: list[DeadLetter], as_json: bool) -> int:
    if as_json:
        _print_json([letter.as_dict() for letter in letters])
        return 0
    if not letters:
        print("no dead letters")
    for letter in letters:
        error = letter.error.splitlines()[0][:100] if letter.error else ""
        kind = letter.update.get("kind", "unreadable")
        line = f"{letter.at}  {letter.sender}  {letter.id}  {kind}  x{letter.attempts}  {error}"
        print(redact_text(line))
    return 0


def _show(letter: DeadLetter, as_json: bool) -> int:
    if as_json:
        _print_json(letter.as_dict())
        return 0
    print(f"dead letter {letter.id} from {letter.sender}")
    print(f"  set aside  {letter.at} after {letter.attempts} attempt(s)")
    print(f"  error      {redact_text(letter.error)}")
    print("  update")
    shown = letter.update or {"raw": letter.raw}
    text = json.dumps(redact_value(shown), indent=2, ensure_ascii=False, sort_keys=True)
    print("    " + text.replace("\n", "\n    "))
    return 0


def _replay_all(store: StateStore, args: argparse.Namespace) -> int:
    letters = list(iter_dead(store, args.sender))
    replayed = [letter for letter in letters if replay_dead(store, letter, reason=args.reason)]
    if args.json:
        _print_json({"replayed": [letter.id for letter in replayed]})
    else:
        print(f"replayed {len(replayed)} dead letter(s)")
    return 0


def _said(as_json: bool, letter: DeadLetter, outcome: str, done: bool) -> int:
    if as_json:
        _print_json({"id": letter.id, "sender": letter.sender, "outcome": outcome})
    elif done:
        print(f"{outcome} {letter.id} from {letter.sender}")
    else:
        print(f"{letter.id} from {letter.sender} was already replayed or dropped")
    return 0 if done else 1


def _print_json(value: Any) -> None:
    print(json.dumps(redact_value(value), indent=2, ensure_ascii=False, sort_keys=True))
