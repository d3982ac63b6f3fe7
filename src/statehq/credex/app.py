"""Wiring the credex bot: its backend from the settings, its stages, its engine.

``STATEHQ_BOT=statehq.credex.app:credex_bot`` (the default) runs it; the module also
adds ``statehq ledger`` to the command line (``cli_commands``, ``run_cli``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from ..config import BotSettings
from ..flows import Headquarters
from ..flows.components import declare_flows
from ..state import Stages, StateManager
from ..store import StateStore
from .backend import Backend
from .bot import CredexBot
from .flows import FLOWS

if TYPE_CHECKING:
    from .ledger import Ledger


def credex_stages() -> Stages:
    """The stage machine with every credex flow declared (the CLI validates with it too)."""
    return declare_flows(Stages(), FLOWS)


def welcome_grant(settings: BotSettings) -> tuple[Decimal, str] | None:
    """``STATEHQ_WELCOME_GRANT`` as an amount and denomination (None for ``0``)."""
    if settings.welcome_grant == "0":
        return None
    amount, denomination = settings.welcome_grant.split()
    return Decimal(amount), denomination


@contextmanager
def open_backend(settings: BotSettings) -> Iterator[Backend]:
    """``STATEHQ_BACKEND_URL``'s API when set, else the built-in ledger in the data dir."""
    if settings.backend_url:
        from .client import HttpBackend

        with HttpBackend(settings.backend_url, api_key=settings.backend_api_key) as remote:
            yield remote
        return
    with open_ledger(settings) as ledger:
        yield ledger


@contextmanager
def open_ledger(settings: BotSettings) -> Iterator[Ledger]:
    """The built-in ledger in the data dir, granting ``STATEHQ_WELCOME_GRANT`` to newcomers."""
    from .ledger import Ledger

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    with Ledger.open(settings.data_dir, welcome_grant=welcome_grant(settings)) as ledger:
        yield ledger


def build_engine(store: StateStore, backend: Backend) -> Headquarters:
    """The credex bot's engine on ``store``: a state manager with the credex stages."""
    manager = StateManager(store, stages=credex_stages())
    return Headquarters(manager, CredexBot(backend))


@contextmanager
def credex_bot(settings: BotSettings) -> Iterator[CredexBot]:
    """The bot factory ``STATEHQ_BOT`` names by default: credex on its configured backend."""
    with open_backend(settings) as backend:
        yield CredexBot(backend)


def cli_commands(commands: Any) -> None:
    """``statehq ledger``, while credex is the bot (see :mod:`statehq.credex.cli`)."""
    from .cli import cli_commands as declare

    declare(commands)


def run_cli(settings: BotSettings, args: Any) -> int | None:
    """Run a ``statehq ledger`` command; None for any other."""
    from .cli import run_cli as run

    return run(settings, args)
