"""Running the service under test: real HTTP, real workers, a real store, a fake Graph API.

``service`` runs the ASGI app under uvicorn in a thread of the test process (its workers
are threads there too); ``ServeProcess`` runs ``statehq serve`` as a separate process
for the tests that need several processes or kill one. Meta's Graph API is the only
fake: :class:`statehq.testing.FakeGraph`, a real HTTP server speaking its protocol.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from statehq import BotSettings, Settings, StateStore
from statehq.bench.cpu import children
from statehq.channels.whatsapp import GraphSender, WhatsAppDelivery
from statehq.credex.app import build_engine, open_ledger
from statehq.flows import Headquarters
from statehq.service.app import create_app
from statehq.store.inbox import Inbox
from statehq.testing import webhooks
from statehq.testing.fake_graph import FakeGraph

APP_SECRET = "test-app-secret"
VERIFY_TOKEN = "test-verify-token"
ACCESS_TOKEN = "test-access-token"
ADMIN_TOKEN = "test-admin-token"
WEBHOOK = "/webhooks/whatsapp"


def new_phone() -> str:
    """A WhatsApp number no other test uses."""
    return f"2637{random.randrange(10**8):08d}"


def listening_socket() -> socket.socket:
    """A bound, listening TCP socket (IPPROTO_TCP, so asyncio turns Nagle off)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(256)
    return sock


@pytest.fixture(scope="module")
def graph() -> Iterator[FakeGraph]:
    """Meta's Graph API, faked: one server per module, emptied before each test."""
    with FakeGraph(access_token=ACCESS_TOKEN) as fake:
        yield fake


@pytest.fixture
def fresh_graph(graph: FakeGraph) -> FakeGraph:
    """The module's fake Graph API with nothing recorded and no failures queued."""
    graph.reset()
    graph.delay = 0.0
    return graph


def service_settings(
    url: str | None, prefix: str, data_dir: Path, graph_url: str, **overrides: Any
) -> Settings:
    """Settings for a service on the test store (``url`` None: its own embedded Valkey
    under ``data_dir``), answering through the fake Graph API."""
    return Settings(
        redis_url=url,
        key_prefix=prefix,
        data_dir=data_dir,
        workers=2,
        whatsapp_app_secret=APP_SECRET,
        whatsapp_verify_token=VERIFY_TOKEN,
        whatsapp_access_token=ACCESS_TOKEN,
        whatsapp_phone_number_id=webhooks.PHONE_NUMBER_ID,
        whatsapp_graph_url=graph_url,
        admin_token=ADMIN_TOKEN,
    ).override(**overrides)


@dataclass
class Running:
    """A running service: its URL, an HTTP client, a store on the same keys."""

    url: str
    http: httpx.Client
    store: StateStore
    settings: Settings

    def post(self, body: dict[str, Any], *, secret: str = APP_SECRET) -> httpx.Response:
        """POST a webhook body signed the way Meta signs it."""
        raw, headers = webhooks.signed(body, secret)
        return self.http.post(WEBHOOK, content=raw, headers=headers)

    def send(self, *messages: dict[str, Any]) -> httpx.Response:
        """POST messages in one webhook request; asserts the 200."""
        answer = self.post(webhooks.payload(list(messages)))
        assert answer.status_code == 200, answer.text
        return answer

    def audit_events(self, channel: str) -> list[Any]:
        """The audit trail of the session a channel identity now lives under."""
        key = self.store.route(channel) or channel
        return self.store.audit_read(key, limit=1000)


@contextlib.contextmanager
def serving(settings: Settings) -> Iterator[Running]:
    """The app under uvicorn on a free port in this process, until the block ends."""
    sock = listening_socket()
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        create_app(settings), log_level="warning", log_config=None, timeout_graceful_shutdown=2
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive(), "the service stopped while starting"
        assert time.monotonic() < deadline, "the service did not start within 20 s"
        time.sleep(0.01)
    url = f"http://127.0.0.1:{port}"
    try:
        with (
            httpx.Client(base_url=url, timeout=10) as http,
            StateStore.open(url=settings.redis_url, settings=settings) as store,
        ):
            yield Running(url, http, store, settings)
    finally:
        server.should_exit = True
        thread.join(timeout=20)
        sock.close()


@pytest.fixture
def engine(store: StateStore, tmp_path: Path) -> Iterator[Headquarters]:
    """The credex engine on the test's store and a fresh ledger."""
    with open_ledger(BotSettings(data_dir=tmp_path / "data")) as ledger:
        yield build_engine(store, ledger)


@pytest.fixture
def delivery(fresh_graph: FakeGraph) -> Iterator[WhatsAppDelivery]:
    """Replies to the fake Graph API."""
    sender = GraphSender(fresh_graph.url, webhooks.PHONE_NUMBER_ID, ACCESS_TOKEN, backoff=0.01)
    with sender:
        yield WhatsAppDelivery(sender)


@pytest.fixture
def service(
    server_url: str, prefix: str, tmp_path: Path, fresh_graph: FakeGraph
) -> Iterator[Running]:
    """The service in this process, on each topology's server under a private key prefix."""
    settings = service_settings(server_url, prefix, tmp_path / "data", fresh_graph.url)
    with serving(settings) as running:
        yield running


class ServeProcess:
    """``statehq serve`` as a child process (stopped, or killed, by the test)."""

    def __init__(self, settings: Settings, log: Path) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, **settings.to_env(), "STATEHQ_PORT": str(self.port)}
        self.log = log
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "statehq.cli.main", "serve"],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"statehq serve did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.05)

    def worker_pids(self) -> list[int]:
        """The worker processes ``statehq serve`` started (its children)."""
        return sorted(children(self.process.pid))

    def kill(self) -> None:
        """SIGKILL: the process dies where it stands, leases held and all."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        """SIGTERM and wait (uvicorn shuts down gracefully)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def settle(running: Running, timeout: float = 15.0) -> None:
    """Wait until no sender has queued work (every update processed, every reply sent)."""
    inbox = Inbox(running.store.settings)
    deadline = time.monotonic() + timeout
    while running.store.execute(inbox.depth(1))[0]:
        assert time.monotonic() < deadline, "the inbox did not drain"
        time.sleep(0.02)


def answered(graph: FakeGraph, phone: str) -> list[str]:
    """The message ids the replies to ``phone`` answered, in the order the replies came."""
    order: list[str] = []
    for body in graph.messages_to(phone):
        message = body["biz_opaque_callback_data"].split("#")[0]
        if not order or order[-1] != message:
            order.append(message)
    return order
