"""Several numbers and templates, piece by piece: identities, signatures, parsing, windows."""

from __future__ import annotations

import json
import time
from pathlib import Path

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
    # Meta refuses line breaks, tabs and over 4 spaces in a row in a parameter (#100):
    # they become one space, so the one message that can reach the member goes.
    spaced = Template("x", parameters=("Tendai\n Moyo", "10\tUSD", "a     b", "ok    ok"))
    (body,) = template_body(spaced, "263771234567")["template"]["components"]
    assert [p["text"] for p in body["parameters"]] == ["Tendai Moyo", "10 USD", "a b", "ok    ok"]
    assert spaced.parameters[0] == "Tendai\n Moyo"  # the bot's value, kept as given
    for bad in (
        lambda: Template("Salon Reminder"),
        lambda: Template("x", "english"),
        lambda: Template("x", parameters=("",)),
        lambda: Template("x", parameters="abc"),  # type: ignore[arg-type]
        lambda: Template("x", parameters=7),  # type: ignore[arg-type]
        lambda: Template("x", parameters=None),  # type: ignore[arg-type]
    ):
        with pytest.raises(InvalidInput):
            bad()


def test_the_window_closes_24_hours_after_the_members_message() -> None:
    now = time.time()
    sent = Update("wamid.A", "whatsapp:263771234567", "text", int(now) - 24 * 3600 + 60)
    assert not window_closed(sent, now)
    assert window_closed(sent, now + 61)
    at_the_edge = Update("wamid.B", "whatsapp:263771234567", "text", 1_700_000_000)
    assert not window_closed(at_the_edge, 1_700_000_000 + 24 * 3600 - 1)
    assert window_closed(at_the_edge, 1_700_000_000 + 24 * 3600)  # exactly 24 h: closed


def test_a_numbers_file_alone_is_no_problem_at_start(tmp_path: Path) -> None:
    from statehq.channels.whatsapp import WhatsAppChannel

    path = tmp_path / "numbers.toml"
    path.write_text(f'[[number]]\nphone_number_id = "{OTHER}"\naccess_token = "t2"\n')
    alone = WhatsAppSettings(verify_token="v", numbers=str(path))
    (secret,) = WhatsAppChannel(alone).problems()  # no app secret anywhere: a real one
    assert secret.startswith("WHATSAPP_APP_SECRET is not set")
    path.write_text(path.read_text() + 'app_secret = "its-own"\n')
    assert WhatsAppChannel(alone).problems() == []  # no default number is a choice
    half = WhatsAppSettings(verify_token="v", numbers=str(path), phone_number_id="1")
    (token,) = WhatsAppChannel(half).problems()  # half a default number is a mistake
    assert token.startswith("WHATSAPP_ACCESS_TOKEN or WHATSAPP_PHONE_NUMBER_ID is not set")


def test_a_number_signed_with_another_apps_secret_is_a_warning_saying_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from statehq.channels.whatsapp import WhatsAppChannel
    from statehq.channels.whatsapp.graph_errors import THROTTLE

    path = tmp_path / "numbers.toml"
    path.write_text(
        f'[[number]]\nphone_number_id = "{OTHER}"\naccess_token = "t2"\napp_secret = "its-own"\n'
    )
    channel = WhatsAppChannel(
        WhatsAppSettings(
            app_secret="main-secret",
            access_token="t1",
            phone_number_id=webhooks.PHONE_NUMBER_ID,
            numbers=str(path),
        )
    )
    THROTTLE.clear()
    body, headers = webhooks.signed(
        webhooks.payload([webhooks.text("263771234567", "hi")], phone_number_id=OTHER),
        "main-secret",
    )
    received = channel.receive({k.lower(): v for k, v in headers.items()}, body)
    assert received.updates == ()
    (said,) = [r.getMessage() for r in caplog.records if OTHER in r.getMessage()]
    assert f"phone number id '{OTHER}' were acknowledged and skipped: the number is " in said
    assert "configured, but the request was signed with the app secret of another" in said
    assert "not in STATEHQ_WHATSAPP_NUMBERS" not in said


def test_a_number_no_longer_configured_is_never_answered_from_another() -> None:
    # Its messages were queued before the number left the numbers file (or are dead
    # letters replayed after): answering from the default number would be another
    # business writing to the member. The turn fails, so nothing is lost.
    from statehq.channels.whatsapp.delivery import WhatsAppDelivery
    from statehq.channels.whatsapp.graph import GraphSender

    lines = _lines()
    sender = GraphSender("http://127.0.0.1:9", webhooks.PHONE_NUMBER_ID, "t1")
    delivery = WhatsAppDelivery(sender, lines=lines)
    gone = Update("wamid.G", "whatsapp:263771234567@999", "text", int(time.time()), "hi")
    with pytest.raises(InvalidInput, match="number 999 is not configured"):
        delivery.render(gone, [Text("hello")])
    failed = Update(
        "status:wamid.G:failed",
        "whatsapp:263771234567@999",
        "status",
        int(time.time()),
        status="failed",
        error_code=131047,
        about="wamid.G",
    )
    follow = delivery.after_status(failed)
    assert follow is not None
    assert (follow.event, follow.entries) == ("message.not_reengaged", ())
    assert "number 999 is not configured" in follow.reason
    delivery.close()
