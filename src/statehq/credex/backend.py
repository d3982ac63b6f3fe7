"""The one interface the credex bot uses to talk to its ledger, whatever serves it.

Two implementations: :class:`~statehq.credex.ledger.Ledger` (the built-in SQLite ledger,
in process) and :class:`~statehq.credex.client.HttpBackend` (any credex-core compatible
REST API, including the built-in one served by ``statehq ledger serve``).

Every call but :meth:`Backend.login` and :meth:`Backend.onboard` carries the member's
JWT; an expired or invalid token raises :class:`Unauthorized` and the bot logs in again.
Every mutating call carries an ``idempotency_key`` derived from the inbound message, so
a message processed twice (a redelivery, a worker that died after the call) never
creates a second offer: the ledger answers a repeated key with the first result.

Errors::

    BackendError                 the ledger refused or could not answer
    ├── Unauthorized             missing, expired or invalid token (HTTP 401)
    ├── Refused                  a business rule said no: ``code`` says which (HTTP 4xx)
    └── BackendUnavailable       the ledger cannot be reached or failed (HTTP 5xx)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol

from ..errors import StateError

DENOMINATIONS = ("USD", "ZWG", "CAD", "XAU", "CXX")
"""The denominations a credex may be offered in."""

OFFER_PENDING = "PENDING"
OFFER_ACCEPTED = "ACCEPTED"
OFFER_DECLINED = "DECLINED"
OFFER_CANCELLED = "CANCELLED"


class BackendError(StateError):
    """The credex backend refused a call or could not answer it."""

    def __init__(self, message: str, *, code: str = "backend_error") -> None:
        self.code = code
        super().__init__(message)


class Unauthorized(BackendError):
    """The token is missing, expired or invalid: log in again and retry."""

    def __init__(self, message: str = "the token is missing, expired or invalid") -> None:
        super().__init__(message, code="unauthorized")


class Refused(BackendError):
    """A business rule refused the call; ``code`` names the rule.

    Codes: ``not_found``, ``forbidden`` (not the member's account or offer),
    ``insufficient_balance``, ``not_pending``, ``invalid_amount``, ``invalid_denomination``,
    ``invalid_name``, ``invalid_phone``, ``same_account``, ``member_exists``,
    ``idempotency_key_reused`` (same key, different request).
    """


class BackendUnavailable(BackendError):
    """The ledger could not be reached, timed out or failed (retry later)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code="unavailable")


@dataclass(frozen=True)
class Account:
    """A ledger account: a member has a personal one and may have more."""

    id: str
    handle: str
    name: str
    type: str = "PERSONAL"
    default_denomination: str = "USD"


@dataclass(frozen=True)
class Member:
    """A person with a phone number (their identity on WhatsApp) and accounts."""

    id: str
    phone: str
    first_name: str
    last_name: str
    default_denomination: str = "USD"


@dataclass(frozen=True)
class Login:
    """A logged-in member: the JWT (HS256, 5-minute expiry), the member and their accounts."""

    token: str
    member: Member
    accounts: tuple[Account, ...]


@dataclass(frozen=True)
class Offer:
    """A credex offer seen from one account: ``direction`` is ``in`` or ``out``."""

    id: str
    amount: Decimal
    denomination: str
    direction: str
    counterparty: Account
    status: str
    created_at: str


@dataclass(frozen=True)
class Dashboard:
    """One account's standing.

    ``balances`` are settled secured balances per denomination; ``available`` is what can
    still be offered (settled minus pending outgoing offers); ``net_assets`` is the sum of
    the balances in ``net_denomination`` at the ledger's conversion rates.
    """

    account: Account
    balances: dict[str, Decimal]
    available: dict[str, Decimal]
    net_assets: Decimal
    net_denomination: str
    pending_in: tuple[Offer, ...] = ()
    pending_out: tuple[Offer, ...] = ()


@dataclass(frozen=True)
class LedgerEntry:
    """One settled movement: positive ``amount`` came in, negative went out."""

    credex_id: str
    at: str
    amount: Decimal
    denomination: str
    counterparty: Account
    description: str = ""


@dataclass(frozen=True)
class LedgerPage:
    """A page of an account's ledger, newest first."""

    entries: tuple[LedgerEntry, ...]
    offset: int
    total: int
    limit: int = field(default=5)

    @property
    def has_more(self) -> bool:
        """True when older entries follow this page."""
        return self.offset + len(self.entries) < self.total


class Backend(Protocol):
    """What the credex bot needs from a ledger."""

    def login(self, phone: str) -> Login | None:
        """Log in by phone number; ``None`` when no member has that number."""
        ...

    def onboard(
        self, phone: str, first_name: str, last_name: str, *, idempotency_key: str
    ) -> Login:
        """Create a member with a personal account and log them in."""
        ...

    def dashboard(self, token: str, account_id: str) -> Dashboard:
        """The standing of one of the member's accounts."""
        ...

    def account_by_handle(self, token: str, handle: str) -> Account | None:
        """The account with ``handle`` (case-insensitive), or ``None``."""
        ...

    def create_credex(
        self,
        token: str,
        *,
        issuer_account_id: str,
        receiver_account_id: str,
        amount: Decimal,
        denomination: str,
        idempotency_key: str,
    ) -> Offer:
        """Offer a secured credex from one of the member's accounts (pending until accepted)."""
        ...

    def accept(self, token: str, credex_id: str, *, idempotency_key: str) -> Offer:
        """Accept an offer made to one of the member's accounts: the balance moves."""
        ...

    def decline(self, token: str, credex_id: str, *, idempotency_key: str) -> Offer:
        """Decline an offer made to one of the member's accounts: nothing moves."""
        ...

    def cancel(self, token: str, credex_id: str, *, idempotency_key: str) -> Offer:
        """Cancel a pending offer the member made: nothing moves."""
        ...

    def ledger(self, token: str, account_id: str, *, offset: int = 0, limit: int = 5) -> LedgerPage:
        """Settled movements of one of the member's accounts, newest first."""
        ...
