"""Adding a channel is one module and one registration: a tiny channel, end to end.

The ``echo`` channel below is all a channel is: its identities' type, a webhook that
turns a request into updates (refusing what is not its own), and a way out that renders
and sends replies. Registered, it gets ``/webhooks/echo`` and a delivery in every worker,
and a conversation runs through the same inbox, workers and bot as WhatsApp.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from service_kit import service_settings, serving, settle

from statehq import Settings
from statehq.channels.base import Received, Refusal, reply_entries
from statehq.channels.registry import register_channel, unregister_channel
from statehq.flows import Message
from statehq.store.embedded import EmbeddedValkey
from statehq.store.inbox import Update
from statehq.testing.fake_graph import FakeGraph

SENT: list[dict[str, Any]] = []
LOCK = threading.Lock()


@dataclass(frozen=True)
class Report:
    ok: bool = True
    failure_label: str = ""
    detail: str = ""
    attempts: int = 1


class EchoDelivery:
    def render(self, update: Update, replies: list[Message]) -> list[str]:
        bodies = [
            {"text": getattr(m, "body", ""), "options": [o.id for o in m.options]} for m in replies
        ]
        return reply_entries(update, bodies)

    def deliver(self, body: dict[str, Any]) -> Report:
        with LOCK:
            SENT.append(body)
        return Report()


class EchoChannel:
    type = "echo"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def verify(self, params: Mapping[str, str]) -> tuple[int, str]:
        return 200, "echo"

    def receive(self, headers: Mapping[str, str], body: bytes) -> Received:
        if headers.get("x-echo-key") != "k":
            raise Refusal(401, "missing x-echo-key")
        data = json.loads(body)
        update = Update(
            data["id"], f"echo:{data['from']}", "text", int(time.time()), data.get("text", "")
        )
        if data.get("choice"):
            update = Update(
                update.id, update.channel, "button", update.timestamp, "", data["choice"]
            )
        return Received((update,))

    @contextmanager
    def delivery(self, settings: Settings) -> Iterator[EchoDelivery]:
        yield EchoDelivery()


@pytest.fixture
def echo_service(
    embedded_server: EmbeddedValkey, prefix: str, tmp_path: Path, fresh_graph: FakeGraph
) -> Iterator[Any]:
    register_channel("echo", EchoChannel)
    SENT.clear()
    try:
        settings = service_settings(embedded_server.url, prefix, tmp_path / "data", fresh_graph.url)
        with serving(settings) as running:
            yield running
    finally:
        unregister_channel("echo")


def _replies_to(message_id: str) -> list[dict[str, Any]]:
    with LOCK:
        return [b for b in SENT if b["biz_opaque_callback_data"].startswith(f"{message_id}#")]


def _wait(message_id: str) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 15
    while not (found := _replies_to(message_id)):
        assert time.monotonic() < deadline, f"no reply to {message_id}"
        time.sleep(0.02)
    return found


def test_a_registered_channel_runs_a_conversation_through_the_same_pipeline(
    echo_service: Any,
) -> None:
    http = echo_service.http
    assert http.get("/webhooks/echo").text == "echo"
    refused = http.post("/webhooks/echo", json={"from": "263770001111", "id": "e0", "text": "hi"})
    assert refused.status_code == 401  # not the channel's: nothing queued
    key = {"x-echo-key": "k"}
    hello = http.post(
        "/webhooks/echo", json={"from": "263770001111", "id": "e1", "text": "hi"}, headers=key
    )
    assert hello.json() == {"queued": 1, "duplicates": 0, "ignored": 0, "rejected": 0}
    (welcome,) = _wait("e1")
    assert "Welcome to credex" in welcome["text"]
    learn = next(option for option in welcome["options"] if option.endswith(":learn"))
    tap = {"from": "263770001111", "id": "e2", "choice": learn}
    assert http.post("/webhooks/echo", json=tap, headers=key).json()["queued"] == 1
    about = _wait("e2")
    assert any("community credit" in body["text"] for body in about)
    again = http.post("/webhooks/echo", json=tap, headers=key)  # a redelivery
    assert again.json()["duplicates"] == 1
    settle(echo_service)
    assert _replies_to("e0") == []
    trail = echo_service.store.audit_read("echo:263770001111", limit=100)
    assert trail[0].event == "session.started"
    assert echo_service.http.get("/").json()["webhooks"]["echo"] == "/webhooks/echo"
