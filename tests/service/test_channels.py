"""Adding a channel is one module and one registration: a tiny channel, end to end.

The ``echo`` channel below is all a channel is: its identities' type, a webhook that
turns a request into updates (refusing what is not its own), and a way out that renders
and sends replies. Registered, it gets ``/webhooks/echo`` and a delivery in every worker,
and a conversation runs through the same inbox, workers and bot as WhatsApp.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from echo_channel import LOCK, SENT, EchoChannel
from service_kit import ServeProcess, service_settings, serving, settle

from statehq.channels.registry import register_channel, unregister_channel
from statehq.store.embedded import EmbeddedValkey
from statehq.testing.fake_graph import FakeGraph


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


@pytest.mark.slow
def test_a_channel_named_in_statehq_channels_works_in_every_worker_process(
    tmp_path: Path, fresh_graph: FakeGraph
) -> None:
    outbox = tmp_path / "echo-outbox.jsonl"
    settings = service_settings(
        None, "echo", tmp_path / "data", fresh_graph.url, channels="echo_channel:EchoChannel"
    )
    here = Path(__file__).parent  # where echo_channel.py is: the serve's current directory
    cwd = Path.cwd()
    os.environ["ECHO_OUTBOX"] = str(outbox)
    os.chdir(here)
    try:
        serve = ServeProcess(settings, tmp_path / "serve.log")
    finally:
        os.chdir(cwd)
        del os.environ["ECHO_OUTBOX"]
    try:
        message = {"from": "263770002222", "id": "p1", "text": "hi"}
        answer = httpx.post(f"{serve.url}/webhooks/echo", json=message, headers={"x-echo-key": "k"})
        assert answer.json()["queued"] == 1, answer.text
        deadline = time.monotonic() + 20
        while not outbox.exists() or "p1#0" not in outbox.read_text():
            assert time.monotonic() < deadline, (tmp_path / "serve.log").read_text()[-2000:]
            time.sleep(0.05)
        sent = [json.loads(line) for line in outbox.read_text().splitlines()]
        assert "Welcome to credex" in sent[0]["text"]
        assert len(serve.worker_pids()) == settings.workers  # sent by a worker process
    finally:
        serve.stop()
