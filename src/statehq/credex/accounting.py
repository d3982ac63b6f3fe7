"""Writes of the built-in ledger, and the checks they depend on.

Every function runs inside the caller's ``BEGIN IMMEDIATE`` transaction
(:meth:`~statehq.credex.ledger_schema.LedgerDatabase.write`): a check and the write it
guards see the same state, and a refusal raised half way rolls everything back. ``at``
is the transaction's timestamp from the ledger's clock.
"""

from __future__ import annotations

import sqlite3
import uuid

from . import ledger_queries as q
from .backend import OFFER_ACCEPTED, OFFER_PENDING, Account, Refused
from .money import from_units
from .rules import NAME_LENGTH, first_free_handle, handle_base


def own_account(conn: sqlite3.Connection, member_id: str, account_id: str) -> Account:
    """The account if it is the member's; ``not_found`` or ``forbidden`` otherwise."""
    row = q.account_row(conn, account_id) if isinstance(account_id, str) else None
    if row is None:
        raise Refused(f"no account {account_id!r:.60}", code="not_found")
    if row["member_id"] != member_id:
        raise Refused("that account is not one of yours", code="forbidden")
    return q.account_from_row(row)


def insert_member(
    conn: sqlite3.Connection, at: str, phone: str, first: str, last: str, handle: str | None
) -> tuple[str, str]:
    """Create a member and their personal account; returns (member id, account id).

    Without a ``handle`` the account's is derived from the names, with a numeric suffix
    when taken (``ann_moyo``, ``ann_moyo2``...).
    """
    if q.member_where(conn, "phone", phone) is not None:
        raise Refused(f"a member with phone {phone} already exists", code="member_exists")
    if handle is None:
        handle = _free_handle(conn, handle_base(first, last))
    elif conn.execute("SELECT 1 FROM accounts WHERE handle = ?", (handle,)).fetchone():
        raise Refused(f"handle @{handle} is taken", code="handle_taken")
    member_id = str(uuid.uuid4())
    conn.execute(
        "INSERT INTO members (id, phone, first_name, last_name, default_denomination,"
        " created_at) VALUES (?, ?, ?, ?, 'USD', ?)",
        (member_id, phone, first, last, at),
    )
    name = f"{first} {last}"[: NAME_LENGTH[1]]
    account_id = insert_account(conn, at, member_id, handle, name, "PERSONAL")
    return member_id, account_id


def insert_account(
    conn: sqlite3.Connection, at: str, member_id: str, handle: str, name: str, type: str
) -> str:
    """Create an account (denominated in USD) for a member; returns its id."""
    account_id = str(uuid.uuid4())
    conn.execute(
        "INSERT INTO accounts (id, member_id, handle, name, type, default_denomination,"
        " created_at) VALUES (?, ?, ?, ?, ?, 'USD', ?)",
        (account_id, member_id, handle, name, type, at),
    )
    return account_id


def insert_offer(
    conn: sqlite3.Connection,
    at: str,
    issuer_id: str,
    receiver_id: str,
    units: int,
    denomination: str,
    description: str = "",
) -> str:
    """Create a pending credex; returns its id. Nothing moves until :func:`settle`."""
    credex_id = str(uuid.uuid4())
    conn.execute(
        "INSERT INTO credexes (id, issuer_id, receiver_id, amount, denomination, status,"
        " description, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (credex_id, issuer_id, receiver_id, units, denomination, OFFER_PENDING, description, at),
    )
    return credex_id


def settle(conn: sqlite3.Connection, at: str, credex_id: str) -> None:
    """Mark a credex accepted: it now counts in both balances and both ledgers."""
    # MAX()+1 is safe: BEGIN IMMEDIATE lets one writer at a time run this statement.
    conn.execute(
        "UPDATE credexes SET status = ?, settled_at = ?,"
        " settled_seq = (SELECT COALESCE(MAX(settled_seq), 0) + 1 FROM credexes)"
        " WHERE id = ?",
        (OFFER_ACCEPTED, at, credex_id),
    )


def transfer(
    conn: sqlite3.Connection,
    at: str,
    issuer_id: str,
    receiver_id: str,
    units: int,
    denomination: str,
    description: str,
) -> str:
    """A credex created and settled at once (deposits and grants from the reserve)."""
    credex_id = insert_offer(conn, at, issuer_id, receiver_id, units, denomination, description)
    settle(conn, at, credex_id)
    return credex_id


def check_available(conn: sqlite3.Connection, account_id: str, units: int, denom: str) -> None:
    """Refuse an offer larger than the settled balance less pending outgoing offers."""
    available = q.available_units(conn, account_id).get(denom, 0)
    if units > available:
        raise Refused(
            f"available {denom} balance is {from_units(available)}, offer is {from_units(units)}",
            code="insufficient_balance",
        )


def check_settled(conn: sqlite3.Connection, account_id: str, units: int, denom: str) -> None:
    """Refuse to settle a credex the issuer's settled balance no longer covers."""
    settled = q.settled_units(conn, account_id).get(denom, 0)
    if units > settled:
        raise Refused(
            f"the offering account's {denom} balance is now {from_units(settled)}, "
            f"the offer is {from_units(units)}",
            code="insufficient_balance",
        )


def _free_handle(conn: sqlite3.Connection, base: str) -> str:
    # base is [a-z0-9_] only (see handle_base), so it holds no GLOB wildcard.
    rows = conn.execute(
        "SELECT handle FROM accounts WHERE handle = ? OR handle GLOB ?", (base, base + "[0-9]*")
    )
    return first_free_handle(base, {row["handle"] for row in rows})
