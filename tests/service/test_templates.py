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

from statehq.store.audit import AuditEvent
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


def test_a_reply_refused_with_131047_at_once_goes_as_its_template_audited(
    bare: Running, fresh_graph: FakeGraph
) -> None:
    # Meta's clock says the window closed though the message looks fresh: the send is
    # refused synchronously. The reply's own template goes instead, with the same id.
    phone = new_phone()
    fresh_graph.fail_next(1, code=131047, to=phone)
    message = webhooks.text(phone, "hi")
    bare.send(message)
    refused, sent = fresh_graph.wait_for(2)
    assert (refused.ok, refused.body["type"]) == (False, "text")
    assert (sent.ok, sent.body["type"]) == (True, "template")
    assert "_template" not in {*refused.body, *sent.body}  # never shown to Meta
    assert sent.body["biz_opaque_callback_data"] == f"{message['id']}#0"
    assert fresh_graph.templates_to(phone)[0]["name"] == "salon_reminder"
    settle(bare)
    (done,) = _events(bare, f"whatsapp:{phone}", "message.templated")
    assert done.detail == {
        "reply": f"{message['id']}#0",
        "number": webhooks.PHONE_NUMBER_ID,
        "template": "salon_reminder",
        "code": 131047,
    }
    assert _events(bare, f"whatsapp:{phone}", "message.failed") == []


def test_a_reply_whose_template_is_refused_too_is_audited_as_failed_once(
    bare: Running, fresh_graph: FakeGraph
) -> None:
    phone = new_phone()
    fresh_graph.fail_next(2, code=131047, to=phone)  # the text, then its template
    bare.send(webhooks.text(phone, "hi"))
    fresh_graph.wait_for(2)
    settle(bare)
    (failed,) = _events(bare, f"whatsapp:{phone}", "message.failed")
    assert (failed.detail["code"], failed.detail["attempts"]) == ("131047", 2)
    assert "template salon_reminder" in failed.detail["error"]
    assert _events(bare, f"whatsapp:{phone}", "message.templated") == []
    assert len(fresh_graph.received()) == 2  # no loop: one try of each


def test_one_template_a_window_even_for_a_member_with_a_long_trail(
    salon: Running, fresh_graph: FakeGraph
) -> None:
    # A chatty day: over a page of audit entries before the template went. It is
    # still found, so a second 131047 sends nothing.
    phone = new_phone()
    channel = f"whatsapp:{phone}"
    for n in range(1100):
        salon.store.audit_append(channel, AuditEvent("message.status", channel, "", {"n": n}))
    _failed(salon, phone, "wamid.LONG1")
    fresh_graph.wait_for(1)
    settle(salon)
    _failed(salon, phone, "wamid.LONG2")
    settle(salon)
    assert len(fresh_graph.templates_to(phone)) == 1
    assert len(_events(salon, channel, "message.not_reengaged")) == 1


def test_a_second_numbers_reply_refused_with_131047_goes_as_its_template_from_it(
    salon: Running, fresh_graph: FakeGraph
) -> None:
    phone = new_phone()
    fresh_graph.fail_next(1, code=131047, to=phone)
    message = webhooks.text(phone, "hi")
    answer = salon.post(webhooks.payload([message], phone_number_id=SECOND))
    assert answer.json()["queued"] == 1, answer.text
    refused, sent = fresh_graph.wait_for(2)
    assert (refused.phone_number_id, sent.phone_number_id) == (SECOND, SECOND)
    assert sent.authorization == f"Bearer {SECOND_TOKEN}"
    assert "_from_number" not in sent.body
    assert sent.body["template"]["name"] == "salon_reminder"
    settle(salon)
    (done,) = _events(salon, f"whatsapp:{phone}@{SECOND}", "message.templated")
    assert (done.detail["number"], done.detail["reply"]) == (SECOND, f"{message['id']}#0")
