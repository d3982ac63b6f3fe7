"""The Backend contract, run against the in-process Ledger and the same ledger over HTTP,
then what only the in-process Ledger offers (deposits, extra accounts, the demo seed,
two connections racing on one file)."""

from __future__ import annotations

import itertools
import subprocess
import sys
import threading
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from statehq.credex.backend import Account, Backend, Login, Offer, Refused, Unauthorized
from statehq.credex.demo import ALICE, BOB, CHIPO, DEMO_MEMBERS, seed_demo
from statehq.credex.ledger import Ledger

Opener = Callable[[Path], Ledger]  # the open_ledger fixture

_keys = itertools.count()


def key() -> str:
    """A fresh idempotency key."""
    return f"k{next(_keys)}"


def join(backend: Backend, phone: str, first: str = "Ann", last: str = "Moyo") -> Login:
    return backend.onboard(phone, first, last, idempotency_key=key())


@pytest.fixture
def ann(backend: Backend) -> Login:
    return join(backend, "263770000001", "Ann", "Moyo")


@pytest.fixture
def ben(backend: Backend) -> Login:
    return join(backend, "263770000002", "Ben", "Sibanda")


def offer(backend: Backend, who: Login, to: Login, amount: str = "30", denom: str = "USD") -> Offer:
    return backend.create_credex(
        who.token,
        issuer_account_id=who.accounts[0].id,
        receiver_account_id=to.accounts[0].id,
        amount=Decimal(amount),
        denomination=denom,
        idempotency_key=key(),
    )


def balances(backend: Backend, who: Login) -> dict[str, Decimal]:
    return backend.dashboard(who.token, who.accounts[0].id).balances


# -- the contract: both backends ------------------------------------------------------


def test_onboard_opens_a_personal_account_with_the_welcome_grant(
    backend: Backend, ann: Login
) -> None:
    assert ann.member.phone == "263770000001"
    assert (ann.member.first_name, ann.member.last_name) == ("Ann", "Moyo")
    (account,) = ann.accounts
    assert (account.handle, account.name, account.type) == ("ann_moyo", "Ann Moyo", "PERSONAL")
    board = backend.dashboard(ann.token, account.id)
    assert board.balances == {"USD": Decimal(100)}
    assert board.available == {"USD": Decimal(100)}
    assert (board.net_assets, board.net_denomination) == (Decimal(100), "USD")
    page = backend.ledger(ann.token, account.id)
    assert page.total == 1
    assert page.entries[0].amount == Decimal(100)
    assert page.entries[0].description == "welcome grant"


def test_handles_are_derived_from_names_and_made_unique(backend: Backend, ann: Login) -> None:
    twin = join(backend, "263770000009", "ann", "MOYO")
    assert twin.accounts[0].handle == "ann_moyo2"
    accented = join(backend, "263770000010", "Zoë", "Ñúñez-Dube")
    assert accented.accounts[0].handle == "zoe_nunez_dube"
    cjk = join(backend, "263770000011", "李小龍", "王大明")
    assert cjk.accounts[0].handle == "member"
    assert cjk.accounts[0].name == "李小龍 王大明"


@pytest.mark.parametrize(
    ("phone", "first", "last", "code"),
    [
        ("26377", "Ann", "Moyo", "invalid_phone"),
        ("+263770000001", "Ann", "Moyo", "invalid_phone"),
        ("2637700000011112", "Ann", "Moyo", "invalid_phone"),
        ("263770000001", "An", "Moyo", "invalid_name"),
        ("263770000001", "Ann", "M0yo", "invalid_name"),
        ("263770000001", "Ann", "x" * 51, "invalid_name"),
        ("263770000001", "...", "Moyo", "invalid_name"),
    ],
)
def test_onboard_refuses_bad_phones_and_names(
    backend: Backend, phone: str, first: str, last: str, code: str
) -> None:
    with pytest.raises(Refused) as caught:
        backend.onboard(phone, first, last, idempotency_key=key())
    assert caught.value.code == code


