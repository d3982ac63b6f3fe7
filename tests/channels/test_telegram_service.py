"""Telegram end to end: the real service, a real store, the fake Bot API as Telegram.

Updates are posted to ``/webhooks/telegram`` with the secret token as Telegram posts
them; every reply is read at the fake Bot API server, and every tap goes back as the
callback query Telegram would send, with the message as the fake holds it. The bot is
the credex reference bot, unchanged, on its built-in ledger seeded with the demo members.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from telegram_kit import (
    SECRET,
    TOKEN,
    WEBHOOK,
    TelegramMember,
    buttons,
    callback_update,
    message_update,
    new_user_id,
    text_update,
)

from statehq.credex.app import credex_stages, open_ledger
from statehq.credex.demo import ALICE, BOB, seed_demo
from statehq.credex.ledger import Ledger
from statehq.credex.screens import account_dict
from statehq.state import StateManager
from statehq.store.inbox import Inbox
from statehq.testing import webhooks as wh
from statehq.testing.fake_graph import FakeGraph
from statehq.testing.fake_telegram import FakeTelegram
from tests.service.service_kit import (
    APP_SECRET,
    Running,
    ServeProcess,
    fresh_graph,
    graph,
    service_settings,
    serving,
    settle,
)

__all__ = ["fresh_graph", "graph"]  # fixtures


@pytest.fixture(scope="module")
def telegram() -> Iterator[FakeTelegram]:
    """Telegram's Bot API, faked: one server per module, emptied before each test."""
    with FakeTelegram(TOKEN) as fake:
        yield fake


@pytest.fixture
def fresh_telegram(telegram: FakeTelegram) -> FakeTelegram:
    telegram.reset()
    return telegram


@pytest.fixture
def service(
    server_url: str,
    prefix: str,
    tmp_path: Path,
    fresh_graph: FakeGraph,
    fresh_telegram: FakeTelegram,
) -> Iterator[Running]:
    """The service with WhatsApp and Telegram on, on each topology's server."""
    settings = service_settings(
        server_url,
        prefix,
        tmp_path / "data",
        fresh_graph.url,
        telegram_bot_token=TOKEN,
        telegram_secret_token=SECRET,
        telegram_api_url=fresh_telegram.url,
    )
    with serving(settings) as running:
        yield running


@pytest.fixture
def ledger(service: Running) -> Iterator[Ledger]:
    with open_ledger(service.settings.bot_settings) as opened:
        seed_demo(opened)
        yield opened


def test_a_newcomer_registers_and_offers_bob_a_credex_over_telegram(
    service: Running, fresh_telegram: FakeTelegram, ledger: Ledger
) -> None:
    uid = new_user_id()
    tendai = TelegramMember(service, fresh_telegram, uid)
    assert "Welcome to credex! 👋" in tendai.say("/start")
    assert tendai.options == ["Join credex", "Learn more"]
    welcome = tendai.menu
    assert welcome is not None

    assert "What is your *first name*?" in tendai.tap("Join credex")
    # The tap was answered first, then its keyboard taken off the welcome, then the reply.
    assert [c.method for c in tendai.calls] == [
        "answerCallbackQuery",
        "editMessageReplyMarkup",
        "sendMessage",
    ]
    assert all(c.ok for c in tendai.calls)
    assert "reply_markup" not in fresh_telegram.message(uid, welcome["message_id"])

    assert "And your *last name*?" in tendai.say("Tendai")
    joined = tendai.say("Moyo")
    assert "Welcome to credex, Tendai! Your account @tendai_moyo is ready." in joined
    assert "100.00 USD" in joined
    assert "Offer a credex" in tendai.options
    assert "• Offer a credex: secured by your balance" in joined  # a list's descriptions

    assert "How much do you want to offer?" in tendai.tap("Offer a credex")
    assert "Who is it for?" in tendai.say("25")
    assert "Offer *25.00 USD* to Bob Dube (@bob)" in tendai.say("@bob")
    assert tendai.options == ["Sign and send", "Cancel"]
    sent = tendai.tap("Sign and send")
    assert "Offer sent: 25.00 USD to Bob Dube (@bob)." in sent

    login = ledger.login(str(uid))
    assert login is not None
    (offer,) = ledger.dashboard(login.token, login.accounts[0].id).pending_out
    assert (offer.amount, offer.counterparty.handle) == (Decimal(25), "bob")
    key = service.store.route(f"telegram:{uid}")
    assert key == f"member:{login.member.id}"
    snapshot = service.store.get(key)
    assert snapshot is not None
    assert snapshot.doc["channel"] == {"type": "telegram", "identifier": str(uid)}
    # Every tap answered exactly once; nothing the fake refused.
    assert len(fresh_telegram.calls("answerCallbackQuery")) == 3
    assert all(c.ok for c in fresh_telegram.calls())


