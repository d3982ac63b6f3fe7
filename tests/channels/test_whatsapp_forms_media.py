"""WhatsApp Flow replies and files: parsed from Meta's real-shaped updates, malformed ones
rejected with the reason, and Flow messages rendered as the Graph API takes them."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from statehq.channels.base import inbound_of
from statehq.channels.whatsapp import parse_webhook, render
from statehq.flows import FormMessage, FormReply, Media, MessageLimitError

FIXTURES = Path(__file__).parents[1] / "fixtures" / "whatsapp-updates"
OURS = "1122334455667"


def load(name: str, example: str) -> dict[str, Any]:
    payload: dict[str, Any] = json.loads((FIXTURES / name).read_text())[example]
    return copy.deepcopy(payload)


def _message(payload: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = payload["entry"][0]["changes"][0]["value"]["messages"][0]
    return found


@pytest.mark.parametrize(
    ("example", "media"),
    [
        ("image", Media("image", "65463453", "image/jpeg", "4654+8g=")),
        ("media_with_url", Media("image", "65463453", "image/jpeg", "4654+8g=")),
        (
            "document",
            Media(
                "document",
                "1234567890987654321",
                "application/pdf",
                "grwfwe/ZPx0wAbdfbdeFUNItPZ0RylL8gGUvdt3YFqc18SY=",
                "caption",
                "filename.pdf",
            ),
        ),
        ("voice", None),
        ("video", None),
        ("static_sticker", None),
    ],
)
def test_files_are_read_with_their_media_id_and_type(example: str, media: Media | None) -> None:
    (update,) = parse_webhook(load("message.json", example), OURS).messages
    raw = _message(load("message.json", example))
    inbound = inbound_of(update)
    assert inbound is not None
    assert inbound.text == ""
    assert inbound.media is not None
    assert update.kind == inbound.media.kind == raw["type"]
    assert inbound.media.id == raw[raw["type"]]["id"]
    if media is not None:
        assert inbound.media == media
    if example == "voice":
        assert (inbound.media.mime_type, inbound.media.voice) == ("audio/ogg", True)
        assert inbound.media.noun == "voice note"


def test_a_flow_reply_carries_its_token_and_answers() -> None:
    (update,) = parse_webhook(load("flow_completion.json", "completion"), OURS).messages
    inbound = inbound_of(update)
    assert inbound is not None
    assert inbound.form is not None
    assert inbound.text == ""
    assert inbound.form.token == "AQAAAAACS5FpgQ_cAAAAAD0QI3s."
    assert inbound.form.values["delivery_rating"] == "4"
    assert "flow_token" not in inbound.form.values


def test_a_flow_reply_without_a_token_reaches_the_engine_as_tokenless() -> None:
    # Meta sends one for a Flow sent without a token: never current, answered as stale.
    (update,) = parse_webhook(load("flow_completion.json", "without_flow_token"), OURS).messages
    inbound = inbound_of(update)
    assert inbound is not None
    assert inbound.form == FormReply(None, inbound.form.values)


def _with(example: str, change: Any) -> dict[str, Any]:
    name = "flow_completion.json" if example == "completion" else "message.json"
    payload = load(name, example)
    change(_message(payload))
    return payload


def _response(value: Any) -> Any:
    def set_it(message: dict[str, Any]) -> None:
        message["interactive"]["nfm_reply"]["response_json"] = value

    return set_it


@pytest.mark.parametrize(
    ("example", "change", "why"),
    [
        ("completion", _response("{"), "nfm_reply.response_json is not JSON"),
        ("completion", _response('"text"'), "is a JSON str, not an object"),
        ("completion", _response({"a": 1}), "nfm_reply.response_json is dict, not text"),
        ("completion", _response('{"flow_token": ""}'), "flow_token is not a token string"),
        ("image", lambda m: m["image"].pop("id"), "image.id is missing"),
        ("image", lambda m: m["image"].pop("mime_type"), "image.mime_type is missing"),
        ("image", lambda m: m["image"].update(id="a b"), "image.id 'a b' is not a media id"),
        ("document", lambda m: m["document"].update(caption=7), "document.caption is int"),
        ("video", lambda m: m.update(video=[1]), "video is list, not an object"),
        ("audio", lambda m: m["audio"].update(sha256="!"), "audio.sha256 '!' is not a digest"),
    ],
)
def test_malformed_flow_replies_and_files_are_rejected_with_the_reason(
    example: str, change: Any, why: str
) -> None:
    batch = parse_webhook(_with(example, change), OURS)
    assert batch.messages == ()
    (rejected,) = batch.rejected
    assert rejected.reason == "malformed"
    assert why in rejected.detail
    assert rejected.sender == "972987654321"


def test_a_form_renders_as_a_graph_flow_message() -> None:
    form = FormMessage(
        "Fill in the claim.", "123", "Open form", "EXPENSE", "tok", (("name", "Ann"),)
    )
    body = render(form, "263771234567")
    assert body["type"] == "interactive"
    assert body["interactive"] == {
        "type": "flow",
        "body": {"text": "Fill in the claim."},
        "action": {
            "name": "flow",
            "parameters": {
                "flow_message_version": "3",
                "flow_token": "tok",
                "flow_id": "123",
                "flow_cta": "Open form",
                "flow_action": "navigate",
                "flow_action_payload": {"screen": "EXPENSE", "data": {"name": "Ann"}},
            },
        },
    }
    draft = render(FormMessage("b", "1", "Open", "S", "t", draft=True), "2637")
    assert draft["interactive"]["action"]["parameters"]["mode"] == "draft"
    assert "data" not in draft["interactive"]["action"]["parameters"]["flow_action_payload"]


@pytest.mark.parametrize(
    ("cta", "why"), [("x" * 21, "limit is 20"), ("Go 🚀", "cannot hold emoji"), (" ", "empty")]
)
def test_a_form_call_to_action_keeps_whatsapps_limits(cta: str, why: str) -> None:
    with pytest.raises(MessageLimitError, match=why):
        FormMessage("body", "1", cta, "S", "t")
