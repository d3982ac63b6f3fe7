"""Several numbers and templates, piece by piece: identities, signatures, parsing, windows."""

from __future__ import annotations

import json
import time

import pytest

from statehq.channels.whatsapp import parse_webhook
from statehq.channels.whatsapp.numbers import Lines
from statehq.channels.whatsapp.webhook import SignatureError
from statehq.channels.whatsapp.window import template_body, window_closed
from statehq.config import WhatsAppSettings
from statehq.config_numbers import NumbersFile, WhatsAppNumber
from statehq.errors import InvalidInput
from statehq.flows import Template, Text
from statehq.state import ChannelId
from statehq.store.inbox import Update
from statehq.testing import webhooks

OTHER, THIRD = "106540352242923", "106540352242924"


def _lines() -> Lines:
    numbers = NumbersFile(
        (
            WhatsAppNumber(OTHER, "t2"),  # the default number's app secret
            WhatsAppNumber(THIRD, "t3", app_secret="third-secret"),  # another app's
        )
    )
    settings = WhatsAppSettings(
        app_secret="main-secret", access_token="t1", phone_number_id=webhooks.PHONE_NUMBER_ID
    )
    return Lines(settings, numbers)


def test_an_identity_names_the_member_and_the_number_they_wrote_to() -> None:
    plain = ChannelId.parse("whatsapp:263771234567")
    assert (plain.address, plain.via) == ("263771234567", None)
    other = ChannelId.parse(f"whatsapp:263771234567@{OTHER}")
    assert (other.address, other.via, other.key) == (
        "263771234567",
        OTHER,
        f"whatsapp:263771234567@{OTHER}",
    )


def test_a_signature_admits_the_numbers_of_its_secret_only() -> None:
    lines = _lines()
    body = b'{"object": "whatsapp_business_account"}'
    main = webhooks.signed(json.loads(body), "main-secret")
    third = webhooks.signed(json.loads(body), "third-secret")
    assert lines.admitted(main[0], main[1]["X-Hub-Signature-256"]) == {
        webhooks.PHONE_NUMBER_ID: None,
        OTHER: OTHER,
    }
    assert lines.admitted(third[0], third[1]["X-Hub-Signature-256"]) == {THIRD: THIRD}
    with pytest.raises(SignatureError) as refused:
        lines.admitted(main[0], "sha256=" + "0" * 64)
    assert refused.value.status == 403
    with pytest.raises(SignatureError) as unsigned:
        lines.admitted(main[0], None)
    assert unsigned.value.status == 401


def test_updates_for_another_number_carry_it_in_their_identity() -> None:
    vias = {webhooks.PHONE_NUMBER_ID: None, OTHER: OTHER}
    default = webhooks.payload([webhooks.text("263771234567", "hi")])
    other = webhooks.payload(
        [webhooks.text("263771234567", "hi")],
        [webhooks.status("263771234567", "wamid.X", "failed", code=131047)],
        phone_number_id=OTHER,
    )
    stranger = webhooks.payload([webhooks.text("263771234567", "hi")], phone_number_id="1")
    assert parse_webhook(default, None, vias=vias).messages[0].channel == "whatsapp:263771234567"
    batch = parse_webhook(other, None, vias=vias)
    assert [u.channel for u in (*batch.messages, *batch.statuses)] == [
        f"whatsapp:263771234567@{OTHER}"
    ] * 2
    skipped = parse_webhook(stranger, None, vias=vias)
    assert (skipped.messages, skipped.foreign_numbers) == ((), ("'1'",))


def test_a_template_is_checked_when_built_and_rendered_as_graph_wants_it() -> None:
    reminder = Template("salon_reminder", "pt_BR", ("amanhã",))
    assert template_body(reminder, "263771234567")["template"] == {
        "name": "salon_reminder",
        "language": {"code": "pt_BR"},
        "components": [{"type": "body", "parameters": [{"type": "text", "text": "amanhã"}]}],
    }
    assert Text("hi", template=reminder).template == reminder
    for bad in (
        lambda: Template("Salon Reminder"),
        lambda: Template("x", "english"),
        lambda: Template("x", parameters=("",)),
        lambda: Template("x", parameters="abc"),  # type: ignore[arg-type]
    ):
        with pytest.raises(InvalidInput):
            bad()


def test_the_window_closes_24_hours_after_the_members_message() -> None:
    now = time.time()
    sent = Update("wamid.A", "whatsapp:263771234567", "text", int(now) - 24 * 3600 + 60)
    assert not window_closed(sent, now)
    assert window_closed(sent, now + 61)
