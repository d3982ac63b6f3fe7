"""Conversations with the credex bot: real engine, real state store, real SQLite ledger.

Each test runs twice: with the ledger in process, and over HTTP through HttpBackend
against the real built-in server (so a 401 mid-flow is a real 401 response).

Every path of issue 4: registration, the dashboard, offering (every amount format and
every refusal), reviewing offers, the ledger, switching accounts, and the things that go
wrong in real chats: greetings mid-flow, text where a tap was expected, stale taps,
sessions expiring mid-flow, a 401 mid-flow, and the same message processed twice.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from phone import Phone, Recorder, member

from statehq import StateStore
from statehq.channels.terminal import TerminalChat
from statehq.credex.app import build_engine
from statehq.credex.backend import Backend, BackendUnavailable
from statehq.credex.ledger import Ledger
from statehq.flows import Headquarters

ANN, ALICE, BOB = "263770000001", "263771111111", "263772222222"


@pytest.fixture
def clock(clock: Any) -> Any:
    """The ledger's clock, started now: the state manager checks token expiry by real time."""
    clock.now = time.time()
    return clock


@pytest.fixture
def recorder(backend: Backend) -> Recorder:
    """The real ledger (in process, then over HTTP), with a record of the bot's calls."""
    return Recorder(backend)


@pytest.fixture
def engine(store: StateStore, recorder: Recorder) -> Headquarters:
    return build_engine(store, recorder)  # type: ignore[arg-type]


@pytest.fixture
def alice(engine: Headquarters, ledger: Ledger) -> Phone:
    member(ledger, ALICE, "Alice", "Moyo", USD="500", ZWG="2000")
    member(ledger, BOB, "Bob", "Dube", USD="300")
    return Phone(engine, ALICE)


def pending_out(ledger: Ledger, phone: str) -> list[object]:
    login = ledger.login(phone)
    assert login is not None
    return list(ledger.dashboard(login.token, login.accounts[0].id).pending_out)


def balance(ledger: Ledger, phone: str, denomination: str = "USD") -> Decimal:
    login = ledger.login(phone)
    assert login is not None
    dash = ledger.dashboard(login.token, login.accounts[0].id)
    return dash.balances.get(denomination, Decimal(0))


# -- registration ---------------------------------------------------------------------


def test_a_newcomer_registers_and_lands_on_the_dashboard(engine: Headquarters) -> None:
    ann = Phone(engine, ANN)
    assert "Welcome to credex" in ann.say("Hi")
    assert ann.options == ["Join credex", "Learn more"]
    assert "How credex works" in ann.tap("Learn more")
    assert "first name" in ann.tap("Join credex")
    assert "last name" in ann.say("Ann")
    answer = ann.say("Moyo-Banda")
    assert "Welcome to credex, Ann! Your account @ann_moyo_banda is ready" in answer
    assert "*Ann Moyo-Banda* (@ann_moyo_banda)" in answer
    assert "100.00 USD" in answer  # the welcome grant of the built-in ledger
    assert ann.options[0] == "Offer a credex"
    session = ann.session()
    assert session.key.startswith("member:")  # the channel is bound to the new member
    assert session.get_stage() == "MENU"
    assert session.is_authenticated()
    events = [e.event for e in engine.manager.audit.read(session.key)]
    assert {"identity.bound", "flow.ended"} <= set(events)


@pytest.mark.parametrize(
    ("name", "why"), [("Al", "3 to 50 characters long; “Al” has 2"), ("A" * 51, "has 51")]
)
def test_names_too_short_or_too_long_are_refused(engine: Headquarters, name: str, why: str) -> None:
    ann = Phone(engine, ANN)
    ann.say("hi")
    ann.tap("Join")
    assert why in ann.say(name)
    assert "first name" in ann.text  # asked again
    assert ann.session().get_flow()["_validation"]["attempts"] == 1
    assert "last name" in ann.say("Ann")


