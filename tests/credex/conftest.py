"""Fixtures for the credex ledger: a settable clock, a ledger on a real SQLite file, the
ledger served over real HTTP (uvicorn in a thread), and ``backend``, which runs a test
once against the in-process :class:`Ledger` and once against :class:`HttpBackend`.

The clock is shared by the ledger and its server: ``clock.advance(301)`` expires every
token the ledger has issued, in process and over HTTP alike.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from statehq.credex.api import create_app
from statehq.credex.backend import Backend
from statehq.credex.client import HttpBackend
from statehq.credex.ledger import Ledger

SECRET = b"statehq-test-ledger-secret-0123456789"
API_KEY = "test-key"
WELCOME = (Decimal(100), "USD")
START = 1_767_225_600.0  # 2026-01-01T00:00:00Z


class Clock:
    """A clock the test moves: ``now`` is epoch seconds; call it like ``time.time``."""

    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move time forward (a token expires after 300 s)."""
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    """A fresh settable clock at 2026-01-01 00:00 UTC."""
    return Clock()


@pytest.fixture
def ledger_secret() -> bytes:
    """The secret the test ledgers sign tokens with."""
    return SECRET


@pytest.fixture
def open_ledger(clock: Clock) -> Iterator[Callable[[Path], Ledger]]:
    """Opens a Ledger on a file with the test secret, clock and grant; closes it after."""
    opened: list[Ledger] = []

    def open_(path: Path) -> Ledger:
        ledger = Ledger(path, secret=SECRET, clock=clock, welcome_grant=WELCOME)
        opened.append(ledger)
        return ledger

    yield open_
    for ledger in opened:
        ledger.close()


@pytest.fixture
def ledger(tmp_path: Path, open_ledger: Callable[[Path], Ledger]) -> Ledger:
    """A ledger on a SQLite file in tmp_path; newcomers get a 100 USD welcome grant."""
    return open_ledger(tmp_path / "ledger.sqlite3")


class SwitchApp:
    """An ASGI app that forwards to whichever app a test plugged in (503 when none)."""

    def __init__(self) -> None:
        self.app: Starlette | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        app = self.app or PlainTextResponse("no app plugged in", status_code=503)
        await app(scope, receive, send)


class ServerThread:
    """A uvicorn server for an ASGI app on a free local port, in a background thread."""

    def __init__(self, app: ASGIApp) -> None:
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=0,
            lifespan="off",
            ws="none",
            log_level="warning",
            access_log=False,
        )
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test HTTP server did not start")
            time.sleep(0.005)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self._thread.join(timeout=10)


@pytest.fixture(scope="session")
def _http_server() -> Iterator[tuple[str, SwitchApp]]:
    # One server for the session (starting and stopping uvicorn costs ~0.15 s); each
    # test plugs its own ledger's app in through the switch.
    switch = SwitchApp()
    with ServerThread(switch) as url:
        yield url, switch


@pytest.fixture
def ledger_url(ledger: Ledger, _http_server: tuple[str, SwitchApp]) -> Iterator[str]:
    """The base URL of ``ledger`` served by the REST API (API key ``test-key``)."""
    url, switch = _http_server
    switch.app = create_app(ledger, api_key=API_KEY)
    yield url
    switch.app = None


@pytest.fixture
def http_backend(ledger_url: str) -> Iterator[HttpBackend]:
    """An HttpBackend talking to the served ledger."""
    with HttpBackend(ledger_url, api_key=API_KEY) as client:
        yield client


@pytest.fixture(params=["ledger", "http"])
def backend(request: pytest.FixtureRequest) -> Backend:
    """The contract suite's subject: the in-process ledger, then the same over HTTP."""
    if request.param == "ledger":
        ledger: Ledger = request.getfixturevalue("ledger")
        return ledger
    client: HttpBackend = request.getfixturevalue("http_backend")
    return client
