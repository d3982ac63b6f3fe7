"""The built-in credex ledger: the :class:`~statehq.credex.backend.Backend` on SQLite.

Small and strict, for demos, tests and a single community: members with phone numbers,
accounts with handles, secured credexes offered from a settled balance and moved only
when the receiver accepts. ``statehq ledger serve`` puts it behind the REST API of
:mod:`statehq.credex.api`; the bot may also use it in process.

Every mutating call is one ``BEGIN IMMEDIATE`` transaction that also records its
idempotency key (see :mod:`~statehq.credex.idempotency`), so a call either happened
once, with its answer stored, or not at all. Tokens are HS256 JWTs from
:class:`~statehq.credex.tokens.TokenIssuer`, checked against the same injectable clock
the ledger stamps its records with.
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from types import TracebackType
from typing import TypeVar

from . import accounting as acc
from . import ledger_queries as q
from .backend import (
    OFFER_ACCEPTED,
    OFFER_CANCELLED,
    OFFER_DECLINED,
    OFFER_PENDING,
    Account,
    Dashboard,
    LedgerPage,
    Login,
    Member,
    Offer,
    Refused,
)
from .idempotency import check_key, fingerprint, recall, remember
from .ledger_schema import RESERVE_ACCOUNT_ID, SYSTEM_TYPE, LedgerDatabase
from .money import check_denomination, to_units
from .rules import (
    check_account_name,
    check_handle,
    check_name,
    check_phone,
    normalize_handle,
)
from .tokens import TOKEN_TTL, Clock, TokenIssuer, load_secret
from .wire import offer_from, offer_json

T = TypeVar("T")

LEDGER_FILE = "ledger.sqlite3"
ACCOUNT_TYPES = ("PERSONAL", "BUSINESS", "TRUST", "OPERATIONS")
MAX_PAGE = 100
"""The most ledger entries one :meth:`Ledger.ledger` call returns."""

_SYSTEM_SCOPE = "system"  # idempotency scope of deposits (no member token)
_PUBLIC_SCOPE = "public"  # idempotency scope of onboarding (no token yet)


class Ledger:
    """A credex ledger in one SQLite file; safe for threads and for several processes.

    ``secret`` signs the member tokens (at least 32 bytes; :meth:`open` loads or creates
    the data dir's). ``clock`` stamps records and judges token expiry. With a
    ``welcome_grant`` such as ``(Decimal(100), "USD")`` every member who onboards starts
    with that amount, credited from the reserve as a settled credex, so a newcomer to the
    demo can make an offer right away.
    """

    def __init__(
        self,
        path: Path | str,
        *,
        secret: bytes,
        clock: Clock = time.time,
        welcome_grant: tuple[Decimal, str] | None = None,
        token_ttl: float = TOKEN_TTL,
    ) -> None:
        self._clock = clock
        self._tokens = TokenIssuer(secret, clock=clock, ttl=token_ttl)
        self._grant = None
        if welcome_grant is not None:
            amount, denomination = welcome_grant
            self._grant = (to_units(amount), check_denomination(denomination))
        self._db = LedgerDatabase(Path(path))

    @classmethod
    def open(
        cls,
        data_dir: Path | str,
        *,
        clock: Clock = time.time,
        welcome_grant: tuple[Decimal, str] | None = None,
    ) -> Ledger:
        """The ledger in ``<data_dir>/ledger.sqlite3``, signing with the data dir's secret."""
        directory = Path(data_dir)
        secret = load_secret(directory)
        return cls(directory / LEDGER_FILE, secret=secret, clock=clock, welcome_grant=welcome_grant)

    @property
    def path(self) -> Path:
        """The SQLite file."""
        return self._db.path

    def close(self) -> None:
        """Close the database connection."""
        self._db.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- members and accounts ------------------------------------------------------------

    def login(self, phone: str) -> Login | None:
        """A fresh token for the member with this phone number; None when there is none."""
        check_phone(phone)
        with self._db.read() as conn:
            member = q.member_where(conn, "phone", phone)
            if member is None:
                return None
            accounts = q.member_accounts(conn, member.id)
        return Login(self._tokens.issue(member.id, member.phone), member, accounts)

    def onboard(
        self, phone: str, first_name: str, last_name: str, *, idempotency_key: str
    ) -> Login:
        """Create a member, a personal account (and its welcome grant) and log them in.

        A phone already registered is ``Refused(member_exists)``, except for a replay of
        the idempotency key that created it, which logs the member in again.
        """
        phone, first, last = check_phone(phone), check_name(first_name), check_name(last_name)
        request = {"phone": phone, "firstname": first, "lastname": last}

        def perform(conn: sqlite3.Connection) -> str:
            member_id, account_id = acc.insert_member(conn, self._now(), phone, first, last, None)
            if self._grant is not None:
                units, denomination = self._grant
                grant = (units, denomination, "welcome grant")
                acc.transfer(conn, self._now(), RESERVE_ACCOUNT_ID, account_id, *grant)
            return member_id

        self._idempotent(_PUBLIC_SCOPE, idempotency_key, "onboard", request, perform, str, str)
        login = self.login(phone)
        assert login is not None  # just created, and members are never deleted
        return login

    def create_member(
        self, phone: str, first_name: str, last_name: str, *, handle: str | None = None
    ) -> Member:
        """Create a member and their personal account, with no grant and no login (seeding).

        ``handle`` names the personal account; by default it is derived from the names.
        """
        phone, first, last = check_phone(phone), check_name(first_name), check_name(last_name)
        wanted = None if handle is None else check_handle(handle)
        with self._db.write() as conn:
            member_id, _ = acc.insert_member(conn, self._now(), phone, first, last, wanted)
            member = q.member_where(conn, "id", member_id)
        assert member is not None
        return member

    def add_account(
        self, member_id: str, handle: str, name: str, type: str = "BUSINESS"
    ) -> Account:
        """Give a member another account; repeating the same call returns the same account."""
        handle, name = check_handle(handle), check_account_name(name)
        if type not in ACCOUNT_TYPES:
            raise Refused(f"account type must be one of {ACCOUNT_TYPES}", code="invalid_type")
        with self._db.write() as conn:
            if q.member_where(conn, "id", member_id) is None:
                raise Refused(f"no member {member_id!r:.60}", code="not_found")
            existing = conn.execute("SELECT * FROM accounts WHERE handle = ?", (handle,)).fetchone()
            if existing is not None:
                same = (existing["member_id"], existing["name"], existing["type"])
                if same != (member_id, name, type):
                    raise Refused(f"handle @{handle} is taken", code="handle_taken")
                return q.account_from_row(existing)
            account_id = acc.insert_account(conn, self._now(), member_id, handle, name, type)
            row = q.account_row(conn, account_id)
        assert row is not None
        return q.account_from_row(row)

    def deposit(
        self,
        account_id: str,
        amount: Decimal,
        denomination: str,
        description: str = "deposit",
        *,
        idempotency_key: str | None = None,
    ) -> str:
        """Credit an account from the reserve, settled at once; returns the credex id.

        With an ``idempotency_key`` a repeated deposit (a re-run seed) credits only once.
        """
        units, denomination = to_units(amount), check_denomination(denomination)
        request = {"accountID": account_id, "amount": units, "denomination": denomination}

        def perform(conn: sqlite3.Connection) -> str:
            row = q.account_row(conn, account_id)
            if row is None or row["type"] == SYSTEM_TYPE:
                raise Refused(f"no account {account_id!r:.60}", code="not_found")
            movement = (units, denomination, description)
            return acc.transfer(conn, self._now(), RESERVE_ACCOUNT_ID, account_id, *movement)

        key = idempotency_key or f"deposit:{uuid.uuid4()}"
        return self._idempotent(_SYSTEM_SCOPE, key, "deposit", request, perform, str, str)

    # -- calls with a token --------------------------------------------------------------

    def dashboard(self, token: str, account_id: str) -> Dashboard:
        """Balances, availability, net assets and pending offers of one of the member's accounts."""
        member_id = self._tokens.verify(token).member_id
        with self._db.read() as conn:
            return q.dashboard(conn, acc.own_account(conn, member_id, account_id))

    def account_by_handle(self, token: str, handle: str) -> Account | None:
        """The account with ``handle`` (case-insensitive, leading '@' allowed), or None."""
        self._tokens.verify(token)
        if not isinstance(handle, str):
            return None
        with self._db.read() as conn:
            return q.account_by_handle(conn, normalize_handle(handle))

    def member_for_handle(self, handle: str) -> str | None:
        """The member owning the account ``handle`` (case-insensitive, '@' allowed), for
        operators (``statehq state show @handle``): local, so no token is asked."""
        with self._db.read() as conn:
            return q.member_of_handle(conn, normalize_handle(handle))

    def ledger(self, token: str, account_id: str, *, offset: int = 0, limit: int = 5) -> LedgerPage:
        """Settled movements of one of the member's accounts, newest first."""
        member_id = self._tokens.verify(token).member_id
        if not _is_int(offset) or offset < 0 or not _is_int(limit) or not 1 <= limit <= MAX_PAGE:
            raise Refused(
                f"offset must be 0 or more and limit 1 to {MAX_PAGE}", code="invalid_page"
            )
        with self._db.read() as conn:
            account = acc.own_account(conn, member_id, account_id)
            return q.ledger_page(conn, account.id, offset, limit)

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
        """Offer a secured credex; pending (nothing moves) until the receiver accepts."""
        member_id = self._tokens.verify(token).member_id
        units, denomination = to_units(amount), check_denomination(denomination)
        request = {
            "issuerAccountID": issuer_account_id,
            "receiverAccountID": receiver_account_id,
            "amount": units,
            "denomination": denomination,
        }

        def perform(conn: sqlite3.Connection) -> Offer:
            issuer = acc.own_account(conn, member_id, issuer_account_id)
            receiver = q.account_row(conn, receiver_account_id)
            if receiver is None or receiver["type"] == SYSTEM_TYPE:
                raise Refused(f"no account {receiver_account_id!r:.60}", code="not_found")
            if receiver["id"] == issuer.id:
                raise Refused("an account cannot offer a credex to itself", code="same_account")
            acc.check_available(conn, issuer.id, units, denomination)
            credex_id = acc.insert_offer(
                conn, self._now(), issuer.id, receiver["id"], units, denomination
            )
            return q.offer_for(conn, credex_id, issuer.id)

        return self._idempotent(
            member_id, idempotency_key, "createCredex", request, perform, _encode, _decode
        )

    def accept(self, token: str, credex_id: str, *, idempotency_key: str) -> Offer:
        """Accept an offer made to one of the member's accounts: the balance moves."""
        return self._transition(token, credex_id, idempotency_key, OFFER_ACCEPTED)

    def decline(self, token: str, credex_id: str, *, idempotency_key: str) -> Offer:
        """Decline an offer made to one of the member's accounts: nothing moves."""
        return self._transition(token, credex_id, idempotency_key, OFFER_DECLINED)

    def cancel(self, token: str, credex_id: str, *, idempotency_key: str) -> Offer:
        """Cancel a pending offer the member made: nothing moves."""
        return self._transition(token, credex_id, idempotency_key, OFFER_CANCELLED)

    # -- inside a transaction ------------------------------------------------------------

    def _transition(self, token: str, credex_id: str, key: str, status: str) -> Offer:
        member_id = self._tokens.verify(token).member_id
        # The receiver accepts or declines; only the issuer may cancel.
        side = "issuer_id" if status == OFFER_CANCELLED else "receiver_id"
        who = "offering" if status == OFFER_CANCELLED else "receiving"
        verb = {OFFER_ACCEPTED: "accept", OFFER_DECLINED: "decline"}.get(status, "cancel")

        def perform(conn: sqlite3.Connection) -> Offer:
            credex = conn.execute("SELECT * FROM credexes WHERE id = ?", (credex_id,)).fetchone()
            if credex is None:
                raise Refused(f"no credex {credex_id!r:.60}", code="not_found")
            acting = q.account_row(conn, credex[side])
            if acting is None or acting["member_id"] != member_id:
                raise Refused(f"only the {who} account can {verb} this offer", code="forbidden")
            if credex["status"] != OFFER_PENDING:
                raise Refused(f"this offer is already {credex['status']}", code="not_pending")
            if status == OFFER_ACCEPTED:
                issuer = credex["issuer_id"]
                # Belt and braces: the offer reserved the amount, but check the settled funds.
                acc.check_settled(conn, issuer, credex["amount"], credex["denomination"])
                acc.settle(conn, self._now(), credex_id)
            else:
                conn.execute("UPDATE credexes SET status = ? WHERE id = ?", (status, credex_id))
            return q.offer_for(conn, credex_id, acting["id"])

        request = {"credexID": credex_id}
        return self._idempotent(member_id, key, verb, request, perform, _encode, _decode)

    def _idempotent(
        self,
        scope: str,
        key: str,
        operation: str,
        request: Mapping[str, object],
        perform: Callable[[sqlite3.Connection], T],
        encode: Callable[[T], str],
        decode: Callable[[str], T],
    ) -> T:
        digest = fingerprint(request)
        check_key(key)
        with self._db.write() as conn:
            stored = recall(conn, scope, key, operation, digest)
            if stored is not None:
                return decode(stored)
            result = perform(conn)
            remember(conn, scope, key, operation, digest, encode(result), self._now())
            return result

    def _now(self) -> str:
        return datetime.fromtimestamp(self._clock(), UTC).isoformat(timespec="milliseconds")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _encode(offer: Offer) -> str:
    return json.dumps(offer_json(offer))


def _decode(stored: str) -> Offer:
    return offer_from(json.loads(stored))