def test_a_member_starts_on_whatsapp_binds_telegram_and_goes_on_there(
    service: Running, fresh_graph: FakeGraph, fresh_telegram: FakeTelegram, ledger: Ledger
) -> None:
    phone = WhatsAppPhone(service, fresh_graph, ALICE.phone)
    assert "*Alice Moyo* (@alice)" in phone.say("hi")
    uid = new_user_id()
    alice = TelegramMember(service, fresh_telegram, uid)
    assert "Welcome to credex!" in alice.say("hi")  # Telegram alone does not know her

    # Alice's Telegram is bound to her member id (as a bot's login does it).
    login = ledger.login(ALICE.phone)
    assert login is not None
    manager = StateManager(service.store, stages=credex_stages())
    accounts = [account_dict(account) for account in login.accounts]
    profile = {
        "first_name": "Alice",
        "last_name": "Moyo",
        "phone": ALICE.phone,
        "accounts": accounts,
    }
    manager.open(f"telegram:{uid}").authenticate(
        login.member.id, login.token, profile=profile, current_account=accounts[0]
    )
    assert service.store.route(f"telegram:{uid}") == service.store.route(f"whatsapp:{ALICE.phone}")

    # She starts an offer on WhatsApp...
    assert "*Alice Moyo* (@alice)" in phone.say("hi")
    assert "How much do you want to offer?" in phone.tap("Offer a credex")
    assert "Who is it for?" in phone.say("7")
    # ...and finishes it on Telegram, where the same conversation goes on.
    summary = alice.say("@bob")
    assert "Offer *7.00 USD* to Bob Dube (@bob)" in summary
    assert "Offer sent: 7.00 USD to Bob Dube (@bob)." in alice.tap("Sign and send")
    # Back on WhatsApp, the dashboard shows what was done on Telegram.
    assert "Pending offers: 1 incoming, 1 outgoing" in phone.say("menu")
    outgoing = ledger.dashboard(login.token, login.accounts[0].id).pending_out
    assert [(o.amount, o.counterparty.handle) for o in outgoing] == [(Decimal(7), "bob")]
    assert BOB.phone not in str(fresh_telegram.calls())  # replies went to the channel written from


def test_a_redelivered_update_and_tap_are_processed_once(
    service: Running, fresh_telegram: FakeTelegram, ledger: Ledger
) -> None:
    uid = new_user_id()
    member = TelegramMember(service, fresh_telegram, uid)
    member.say("hi")
    assert member.last is not None
    again = member.post(member.last)
    assert again.json() == {"queued": 0, "duplicates": 1, "ignored": 0, "rejected": 0}
    member.tap("Learn more")
    calls = len(fresh_telegram.calls())
    tap = member.last
    assert tap is not None
    assert member.post(tap).json()["duplicates"] == 1  # Telegram redelivers the tap
    settle(service)
    assert len(fresh_telegram.calls()) == calls
    assert len(fresh_telegram.calls("answerCallbackQuery")) == 1
    assert len(fresh_telegram.sent_to(uid)) == 1 + len(member.replies)


