"""``statehq shell``: a prompt for the same commands as the command line.

Every command and option of ``statehq`` works at the prompt (``scan --stage MENU``,
``audit member:m-7 --limit 5``), and the ``state`` actions work without the word
``state`` (``show 263771234567``). ``help`` lists the commands, ``help COMMAND`` shows
one command's help, ``quit`` (or Ctrl-D) leaves. The store is opened once.
"""

from __future__ import annotations

import argparse
import contextlib
import shlex
import sys
from collections.abc import Callable

from ..errors import StateError
from ..redact import redact_text
from .common import Context, option_defaults

PROMPT = "statehq> "
NOT_IN_SHELL = frozenset({"shell", "serve", "bench", "chat"})
"""Commands that take over the terminal or the machine: run them from the command line."""

Dispatch = Callable[[Context, argparse.Namespace], int]


def summaries(parser: argparse.ArgumentParser) -> list[tuple[str, str]]:
    """Each top-level command with its one-line help, in grammar order."""
    found: list[tuple[str, str]] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            found += [(choice.dest, choice.help or "") for choice in action._choices_actions]
    return found


def state_actions(parser: argparse.ArgumentParser) -> set[str]:
    """The actions of ``state`` (typed at the prompt without the word ``state``)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) and "state" in action.choices:
            return {name for name, _ in summaries(action.choices["state"])}
    return set()


def run(context: Context, parser: argparse.ArgumentParser, dispatch: Dispatch) -> int:
    """Read commands until ``quit`` or end of input; each runs as on the command line."""
    actions = state_actions(parser)
    echo = not sys.stdin.isatty()  # scripted: show what was typed, as a terminal would
    print(f"statehq shell on the {context.where}. 'help' lists commands, 'quit' leaves.")
    print("Try: show 263771234567    history member:m-7    scan --stage MENU")
    while True:
        try:
            line = input(PROMPT)
        except EOFError:
            print()
            return 0
        except KeyboardInterrupt:
            print()
            continue
        if echo:
            print(line)
        try:
            words = shlex.split(line)
        except ValueError as bad:
            print(f"error: {bad}")
            continue
        if not words:
            continue
        if words[0] in ("quit", "exit"):
            return 0
        if words[0] == "help":
            _help(parser, words[1:], actions)
            continue
        if words[0] in actions:
            words.insert(0, "state")
        if words[0] in NOT_IN_SHELL:
            print(f"error: run `statehq {words[0]}` from the command line, not the shell")
            continue
        _run_line(context, parser, dispatch, words)


def _run_line(
    context: Context, parser: argparse.ArgumentParser, dispatch: Dispatch, words: list[str]
) -> None:
    # Messages go to stdout at the prompt, in order with the output around them.
    with contextlib.redirect_stderr(sys.stdout):
        try:
            args = option_defaults(parser.parse_args(words))
        except SystemExit:  # argparse has printed the usage and the error
            return
    if args.url and args.url != context.args.url:
        print(
            f"error: this shell is on the {context.where}; for another store start one "
            f"with `statehq shell --url ...`"
        )
        return
    try:
        with contextlib.redirect_stderr(sys.stdout):
            status = dispatch(context, args)
    except StateError as exc:
        print(f"error: {redact_text(str(exc))}")
        return
    except KeyboardInterrupt:  # stops a --follow, not the shell
        print()
        return
    if status:
        print(f"(exit status {status})")


def _help(parser: argparse.ArgumentParser, topic: list[str], actions: set[str]) -> None:
    if topic:
        words = ["state", *topic] if topic[0] in actions else topic
        with contextlib.suppress(SystemExit):  # --help prints, then exits
            parser.parse_args([*words, "--help"])
        return
    print("Commands (help COMMAND for its options):")
    for name, text in summaries(parser):
        if name not in NOT_IN_SHELL:
            print(f"  {name:<10} {text}")
    print(f"  {'quit':<10} leave the shell")
    print(f"State actions work without 'state': {', '.join(sorted(actions))}.")
