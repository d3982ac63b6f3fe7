"""Several WhatsApp numbers in one service: each number's bot, token and app secret.

The default number is the ``WHATSAPP_*`` one (its members stay ``whatsapp:<wa_id>``);
a numbers file adds a second with its own token, bot and app secret (its members are
``whatsapp:<wa_id>@<phone number id>``). Real service over HTTP, real store, the fake
Graph API serving both numbers, each accepting only its own token.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from number_bots import PLAIN_GREETING, SALON_GREETING
from service_kit import (
    ACCESS_TOKEN,
    APP_SECRET,
    Running,
    ServeProcess,
    new_phone,
    service_settings,
    serving,
    settle,
)

from statehq.store.embedded import EmbeddedValkey
from statehq.testing import webhooks
from statehq.testing.fake_graph import FakeGraph

SECOND = "106540352242923"
SECOND_TOKEN = "second-number-access-token"
SECOND_SECRET = "second-number-app-secret"
SECRET_VARIABLE = "STATEHQ_TEST_SECOND_APP_SECRET"


def numbers_file(folder: Path, text: str) -> Path:
    """A numbers file holding ``text``."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "numbers.toml"
    path.write_text(text)
    return path


SECOND_NUMBER = f"""
[[number]]
phone_number_id = "{SECOND}"
access_token = "{SECOND_TOKEN}"
bot = "number_bots:salon_bot"
app_secret_env = "{SECRET_VARIABLE}"
"""


@pytest.fixture
def two_numbers(
    server_url: str,
    prefix: str,
    tmp_path: Path,
    fresh_graph: FakeGraph,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Running]:
    """The service answering the default number (the plain bot) and a second (the salon)."""
    monkeypatch.setenv(SECRET_VARIABLE, SECOND_SECRET)
    fresh_graph.add_number(SECOND, SECOND_TOKEN)
    path = numbers_file(tmp_path, SECOND_NUMBER)
    settings = service_settings(
        server_url,
        prefix,
        tmp_path / "data",
        fresh_graph.url,
        bot="number_bots:plain_bot",
        whatsapp_numbers=str(path),
    )
    with serving(settings) as running:
        yield running


def _to_second(running: Running, *messages: dict[str, Any], secret: str = SECOND_SECRET) -> Any:
    body = webhooks.payload(list(messages), phone_number_id=SECOND)
    return running.post(body, secret=secret)


def test_each_number_is_answered_by_its_bot_from_itself_with_its_token(
    two_numbers: Running, fresh_graph: FakeGraph
) -> None:
    phone = new_phone()
    two_numbers.send(webhooks.text(phone, "hi"))
    answer = _to_second(two_numbers, webhooks.text(phone, "hi"))
    assert answer.json()["queued"] == 1, answer.text
    fresh_graph.wait_for(2)
    settle(two_numbers)
    (first,) = fresh_graph.sent_from(webhooks.PHONE_NUMBER_ID)
    (second,) = fresh_graph.sent_from(SECOND)
    assert (first.body["to"], first.body["text"]["body"]) == (phone, PLAIN_GREETING)
    assert first.authorization == f"Bearer {ACCESS_TOKEN}"
    assert (second.body["to"], second.body["text"]["body"]) == (phone, SALON_GREETING)
    assert second.authorization == f"Bearer {SECOND_TOKEN}"
    assert "_from_number" not in second.body  # statehq's routing never reaches Meta

    # One member, two numbers: two conversations, each with its own session and trail.
    default, other = f"whatsapp:{phone}", f"whatsapp:{phone}@{SECOND}"
    one, two = two_numbers.store.get(default), two_numbers.store.get(other)
    assert one is not None
    assert two is not None
    assert one.doc["channel"] == {"type": "whatsapp", "identifier": phone}
    assert two.doc["channel"] == {"type": "whatsapp", "identifier": f"{phone}@{SECOND}"}
    assert {e.channel for e in two_numbers.audit_events(other) if e.channel} == {other}

    metrics = two_numbers.http.get("/metrics").text
    for number in (webhooks.PHONE_NUMBER_ID, SECOND):
        for direction in ("received", "sent"):
            line = re.search(
                rf'statehq_whatsapp_messages_total\{{direction="{direction}",'
                rf'number="{number}"\}} (\d+)',
                metrics,
            )
            assert line is not None, (number, direction)
            assert int(line.group(1)) >= 1, (number, direction)


def test_a_number_admits_only_requests_signed_with_its_own_app_secret(
    two_numbers: Running, fresh_graph: FakeGraph
) -> None:
    phone = new_phone()
    # Signed with the default number's secret: not the second number's app, skipped.
    answer = _to_second(two_numbers, webhooks.text(phone, "hi"), secret=APP_SECRET)
    assert answer.status_code == 200
    assert (answer.json()["queued"], answer.json()["ignored"]) == (0, 1)
    # Signed with a secret no number has: refused whole.
    assert _to_second(two_numbers, webhooks.text(phone, "hi"), secret="other").status_code == 403
    # A number this deployment does not answer: acknowledged and skipped.
    stranger = webhooks.payload([webhooks.text(phone, "hi")], phone_number_id="999")
    assert two_numbers.post(stranger).json()["ignored"] == 1
    settle(two_numbers)
    assert fresh_graph.messages_to(phone) == []
    assert two_numbers.store.get(f"whatsapp:{phone}@{SECOND}") is None


def test_the_default_number_keeps_its_identities_unchanged(
    two_numbers: Running, fresh_graph: FakeGraph
) -> None:
    phone = new_phone()
    two_numbers.send(webhooks.text(phone, "hello"))
    fresh_graph.wait_for(1)
    settle(two_numbers)
    assert two_numbers.store.get(f"whatsapp:{phone}") is not None
    assert [r.phone_number_id for r in fresh_graph.received()] == [webhooks.PHONE_NUMBER_ID]


def test_statehq_serve_worker_processes_answer_each_number_from_itself(
    embedded_server: EmbeddedValkey,
    prefix: str,
    tmp_path: Path,
    fresh_graph: FakeGraph,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The numbers file and the secrets it names by variable reach worker processes."""
    monkeypatch.setenv(SECRET_VARIABLE, SECOND_SECRET)
    monkeypatch.chdir(Path(__file__).parent)  # number_bots.py is importable from here
    fresh_graph.add_number(SECOND, SECOND_TOKEN)
    path = numbers_file(tmp_path, SECOND_NUMBER)
    settings = service_settings(
        embedded_server.url,
        prefix,
        tmp_path / "data",
        fresh_graph.url,
        bot="number_bots:plain_bot",
        whatsapp_numbers=str(path),
    )
    serve = ServeProcess(settings, tmp_path / "serve.log")
    try:
        phone = new_phone()
        body = webhooks.payload([webhooks.text(phone, "hi")], phone_number_id=SECOND)
        raw, headers = webhooks.signed(body, SECOND_SECRET)
        answer = httpx.post(f"{serve.url}/webhooks/whatsapp", content=raw, headers=headers)
        assert answer.json()["queued"] == 1, answer.text
        (sent,) = fresh_graph.wait_for(1, timeout=20)
        assert (sent.phone_number_id, sent.authorization) == (SECOND, f"Bearer {SECOND_TOKEN}")
        assert sent.body["text"]["body"] == SALON_GREETING
    finally:
        serve.stop()