def test_three_invalid_answers_end_the_flow_with_the_menu(engine: Headquarters) -> None:
    ann = Phone(engine, ANN)
    ann.say("hi")
    ann.tap("Join")
    ann.say("A1")
    ann.say("B2")
    answer = ann.say("C3")
    assert "That is 3 tries, so I stopped “Join credex”" in answer
    assert ann.options == ["Join credex", "Learn more"]
    assert ann.session().get_flow() is None


# -- offering a credex ----------------------------------------------------------------


def start_offer(phone: Phone) -> None:
    phone.say("hi")
    assert "How much" in phone.tap("Offer a credex")


@pytest.mark.parametrize(
    ("typed", "shown"),
    [("9", "9.00 USD"), ("9.50", "9.50 USD"), ("99 ZWG", "99.00 ZWG"), ("ZWG 99", "99.00 ZWG")],
)
def test_every_amount_format_reaches_the_confirmation(
    alice: Phone, ledger: Ledger, recorder: Recorder, typed: str, shown: str
) -> None:
    start_offer(alice)
    assert "Who is it for?" in alice.say(typed)
    assert f"Offer *{shown}* to Bob Dube (@bob_dube)" in alice.say("@bob_dube")
    assert alice.options == ["Sign and send", "Cancel"]
    assert "Offer sent" in alice.tap("Sign and send")
    assert recorder.calls.count("create_credex") == 1
    (offer,) = pending_out(ledger, ALICE)
    assert f"{offer.amount:.2f} {offer.denomination}" == shown  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("typed", "why"),
    [
        ("EUR 20", "EUR is not a denomination credex uses"),
        ("0", "must be greater than 0"),
        ("-5", "must be greater than 0"),
        ("601", "You can offer up to 600.00 USD"),
        ("lots", "could not read “lots” as an amount"),
    ],
)
def test_bad_amounts_are_explained_and_asked_again(alice: Phone, typed: str, why: str) -> None:
    start_offer(alice)
    assert why in alice.say(typed)
    assert "How much" in alice.text
    flow = alice.session().get_flow()
    assert flow["step"] == "amount"
    assert flow["_validation"]["attempts"] == 1


def test_an_unknown_handle_can_be_retried(alice: Phone) -> None:
    start_offer(alice)
    alice.say("20")
    assert "I could not find @bobby" in alice.say("@bobby")
    assert "Offer *20.00 USD* to Bob Dube" in alice.say("bob_dube")


def test_cancel_at_confirmation_makes_no_backend_call(
    alice: Phone, ledger: Ledger, recorder: Recorder
) -> None:
    start_offer(alice)
    alice.say("20")
    alice.say("@bob_dube")
    before = list(recorder.calls)
    assert "Cancelled. No offer was sent." in alice.tap("Cancel")
    made = recorder.calls[len(before) :]
    assert "create_credex" not in made
    assert made == ["dashboard"]
    assert pending_out(ledger, ALICE) == []
    assert alice.session().get_flow() is None


def test_text_where_a_button_was_expected(alice: Phone, recorder: Recorder) -> None:
    start_offer(alice)
    alice.say("20")
    alice.say("@bob_dube")
    assert "Please tap “Sign and send” or “Cancel”" in alice.say("maybe later")
    assert alice.options == ["Sign and send", "Cancel"]
    assert "create_credex" not in recorder.calls
    assert "Offer sent" in alice.say("yes")


def test_a_greeting_mid_flow_goes_home(alice: Phone) -> None:
    start_offer(alice)
    alice.say("20")
    assert "*Alice Moyo* (@alice_moyo)" in alice.say("Buenos días!")
    assert alice.session().get_flow() is None
    events = [e.event for e in alice.engine.manager.audit.read(alice.session().key)]
    assert "flow.cancelled" in events


def test_cancel_mid_flow(alice: Phone) -> None:
    start_offer(alice)
    assert "Cancelled “Offer a credex”. Nothing was sent." in alice.say("cancel")
    assert alice.options[0] == "Offer a credex"


