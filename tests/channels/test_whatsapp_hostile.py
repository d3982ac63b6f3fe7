"""Signed but malformed updates: each one judged alone, none able to fail the batch."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from statehq.channels.base import inbound_of
from statehq.channels.whatsapp import parse_webhook
from statehq.testing import webhooks as wh

OURS = wh.PHONE_NUMBER_ID
WRONG_TYPES: list[Any] = ["a string", ["a", "list"], True, 1.5, None, 7]


def _value(body: dict[str, Any]) -> dict[str, Any]:
    value: dict[str, Any] = body["entry"][0]["changes"][0]["value"]
    return value


@pytest.mark.parametrize("metadata", WRONG_TYPES)
def test_metadata_of_the_wrong_type_is_not_ours_never_a_crash(metadata: Any) -> None:
    body = wh.payload([wh.text("263771000001", "hi")])
    _value(body)["metadata"] = metadata
    batch = parse_webhook(body, OURS)
    assert batch.messages == ()
    assert batch.skipped == ("phone_number_id None is not ours",)
    # With no number configured, the message itself is fine.
    assert len(parse_webhook(body, None).messages) == 1


@pytest.mark.parametrize("profile", WRONG_TYPES)
def test_a_contact_profile_of_the_wrong_type_leaves_the_message_nameless(profile: Any) -> None:
    body = wh.payload([wh.text("263771000001", "hi")])
    _value(body)["contacts"][0]["profile"] = profile
    (message,) = parse_webhook(body, OURS).messages
    assert (message.channel, message.text, message.name) == ("whatsapp:263771000001", "hi", None)


@pytest.mark.parametrize("contacts", [*WRONG_TYPES, [1, "x", None], [{"wa_id": 5}]])
def test_contacts_of_the_wrong_shape_are_ignored(contacts: Any) -> None:
    body = wh.payload([wh.text("263771000001", "hi")])
    _value(body)["contacts"] = contacts
    (message,) = parse_webhook(body, OURS).messages
    assert message.channel == "whatsapp:263771000001"


def test_a_lone_surrogate_in_free_text_becomes_the_replacement_character() -> None:
    tap = wh.button("263771000001", "menu\ud800", "Me\udc00nu")
    batch = parse_webhook(wh.payload([wh.text("263771000001", "a\ud800b"), tap]), OURS)
    text, button = batch.messages
    assert text.text == "a\ufffdb"
    assert (button.text, button.choice) == ("Me\ufffdnu", "menu\ufffd")
    assert batch.rejected == ()


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("id", "wamid.\ud800", "bad_id"),
        ("id", "", "bad_id"),
        ("id", ["wamid.x"], "bad_id"),
        ("id", "x" * 300, "bad_id"),
        ("id", " ", "bad_id"),
        ("id", "\u3000\x85", "bad_id"),
        ("from", "2637\ud800", "bad_sender"),
        ("from", "", "bad_sender"),
        ("from", "263{77}", "bad_sender"),
        ("from", 263771000001, "bad_sender"),
        ("from", "<WHATSAPP_USER_PHONE_NUMBER>", "bad_sender"),
        ("timestamp", "9" * 400, "bad_timestamp"),
        ("timestamp", "9" * 4000, "bad_timestamp"),
        ("timestamp", "9000000001", "bad_timestamp"),
        ("timestamp", "-5", "bad_timestamp"),
        ("timestamp", "\u00b2", "bad_timestamp"),
        ("timestamp", 1.5, "bad_timestamp"),
        ("timestamp", None, "bad_timestamp"),
        ("text", {"body": {"nested": 1}}, "malformed"),
        ("text", {"body": None}, "malformed"),
    ],
)
def test_a_bad_update_is_rejected_alone_and_the_rest_of_the_batch_goes_on(
    field: str, value: Any, reason: str
) -> None:
    good_before = wh.text("263771000001", "first")
    bad = {**wh.text("263771000002", "poison"), field: value}
    good_after = wh.text("263771000003", "last")
    body = wh.payload([good_before])
    _value(body)["messages"] = [good_before, bad, good_after]
    batch = parse_webhook(body, OURS)
    assert [m.text for m in batch.messages] == ["first", "last"]
    (rejected,) = batch.rejected
    assert rejected.reason == reason
    assert rejected.detail
    if reason != "bad_sender":
        assert rejected.sender == "263771000002"  # its trail records it


@pytest.mark.parametrize(
    ("field", "value"),
    [("id", "wamid.\ud800"), ("recipient_id", "2637\udc00"), ("status", "de\ud800livered")],
)
def test_a_bad_status_is_rejected_alone(field: str, value: Any) -> None:
    good = wh.status("263771000001", "wamid.a", "delivered")
    bad = {**wh.status("263771000001", "wamid.b", "read"), field: value}
    batch = parse_webhook(wh.payload(statuses=[good, bad]), OURS)
    assert [s.about for s in batch.statuses] == ["wamid.a"]
    assert len(batch.rejected) == 1


def test_a_status_error_code_must_be_a_real_integer() -> None:
    bad_code = wh.status("263771000001", "wamid.a", "failed", code=1)
    bad_code["errors"][0]["code"] = True  # bool is an int to Python, not to Meta
    (status,) = parse_webhook(wh.payload(statuses=[bad_code]), OURS).statuses
    assert status.error_code is None


def test_a_message_is_from_its_own_sender_never_another_contact() -> None:
    # C's message arrives with a contact entry for B: it is still C's.
    body = wh.payload([wh.text("263770000003", "from C")])
    _value(body)["contacts"] = [{"profile": {"name": "B"}, "wa_id": "263770000002"}]
    (message,) = parse_webhook(body, OURS).messages
    assert (message.channel, message.name) == ("whatsapp:263770000003", None)
    # One change with messages from A and C and a single contact (A).
    body = wh.payload([wh.text("263770000001", "from A")])
    _value(body)["messages"].append(wh.text("263770000003", "from C"))
    _value(body)["contacts"] = [{"profile": {"name": "A"}, "wa_id": "263770000001"}]
    a, c = parse_webhook(body, OURS).messages
    assert (a.channel, a.name) == ("whatsapp:263770000001", "A")
    assert (c.channel, c.name) == ("whatsapp:263770000003", None)


def test_a_message_without_from_uses_its_own_user_id() -> None:
    message = wh.text("263770000001", "hi")
    del message["from"]
    message["from_user_id"] = "US.1349120865"
    body = wh.payload([wh.text("263770000009", "x")])
    _value(body)["messages"] = [message]
    _value(body)["contacts"] = [{"profile": {"name": "U"}, "user_id": "US.1349120865"}]
    (parsed,) = parse_webhook(body, OURS).messages
    assert (parsed.channel, parsed.name) == ("whatsapp:US.1349120865", "U")


@pytest.mark.parametrize(
    "interactive",
    [
        {"type": "call_permission_reply", "call_permission_reply": {"response": "accept"}},
        {"type": "something_new", "something_new": {}},
        {"type": 5},
    ],
)
def test_interactive_replies_that_are_not_conversation_input_are_notices(
    interactive: dict[str, Any],
) -> None:
    message = wh.other("263770000001", "interactive", interactive)
    (parsed,) = parse_webhook(wh.payload([message]), OURS).messages
    assert parsed.kind == "notice"
    assert inbound_of(parsed) is None


def test_a_reaction_is_news_not_a_question() -> None:
    message = wh.other("263770000001", "reaction", {"message_id": "wamid.x", "emoji": "👍"})
    (parsed,) = parse_webhook(wh.payload([message]), OURS).messages
    assert parsed.kind == "reaction"
    assert inbound_of(parsed) is None


def test_an_update_that_breaks_the_parser_in_any_way_is_rejected_not_raised() -> None:
    body = wh.payload([wh.text("263770000001", "fine")])
    value = _value(body)
    value["messages"] = [*value["messages"], "not an object", 5, None, [], {"id": 1}]
    value["statuses"] = ["x", {"id": None}]
    batch = parse_webhook(copy.deepcopy(body), OURS)
    assert [m.text for m in batch.messages] == ["fine"]
    assert len(batch.rejected) == 7