def test_a_bad_or_missing_secret_token_is_refused_with_nothing_written(
    service: Running, fresh_telegram: FakeTelegram
) -> None:
    uid = new_user_id()
    member = TelegramMember(service, fresh_telegram, uid)
    update = text_update(uid, "hi")
    wrong = member.post(update, secret="not-the-secret")
    assert wrong.status_code == 403
    missing = member.post(update, secret=None)
    assert missing.status_code == 401
    for answer in (wrong, missing):
        assert SECRET not in answer.text
        assert "X-Telegram-Bot-Api-Secret-Token" in answer.json()["error"]
    assert service.store.execute(Inbox(service.store.settings).depth(1))[0] == 0
    assert service.store.get(f"telegram:{uid}") is None
    assert service.store.audit_read(f"telegram:{uid}", limit=10) == []
    assert fresh_telegram.calls() == []
    assert service.http.get(WEBHOOK).status_code == 405  # no GET handshake on Telegram


def test_a_stale_tap_is_answered_and_its_keyboard_removed(
    service: Running, fresh_telegram: FakeTelegram, ledger: Ledger
) -> None:
    uid = new_user_id()
    member = TelegramMember(service, fresh_telegram, uid)
    member.say("hi")
    old = member.menu
    assert old is not None
    member.say("hi")  # the same menu again, drawn at the same version
    member.tap("Join credex")  # a step on: every menu drawn before is stale now
    shown = fresh_telegram.message(uid, old["message_id"])
    learn = dict(buttons(shown))["Learn more"]
    stale = member.send(callback_update(uid, shown, learn))
    assert "That menu has expired; here is the current one." in stale
    assert [c.method for c in member.calls][:2] == ["answerCallbackQuery", "editMessageReplyMarkup"]
    assert "reply_markup" not in fresh_telegram.message(uid, old["message_id"])


def test_malformed_and_unhandled_updates_get_a_precise_answer_never_a_traceback(
    service: Running, fresh_telegram: FakeTelegram
) -> None:
    uid = new_user_id()
    member = TelegramMember(service, fresh_telegram, uid)
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
    not_json = service.http.post(WEBHOOK, content=b"{nope", headers=headers)
    assert not_json.status_code == 400
    assert "not valid JSON" in not_json.json()["error"]

    def rejected(update: object) -> None:
        answer = service.http.post(WEBHOOK, json=update, headers=headers)
        assert answer.json() == {"queued": 0, "duplicates": 0, "ignored": 0, "rejected": 1}

    rejected([1, 2])
    rejected({"update_id": "abc", "message": {}})
    bad_sender = text_update(uid, "hi")
    bad_sender["message"]["from"]["id"] = "me"
    rejected(bad_sender)
    bad_date = text_update(uid, "hi")
    bad_date["message"]["date"] = "yesterday"
    rejected(bad_date)
    not_text = text_update(uid, "hi")
    not_text["message"]["text"] = {"b": 1}
    rejected(not_text)

    group = text_update(uid, "hi")
    group["message"]["chat"]["type"] = "group"
    for ignored in ({"update_id": 5, "channel_post": {"text": "news"}}, group):
        answer = service.http.post(WEBHOOK, json=ignored, headers=headers)
        assert answer.json() == {"queued": 0, "duplicates": 0, "ignored": 1, "rejected": 0}

    where = member.send(message_update(uid, location={"latitude": -17.8, "longitude": 31.0}))
    assert "I can only read text and menu choices." in where
    edited = text_update(uid, "hi")
    message = edited.pop("message")
    edited["edited_message"] = {**message, "edit_date": message["date"]}
    assert member.post(edited).json()["queued"] == 1
    settle(service)
    assert len(fresh_telegram.sent_to(uid)) == 1  # an edit is news, never answered
    no_file = message_update(uid, photo=[{"file_id": "AgAC", "width": 9, "height": 9}])
    no_file["message"]["photo"][0]["file_id"] = ""
    rejected(no_file)
    trail = service.audit_events(f"telegram:{uid}")
    reasons = [e.detail.get("reason") for e in trail if e.event == "message.rejected"]
    assert reasons == ["bad_timestamp", "malformed", "malformed"]  # the sender was valid
    elsewhere = service.store.audit_read("telegram:_rejected", limit=10)
    assert sorted(e.detail["reason"] for e in elsewhere) == [
        "bad_id",
        "bad_sender",
        "malformed",
    ]
    assert "is not a Telegram user id" in str([e.reason for e in elsewhere])


