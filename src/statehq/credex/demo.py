"""Demo members for the README tour, seeded into the built-in ledger.

==============  ============  ==============  ==================================
member          phone         handle          starts with
==============  ============  ==============  ==================================
Alice Moyo      263771111111  ``alice``       500 USD, 2000 ZWG; an offer of 10
                                              USD from Bob waiting for her
(Alice's Shop)  (Alice's)     ``alice_shop``  200 USD (a business account)
Bob Dube        263772222222  ``bob``         300 USD (10 of it promised to Alice)
Chipo Ncube     263773333333  ``chipo``       50 USD
==============  ============  ==============  ==================================

:func:`seed_demo` is idempotent: members that exist are left alone, and every deposit
and the offer carry fixed idempotency keys, so running it twice changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from .backend import Refused
from .ledger import Ledger


@dataclass(frozen=True)
class DemoAccount:
    """An account seeded for the demo and what is deposited into it."""

    handle: str
    name: str
    deposits: tuple[tuple[Decimal, str], ...]
    type: str = "PERSONAL"


@dataclass(frozen=True)
class DemoMember:
    """A demo member: their phone, names and accounts (the personal one first)."""

    first_name: str
    last_name: str
    phone: str
    accounts: tuple[DemoAccount, ...]

    @property
    def handle(self) -> str:
        """The handle of the member's personal account."""
        return self.accounts[0].handle

    @property
    def name(self) -> str:
        """First and last name."""
        return f"{self.first_name} {self.last_name}"


ALICE = DemoMember(
    "Alice",
    "Moyo",
    "263771111111",
    (
        DemoAccount("alice", "Alice Moyo", ((Decimal(500), "USD"), (Decimal(2000), "ZWG"))),
        DemoAccount("alice_shop", "Alice's Shop", ((Decimal(200), "USD"),), type="BUSINESS"),
    ),
)
BOB = DemoMember(
    "Bob", "Dube", "263772222222", (DemoAccount("bob", "Bob Dube", ((Decimal(300), "USD"),)),)
)
CHIPO = DemoMember(
    "Chipo",
    "Ncube",
    "263773333333",
    (DemoAccount("chipo", "Chipo Ncube", ((Decimal(50), "USD"),)),),
)

DEMO_MEMBERS: tuple[DemoMember, ...] = (ALICE, BOB, CHIPO)
"""Every demo member, in the order of the README tour."""

DEMO_OFFER = (BOB, ALICE, Decimal(10), "USD")
"""The pending offer seeded so Alice's dashboard shows one: from, to, amount, denomination."""

_KEY_PREFIX = "demo-seed"


def seed_demo(ledger: Ledger) -> list[tuple[str, str, str]]:
    """Create the demo members, accounts, deposits and offer; returns (name, phone, handle).

    Safe to run again: nothing is created or credited twice.
    """
    summary: list[tuple[str, str, str]] = []
    for member in DEMO_MEMBERS:
        member_id = _ensure_member(ledger, member)
        for account in member.accounts:
            account_id = _ensure_account(ledger, member_id, member, account)
            for amount, denomination in account.deposits:
                key = f"{_KEY_PREFIX}:{account.handle}:{denomination}"
                ledger.deposit(
                    account_id, amount, denomination, "demo deposit", idempotency_key=key
                )
            summary.append((account.name, member.phone, account.handle))
    _seed_offer(ledger)
    return summary


def _ensure_member(ledger: Ledger, member: DemoMember) -> str:
    login = ledger.login(member.phone)
    if login is not None:
        return login.member.id
    try:
        created = ledger.create_member(
            member.phone, member.first_name, member.last_name, handle=member.handle
        )
    except Refused as exc:
        if exc.code != "member_exists":  # another process seeding at the same moment
            raise
        login = ledger.login(member.phone)
        assert login is not None
        return login.member.id
    return created.id


def _ensure_account(
    ledger: Ledger, member_id: str, member: DemoMember, account: DemoAccount
) -> str:
    if account.type == "PERSONAL":
        login = ledger.login(member.phone)
        assert login is not None
        return login.accounts[0].id
    return ledger.add_account(member_id, account.handle, account.name, account.type).id


def _seed_offer(ledger: Ledger) -> None:
    issuer, receiver, amount, denomination = DEMO_OFFER
    login = ledger.login(issuer.phone)
    assert login is not None
    target = ledger.account_by_handle(login.token, receiver.handle)
    assert target is not None
    ledger.create_credex(
        login.token,
        issuer_account_id=login.accounts[0].id,
        receiver_account_id=target.id,
        amount=amount,
        denomination=denomination,
        idempotency_key=f"{_KEY_PREFIX}:offer",
    )
