"""Telegram webhook parsing, the secret token, and replies rendered as Bot API calls."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from statehq.channels.base import Refusal, inbound_of
from statehq.channels.registry import channels
from statehq.channels.telegram import (
    BotApi,
    SecretError,
    TelegramChannel,
    TelegramDelivery,
    callback_of,
    check_secret,
    parse_update,
    render,
)
from statehq.channels.telegram.render import button_of, formatted
from statehq.config import Settings, TelegramSettings
from statehq.flows import Buttons, Media, Option, OptionList, Text
from statehq.state.channel_ids import CHANNEL_TYPES
from statehq.store.inbox import Update

NOW = 1_765_000_000
USER = {"id": 123456789, "is_bot": False, "first_name": "Tendai", "last_name": "Moyo"}
CHAT = {"id": 123456789, "first_name": "Tendai", "last_name": "Moyo", "type": "private"}
TEXT: dict[str, Any] = {
    "update_id": 902315467,
    "message": {
        "message_id": 4411,
        "from": USER,
        "chat": CHAT,
        "date": 1_764_999_990,
        "text": "hello",
    },
}
BOT_MESSAGE = {
    "message_id": 4412,
    "from": {"id": 7000000001, "is_bot": True, "first_name": "credex", "username": "credex_bot"},
    "chat": CHAT,
    "date": 1_764_999_995,
    "text": "Welcome to credex!",
    "reply_markup": {
        "inline_keyboard": [
            [{"text": "Join credex", "callback_data": "v3.1a2b3c:register"}],
            [{"text": "Learn more", "callback_data": "v3.1a2b3c:learn"}],
        ]
    },
}
TAP: dict[str, Any] = {
    "update_id": 902315468,
    "callback_query": {
        "id": "530218371930718234",
        "from": USER,
        "message": BOT_MESSAGE,
        "chat_instance": "-7283946123312",
        "data": "v3.1a2b3c:learn",
    },
}


def update(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """A copy of ``base`` whose inner object (message, callback_query...) has ``changes``."""
    copied = copy.deepcopy(base)
    inner = next(key for key in copied if key != "update_id")
    copied[inner].update(changes)
    return copied


def one(payload: Any) -> Update:
    received = parse_update(payload, NOW)
    assert (received.rejected, received.skipped) == ((), ()), received
    (parsed,) = received.updates
    return parsed


def test_a_text_message_is_the_members_text() -> None:
    parsed = one(TEXT)
    assert parsed == Update(
        "tg.902315467", "telegram:123456789", "text", 1_764_999_990, "hello", name="Tendai Moyo"
    )
    inbound = inbound_of(parsed)
    assert inbound is not None
    assert (inbound.channel.key, inbound.text, inbound.choice) == (
        "telegram:123456789",
        "hello",
        None,
    )


@pytest.mark.parametrize(
    ("typed", "read"),
    [
        ("/start", "hi"),
        ("/start ref-42", "hi"),
        ("/start@credex_bot", "hi"),
        ("/menu@credex_bot", "/menu"),
        ("/cancel now", "/cancel now"),
        ("/startle", "/startle"),
        ("25", "25"),
        ("bad \ud800 text", "bad \ufffd text"),
    ],
)
def test_commands_are_read_as_the_engine_reads_words(typed: str, read: str) -> None:
    assert one(update(TEXT, text=typed)).text == read


def test_a_tap_is_a_button_choice_with_its_label_and_what_answering_it_needs() -> None:
    parsed = one(TAP)
    assert (parsed.id, parsed.kind, parsed.timestamp) == ("tg.902315468", "button", NOW)
    assert (parsed.text, parsed.choice) == ("Learn more", "v3.1a2b3c:learn")
    tap = callback_of(parsed)
    assert tap is not None
    assert (tap.query_id, tap.message_id) == ("530218371930718234", 4412)
    assert callback_of(one(TEXT)) is None


def test_a_tap_on_a_message_telegram_no_longer_shows_is_not_edited() -> None:
    old = {"message_id": 12, "chat": CHAT, "date": 0}  # an InaccessibleMessage
    parsed = one(update(TAP, message=old))
    tap = callback_of(parsed)
    assert tap is not None
    assert tap.message_id is None
    assert (parsed.text, parsed.choice) == ("", "v3.1a2b3c:learn")


@pytest.mark.parametrize(
    ("content", "kind"),
    [
        ({"location": {"latitude": -17.8, "longitude": 31.0}}, "unsupported"),
        ({"contact": {"phone_number": "+263771234567", "first_name": "T"}}, "unsupported"),
        ({"write_access_allowed": {"from_request": True}}, "notice"),
        ({"pinned_message": {"message_id": 3, "chat": CHAT, "date": 0}}, "notice"),
    ],
)
def test_other_messages_are_answered_politely_or_recorded(
    content: dict[str, Any], kind: str
) -> None:
    message = {k: v for k, v in TEXT["message"].items() if k != "text"}
    parsed = one({"update_id": 5, "message": {**message, **content}})
    assert (parsed.kind, parsed.text) == (kind, "")
    assert inbound_of(parsed) is None


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (  # the sizes Telegram made of a photo: the largest is kept; photos are JPEGs
            {
                "photo": [
                    {"file_id": "AgACsmall", "width": 90, "height": 90},
                    {"file_id": "AgACAgQAAxkBAAIBlarge", "width": 1280, "height": 960},
                ],
                "caption": "the receipt",
            },
            Media("image", "AgACAgQAAxkBAAIBlarge", "image/jpeg", caption="the receipt"),
        ),
        (
            {
                "document": {
                    "file_id": "BQACdoc",
                    "file_name": "claim.pdf",
                    "mime_type": "application/pdf",
                }
            },
            Media("document", "BQACdoc", "application/pdf", filename="claim.pdf"),
        ),
        (
            {"voice": {"file_id": "AwACvoice", "duration": 2}},
            Media("audio", "AwACvoice", "audio/ogg", voice=True),
        ),
        (
            {"sticker": {"file_id": "CAACAgIAAxk", "emoji": "👍", "is_animated": True}},
            Media("sticker", "CAACAgIAAxk", "application/x-tgsticker"),
        ),
        (
            {"video": {"file_id": "BAACvid", "mime_type": "video/mp4; codecs=avc1"}},
            Media("video", "BAACvid", "video/mp4"),
        ),
    ],
)
def test_a_file_reaches_the_bot_as_media(content: dict[str, Any], expected: Media) -> None:
    message = {k: v for k, v in TEXT["message"].items() if k != "text"}
    parsed = one({"update_id": 5, "message": {**message, **content}})
    assert parsed.kind == expected.kind
    inbound = inbound_of(parsed)
    assert inbound is not None
    assert inbound.media == expected


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ({"photo": []}, "photo is not a list of sizes"),
        ({"document": {"file_name": "x.pdf"}}, "document.file_id is missing"),
        ({"voice": "AwAC"}, "voice is str, not an object"),
        ({"document": {"file_id": "BQAC", "mime_type": "pdf"}}, "is not a mime type"),
        ({"video": {"file_id": "has spaces in it"}}, "is not a media id"),
    ],
)
def test_a_malformed_file_is_rejected_with_the_reason(content: dict[str, Any], reason: str) -> None:
    message = {k: v for k, v in TEXT["message"].items() if k != "text"}
    received = parse_update({"update_id": 5, "message": {**message, **content}}, NOW)
    assert received.updates == ()
    (rejected,) = received.rejected
    assert rejected.reason == "malformed"
    assert reason in rejected.detail
    assert rejected.sender == "123456789"


def test_an_edit_is_news_timed_when_it_was_made() -> None:
    edited = {"update_id": 6, "edited_message": {**TEXT["message"], "edit_date": 1_765_000_100}}
    parsed = one(edited)
    assert (parsed.kind, parsed.timestamp, parsed.text) == ("edited", 1_765_000_100, "")
    assert inbound_of(parsed) is None


@pytest.mark.parametrize(
    ("payload", "why"),
    [
        (
            {"update_id": 7, "channel_post": {"text": "news"}},
            "'channel_post' updates are not handled",
        ),
        ({"update_id": 8, "inline_query": {"id": "1", "query": "x"}}, "'inline_query'"),
        ({"update_id": 9}, "None updates are not handled"),
        (update(TEXT, chat={**CHAT, "type": "group"}), "in a 'group' chat is not handled"),
        (update(TAP, message=None, inline_message_id="AAA"), "taps on inline messages"),
        (update(TAP, data=None, game_short_name="snake"), "a tap without data (a game)"),
    ],
)
def test_updates_that_are_not_ours_are_skipped_with_the_reason(payload: Any, why: str) -> None:
    received = parse_update(payload, NOW)
    assert received.updates == ()
    assert received.rejected == ()
    (skipped,) = received.skipped
    assert why in skipped


@pytest.mark.parametrize(
    ("payload", "reason", "detail", "sender"),
    [
        ([TEXT], "malformed", "the body is a JSON list, not an Update object", None),
        (
            {**TEXT, "update_id": "902315467"},
            "bad_id",
            "update_id '902315467' is not a whole",
            None,
        ),
        ({**TEXT, "update_id": -1}, "bad_id", "update_id -1", None),
        ({**TEXT, "update_id": True}, "bad_id", "update_id True", None),
        ({**TEXT, "update_id": 2**60}, "bad_id", "is not a whole number", None),
        (
            {"update_id": 1, "message": "hi"},
            "malformed",
            "message is a JSON str, not an object",
            None,
        ),
        (update(TEXT, **{"from": None}), "malformed", "message.from is missing", None),
        (update(TEXT, **{"from": {"id": "123"}}), "bad_sender", "message.from.id '123'", None),
        (update(TEXT, **{"from": {"id": 0}}), "bad_sender", "is not a Telegram user id", None),
        (
            update(TEXT, date="1764999990"),
            "bad_timestamp",
            "message.date '1764999990'",
            "123456789",
        ),
        (update(TEXT, date=10**12), "bad_timestamp", "seconds up to 9000000000", "123456789"),
        (update(TEXT, text=["hello"]), "malformed", "message.text is list, not text", "123456789"),
        (
            update(TAP, id=42),
            "malformed",
            "callback_query.id 42 is not a callback query id",
            "123456789",
        ),
        (update(TAP, message=[1]), "malformed", "callback_query.message is a JSON list", None),
    ],
)
def test_malformed_updates_are_rejected_saying_what_was_wrong(
    payload: Any, reason: str, detail: str, sender: str | None
) -> None:
    received = parse_update(payload, NOW)
    assert received.updates == ()
    assert received.skipped == ()
    (rejected,) = received.rejected
    assert (rejected.reason, rejected.sender) == (reason, sender)
    assert detail in rejected.detail


def test_the_secret_token_is_compared_whole() -> None:
    check_secret("s3cret_token-1", "s3cret_token-1")
    with pytest.raises(SecretError) as missing:
        check_secret(None, "s3cret")
    assert missing.value.status == 401
    for wrong in ("s3cre", "s3cret2", "S3CRET", "s3cret\u00e9", ""):
        with pytest.raises(SecretError) as refused:
            check_secret(wrong, "s3cret")
        assert refused.value.status == (401 if not wrong else 403)
        assert "s3cret" not in str(refused.value)


def channel(**settings: Any) -> TelegramChannel:
    values = {"bot_token": "1:" + "a" * 30, "secret_token": "s3cret", **settings}
    return TelegramChannel(TelegramSettings(**values), clock=lambda: float(NOW))


def test_the_channel_refuses_what_is_not_telegrams_and_reads_the_rest() -> None:
    body = json.dumps(TEXT).encode()
    header = "x-telegram-bot-api-secret-token"
    assert channel().receive({header: "s3cret"}, body).updates == (one(TEXT),)
    for headers, status in (({}, 401), ({header: "nope"}, 403)):
        with pytest.raises(Refusal) as refused:
            channel().receive(headers, body)
        assert refused.value.status == status
    with pytest.raises(Refusal) as unset:
        channel(secret_token=None).receive({header: "s3cret"}, body)
    assert unset.value.status == 503
    with pytest.raises(Refusal) as not_json:
        channel().receive({header: "s3cret"}, b"\xff{")
    assert not_json.value.status == 400
    deep = channel().receive({header: "s3cret"}, b"[" * 100_000 + b"]" * 100_000)
    assert [r.reason for r in deep.rejected] == ["unreadable"]
    assert channel().verify({})[0] == 405
    assert channel(secret_token=None, bot_token=None).problems() == [
        "TELEGRAM_SECRET_TOKEN is not set: the webhook answers 503 to every POST (give the "
        "same value to setWebhook as secret_token)",
        "TELEGRAM_BOT_TOKEN is not set: replies cannot be sent",
    ]
    assert channel().problems() == []


def test_replies_render_as_send_message_calls_with_inline_keyboards() -> None:
    assert render(Text("Hello *there*"), 42) == {
        "method": "sendMessage",
        "chat_id": 42,
        "text": "Hello there",
        "entities": [{"type": "bold", "offset": 6, "length": 5}],
    }
    assert render(Text("2*3*4 = 24"), 42) == {
        "method": "sendMessage",
        "chat_id": 42,
        "text": "2*3*4 = 24",
    }
    buttons = Buttons("Sure?", (Option("v1.abcdef:yes", "Yes"), Option("v1.abcdef:no", "No")))
    assert render(buttons, 42)["reply_markup"] == {
        "inline_keyboard": [
            [{"text": "Yes", "callback_data": "v1.abcdef:yes"}],
            [{"text": "No", "callback_data": "v1.abcdef:no"}],
        ]
    }
    rows = (Option("a", "Offer", "secured by your balance"), Option("b", "Ledger"))
    listed = render(OptionList("Your dashboard", rows, button="Actions"), 42)
    assert listed["text"] == "Your dashboard\n\n• Offer: secured by your balance"
    assert [row[0]["text"] for row in listed["reply_markup"]["inline_keyboard"]] == [
        "Offer",
        "Ledger",
    ]


def test_an_id_longer_than_telegram_takes_is_sent_by_place_and_read_back_by_label() -> None:
    long_id = "v12.abcdef:" + "x" * 60
    body = render(Buttons("Pick", (Option("v12.abcdef:ok", "OK"), Option(long_id, "Long one"))), 1)
    keyboard = body["reply_markup"]
    assert [row[0]["callback_data"] for row in keyboard["inline_keyboard"]] == [
        "v12.abcdef:ok",
        "#tg1",
    ]
    assert button_of(keyboard, "#tg1") == ("Long one", None)  # matched as typed text
    assert button_of(keyboard, "v12.abcdef:ok") == ("OK", "v12.abcdef:ok")
    assert button_of(None, "v12.abcdef:ok") == ("", "v12.abcdef:ok")
    assert button_of({"inline_keyboard": "junk"}, "#tg1") == ("", None)


def test_a_tap_is_answered_and_its_keyboard_removed_before_the_replies() -> None:
    delivery = TelegramDelivery(BotApi("http://127.0.0.1:9", "1:" + "a" * 30))
    try:
        entries = [json.loads(e) for e in delivery.render(one(TAP), [Text("About credex")])]
        text_entries = [json.loads(e) for e in delivery.render(one(TEXT), [Text("Hi")])]
    finally:
        delivery.close()
    assert [e["id"] for e in entries] == ["tg.902315468#0", "tg.902315468#1", "tg.902315468#2"]
    assert [e["body"]["method"] for e in entries] == [
        "answerCallbackQuery",
        "editMessageReplyMarkup",
        "sendMessage",
    ]
    assert entries[0]["body"]["callback_query_id"] == "530218371930718234"
    assert entries[1]["body"] == {
        "method": "editMessageReplyMarkup",
        "chat_id": 123456789,
        "message_id": 4412,
        "reply_markup": {"inline_keyboard": []},
    }
    assert {e["to"] for e in entries} == {"123456789"}
    assert [e["body"]["method"] for e in text_entries] == ["sendMessage"]


def test_telegram_is_on_when_its_bot_token_is_set() -> None:
    off = [c.type for c in channels(Settings())]
    assert "telegram" not in off
    on = channels(Settings(telegram_bot_token="1:" + "a" * 30, telegram_secret_token="s"))
    (telegram,) = [c for c in on if c.type == "telegram"]
    assert isinstance(telegram, TelegramChannel)
    assert "telegram" in CHANNEL_TYPES  # its identities stay valid with the channel off


@pytest.mark.parametrize(
    ("written", "text", "bold"),
    [
        ("What is your *first name*?", "What is your first name?", [(13, 10)]),
        ("👋 *Tendai* (@tendai_moyo) *5*", "👋 Tendai (@tendai_moyo) 5", [(3, 6), (25, 1)]),
        ("2*3*4, a * b * c, **, *open", "2*3*4, a * b * c, **, *open", []),
        ("*bold*\n*line two*", "bold\nline two", [(0, 4), (5, 8)]),
    ],
)
def test_whatsapp_bold_becomes_bold_entities_counted_in_utf16(
    written: str, text: str, bold: list[tuple[int, int]]
) -> None:
    shown = formatted(written)
    assert shown["text"] == text
    assert [(e["offset"], e["length"]) for e in shown.get("entities", [])] == bold