def test_names_may_use_any_script_and_name_punctuation(backend: Backend) -> None:
    login = join(backend, "263770000012", "Mary-Jane", "O'Neil Jr.")
    assert login.member.last_name == "O'Neil Jr."


def test_onboarding_a_registered_phone_is_refused_unless_replayed(backend: Backend) -> None:
    first = backend.onboard("263770000003", "Ann", "Moyo", idempotency_key="join-1")
    replay = backend.onboard("263770000003", "Ann", "Moyo", idempotency_key="join-1")
    assert replay.member == first.member
    assert balances(backend, replay) == {"USD": Decimal(100)}  # granted once
    with pytest.raises(Refused) as caught:
        backend.onboard("263770000003", "Ann", "Moyo", idempotency_key="join-2")
    assert caught.value.code == "member_exists"


def test_login_by_phone(backend: Backend, ann: Login) -> None:
    assert backend.login("263779999999") is None
    login = backend.login(ann.member.phone)
    assert login is not None
    assert login.member == ann.member
    assert login.accounts == ann.accounts


def test_accepting_moves_the_balance(backend: Backend, ann: Login, ben: Login) -> None:
    made = offer(backend, ann, ben, "30.5")
    assert (made.status, made.direction, made.amount) == ("PENDING", "out", Decimal("30.5"))
    assert made.counterparty == ben.accounts[0]
    assert balances(backend, ann) == {"USD": Decimal(100)}  # nothing moves while pending
    board = backend.dashboard(ann.token, ann.accounts[0].id)
    assert board.available == {"USD": Decimal("69.5")}
    assert [o.id for o in board.pending_out] == [made.id]
    incoming = backend.dashboard(ben.token, ben.accounts[0].id).pending_in
    assert [(o.id, o.direction) for o in incoming] == [(made.id, "in")]

    accepted = backend.accept(ben.token, made.id, idempotency_key=key())
    assert (accepted.status, accepted.direction) == ("ACCEPTED", "in")
    assert accepted.counterparty == ann.accounts[0]
    assert balances(backend, ann) == {"USD": Decimal("69.5")}
    assert balances(backend, ben) == {"USD": Decimal("130.5")}
    ann_page = backend.ledger(ann.token, ann.accounts[0].id)
    ben_page = backend.ledger(ben.token, ben.accounts[0].id)
    assert (ann_page.total, ben_page.total) == (2, 2)
    newest = ann_page.entries[0]
    assert (newest.credex_id, newest.amount, newest.counterparty) == (
        made.id,
        Decimal("-30.5"),
        ben.accounts[0],
    )
    assert (ben_page.entries[0].amount, ben_page.entries[0].counterparty.handle) == (
        Decimal("30.5"),
        "ann_moyo",
    )


def test_declining_or_cancelling_moves_nothing(backend: Backend, ann: Login, ben: Login) -> None:
    declined = backend.decline(ben.token, offer(backend, ann, ben).id, idempotency_key=key())
    cancelled = backend.cancel(ann.token, offer(backend, ann, ben).id, idempotency_key=key())
    assert (declined.status, declined.direction) == ("DECLINED", "in")
    assert (cancelled.status, cancelled.direction) == ("CANCELLED", "out")
    for who in (ann, ben):
        board = backend.dashboard(who.token, who.accounts[0].id)
        assert board.balances == board.available == {"USD": Decimal(100)}
        assert board.pending_in == board.pending_out == ()
        assert backend.ledger(who.token, who.accounts[0].id).total == 1


def test_pending_offers_count_against_the_available_balance(
    backend: Backend, ann: Login, ben: Login
) -> None:
    offer(backend, ann, ben, "60")
    with pytest.raises(Refused) as caught:
        offer(backend, ann, ben, "50")
    assert caught.value.code == "insufficient_balance"
    assert "available USD balance is 40.00, offer is 50.00" in str(caught.value)
    with pytest.raises(Refused) as caught:
        offer(backend, ann, ben, "1", "ZWG")
    assert "available ZWG balance is 0.00" in str(caught.value)
    offer(backend, ann, ben, "40")  # exactly what is left


