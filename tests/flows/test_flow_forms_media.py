"""Forms and files on the real engine, state manager and store (the expenses example bot).

A form is one WhatsApp Flow on WhatsApp and plain questions elsewhere; its reply is
applied only with the token of the member's current step. Files are audited with their
media id and type, taken by a step that accepts them, refused politely elsewhere.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest

from examples.expenses.bot import ExpensesBot
from statehq import StateStore
from statehq.channels.terminal import TerminalChat
from statehq.errors import InvalidInput
from statehq.flows import (
    Field,
    Form,
    FormMessage,
    FormReply,
    Headquarters,
    Inbound,
    Media,
    MediaInput,
    Message,
    MessageLimitError,
    PayloadError,
    Text,
    WhatsAppFlow,
    build_engine,
    inbound_from,
)
from statehq.flows.forms import FORM_KEY
from statehq.state import ChannelId

FLOW_ID = "1234567890"
_ids = itertools.count()
RECEIPT = Media("image", "media.123", "image/jpeg", "c2hhMjU2", "the taxi", None)


class Chat:
    """One member on one channel, talking to the engine as the service does (one commit
    per message)."""

    def __init__(self, engine: Headquarters, channel: ChannelId) -> None:
        self.engine, self.channel = engine, channel
        self.last: list[Message] = []

    def send(self, text: str = "", **kw: Any) -> list[Message]:
        if "tap" in kw:
            title = kw.pop("tap")
            kw["choice"] = next(o.id for m in self.last for o in m.options if o.title == title)
        inbound = Inbound(self.channel, f"m{next(_ids)}", text, **kw)
        self.last = self.engine.process(inbound).replies
        return self.last

    def said(self, text: str = "", **kw: Any) -> str:
        return "\n".join(getattr(m, "body", "") for m in self.send(text, **kw))

    @property
    def session(self) -> Any:
        return self.engine.manager.open(self.channel, touch=False)


@pytest.fixture
def engine(store: StateStore) -> Headquarters:
    return build_engine(store, ExpensesBot(FLOW_ID))


def _to_form(chat: Chat) -> FormMessage:
    chat.send("hi")
    (form,) = chat.send(tap="Claim an expense")
    assert isinstance(form, FormMessage)
    return form


def _filled(form: FormMessage, **values: Any) -> FormReply:
    return FormReply(form.token, values)


GOOD = {"title": "Taxi to site", "amount": "12.5", "day": "2026-11-30"}


def test_a_flow_reply_with_the_current_token_is_validated_and_merged(
    engine: Headquarters, member: str
) -> None:
    chat = Chat(engine, ChannelId("whatsapp", member.split(":")[1]))
    form = _to_form(chat)
    assert (form.flow_id, form.cta, form.screen) == (FLOW_ID, "Fill in the claim", "EXPENSE")
    held = chat.session.get_flow()["data"][FORM_KEY]
    assert held == {"step": "details", "token": form.token, "next": 0}
    assert len(form.token) >= 24  # 144 random bits
    reply = chat.said(form=_filled(form, **GOOD, extra="not a field"))
    assert "photo of the receipt" in reply
    flow = chat.session.get_flow()
    assert flow["step"] == "receipt"
    assert {k: flow["data"][k] for k in GOOD} == {**GOOD, "amount": "12.50"}
    assert "extra" not in flow["data"]  # only the step's fields are merged


def test_an_invalid_flow_reply_is_answered_with_every_problem_and_the_same_form(
    engine: Headquarters, member: str
) -> None:
    chat = Chat(engine, ChannelId("whatsapp", member.split(":")[1]))
    form = _to_form(chat)
    replies = chat.send(form=_filled(form, title="x", amount="lots", day="2026-11-30"))
    error, again = replies
    assert isinstance(error, Text)
    assert isinstance(again, FormMessage)
    assert "3 to 60 characters" in error.body
    assert "like 12.50" in error.body
    assert again.token == form.token  # the same visit of the step: the same form works
    assert chat.session.get_flow()["_validation"]["attempts"] == 1
    chat.send(form=_filled(form, **GOOD))
    assert chat.session.get_flow()["step"] == "receipt"


@pytest.mark.parametrize("token", [None, "made-up-token", "stale"])
def test_a_stale_or_forged_token_is_answered_as_a_stale_menu_and_changes_nothing(
    engine: Headquarters, member: str, token: str | None
) -> None:
    chat = Chat(engine, ChannelId("whatsapp", member.split(":")[1]))
    form = _to_form(chat)
    if token == "stale":  # a form from an earlier visit of the step
        chat.send("cancel")
        chat.send(tap="Claim an expense")
        token = form.token
    before = chat.session
    replies = chat.send(form=FormReply(token, GOOD))
    assert isinstance(replies[0], Text)
    assert "expired" in replies[0].body
    current = replies[-1]
    assert isinstance(current, FormMessage)
    assert current.token != token
    after = chat.session
    assert (after.version, after.get_flow()) == (before.version, before.get_flow())


def test_another_members_token_does_not_fit(engine: Headquarters, member: str) -> None:
    ann = Chat(engine, ChannelId("whatsapp", member.split(":")[1]))
    bea = Chat(engine, ChannelId("whatsapp", "263779999001"))
    ann_form, _ = _to_form(ann), _to_form(bea)
    replies = bea.send(form=_filled(ann_form, **GOOD))
    assert "expired" in getattr(replies[0], "body", "")
    assert bea.session.get_flow()["step"] == "details"


def test_a_flow_reply_after_the_step_was_left_is_stale(engine: Headquarters, member: str) -> None:
    chat = Chat(engine, ChannelId("whatsapp", member.split(":")[1]))
    form = _to_form(chat)
    chat.send(form=_filled(form, **GOOD))
    version = chat.session.version
    replies = chat.send(form=_filled(form, **GOOD))  # the same form, submitted again
    assert "expired" in getattr(replies[0], "body", "")
    assert "photo of the receipt" in getattr(replies[-1], "body", "")
    assert chat.session.version == version


@pytest.mark.parametrize("channel_type", ["terminal", "web"])
def test_the_same_form_is_plain_questions_on_other_channels(
    engine: Headquarters, member: str, channel_type: str
) -> None:
    chat = Chat(engine, ChannelId(channel_type, member.split(":")[1]))
    chat.send("hi")
    first = chat.send(tap="Claim an expense")
    assert [m.body for m in first if isinstance(m, Text)] == [
        "Let's claim an expense.",
        "What was it for?",
    ]
    assert not any(isinstance(m, FormMessage) for m in first)
    assert chat.said("Taxi to site") == "How much was it? (e.g. 12.50)"
    assert "like 12.50" in chat.said("lots")  # each answer validated as it comes
    assert chat.said("12.5") == "Which day? (YYYY-MM-DD)"
    assert "photo of the receipt" in chat.said("2026-11-30")
    data = chat.session.get_flow()["data"]
    assert {k: data[k] for k in GOOD} == {**GOOD, "amount": "12.50"}


def test_a_form_without_a_flow_asks_questions_on_whatsapp_too(
    store: StateStore, member: str
) -> None:
    chat = Chat(build_engine(store, ExpensesBot(None)), ChannelId("whatsapp", member[-12:]))
    chat.send("hi")
    assert "What was it for?" in [getattr(m, "body", "") for m in chat.send(tap="Claim an expense")]


def _to_receipt(chat: Chat) -> None:
    form = _to_form(chat)
    chat.send(form=_filled(form, **GOOD))


def test_a_receipt_photo_is_taken_stored_and_audited(
    engine: Headquarters, store: StateStore, member: str
) -> None:
    chat = Chat(engine, ChannelId("whatsapp", member.split(":")[1]))
    _to_receipt(chat)
    assert "with the photo?" in chat.said(media=RECEIPT)
    receipt = chat.session.get_flow()["data"]["receipt"]
    assert receipt == {
        "kind": "image",
        "media_id": "media.123",
        "mime_type": "image/jpeg",
        "sha256": "c2hhMjU2",
        "caption": "the taxi",
    }
    assert "Claimed 12.50" in chat.said(tap="Claim it")
    (event,) = [
        e for e in store.audit_read(chat.channel.key, limit=100) if e.event == "message.media"
    ]
    assert event.detail["media_id"] == "media.123"
    assert event.detail["mime_type"] == "image/jpeg"
    assert "the taxi" not in json.dumps(event.detail)  # the caption is the member's words


def test_a_file_of_the_wrong_type_is_asked_again(engine: Headquarters, member: str) -> None:
    chat = Chat(engine, ChannelId("whatsapp", member.split(":")[1]))
    _to_receipt(chat)
    voice = Media("audio", "media.9", "audio/ogg; codecs=opus", voice=True)
    said = chat.said(media=voice)
    assert "That voice note is audio/ogg. Please send a JPEG or PNG photo, or a PDF." in said
    assert "typed text" not in said
    assert chat.session.get_flow()["step"] == "receipt"
    assert "send the file itself" in chat.said("here it is")


def test_a_file_where_no_step_takes_one_is_refused_politely_once_per_burst(
    engine: Headquarters, store: StateStore, member: str
) -> None:
    chat = Chat(engine, ChannelId("whatsapp", member.split(":")[1]))
    form = _to_form(chat)
    version = chat.session.version
    first = chat.send(media=RECEIPT)
    assert [m.body for m in first if isinstance(m, Text)] == [
        "I can only read text and menu choices here, so I did not keep that photo. Please "
        "type your answer, or tap one of the options I sent."
    ]
    assert chat.send(media=RECEIPT) == []  # the same burst: answered once
    assert chat.session.version == version  # nothing applied, no menu made stale
    audited = [
        e for e in store.audit_read(chat.channel.key, limit=100) if e.event == "message.media"
    ]
    assert len(audited) == 2
    chat.send(form=_filled(form, **GOOD))
    assert chat.session.get_flow()["step"] == "receipt"


def test_payloads_travel_through_the_inbox_as_text() -> None:
    channel = ChannelId("whatsapp", "263771234567")
    inbound = inbound_from(channel, "m1", "image", RECEIPT.encode(), None)
    assert inbound is not None
    assert inbound.media == RECEIPT
    assert inbound.text == ""
    form = inbound_from(channel, "m2", "flow", '{"flow_token":"t","a":"1"}', None)
    assert form is not None
    assert form.form == FormReply("t", {"a": "1"})
    assert inbound_from(channel, "m3", "image", "{}", None) is None
    assert inbound_from(channel, "m4", "text", "hi", None) == Inbound(channel, "m4", "hi")


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        ("not json", "nfm_reply.response_json is not JSON"),
        ("[1, 2]", "is a JSON list, not an object"),
        ('{"flow_token": 7}', "flow_token is not a token string"),
        ("x" * 70_000, "is over 65536 bytes"),
    ],
)
def test_a_malformed_form_reply_is_refused_with_the_reason(raw: str, why: str) -> None:
    with pytest.raises(PayloadError, match=why):
        FormReply.parse(raw)


@pytest.mark.parametrize(
    ("fields", "why"),
    [
        ({"id": "m1", "mime_type": "jpeg"}, "is not a mime type"),
        ({"id": "has space", "mime_type": "image/jpeg"}, "is not a media id"),
        ({"id": "m1", "mime_type": "image/jpeg", "sha256": "#"}, "is not a digest"),
    ],
)
def test_malformed_media_is_refused_with_the_reason(fields: dict[str, Any], why: str) -> None:
    with pytest.raises(PayloadError, match=why):
        Media("image", **fields)


def test_the_terminal_chat_asks_the_form_as_numbered_questions(
    engine: Headquarters, member: str
) -> None:
    chat = TerminalChat(engine, member.split(":")[1])
    chat.send("hi")
    opened = chat.send("1")  # "Claim an expense", by its number
    assert "Let's claim an expense." in opened
    assert "What was it for?" in opened
    assert chat.send("Taxi to site") == "bot> How much was it? (e.g. 12.50)"
    assert "Which day?" in chat.send("12.5")
    assert "photo of the receipt" in chat.send("2026-11-30")


def test_steps_whatsapp_would_refuse_fail_when_the_bot_is_built() -> None:
    with pytest.raises(MessageLimitError, match="limit is 20"):
        WhatsAppFlow("1", "A call to action too long", "S")
    with pytest.raises(InvalidInput, match="unique names"):
        Form("f", "Intro", (Field("a", "A?"), Field("a", "A again?")), "next")
    with pytest.raises(InvalidInput, match="must be an identifier"):
        Field("_form", "Reserved?")
    with pytest.raises(InvalidInput, match="accept mime types like"):
        MediaInput("m", "A file?", accept=("pdf",), then="next")
