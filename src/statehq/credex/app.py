"""Wiring the credex bot: its backend from the settings, its stages, its engine."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import TYPE_CHECKING

from ..config import Settings
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


def welcome_grant(settings: Settings) -> tuple[Decimal, str] | None:
    """``STATEHQ_WELCOME_GRANT`` as an amount and denomination (None for ``0``)."""
    if settings.welcome_grant == "0":
        return None
    amount, denomination = settings.welcome_grant.split()
    return Decimal(amount), denomination


@contextmanager
def open_backend(settings: Settings) -> Iterator[Backend]:
    """``STATEHQ_BACKEND_URL``'s API when set, else the built-in ledger in the data dir."""
    if settings.backend_url:
        from .client import HttpBackend

        with HttpBackend(settings.backend_url, api_key=settings.backend_api_key) as remote:
            yield remote
        return
    with open_ledger(settings) as ledger:
        yield ledger


@contextmanager
def open_ledger(settings: Settings) -> Iterator[Ledger]:
    """The built-in ledger in the data dir, granting ``STATEHQ_WELCOME_GRANT`` to newcomers."""
    from .ledger import Ledger

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    with Ledger.open(settings.data_dir, welcome_grant=welcome_grant(settings)) as ledger:
        yield ledger


def build_engine(store: StateStore, backend: Backend) -> Headquarters:
    """The credex bot's engine on ``store``: a state manager with the credex stages."""
    manager = StateManager(store, stages=credex_stages())
    return Headquarters(manager, CredexBot(backend))
