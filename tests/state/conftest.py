"""Fixtures for the state layer: a manager with a small declared stage machine."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
import redis

from statehq import StateStore
from statehq.state import StateManager
from statehq.store import clients
from tests.state.stages import make_jwt, make_stages

__all__ = ["make_jwt", "make_stages"]  # kept importable from here for older tests


@pytest.fixture
def manager(store: StateStore) -> StateManager:
    """A manager on the per-test store."""
    return StateManager(store, stages=make_stages())


@pytest.fixture
def raw(server_url: str) -> Iterator[redis.Redis]:
    """A plain client on the same server (any topology), for tests that damage state by hand."""
    client = clients.sync_client(clients.parse(server_url), timeout=5, ca_file=None, retry={})
    yield client  # type: ignore[misc]
    client.close()


@pytest.fixture
def token() -> Callable[..., str]:
    """``token(seconds=300)``: a JWT-shaped token expiring that many seconds from now."""

    def build(seconds: float = 300, subject: str = "m1") -> str:
        return make_jwt(time.time() + seconds, subject)

    return build