def test_only_the_right_side_may_act(backend: Backend, ann: Login, ben: Login) -> None:
    made = offer(backend, ann, ben)
    for act, who in ((backend.accept, ann), (backend.decline, ann), (backend.cancel, ben)):
        with pytest.raises(Refused) as caught:
            act(who.token, made.id, idempotency_key=key())
        assert caught.value.code == "forbidden"
    with pytest.raises(Refused) as caught:
        backend.dashboard(ben.token, ann.accounts[0].id)
    assert caught.value.code == "forbidden"
    with pytest.raises(Refused) as caught:
        backend.ledger(ben.token, ann.accounts[0].id)
    assert caught.value.code == "forbidden"
    with pytest.raises(Refused) as caught:
        offer(backend, Login(ben.token, ben.member, ann.accounts), ben)
    assert caught.value.code == "forbidden"


def test_only_pending_offers_change(backend: Backend, ann: Login, ben: Login) -> None:
    made = offer(backend, ann, ben)
    backend.accept(ben.token, made.id, idempotency_key=key())
    for act, who in ((backend.accept, ben), (backend.decline, ben), (backend.cancel, ann)):
        with pytest.raises(Refused) as caught:
            act(who.token, made.id, idempotency_key=key())
        assert caught.value.code == "not_pending"
    assert balances(backend, ben) == {"USD": Decimal(130)}


@pytest.mark.parametrize(
    ("amount", "denom", "code"),
    [
        ("0", "USD", "invalid_amount"),
        ("-5", "USD", "invalid_amount"),
        ("0.00001", "USD", "invalid_amount"),
        ("NaN", "USD", "invalid_amount"),
        ("5", "EUR", "invalid_denomination"),
    ],
)
def test_bad_amounts_and_denominations_are_refused(
    backend: Backend, ann: Login, ben: Login, amount: str, denom: str, code: str
) -> None:
    with pytest.raises(Refused) as caught:
        offer(backend, ann, ben, amount, denom)
    assert caught.value.code == code


def test_unknown_or_same_accounts_are_refused(backend: Backend, ann: Login, ben: Login) -> None:
    with pytest.raises(Refused) as caught:
        offer(backend, ann, ann)
    assert caught.value.code == "same_account"
    ghost = Login(ben.token, ben.member, (Account("no-such-account", "ghost", "Ghost"),))
    with pytest.raises(Refused) as caught:
        offer(backend, ann, ghost)
    assert caught.value.code == "not_found"
    with pytest.raises(Refused) as caught:
        backend.accept(ben.token, "no-such-credex", idempotency_key=key())
    assert caught.value.code == "not_found"


def test_a_repeated_key_returns_the_first_result(backend: Backend, ann: Login, ben: Login) -> None:
    def make(amount: str) -> Offer:
        return backend.create_credex(
            ann.token,
            issuer_account_id=ann.accounts[0].id,
            receiver_account_id=ben.accounts[0].id,
            amount=Decimal(amount),
            denomination="USD",
            idempotency_key="msg-1",
        )

    first, again = make("10"), make("10.00")
    assert first == again
    assert len(backend.dashboard(ann.token, ann.accounts[0].id).pending_out) == 1
    with pytest.raises(Refused) as caught:
        make("11")
    assert caught.value.code == "idempotency_key_reused"
    assert first.id == again.id
    accepted = backend.accept(ben.token, first.id, idempotency_key="msg-2")
    assert backend.accept(ben.token, first.id, idempotency_key="msg-2") == accepted
    assert balances(backend, ben) == {"USD": Decimal(110)}
    with pytest.raises(Refused) as caught:
        backend.decline(ben.token, first.id, idempotency_key="msg-2")
    assert caught.value.code == "idempotency_key_reused"


