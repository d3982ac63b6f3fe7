"""Bots found by import path: ``STATEHQ_BOT=package.module:factory``.

statehq runs any bot; the reference bot is only the default. A factory takes the
:class:`~statehq.config.BotSettings` (its import path, ``STATEHQ_BACKEND_URL`` and
``STATEHQ_BACKEND_API_KEY``, ``STATEHQ_DATA_DIR``; nothing of the store's or the
channels' secrets) and returns a :class:`~statehq.flows.Bot`, or a
context manager yielding one when the bot owns something to close (a database, an HTTP
client)::

    # mybot.py                      STATEHQ_BOT=mybot:create_bot statehq serve
    def create_bot(settings):
        return MyBot()

The current directory is importable, as with uvicorn. A path that names no module, no
attribute or something that makes no bot is refused at start-up with a
:class:`~statehq.errors.ConfigError` that says which.

The module may also add commands to the ``statehq`` command line: a function
``cli_commands(subparsers)`` declares them and ``run_cli(bot_settings, args)`` runs one
(returning None for a command that is not its own).
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

from ..config import BotSettings, Settings
from ..errors import ConfigError
from ..importing import factory_at, module_of
from ..state import Stages, StateManager
from ..store import StateStore
from .components import Flow, declare_flows
from .engine import Bot, Headquarters

BOT_HOOKS = ("flows", "token_rejected", "home", "choose", "relogin", "explain")
"""What the engine uses of a bot (see :class:`~statehq.flows.Bot`)."""


def bot_module(path: str) -> ModuleType:
    """The module ``path`` (``module:factory``) names, imported; ConfigError if it cannot be."""
    return module_of(path, "STATEHQ_BOT")


def load_factory(path: str) -> Callable[[BotSettings], Any]:
    """The bot factory at ``path``; ConfigError when there is none there."""
    return factory_at(path, "STATEHQ_BOT", "a bot")


@contextlib.contextmanager
def open_bot(settings: Settings | BotSettings) -> Iterator[Bot]:
    """The bot ``settings.bot`` makes, for as long as the block runs (then closed)."""
    settings = bot_settings_of(settings)
    factory = load_factory(settings.bot)
    try:
        made = factory(settings)
    except Exception as failed:
        name = settings.bot.partition(":")[2]
        raise ConfigError(
            f"STATEHQ_BOT={settings.bot!r}: the factory {name} failed: "
            f"{type(failed).__name__}: {failed}"
        ) from failed
    if hasattr(made, "__enter__") and hasattr(made, "__exit__"):
        with made as bot:
            yield _checked(bot, settings.bot)
        return
    yield _checked(made, settings.bot)


def _checked(bot: Any, path: str) -> Bot:
    missing = [hook for hook in BOT_HOOKS if not hasattr(bot, hook)]
    if missing:
        raise ConfigError(
            f"STATEHQ_BOT={path!r} made a {type(bot).__name__}, which is not a bot: it lacks "
            f"{', '.join(missing)} (see statehq.flows.Bot, or subclass statehq.flows.SimpleBot)"
        )
    if not all(isinstance(flow, Flow) for flow in bot.flows):
        raise ConfigError(f"STATEHQ_BOT={path!r}: the bot's flows must be statehq.flows.Flow")
    checked: Bot = bot
    return checked


def bot_stages(bot: Bot) -> Stages:
    """The stage machine with each of the bot's flows declared."""
    return declare_flows(Stages(), bot.flows)


def build_engine(store: StateStore, bot: Bot) -> Headquarters:
    """The flow engine running ``bot`` on ``store``."""
    return Headquarters(StateManager(store, stages=bot_stages(bot)), bot)


BotRunner = Callable[[BotSettings, argparse.Namespace], int | None]
"""A bot module's ``run_cli``: runs one of its commands, or None when it is not its own."""


def bot_settings_of(settings: Settings | BotSettings) -> BotSettings:
    """A bot's settings, from its own or from everything."""
    return settings.bot_settings if isinstance(settings, Settings) else settings


def add_bot_commands(
    settings: Settings | BotSettings,
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
) -> BotRunner | None:
    """Let the bot's module add its commands (``cli_commands``); their runner, if any."""
    try:
        module = bot_module(settings.bot)
    except ConfigError:
        return None  # said clearly when a command needs the bot
    declare = getattr(module, "cli_commands", None)
    run = getattr(module, "run_cli", None)
    if callable(declare) and callable(run):
        declare(commands)
        runner: BotRunner = run
        return runner
    return None
