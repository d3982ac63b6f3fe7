"""What every ``statehq`` command shares: exit codes, ``--json``, and the opened store.

Every command follows the same contract so scripts can rely on it:

- human output by default, ``--json`` for one JSON value on stdout;
- exit :data:`OK` (0) on success, :data:`MISSING` (1) when the thing asked for does not
  exist or statehq refused (the message on stderr says why), :data:`USAGE` (2) for a
  malformed command line;
- the shared options (``--url``, ``--json``, ``--yes``) are accepted before or after the
  subcommand: ``statehq --json scan`` and ``statehq scan --json`` are the same.

A command module (``scan``, ``backup``, ...) exposes ``NAMES`` (the top-level commands
it adds), ``add_commands(commands, common)`` and ``run(context, args) -> int``; the
``statehq`` entry point (:mod:`statehq.cli.main`) wires the modules listed there.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any, Protocol, TypeAlias

from ..config import Settings
from ..redact import redact_value
from ..state import StateManager
from ..store import StateStore

OK = 0
MISSING = 1
USAGE = 2

SubParsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def common_options() -> argparse.ArgumentParser:
    """The options every command takes, before or after its name (a parent parser).

    Defaults are suppressed here so a value given before the subcommand is not reset by
    the subcommand's own copy of the option; :func:`option_defaults` fills them in.
    """
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("common options")
    group.add_argument(
        "--url",
        type=url_arg,
        default=argparse.SUPPRESS,
        help="Redis/Valkey URL (default: STATEHQ_REDIS_URL, else the embedded server)",
    )
    group.add_argument(
        "--json",
        action="store_true",
        default=argparse.SUPPRESS,
        help="print one JSON value for scripts instead of text",
    )
    group.add_argument(
        "--yes",
        "-y",
        action="store_true",
        default=argparse.SUPPRESS,
        help="do not ask for confirmation before changing state",
    )
    return common


def url_arg(text: str) -> str:
    """A Redis/Valkey URL, checked as ``STATEHQ_REDIS_URL`` is (a bad one is exit 2)."""
    from ..errors import ConfigError
    from ..store.clients import parse

    try:
        parse(text)
    except ConfigError as bad:
        raise argparse.ArgumentTypeError(str(bad).replace("STATEHQ_REDIS_URL: ", "")) from None
    return text


def whole_number(low: int, high: int | None = None) -> Callable[[str], int]:
    """An argparse type: a whole number from ``low`` (to ``high``)."""

    def parse(text: str) -> int:
        value = int(text) if text.strip().isdigit() else None
        if value is None or value < low or (high is not None and value > high):
            upper = f" to {high}" if high is not None else " or more"
            raise argparse.ArgumentTypeError(f"a whole number from {low}{upper}, got {text!r}")
        return value

    return parse


def option_defaults(args: argparse.Namespace) -> argparse.Namespace:
    """Give the common options their defaults where neither position set them."""
    for name, default in (("url", None), ("json", False), ("yes", False)):
        if not hasattr(args, name):
            setattr(args, name, default)
    return args


def print_json(value: Any) -> None:
    """Print ``value`` as indented JSON with secrets redacted."""
    print(json.dumps(redact_value(value), indent=2, ensure_ascii=False, sort_keys=True))


def fail(message: str, status: int = MISSING) -> int:
    """Say why on stderr (prefixed ``statehq:``) and return ``status``."""
    print(f"statehq: {message}", file=sys.stderr)
    return status


class Context:
    """What a command runs with: the settings, and the store and manager opened on use."""

    def __init__(self, settings: Settings, args: argparse.Namespace) -> None:
        self.settings = settings
        self.args = args
        self._stack = ExitStack()
        self._store: StateStore | None = None
        self._manager: StateManager | None = None
        self.handles: Callable[[str], str | None] | None = None
        """The bot's ``member_for_handle``, once :attr:`manager` opened the bot (if it has one)."""

    @property
    def store(self) -> StateStore:
        """The store named by ``--url``, ``STATEHQ_REDIS_URL`` or the data dir (opened once)."""
        if self._store is None:
            opened = StateStore.open(url=self.args.url, settings=self.settings)
            self._store = self._stack.enter_context(opened)
        return self._store

    @property
    def where(self) -> str:
        """The store this command uses, in words (credentials masked)."""
        from .where import store_in_use

        return store_in_use(self.settings, self.args.url)

    @property
    def manager(self) -> StateManager:
        """The state manager over :attr:`store`, with the bot's stages (the bot stays open
        until the context closes, so its ``member_for_handle`` can use its backend)."""
        if self._manager is None:
            from ..flows import bot_stages, open_bot

            bot = self._stack.enter_context(open_bot(self.settings))
            self._manager = StateManager(self.store, stages=bot_stages(bot))
            self.handles = getattr(bot, "member_for_handle", None)
        return self._manager

    def close(self) -> None:
        """Close what was opened."""
        self._stack.close()

    def __enter__(self) -> Context:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class CommandModule(Protocol):
    """A module adding top-level commands (see this module's docstring)."""

    NAMES: frozenset[str]

    def add_commands(self, commands: SubParsers, common: argparse.ArgumentParser) -> None:
        """Add the module's commands to the grammar, each with ``parents=[common]``."""

    def run(self, context: Context, args: argparse.Namespace) -> int:
        """Carry out ``args.command``; return the exit status."""
