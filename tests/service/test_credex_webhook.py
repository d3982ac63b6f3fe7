"""Whole credex conversations over the WhatsApp webhook of the real service.

Signed webhook requests go in, the replies are read at the fake Graph API server, and
every tap goes back as the WhatsApp interactive reply a phone would send: the option's
exact stamped id and title, taken from the last reply that showed options. The ledger
is the service's own built-in SQLite ledger in the data dir, seeded with the demo
members (Alice, Bob, Chipo; a pending 10 USD offer from Bob to Alice) before the first
message.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from service_kit import APP_SECRET, WEBHOOK, Running, answered, new_phone, settle

from statehq.credex.app import open_ledger
from statehq.credex.backend import OFFER_PENDING, Dashboard
from statehq.credex.demo import ALICE, BOB, CHIPO, seed_demo
from statehq.credex.ledger import Ledger
from statehq.state.model import STAGE_MENU
from statehq.testing import webhooks as wh
from statehq.testing.fake_graph import FakeGraph


class WhatsAppMember:
    """One member's WhatsApp: ``say`` types, ``tap`` taps an option of the last menu.

    Both POST a signed webhook request, wait until the service has processed it and sent
    every reply, and return the replies to that message as readable text (bodies, then
    each option's title on a line of its own).
    """

    def __init__(self, service: Running, graph: FakeGraph, phone: str) -> None:
        self.service = service
        self.graph = graph
        self.phone = phone
        self.replies: list[dict[str, Any]] = []
        self.menu: list[tuple[str, str, str]] = []  # (kind, id, title) of the last options
        self.sent: list[str] = []  # ids of the messages sent, in order
        self.request: tuple[bytes, dict[str, str]] | None = None  # the last request, raw

    def say(self, text: str) -> str:
        """Type ``text``; returns what the bot answered."""
        return self.send(wh.text(self.phone, text))

    def tap(self, title: str) -> str:
        """Tap the option titled ``title`` in the last reply that had options."""
        for kind, option_id, shown in self.menu:
            if shown == title:
                reply = wh.button if kind == "button" else wh.list_reply
                return self.send(reply(self.phone, option_id, shown))
        raise AssertionError(f"no option {title!r} in {self.options}")

    def send(self, message: dict[str, Any]) -> str:
        """POST ``message`` signed as Meta signs it; returns the replies to it as text."""
        raw, headers = wh.signed(wh.payload([message]), APP_SECRET)
        answer = self.service.http.post(WEBHOOK, content=raw, headers=headers)
        expected = {"queued": 1, "duplicates": 0, "ignored": 0, "rejected": 0}
        assert answer.json() == expected, answer.text
        self.request = (raw, headers)
        self.sent.append(message["id"])
        settle(self.service)
        self.replies = self.replies_to(message["id"])
        assert self.replies, f"no reply to {message}"
        menus = [options(body) for body in self.replies if options(body)]
        if menus:
            self.menu = menus[-1]
        return self.text

    def replies_to(self, message_id: str) -> list[dict[str, Any]]:
        """The bodies the fake Graph API accepted in answer to ``message_id``, in order."""
        mine = [
            body
            for body in self.graph.messages_to(self.phone)
            if body["biz_opaque_callback_data"].split("#")[0] == message_id
        ]
        numbers = [int(body["biz_opaque_callback_data"].split("#")[1]) for body in mine]
        assert numbers == list(range(len(mine))), f"replies out of order: {numbers}"
        return mine

    @property
    def text(self) -> str:
        """The last replies, readable: each body, then its options' titles."""
        return "\n".join(readable(body) for body in self.replies)

    @property
    def options(self) -> list[str]:
        """Titles of the last options shown."""
        return [title for _, _, title in self.menu]


def options(body: dict[str, Any]) -> list[tuple[str, str, str]]:
    """``(kind, id, title)`` of a reply's buttons or list rows (none for a text)."""
    if body["type"] != "interactive":
        return []
    interactive = body["interactive"]
    if interactive["type"] == "button":
        buttons = interactive["action"]["buttons"]
        return [("button", b["reply"]["id"], b["reply"]["title"]) for b in buttons]
    rows = [row for section in interactive["action"]["sections"] for row in section["rows"]]
    return [("list", row["id"], row["title"]) for row in rows]


def readable(body: dict[str, Any]) -> str:
    """One reply as the member reads it."""
    if body["type"] == "text":
        return str(body["text"]["body"])
    lines = [body["interactive"]["body"]["text"]]
    lines += [f"[{title}]" for _, _, title in options(body)]
    return "\n".join(lines)


# -- the ledger, read directly -----------------------------------------------------------


@pytest.fixture
def ledger(service: Running) -> Iterator[Ledger]:
    """The service's own ledger, seeded with the demo members before any message."""
    with open_ledger(service.settings) as opened:
        seed_demo(opened)
        yield opened


def dashboard(ledger: Ledger, phone: str) -> Dashboard:
    login = ledger.login(phone)
    assert login is not None, f"{phone} is not a member"
    return ledger.dashboard(login.token, login.accounts[0].id)


def member_id(ledger: Ledger, phone: str) -> str:
    login = ledger.login(phone)
    assert login is not None, f"{phone} is not a member"
    return login.member.id


def usd(ledger: Ledger, phone: str) -> Decimal:
    return dashboard(ledger, phone).balances.get("USD", Decimal(0))


def offer_to_bob(member: WhatsAppMember, amount: str, shown: str) -> str:
    """From the dashboard, offer ``amount`` to @bob up to the confirmation."""
    assert "How much do you want to offer?" in member.tap("Offer a credex")
    assert "Who is it for?" in member.say(amount)
    summary = member.say("@bob")
    assert f"Offer *{shown}* to Bob Dube (@bob)" in summary
    assert member.options == ["Sign and send", "Cancel"]
    return summary


def state_of(service: Running, phone: str) -> dict[str, Any]:
    """The document of the session the member's WhatsApp identity now lives under."""
    key = service.store.route(f"whatsapp:{phone}")
    assert key is not None
    assert key.startswith("member:"), key
    snapshot = service.store.get(key)
    assert snapshot is not None
    return snapshot.doc


# -- the conversations -------------------------------------------------------------------


def test_a_newcomer_registers_then_offers_bob_25_usd(
    service: Running, fresh_graph: FakeGraph, ledger: Ledger
) -> None:
    phone = new_phone()
    tendai = WhatsAppMember(service, fresh_graph, phone)

    assert "Welcome to credex! 👋" in tendai.say("hi")
    assert tendai.options == ["Join credex", "Learn more"]
    assert "What is your *first name*?" in tendai.tap("Join credex")
    assert "And your *last name*?" in tendai.say("Tendai")
    joined = tendai.say("Moyo")
    assert "Welcome to credex, Tendai! Your account @tendai_moyo is ready." in joined
    assert "*Tendai Moyo* (@tendai_moyo)" in joined  # the dashboard
    assert "100.00 USD" in joined  # the welcome grant
    assert "Pending offers: 0 incoming, 0 outgoing" in joined
    assert tendai.options == ["Offer a credex", "Ledger"]
    assert usd(ledger, phone) == Decimal(100)

    offer_to_bob(tendai, "25", "25.00 USD")
    sent = tendai.tap("Sign and send")
    assert "Offer sent: 25.00 USD to Bob Dube (@bob). It waits for them to accept." in sent
    assert "Pending offers: 0 incoming, 1 outgoing" in sent  # back on the dashboard
    assert "Outgoing offers (1)" in tendai.options

    (offer,) = dashboard(ledger, phone).pending_out
    assert (offer.amount, offer.denomination, offer.status) == (Decimal(25), "USD", OFFER_PENDING)
    assert offer.counterparty.handle == "bob"
    from_tendai = [o for o in dashboard(ledger, BOB.phone).pending_in if o.id == offer.id]
    assert [o.counterparty.handle for o in from_tendai] == ["tendai_moyo"]
    assert usd(ledger, phone) == Decimal(100)  # nothing moves until Bob accepts

    # Every message was answered, each once, in the order it was sent.
    assert answered(fresh_graph, phone) == tendai.sent

    # The conversation lives under the new member's key, back at the dashboard.
    doc = state_of(service, phone)
    assert doc["member_id"] == member_id(ledger, phone)
    assert doc["stage"] == STAGE_MENU
    assert doc["authenticated"] is True
    assert doc.get("flow_data") is None
    assert doc["current_account"]["handle"] == "tendai_moyo"
    trail = service.audit_events(f"whatsapp:{phone}")
    milestones = [
        (e.event, e.detail.get("flow"))
        for e in trail
        if e.event in ("identity.bound", "auth.login", "flow.started", "flow.ended")
    ]
    assert milestones == [
        ("identity.bound", None),  # the channel moved to the new member's key
        ("auth.login", None),
        ("flow.ended", "register"),
        ("flow.started", "offer"),
        ("flow.ended", "offer"),
    ]
    assert [e.event for e in trail].count("flow.step") == 2  # amount, then recipient


def test_alice_accepts_bobs_offer_and_the_balance_moves(
    service: Running, fresh_graph: FakeGraph, ledger: Ledger
) -> None:
    bob = WhatsAppMember(service, fresh_graph, BOB.phone)
    home = bob.say("hi")
    assert "*Bob Dube* (@bob)" in home
    assert "Pending offers: 0 incoming, 1 outgoing" in home
    assert "Outgoing offers (1)" in bob.options

    alice = WhatsAppMember(service, fresh_graph, ALICE.phone)
    home = alice.say("hi")
    assert "*Alice Moyo* (@alice)" in home
    assert "500.00 USD" in home
    assert "Pending offers: 1 incoming, 0 outgoing" in home
    assert "Switch account" in alice.options  # Alice also has @alice_shop
    assert "Your incoming offers: choose one." in alice.tap("Incoming offers (1)")
    assert alice.options == ["10.00 USD", "Back to dashboard"]
    assert "10.00 USD from Bob Dube (@bob)." in alice.tap("10.00 USD")
    assert alice.options == ["Accept", "Decline", "Back"]
    accepted = alice.tap("Accept")
    lines = accepted.splitlines()
    assert lines[0] == "Accepted: 10.00 USD from Bob Dube (@bob)."
    assert lines[1] == "You have no incoming offers pending."
    assert "Pending offers: 0 incoming, 0 outgoing" in accepted  # then the dashboard
    assert "510.00 USD" in accepted
    assert len(alice.replies) == 3

    assert usd(ledger, ALICE.phone) == Decimal(510)
    assert usd(ledger, BOB.phone) == Decimal(290)
    assert dashboard(ledger, ALICE.phone).pending_in == ()
    assert "Pending offers: 0 incoming, 0 outgoing" in bob.say("menu")

    assert answered(fresh_graph, ALICE.phone) == alice.sent
    assert answered(fresh_graph, BOB.phone) == bob.sent
    doc = state_of(service, ALICE.phone)
    assert (doc["stage"], doc.get("flow_data")) == (STAGE_MENU, None)
    assert doc["member_id"] == member_id(ledger, ALICE.phone)
    trail = service.audit_events(f"whatsapp:{ALICE.phone}")
    assert "auth.login" in [e.event for e in trail]
    flows = [(e.event, e.detail.get("flow")) for e in trail if e.event.startswith("flow.")]
    assert ("flow.started", "incoming") in flows


def test_a_redelivered_confirm_tap_sends_one_offer_and_no_extra_reply(
    service: Running, fresh_graph: FakeGraph, ledger: Ledger
) -> None:
    chipo = WhatsAppMember(service, fresh_graph, CHIPO.phone)
    assert "50.00 USD" in chipo.say("hi")
    offer_to_bob(chipo, "20", "20.00 USD")
    sign = next(m for m in chipo.menu if m[2] == "Sign and send")
    assert "Offer sent: 20.00 USD to Bob Dube (@bob)." in chipo.tap("Sign and send")
    assert chipo.request is not None
    replies = len(fresh_graph.messages_to(CHIPO.phone))

    # Meta delivers the exact same request again: acknowledged, never processed twice.
    raw, headers = chipo.request
    again = service.http.post(WEBHOOK, content=raw, headers=headers)
    assert again.json() == {"queued": 0, "duplicates": 1, "ignored": 0, "rejected": 0}
    settle(service)
    assert len(fresh_graph.messages_to(CHIPO.phone)) == replies
    assert len(dashboard(ledger, CHIPO.phone).pending_out) == 1

    # Chipo taps the old button again (a new message with the same stamped id).
    stale = chipo.send(wh.button(CHIPO.phone, sign[1], sign[2]))
    assert "That menu has expired; here is the current one." in stale
    assert "Offer sent" not in stale
    (offer,) = dashboard(ledger, CHIPO.phone).pending_out
    assert (offer.amount, offer.counterparty.handle) == (Decimal(20), "bob")
    assert usd(ledger, CHIPO.phone) == Decimal(50)
    assert answered(fresh_graph, CHIPO.phone) == chipo.sent
