"""Wiring the credex bot: its backend from the settings, its stages, its engine."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal

from ..config import Settings
from ..flows import Headquarters
from ..state import Stages, StateManager
from ..store import StateStore
from .backend import Backend
from .bot import CredexBot
from .flows import FLOWS


def credex_stages() -> Stages:
    """The stage machine with every credex flow declared (the CLI validates with it too)."""
    stages = Stages()
    for flow in FLOWS:
        stages.add_flow(flow.id, before_auth=flow.before_auth)
    return stages


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
    from .ledger import Ledger

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    with Ledger.open(settings.data_dir, welcome_grant=welcome_grant(settings)) as ledger:
        yield ledger


def build_engine(store: StateStore, backend: Backend) -> Headquarters:
    """The credex bot's engine on ``store``: a state manager with the credex stages."""
    manager = StateManager(store, stages=credex_stages())
    return Headquarters(manager, CredexBot(backend))