def test_a_stale_tap_is_answered_not_applied(alice: Phone) -> None:
    alice.say("hi")
    old_dashboard = alice.tap_inbound("Ledger")
    alice.tap("Offer a credex")
    version = alice.session().version
    answer = alice.send(old_dashboard) and alice.text
    assert "That menu has expired; here is the current one." in answer
    assert "How much" in answer  # the current step's prompt, not the ledger
    session = alice.session()
    assert session.version == version
    assert session.get_flow()["step"] == "amount"


def test_the_same_tap_delivered_twice_sends_one_offer(
    alice: Phone, ledger: Ledger, recorder: Recorder
) -> None:
    start_offer(alice)
    alice.say("20")
    alice.say("@bob_dube")
    sign = alice.tap_inbound("Sign and send")
    alice.send(sign)
    assert "That menu has expired" in (alice.send(sign) and alice.text)
    assert len(pending_out(ledger, ALICE)) == 1
    assert recorder.calls.count("create_credex") == 1


def test_a_message_processed_again_after_a_lost_state_write_makes_one_offer(
    alice: Phone, ledger: Ledger, recorder: Recorder
) -> None:
    """A worker calls the ledger, then dies before the state write: the retry reuses the key."""
    start_offer(alice)
    alice.say("20")
    alice.say("@bob_dube")
    at_confirm = alice.session().version
    alice.say("Sign and send", message_id="wamid.SIGN")
    alice.session().rollback(at_confirm, reason="simulate the lost state write")
    assert "Offer sent" in alice.say("Sign and send", message_id="wamid.SIGN")
    assert recorder.calls.count("create_credex") == 2  # called twice ...
    assert len(pending_out(ledger, ALICE)) == 1  # ... one offer


# -- reviewing offers -----------------------------------------------------------------


def offers_to_alice(ledger: Ledger, *amounts: str) -> None:
    bob, alice = ledger.login(BOB), ledger.login(ALICE)
    assert bob is not None
    assert alice is not None
    for n, amount in enumerate(amounts):
        ledger.create_credex(
            bob.token,
            issuer_account_id=bob.accounts[0].id,
            receiver_account_id=alice.accounts[0].id,
            amount=Decimal(amount),
            denomination="USD",
            idempotency_key=f"bob-offer-{n}",
        )


def test_accept_then_decline_back_to_the_list_then_the_dashboard(
    alice: Phone, ledger: Ledger
) -> None:
    offers_to_alice(ledger, "10", "25")
    assert "Pending offers: 2 incoming" in alice.say("hi")
    alice.tap("Incoming offers (2)")
    assert alice.options == ["10.00 USD", "25.00 USD", "Back to dashboard"]
    alice.tap("10.00 USD")
    assert alice.options == ["Accept", "Decline", "Back"]
    answer = alice.tap("Accept")
    assert "Accepted: 10.00 USD from Bob Dube (@bob_dube)." in answer
    assert alice.options == ["25.00 USD", "Back to dashboard"]  # one remains: the list
    alice.tap("25.00 USD")
    answer = alice.tap("Decline")
    assert "Declined: 25.00 USD" in answer
    assert "Pending offers: 0 incoming" in answer  # none remain: the dashboard
    assert balance(ledger, ALICE) == Decimal("610")  # 500 deposited + 100 welcome + 10
    assert balance(ledger, BOB) == Decimal("390")


def test_cancel_an_outgoing_offer(alice: Phone, ledger: Ledger) -> None:
    start_offer(alice)
    alice.say("40")
    alice.say("bob_dube")
    alice.tap("Sign and send")
    alice.tap("Outgoing offers (1)")
    alice.tap("40.00 USD")
    assert alice.options == ["Cancel offer", "Back"]
    answer = alice.tap("Cancel offer")
    assert "Cancelled: 40.00 USD to Bob Dube" in answer
    assert "Pending offers: 0 incoming, 0 outgoing" in answer
    assert balance(ledger, ALICE) == Decimal("600")  # nothing moved


