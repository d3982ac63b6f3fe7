"""Fixtures for the state layer: a manager with a small declared stage machine."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Iterator

import pytest
import redis

from statehq import StateStore
from statehq.state import Stages, StateManager
from statehq.store import clients

FLOWS = ("offer", "ledger")
PRE_AUTH_FLOWS = ("register",)


def make_stages() -> Stages:
    """INIT -> AUTH -> MENU -> offer|ledger, and register before login."""
    stages = Stages()
    for flow in FLOWS:
        stages.add_flow(flow)
    for flow in PRE_AUTH_FLOWS:
        stages.add_flow(flow, before_auth=True)
    return stages


def make_jwt(exp: float, subject: str = "m1", secret_tag: str = "sig") -> str:
    """A JWT-shaped token with an exp claim (statehq reads exp; it never verifies)."""

    def part(data: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    signature = base64.urlsafe_b64encode(f"{secret_tag}-{exp}".encode()).rstrip(b"=").decode()
    return (
        f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part({'sub': subject, 'exp': exp})}.{signature}"
    )


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