def test_keys_are_scoped_per_member(backend: Backend, ann: Login, ben: Login) -> None:
    mine = backend.create_credex(
        ann.token,
        issuer_account_id=ann.accounts[0].id,
        receiver_account_id=ben.accounts[0].id,
        amount=Decimal(5),
        denomination="USD",
        idempotency_key="same",
    )
    theirs = backend.create_credex(
        ben.token,
        issuer_account_id=ben.accounts[0].id,
        receiver_account_id=ann.accounts[0].id,
        amount=Decimal(5),
        denomination="USD",
        idempotency_key="same",
    )
    assert mine.id != theirs.id


def test_account_by_handle(backend: Backend, ann: Login, ben: Login) -> None:
    for handle in ("ben_sibanda", "@Ben_Sibanda", " BEN_SIBANDA "):
        assert backend.account_by_handle(ann.token, handle) == ben.accounts[0]
    assert backend.account_by_handle(ann.token, "nobody") is None
    assert backend.account_by_handle(ann.token, "credex_reserve") is None  # system account


def test_the_ledger_pages_newest_first(backend: Backend, ann: Login, ben: Login) -> None:
    for amount in ("1", "2", "3", "4", "5", "6"):
        backend.accept(ben.token, offer(backend, ann, ben, amount).id, idempotency_key=key())
    first = backend.ledger(ann.token, ann.accounts[0].id, offset=0, limit=5)
    assert [e.amount for e in first.entries] == [Decimal(-n) for n in (6, 5, 4, 3, 2)]
    assert (first.total, first.has_more) == (7, True)
    last = backend.ledger(ann.token, ann.accounts[0].id, offset=5, limit=5)
    assert [e.amount for e in last.entries] == [Decimal(-1), Decimal(100)]
    assert last.has_more is False
    with pytest.raises(Refused) as caught:
        backend.ledger(ann.token, ann.accounts[0].id, offset=-1)
    assert caught.value.code == "invalid_page"


def test_an_expired_or_forged_token_is_unauthorized(
    backend: Backend, ann: Login, ben: Login, clock: Any
) -> None:
    clock.advance(299)
    backend.dashboard(ann.token, ann.accounts[0].id)
    clock.advance(1)
    with pytest.raises(Unauthorized, match="expired"):
        backend.dashboard(ann.token, ann.accounts[0].id)
    with pytest.raises(Unauthorized, match="expired"):
        offer(backend, ann, ben)
    header, payload, signature = ben.token.split(".")
    with pytest.raises(Unauthorized):
        backend.dashboard(f"{header}.{payload}.{signature[::-1]}", ben.accounts[0].id)
    fresh = backend.login(ann.member.phone)
    assert fresh is not None
    backend.dashboard(fresh.token, ann.accounts[0].id)


# -- the in-process ledger only ------------------------------------------------------


def test_deposits_with_a_key_credit_once(ledger: Ledger) -> None:
    login = join(ledger, "263770000004")
    account = login.accounts[0].id
    for _ in range(2):
        ledger.deposit(account, Decimal("2.5"), "XAU", "gold", idempotency_key="gold-1")
    assert balances(ledger, login) == {"USD": Decimal(100), "XAU": Decimal("2.50")}
    board = ledger.dashboard(login.token, account)
    assert board.net_assets == Decimal("315.52")  # 100 + 2.5 g / 0.0116 g per USD, to the cent
    with pytest.raises(Refused) as caught:
        ledger.deposit("no-such-account", Decimal(1), "USD")
    assert caught.value.code == "not_found"


def test_members_may_have_more_accounts(ledger: Ledger) -> None:
    member = ledger.create_member("263770000005", "Tendai", "Moyo", handle="tendai")
    shop = ledger.add_account(member.id, "Tendai_Shop", "Tendai's Shop & Co")
    assert ledger.add_account(member.id, "tendai_shop", "Tendai's Shop & Co") == shop
    login = ledger.login(member.phone)
    assert login is not None
    assert [a.handle for a in login.accounts] == ["tendai", "tendai_shop"]
    assert (shop.type, shop.name) == ("BUSINESS", "Tendai's Shop & Co")
    assert balances(ledger, login) == {}  # no welcome grant outside onboarding
    with pytest.raises(Refused) as caught:
        ledger.add_account(member.id, "tendai", "Another")
    assert caught.value.code == "handle_taken"
    with pytest.raises(Refused) as caught:
        ledger.add_account(member.id, "x!", "Another")
    assert caught.value.code == "invalid_handle"