def test_bob_accepts_alices_offer_from_his_side(
    alice: Phone, engine: Headquarters, ledger: Ledger
) -> None:
    start_offer(alice)
    alice.say("35")
    alice.say("bob_dube")
    alice.tap("Sign and send")
    bob = Phone(engine, BOB, channel="terminal")
    assert "1 incoming" in bob.say("hello")
    bob.tap("Incoming offers")
    bob.tap("35.00 USD")
    bob.tap("Accept")
    assert balance(ledger, BOB) == Decimal("435")
    assert balance(ledger, ALICE) == Decimal("565")


# -- ledger, accounts -----------------------------------------------------------------


def test_the_ledger_pages(alice: Phone, ledger: Ledger) -> None:
    login = ledger.login(ALICE)
    assert login is not None
    for n in range(8):
        ledger.deposit(login.accounts[0].id, Decimal(n + 1), "CAD", f"deposit {n}")
    alice.say("hi")
    first = alice.tap("Ledger")
    assert first.count("\n20") == 5
    assert "+8.00 CAD" in first
    assert alice.options == ["Older", "Dashboard"]
    older = alice.tap("Older")
    assert "+3.00 CAD" in older
    assert "+8.00 CAD" not in older
    assert alice.options == ["Older", "Newer", "Dashboard"]
    assert "*Alice Moyo*" in alice.tap("Dashboard")


def test_switch_account(alice: Phone, ledger: Ledger) -> None:
    login = ledger.login(ALICE)
    assert login is not None
    shop = ledger.add_account(login.member.id, "alice_shop", "Alice's Shop")
    ledger.deposit(shop.id, Decimal("70"), "USD")
    alice.say("hi")
    alice.tap("Switch account")
    assert "Which account" in alice.text
    answer = alice.tap("@alice_shop")
    assert "Now using Alice's Shop (@alice_shop)." in answer
    assert "*Alice's Shop* (@alice_shop)" in answer
    assert "70.00 USD" in answer


# -- time: expiry and tokens ----------------------------------------------------------


@pytest.fixture
def short_store(server_url: str, prefix: str) -> Iterator[StateStore]:
    with StateStore.open(url=server_url, key_prefix=prefix, session_ttl=0.5) as opened:
        yield opened


def test_the_session_expiring_mid_flow(
    short_store: StateStore, ledger: Ledger, recorder: Recorder
) -> None:
    member(ledger, ALICE, "Alice", "Moyo", USD="500")
    member(ledger, BOB, "Bob", "Dube")
    alice = Phone(build_engine(short_store, recorder), ALICE)  # type: ignore[arg-type]
    start_offer(alice)
    alice.say("20")
    time.sleep(0.8)
    answer = alice.say("@bob_dube")
    assert "Your session timed out" in answer
    assert "*Alice Moyo*" in answer  # logged in again: the dashboard, not a half-filled offer
    assert alice.session().get_flow() is None
    assert "create_credex" not in recorder.calls


def test_a_401_mid_flow_logs_in_again_and_keeps_the_place(
    alice: Phone, ledger: Ledger, clock: Any
) -> None:
    start_offer(alice)
    alice.say("20")
    alice.say("bob_dube")
    clock.advance(400)
    # the stored token is now expired for the ledger (its clock), still fine for ours
    assert "Offer sent" in alice.tap("Sign and send")
    assert len(pending_out(ledger, ALICE)) == 1
    trail = alice.engine.manager.audit.read(alice.session().key)
    assert any(e.event == "state.updated" and e.reason == "logged in again" for e in trail)


# -- failures and the member's place (found in review) --------------------------------