def test_delivery_failures_are_retried_or_audited_and_never_leak_the_token(
    service: Running, fresh_telegram: FakeTelegram, caplog: pytest.LogCaptureFixture
) -> None:
    uid = new_user_id()
    member = TelegramMember(service, fresh_telegram, uid)
    fresh_telegram.fail_next(1, error_code=429, retry_after=1, method="sendMessage")
    assert "Welcome to credex" in member.say("hi")  # sent after the wait Telegram asked
    throttled, accepted = fresh_telegram.calls("sendMessage")[:2]
    assert (throttled.status, accepted.status) == (429, 200)
    assert accepted.at - throttled.at >= 0.9

    fresh_telegram.blocked.add(uid)
    update = text_update(uid, "hi")
    assert member.post(update).json()["queued"] == 1
    settle(service)
    failed = [e for e in service.audit_events(f"telegram:{uid}") if e.event == "message.failed"]
    assert failed[-1].detail["code"] == "telegram_403"
    assert "bot was blocked by the user" in failed[-1].detail["error"]
    assert len(fresh_telegram.calls("sendMessage")) == 3  # a 403 is never retried
    assert TOKEN not in caplog.text
    assert TOKEN.split(":")[1] not in str([e.detail for e in failed])


def test_the_example_bot_runs_on_telegram_unchanged(
    server_url: str,
    prefix: str,
    tmp_path: Path,
    fresh_graph: FakeGraph,
    fresh_telegram: FakeTelegram,
) -> None:
    settings = service_settings(
        server_url,
        prefix,
        tmp_path / "data",
        fresh_graph.url,
        bot="examples.appointments.bot:create_bot",
        telegram_bot_token=TOKEN,
        telegram_secret_token=SECRET,
        telegram_api_url=fresh_telegram.url,
    )
    day = date.today() + timedelta(days=1)
    day += timedelta(days=1 if day.weekday() == 6 else 0)  # the salon is closed on Sundays
    with serving(settings) as running:
        ann = TelegramMember(running, fresh_telegram, new_user_id())
        assert "Welcome to Tendai's Salon" in ann.say("/start")
        assert "What would you like to book?" in ann.tap("Book an appointment")
        assert "Which day?" in ann.tap("Braids")
        assert "Which time on" in ann.say(day.isoformat())
        assert "name to book under" in ann.tap(ann.options[0])
        assert "Shall I book it?" in ann.say("Ann Moyo")
        assert "Booked! Your reference is B" in ann.tap("Book it")
    assert all(c.ok for c in fresh_telegram.calls())