def test_the_demo_seed_is_idempotent(ledger: Ledger) -> None:
    summary = seed_demo(ledger)
    assert seed_demo(ledger) == summary
    assert ("Alice's Shop", ALICE.phone, "alice_shop") in summary
    assert {handle for _, _, handle in summary} == {"alice", "alice_shop", "bob", "chipo"}
    expected = {
        ALICE: {"USD": Decimal(500), "ZWG": Decimal(2000)},
        BOB: {"USD": Decimal(300)},
        CHIPO: {"USD": Decimal(50)},
    }
    for member in DEMO_MEMBERS:
        login = ledger.login(member.phone)
        assert login is not None
        assert login.accounts[0].handle == member.handle
        assert balances(ledger, login) == expected[member]
    alice = ledger.login(ALICE.phone)
    assert alice is not None
    board = ledger.dashboard(alice.token, alice.accounts[0].id)
    (incoming,) = board.pending_in
    assert (incoming.amount, incoming.counterparty.handle) == (Decimal(10), "bob")
    shop = ledger.dashboard(alice.token, alice.accounts[1].id)
    assert shop.balances == {"USD": Decimal(200)}


def test_the_ledger_survives_a_reopen(ledger: Ledger, open_ledger: Opener) -> None:
    login = join(ledger, "263770000006")
    ledger.close()
    assert balances(open_ledger(ledger.path), login) == {"USD": Decimal(100)}


def test_two_connections_never_overspend(ledger: Ledger, open_ledger: Opener) -> None:
    # Two Ledger objects are two SQLite connections, the same as two processes: only
    # BEGIN IMMEDIATE stops both from reading "100 available" and both offering it.
    ann, ben = join(ledger, "263770000007"), join(ledger, "263770000008", "Ben", "Dube")
    other = open_ledger(ledger.path)
    results: list[str] = []

    def spend(target: Ledger) -> None:
        try:
            offer(target, ann, ben, "30")
            results.append("ok")
        except Refused as exc:
            results.append(exc.code)

    threads = [threading.Thread(target=spend, args=(t,)) for t in (ledger, other) * 4]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == ["insufficient_balance"] * 5 + ["ok"] * 3


_SPENDER = """
import sys
from decimal import Decimal
from statehq.credex.backend import Refused
from statehq.credex.ledger import Ledger

path, secret, now, token, issuer, receiver, name = sys.argv[1:]
with Ledger(path, secret=secret.encode(), clock=lambda: float(now)) as ledger:
    for n in range(4):
        try:
            ledger.create_credex(token, issuer_account_id=issuer, receiver_account_id=receiver,
                                 amount=Decimal(30), denomination="USD",
                                 idempotency_key=f"{name}-{n}")
            print("ok")
        except Refused as exc:
            print(exc.code)
"""


def test_two_processes_never_overspend(ledger: Ledger, clock: Any, ledger_secret: bytes) -> None:
    ann, ben = join(ledger, "263770000007"), join(ledger, "263770000008", "Ben", "Dube")
    args = [str(ledger.path), ledger_secret.decode(), str(clock.now), ann.token]
    args += [ann.accounts[0].id, ben.accounts[0].id]
    spenders = [
        subprocess.Popen(
            [sys.executable, "-c", _SPENDER, *args, name], stdout=subprocess.PIPE, text=True
        )
        for name in ("first", "second")
    ]
    results = [line for p in spenders for line in p.communicate(timeout=60)[0].split()]
    assert all(p.returncode == 0 for p in spenders)
    assert sorted(results) == ["insufficient_balance"] * 5 + ["ok"] * 3
    assert ledger.dashboard(ann.token, ann.accounts[0].id).available == {"USD": Decimal(10)}