class Flaky(Recorder):
    """The real backend, whose next ``call`` fails: before it runs, or after it committed."""

    def __init__(self, backend: Backend, call: str, *, after: bool) -> None:
        super().__init__(backend)
        self.failing, self.after = call, after

    def __getattr__(self, name: str) -> Any:
        real = super().__getattr__(name)
        if name != self.failing:
            return real

        def call(*args: Any, **kwargs: Any) -> Any:
            self.failing = ""  # once
            result = real(*args, **kwargs) if self.after else None
            raise BackendUnavailable(f"{name} timed out (result {'lost' if result else 'none'})")

        return call


def flaky_phone(store: StateStore, ledger: Ledger, call: str, *, after: bool) -> Phone:
    member(ledger, ALICE, "Alice", "Moyo", USD="500")
    member(ledger, BOB, "Bob", "Dube", USD="300")
    engine = build_engine(store, Flaky(ledger, call, after=after))  # type: ignore[arg-type]
    return Phone(engine, ALICE)


def test_a_lost_answer_then_a_new_tap_makes_one_offer(store: StateStore, ledger: Ledger) -> None:
    alice = flaky_phone(store, ledger, "create_credex", after=True)
    start_offer(alice)
    alice.say("20")
    alice.say("@bob_dube")
    assert "not answering right now" in alice.tap("Sign and send")
    assert alice.session().get_flow()["step"] == "confirm"  # the place is kept
    assert "Offer sent" in alice.say("Sign and send")  # a new message, the same offer key
    assert len(pending_out(ledger, ALICE)) == 1


def test_a_failed_accept_leaves_a_step_that_takes_the_next_answer(
    store: StateStore, ledger: Ledger
) -> None:
    alice = flaky_phone(store, ledger, "accept", after=False)
    offers_to_alice(ledger, "10")
    alice.say("hi")
    alice.tap("Incoming offers")
    alice.tap("10.00 USD")
    assert "not answering right now" in alice.tap("Accept")
    assert alice.session().get_flow()["step"] == "decide"
    assert "That menu has expired" in alice.tap("Accept")  # the old buttons: re-drawn
    assert "Accepted: 10.00 USD" in alice.tap("Accept")
    assert balance(ledger, ALICE) == Decimal("610")


def test_typing_back_to_dashboard_in_a_list_goes_home(alice: Phone, ledger: Ledger) -> None:
    offers_to_alice(ledger, "10")
    alice.say("hi")
    alice.tap("Incoming offers")
    assert "*Alice Moyo*" in alice.say("Back to dashboard")
    assert alice.session().get_flow() is None


def test_a_welcome_tap_from_before_login_is_stale_after_it(engine: Headquarters) -> None:
    ann = Phone(engine, ANN)
    ann.say("hi")
    learn = ann.tap_inbound("Learn more")
    ann.tap("Join credex")
    ann.say("Ann")
    ann.say("Moyo")
    assert "That menu has expired" in (ann.send(learn) and ann.text)
    assert "Welcome to credex!" not in ann.text


def test_a_handle_that_looks_like_a_command_is_a_handle(alice: Phone) -> None:
    start_offer(alice)
    alice.say("20")
    assert "I could not find @stop" in alice.say("@stop")
    assert alice.session().get_flow()["step"] == "recipient"


def test_a_member_whose_token_expired_can_still_pick_from_the_dashboard(
    alice: Phone, clock: Any
) -> None:
    clock.advance(-400)  # tokens the ledger issues are already expired by our clock
    alice.say("hi")
    assert not alice.session().is_authenticated()
    assert "How much" in alice.tap("Offer a credex")
    assert "Who is it for?" in alice.say("20")  # logged in again for the balance check


def test_the_terminal_numbers_only_what_is_on_screen(alice: Phone) -> None:
    chat = TerminalChat(alice.engine, ALICE)
    assert "1. Offer a credex" in chat.send("hi")
    chat.send("1")
    assert "Who is it for?" in chat.send("2")  # an amount, not the dashboard's second row
