"""Templates outside the 24-hour window: chosen when rendering, and after a 131047 status.

A reply answering a message more than 24 hours old goes as the template the bot gave it;
a ``failed`` status with error 131047 becomes the number's re-engagement template (once
per member and window), or, without one, an audit entry and nothing sent.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from number_bots import SALON_GREETING
from service_kit import Running, new_phone, service_settings, serving, settle
from test_numbers import SECOND, SECOND_TOKEN, numbers_file

from statehq.testing import webhooks
from statehq.testing.fake_graph import FakeGraph

DAY = 24 * 3600
REENGAGE = """
[reengage]
name = "hello_again"
language = "en_US"
parameters = ["statehq"]

[[number]]
phone_number_id = "{second}"
access_token = "{token}"

[number.reengage]
name = "hola_de_nuevo"
language = "es"
"""


def _service(
    server_url: str, prefix: str, tmp_path: Path, graph: FakeGraph, **overrides: Any
) -> Any:
    settings = service_settings(
        server_url,
        prefix,
        tmp_path / "data",
        graph.url,
        bot="number_bots:salon_bot",
        max_message_age=7 * DAY,  # answer messages a day old (an outage, say)
        **overrides,
    )
    return serving(settings)


@pytest.fixture
def salon(
    server_url: str, prefix: str, tmp_path: Path, fresh_graph: FakeGraph
) -> Iterator[Running]:
    """The salon bot on the default number; re-engagement templates configured."""
    fresh_graph.add_number(SECOND, SECOND_TOKEN)
    path = numbers_file(tmp_path, REENGAGE.format(second=SECOND, token=SECOND_TOKEN))
    with _service(server_url, prefix, tmp_path, fresh_graph, whatsapp_numbers=str(path)) as up:
        yield up


@pytest.fixture
def bare(server_url: str, prefix: str, tmp_path: Path, fresh_graph: FakeGraph) -> Iterator[Running]:
    """The salon bot on the default number, and no numbers file: no re-engagement template."""
    with _service(server_url, prefix, tmp_path, fresh_graph) as up:
        yield up


def _failed(running: Running, phone: str, about: str, *, number: str | None = None) -> None:
    status = webhooks.status(phone, about, "failed", code=131047)
    body = webhooks.payload(statuses=[status], phone_number_id=number or webhooks.PHONE_NUMBER_ID)
    answer = running.post(body)
    assert answer.json()["queued"] == 1, answer.text


def _events(running: Running, channel: str, name: str) -> list[Any]:
    return [e for e in running.audit_events(channel) if e.event == name]


def test_a_reply_past_the_window_goes_as_its_template(
    salon: Running, fresh_graph: FakeGraph
) -> None:
    phone = new_phone()
    salon.send(webhooks.text(phone, "hi", ts=int(time.time()) - DAY - 60))
    (sent,) = fresh_graph.wait_for(1)
    assert sent.body["type"] == "template"
    assert fresh_graph.templates_to(phone) == [
        {
            "name": "salon_reminder",
            "language": {"code": "en_US"},
            "components": [
                {"type": "body", "parameters": [{"type": "text", "text": "your booking"}]}
            ],
        }
    ]
    salon.send(webhooks.text(phone, "hi again"))  # the window is open again: the text
    fresh_graph.wait_for(2)
    assert fresh_graph.messages_to(phone)[-1]["text"]["body"] == SALON_GREETING


def test_a_131047_status_is_retried_as_the_template_once_and_audited(
    salon: Running, fresh_graph: FakeGraph
) -> None:
    phone = new_phone()
    _failed(salon, phone, "wamid.OUT1")
    (sent,) = fresh_graph.wait_for(1)
    assert (sent.phone_number_id, sent.body["to"]) == (webhooks.PHONE_NUMBER_ID, phone)
    assert fresh_graph.templates_to(phone)[0]["name"] == "hello_again"
    (done,) = _events(salon, f"whatsapp:{phone}", "message.reengaged")
    assert done.detail == {
        "message_id": "wamid.OUT1",
        "number": webhooks.PHONE_NUMBER_ID,
        "template": "hello_again",
    }
    (status,) = _events(salon, f"whatsapp:{phone}", "message.status")
    assert status.detail["code"] == 131047

    _failed(salon, phone, "wamid.OUT2")  # again within the window: no second template
    settle(salon)
    assert len(fresh_graph.messages_to(phone)) == 1
    (skipped,) = _events(salon, f"whatsapp:{phone}", "message.not_reengaged")
    assert "already went to this member" in skipped.reason


def test_a_second_number_retries_with_its_own_template_and_token(
    salon: Running, fresh_graph: FakeGraph
) -> None:
    phone = new_phone()
    _failed(salon, phone, "wamid.OUT3", number=SECOND)
    (sent,) = fresh_graph.wait_for(1)
    assert (sent.phone_number_id, sent.authorization) == (SECOND, f"Bearer {SECOND_TOKEN}")
    assert sent.body["template"] == {"name": "hola_de_nuevo", "language": {"code": "es"}}
    (done,) = _events(salon, f"whatsapp:{phone}@{SECOND}", "message.reengaged")
    assert done.detail["number"] == SECOND


def test_without_a_template_a_131047_is_audited_and_nothing_is_sent(
    bare: Running, fresh_graph: FakeGraph
) -> None:
    phone = new_phone()
    _failed(bare, phone, "wamid.OUT4")
    settle(bare)
    assert fresh_graph.received() == []
    (skipped,) = _events(bare, f"whatsapp:{phone}", "message.not_reengaged")
    assert skipped.reason.startswith("no re-engagement template is configured")
    assert skipped.detail == {"message_id": "wamid.OUT4", "number": webhooks.PHONE_NUMBER_ID}
