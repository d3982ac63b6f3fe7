"""Forms (WhatsApp Flows) and files through the real service: signed webhooks over HTTP,
the inbox, the workers, a real store and the fake Graph API.

The expenses example bot runs with a Flow id, so its details step is one WhatsApp Flow;
the web chat gets the same step as plain questions. The credex bot takes no files.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from service_kit import (
    ADMIN_TOKEN,
    Running,
    new_phone,
    service_settings,
    serving,
    settle,
)

from statehq.testing import webhooks as wh
from statehq.testing.fake_graph import FakeGraph

BOT = "examples.expenses.bot:create_bot"
FLOW_ID = "987654321012345"
GOOD = {"title": "Taxi to site", "amount": "12.50", "day": "2026-11-30"}


@pytest.fixture
def expenses(
    server_url: str,
    prefix: str,
    tmp_path: Path,
    fresh_graph: FakeGraph,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Running]:
    """The service running the expenses bot, its details form a WhatsApp Flow."""
    monkeypatch.setenv("EXPENSES_FLOW_ID", FLOW_ID)
    settings = service_settings(server_url, prefix, tmp_path / "data", fresh_graph.url, bot=BOT)
    with serving(settings) as running:
        yield running


def _flow_reply(phone: str, response: dict[str, Any] | str) -> dict[str, Any]:
    raw = response if isinstance(response, str) else json.dumps(response)
    reply = {
        "type": "nfm_reply",
        "nfm_reply": {"response_json": raw, "body": "Sent", "name": "flow"},
    }
    return wh.other(phone, "interactive", reply)


def _image(phone: str, mime: str = "image/jpeg", **extra: Any) -> dict[str, Any]:
    content = {"id": "1479537139650973", "mime_type": mime, "sha256": "Zm9vYmFy", **extra}
    return wh.other(phone, "image", content)


def _replies(graph: FakeGraph, phone: str, count: int) -> list[dict[str, Any]]:
    graph.wait_for(count, predicate=lambda r: r.body.get("to") == phone, timeout=15)
    return graph.messages_to(phone)


def _body(message: dict[str, Any]) -> str:
    if message["type"] == "text":
        return str(message["text"]["body"])
    return str(message["interactive"]["body"]["text"])


def _open_form(service: Running, graph: FakeGraph, phone: str) -> dict[str, Any]:
    service.send(wh.text(phone, "hi"))
    (menu,) = _replies(graph, phone, 1)
    claim = menu["interactive"]["action"]["buttons"][0]["reply"]
    service.send(wh.button(phone, claim["id"], claim["title"]))
    form = _replies(graph, phone, 2)[-1]
    assert form["type"] == "interactive"
    assert form["interactive"]["type"] == "flow"
    parameters: dict[str, Any] = form["interactive"]["action"]["parameters"]
    return parameters


def _version(service: Running, phone: str) -> int:
    key = service.store.route(f"whatsapp:{phone}") or f"whatsapp:{phone}"
    snap = service.store.get(key)
    assert snap is not None
    return snap.version


def test_a_flow_round_trip_merges_the_answers_and_reaches_the_next_step(
    expenses: Running, fresh_graph: FakeGraph
) -> None:
    phone = new_phone()
    parameters = _open_form(expenses, fresh_graph, phone)
    assert parameters["flow_id"] == FLOW_ID
    assert parameters["flow_action"] == "navigate"
    assert parameters["flow_action_payload"] == {"screen": "EXPENSE"}
    assert parameters["flow_message_version"] == "3"
    token = parameters["flow_token"]
    expenses.send(_flow_reply(phone, {**GOOD, "flow_token": token}))
    asked = _replies(fresh_graph, phone, 3)[-1]
    assert "photo of the receipt" in _body(asked)
    steps = [e for e in expenses.audit_events(f"whatsapp:{phone}") if e.event == "flow.step"]
    assert steps[-1].values.get("flow_data.step") == "receipt"
    assert steps[-1].values.get("flow_data.data.amount") == "12.50"


@pytest.mark.parametrize("token", ["forged-token", "replayed"])
def test_a_stale_or_forged_flow_token_is_answered_as_stale_and_changes_nothing(
    expenses: Running, fresh_graph: FakeGraph, token: str
) -> None:
    phone = new_phone()
    current = _open_form(expenses, fresh_graph, phone)["flow_token"]
    sent = 2
    if token == "replayed":  # the first submission moves on; the same form again is stale
        token = current
        expenses.send(_flow_reply(phone, {**GOOD, "flow_token": token}))
        sent = 3
        _replies(fresh_graph, phone, sent)
    version = _version(expenses, phone)
    expenses.send(_flow_reply(phone, {**GOOD, "title": "Dinner", "flow_token": token}))
    stale, again = _replies(fresh_graph, phone, sent + 2)[-2:]
    assert _body(stale) == "That menu has expired; here is the current one."
    if sent == 2:
        assert again["interactive"]["action"]["parameters"]["flow_token"] == current
    else:
        assert "photo of the receipt" in _body(again)
    settle(expenses)
    assert _version(expenses, phone) == version
    steps = [e for e in expenses.audit_events(f"whatsapp:{phone}") if e.event == "flow.step"]
    assert all(e.values.get("flow_data.data.title") != "Dinner" for e in steps)


def test_a_receipt_photo_is_audited_and_taken(expenses: Running, fresh_graph: FakeGraph) -> None:
    phone = new_phone()
    token = _open_form(expenses, fresh_graph, phone)["flow_token"]
    expenses.send(_flow_reply(phone, {**GOOD, "flow_token": token}))
    _replies(fresh_graph, phone, 3)
    expenses.send(_image(phone, caption="taxi"))
    confirm = _replies(fresh_graph, phone, 4)[-1]
    assert "with the photo?" in _body(confirm)
    trail = expenses.audit_events(f"whatsapp:{phone}")
    (media,) = [e for e in trail if e.event == "message.media"]
    assert media.detail["media_id"] == "1479537139650973"
    assert media.detail["mime_type"] == "image/jpeg"
    step = [e for e in trail if e.event == "flow.step"][-1]
    assert step.values.get("flow_data.data.receipt.media_id") == "1479537139650973"


def test_a_bot_that_takes_no_files_answers_politely_and_audits_them(
    service: Running, fresh_graph: FakeGraph
) -> None:
    phone = new_phone()
    service.send(
        _image(phone), wh.other(phone, "document", {"id": "d1", "mime_type": "application/pdf"})
    )
    settle(service)
    (reply,) = fresh_graph.messages_to(phone)
    assert "I can only read text and menu choices here" in reply["text"]["body"]
    assert "that photo" in reply["text"]["body"]
    audited = [e for e in service.audit_events(f"whatsapp:{phone}") if e.event == "message.media"]
    assert sorted((e.detail["kind"], e.detail["mime_type"]) for e in audited) == [
        ("document", "application/pdf"),
        ("image", "image/jpeg"),
    ]


@pytest.mark.parametrize(
    ("message", "why"),
    [
        (lambda p: _flow_reply(p, "not json"), "nfm_reply.response_json is not JSON"),
        (lambda p: _flow_reply(p, "[1]"), "nfm_reply.response_json is a JSON list, not an object"),
        (lambda p: _flow_reply(p, {"flow_token": 42}), "flow_token is not a token string"),
        (
            lambda p: wh.other(p, "interactive", {"type": "nfm_reply", "nfm_reply": {}}),
            "nfm_reply.response_json is NoneType, not text",
        ),
        (lambda p: _image(p, mime="jpeg"), "image.mime_type 'jpeg' is not a mime type"),
        (
            lambda p: wh.other(p, "document", {"mime_type": "application/pdf"}),
            "document.id is missing",
        ),
        (lambda p: wh.other(p, "audio", "voice"), "audio is str, not an object"),
    ],
)
def test_malformed_flow_replies_and_media_are_rejected_with_the_reason(
    service: Running, fresh_graph: FakeGraph, message: Any, why: str
) -> None:
    phone = new_phone()
    answer = service.send(message(phone))
    assert answer.json() == {"queued": 0, "duplicates": 0, "ignored": 0, "rejected": 1}
    (rejected,) = [
        e for e in service.audit_events(f"whatsapp:{phone}") if e.event == "message.rejected"
    ]
    assert why in rejected.reason
    settle(service)
    assert fresh_graph.messages_to(phone) == []


def _web(service: Running, phone: str, text: str = "", choice: str | None = None) -> None:
    body: dict[str, Any] = {"from": phone, "text": text}
    if choice is not None:
        body["choice"] = choice
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    answer = service.http.post("/webhooks/web", json=body, headers=headers)
    assert answer.status_code == 200, answer.text


def _web_replies(service: Running, phone: str, count: int) -> list[dict[str, Any]]:
    """The first ``count`` replies of the web chat's stream to ``phone``."""
    params = {"member": phone, "token": ADMIN_TOKEN}
    deadline = time.monotonic() + 15
    replies: list[dict[str, Any]] = []
    with service.http.stream("GET", "/web/replies", params=params, timeout=15) as stream:
        for line in stream.iter_lines():
            if line.startswith("data: "):
                replies.append(json.loads(line.removeprefix("data: ")))
                if len(replies) == count:
                    return replies
            assert time.monotonic() < deadline, replies
    return replies


def test_the_same_form_is_plain_questions_in_the_web_chat(expenses: Running) -> None:
    phone = new_phone()
    _web(expenses, phone, "hi")
    (menu,) = _web_replies(expenses, phone, 1)
    _web(expenses, phone, choice=menu["options"][0]["id"])
    _web(expenses, phone, "Taxi to site")
    _web(expenses, phone, "12.5")
    _web(expenses, phone, "2026-11-30")
    replies = _web_replies(expenses, phone, 6)
    assert [(r["kind"], r["text"]) for r in replies[1:]] == [
        ("text", "Let's claim an expense."),
        ("text", "What was it for?"),
        ("text", "How much was it? (e.g. 12.50)"),
        ("text", "Which day? (YYYY-MM-DD)"),
        ("text", "Now send a photo of the receipt (or the PDF)."),
    ]