def test_a_receipt_photo_sent_on_telegram_is_the_bots_typed_input(
    server_url: str,
    prefix: str,
    tmp_path: Path,
    fresh_graph: FakeGraph,
    fresh_telegram: FakeTelegram,
) -> None:
    """The expenses example over Telegram: its form as questions, the receipt as a photo
    (the largest size Telegram made of it), audited by its file id."""
    settings = service_settings(
        server_url,
        prefix,
        tmp_path / "data",
        fresh_graph.url,
        bot="examples.expenses.bot:create_bot",
        telegram_bot_token=TOKEN,
        telegram_secret_token=SECRET,
        telegram_api_url=fresh_telegram.url,
    )
    with serving(settings) as running:
        uid = new_user_id()
        ann = TelegramMember(running, fresh_telegram, uid)
        ann.say("/start")
        assert "What was it for?" in ann.tap("Claim an expense")
        assert "How much was it?" in ann.say("Taxi to site")
        assert "Which day?" in ann.say("12.50")
        assert "photo of the receipt" in ann.say("2026-11-30")
        sizes = [
            {"file_id": "AgACAgQAAxkBAAIBsmall", "width": 90, "height": 67},
            {"file_id": "AgACAgQAAxkBAAIBlarge", "width": 1280, "height": 960},
        ]
        photo = message_update(uid, photo=sizes, caption="my taxi, ref 4411")
        assert "Claim 12.50 for “Taxi to site” on 2026-11-30, with the photo?" in ann.send(photo)
        assert "Claimed 12.50" in ann.tap("Claim it")
        trail = running.audit_events(f"telegram:{uid}")
    (media,) = [e for e in trail if e.event == "message.media"]
    assert media.detail["media_id"] == "AgACAgQAAxkBAAIBlarge"
    assert media.detail["mime_type"] == "image/jpeg"
    assert "my taxi" not in str(media.detail)  # the file's entry names it, not its caption


@pytest.mark.slow
def test_statehq_serve_answers_telegram_from_its_worker_processes(
    tmp_path: Path, fresh_graph: FakeGraph, fresh_telegram: FakeTelegram
) -> None:
    settings = service_settings(
        None,
        "tg",
        tmp_path / "data",
        fresh_graph.url,
        telegram_bot_token=TOKEN,
        telegram_secret_token=SECRET,
        telegram_api_url=fresh_telegram.url,
    )
    serve = ServeProcess(settings, tmp_path / "serve.log")
    try:
        uid = new_user_id()
        headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
        update = text_update(uid, "hi")
        answer = httpx.post(f"{serve.url}{WEBHOOK}", json=update, headers=headers)
        assert answer.json()["queued"] == 1, answer.text
        fresh_telegram.wait_for(1, method="sendMessage", timeout=20)
        assert "Welcome to credex" in fresh_telegram.sent_to(uid)[0]["text"]
    finally:
        serve.stop()
    log = serve.log.read_text()
    assert "reply out to=telegram:" in log
    assert str(uid) not in log  # identities are masked
    assert TOKEN.split(":")[1] not in log


class WhatsAppPhone:
    """The same member on WhatsApp: signed webhook requests in, replies at the fake Graph."""

    def __init__(self, service: Running, graph: FakeGraph, phone: str) -> None:
        self.service, self.graph, self.phone = service, graph, phone
        self.menu: list[tuple[str, str]] = []

    def say(self, text: str) -> str:
        return self._send(wh.text(self.phone, text))

    def tap(self, title: str) -> str:
        option = next(option for option, shown in self.menu if shown == title)
        return self._send(wh.list_reply(self.phone, option, title))

    def _send(self, message: dict[str, object]) -> str:
        raw, headers = wh.signed(wh.payload([message]), APP_SECRET)
        assert (
            self.service.http.post("/webhooks/whatsapp", content=raw, headers=headers).json()[
                "queued"
            ]
            == 1
        )
        settle(self.service)
        mine = [
            b
            for b in self.graph.messages_to(self.phone)
            if b["biz_opaque_callback_data"].startswith(f"{message['id']}#")
        ]
        lines = []
        for body in mine:
            if body["type"] == "text":
                lines.append(body["text"]["body"])
                continue
            interactive = body["interactive"]
            lines.append(interactive["body"]["text"])
            if interactive["type"] == "list":
                rows = [r for s in interactive["action"]["sections"] for r in s["rows"]]
                self.menu = [(r["id"], r["title"]) for r in rows]
            else:
                self.menu = [
                    (b["reply"]["id"], b["reply"]["title"])
                    for b in interactive["action"]["buttons"]
                ]
        return "\n".join(lines)
