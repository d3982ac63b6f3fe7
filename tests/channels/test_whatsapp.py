"""WhatsApp webhook parsing against Meta's real-shaped updates (../shared/fixtures)."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import pytest

from statehq.channels.base import inbound_of
from statehq.channels.whatsapp import (
    SignatureError,
    parse_webhook,
    render,
    verify_signature,
)
from statehq.flows import Buttons, Option, OptionList, Text

FIXTURES = Path(__file__).parents[1] / "fixtures" / "whatsapp-updates"  # from pywa, MIT
OURS = "1122334455667"


def load(name: str, example: str) -> dict[str, Any]:
    payload: dict[str, Any] = json.loads((FIXTURES / name).read_text())[example]
    return copy.deepcopy(payload)


def every_update() -> list[tuple[str, str]]:
    return [
        (path.name, example)
        for path in sorted(FIXTURES.glob("*.json"))
        for example in json.loads(path.read_text())
    ]


@pytest.mark.parametrize(("name", "example"), every_update())
def test_every_kind_of_update_parses_without_failing(name: str, example: str) -> None:
    batch = parse_webhook(load(name, example), OURS)
    handled = len(batch.messages) + len(batch.statuses) + len(batch.skipped) + len(batch.rejected)
    assert handled >= 1  # each update is either handled or skipped with a reason


def test_the_fixture_set_is_complete() -> None:
    assert len(every_update()) >= 40


@pytest.mark.parametrize(
    ("name", "example", "kind", "text", "choice"),
    [
        ("message.json", "text", "text", None, None),
        ("callback_button.json", "button", "button", "title", "callback_data"),
        ("callback_button.json", "quick_reply", "quick_reply", "title", "callback_data"),
        ("callback_selection.json", "callback", "list", "title", "callback_data"),
        ("message.json", "current_location", "unsupported", "", None),
        ("system.json", "identity_change", "system", "", None),
    ],
)
def test_message_kinds(
    name: str, example: str, kind: str, text: str | None, choice: str | None
) -> None:
    (message,) = parse_webhook(load(name, example), OURS).messages
    assert message.kind == kind
    assert message.choice == choice
    if text is not None:
        assert message.text == text
    inbound = inbound_of(message)
    assert (inbound is None) == (kind in ("unsupported", "system"))
    if inbound is not None:
        assert inbound.channel.key == message.channel


def test_a_flow_reply_carries_its_response() -> None:
    (message,) = parse_webhook(load("flow_completion.json", "completion"), OURS).messages
    assert message.kind == "flow"
    assert "flow_token" in message.text


def test_statuses_carry_their_error_code() -> None:
    batch = parse_webhook(load("message_status.json", "failed"), OURS)
    (status,) = batch.statuses
    assert (status.status, status.error_code) == ("failed", 130472)
    assert batch.messages == ()


def test_a_foreign_number_and_unknown_fields_are_skipped_with_a_reason() -> None:
    foreign = parse_webhook(load("message.json", "text"), "999")
    assert foreign.messages == ()
    assert "phone_number_id '1122334455667' is not ours" in foreign.skipped
    echo = parse_webhook(load("outgoing_message.json", "text"), OURS)
    assert echo.messages == ()
    assert echo.skipped == ("field 'smb_message_echoes' is not handled",)
    assert parse_webhook({"object": "page"}, OURS).skipped == (
        "object 'page' is not whatsapp_business_account",
    )


def test_every_message_of_a_batch_is_read() -> None:
    batch = load("message.json", "text")
    value = batch["entry"][0]["changes"][0]["value"]
    first = value["messages"][0]
    value["messages"] = [{**first, "id": f"wamid.{n}"} for n in range(5)]
    batch["entry"].append(copy.deepcopy(batch["entry"][0]))
    ids = [m.id for m in parse_webhook(batch, OURS).messages]
    assert ids == [f"wamid.{n}" for n in range(5)] * 2


def sign(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def test_signatures() -> None:
    body = json.dumps({"text": "Mhoro 👋 ñ"}).encode()  # ensure_ascii: \\uXXXX, as Meta sends
    verify_signature(body, sign(body, "s3cret"), "s3cret")
    with pytest.raises(SignatureError) as missing:
        verify_signature(body, None, "s3cret")
    assert missing.value.status == 401
    with pytest.raises(SignatureError) as wrong:
        verify_signature(body + b" ", sign(body, "s3cret"), "s3cret")
    assert wrong.value.status == 403


def test_replies_render_as_graph_api_bodies() -> None:
    text = render(Text("Hello"), "263771234567")
    assert text["type"] == "text"
    assert text["text"] == {"body": "Hello", "preview_url": False}
    assert text["to"] == "263771234567"
    assert text["messaging_product"] == "whatsapp"
    buttons = render(Buttons("Pick", (Option("yes", "Yes"), Option("no", "No"))), "1")
    assert buttons["interactive"]["type"] == "button"
    assert buttons["interactive"]["action"]["buttons"][1] == {
        "type": "reply",
        "reply": {"id": "no", "title": "No"},
    }
    listed = render(OptionList("Pick", (Option("a", "A", "first"), Option("b", "B"))), "1")
    action = listed["interactive"]["action"]
    assert action["button"] == "Choose"
    assert action["sections"] == [
        {"rows": [{"id": "a", "title": "A", "description": "first"}, {"id": "b", "title": "B"}]}
    ]
