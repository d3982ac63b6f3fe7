"""Reads of the built-in ledger: rows into the backend's dataclasses, balances, pages.

Every function takes the connection of a transaction the caller holds
(:meth:`~statehq.credex.ledger_schema.LedgerDatabase.read` or ``write``), so a dashboard
or a balance check sees one consistent snapshot.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict

from .backend import (
    OFFER_ACCEPTED,
    OFFER_PENDING,
    Account,
    Dashboard,
    LedgerEntry,
    LedgerPage,
    Member,
    Offer,
)
from .ledger_schema import SYSTEM_TYPE
from .money import convert_units, from_units, round_units

# A credex with its counterparty as seen from account :acc (the side that is not :acc).
_CREDEX_WITH_COUNTERPARTY = """
SELECT c.id, c.amount, c.denomination, c.status, c.created_at, c.settled_at,
       c.description, c.issuer_id,
       a.id AS cp_id, a.handle AS cp_handle, a.name AS cp_name, a.type AS cp_type,
       a.default_denomination AS cp_default_denomination
FROM credexes AS c
JOIN accounts AS a
  ON a.id = CASE WHEN c.issuer_id = :acc THEN c.receiver_id ELSE c.issuer_id END
"""


def account_from_row(row: sqlite3.Row, prefix: str = "") -> Account:
    """An ``accounts`` row (or the ``prefix``-named columns of a join) as an :class:`Account`."""
    return Account(
        id=row[f"{prefix}id"],
        handle=row[f"{prefix}handle"],
        name=row[f"{prefix}name"],
        type=row[f"{prefix}type"],
        default_denomination=row[f"{prefix}default_denomination"],
    )


def account_row(conn: sqlite3.Connection, account_id: str) -> sqlite3.Row | None:
    """The ``accounts`` row with this id, or None."""
    row: sqlite3.Row | None = conn.execute(
        "SELECT * FROM accounts WHERE id = ?", (account_id,)
    ).fetchone()
    return row


def account_by_handle(conn: sqlite3.Connection, handle: str) -> Account | None:
    """The member account with this (normalized) handle; system accounts are not found."""
    row = conn.execute(
        "SELECT * FROM accounts WHERE handle = ? AND type != ?", (handle, SYSTEM_TYPE)
    ).fetchone()
    return None if row is None else account_from_row(row)


def member_of_handle(conn: sqlite3.Connection, handle: str) -> str | None:
    """The member id owning the account with this (normalized) handle, or None."""
    row = conn.execute(
        "SELECT member_id FROM accounts WHERE handle = ? AND type != ?", (handle, SYSTEM_TYPE)
    ).fetchone()
    return None if row is None else str(row["member_id"])


def member_accounts(conn: sqlite3.Connection, member_id: str) -> tuple[Account, ...]:
    """A member's accounts, the personal one first, then in order of creation."""
    rows = conn.execute(
        "SELECT * FROM accounts WHERE member_id = ? ORDER BY type != 'PERSONAL', seq",
        (member_id,),
    ).fetchall()
    return tuple(account_from_row(row) for row in rows)


def member_where(conn: sqlite3.Connection, column: str, value: str) -> Member | None:
    """The member whose ``id`` or ``phone`` (``column``) is ``value``, or None."""
    assert column in ("id", "phone")  # never interpolate anything else into SQL
    row = conn.execute(f"SELECT * FROM members WHERE {column} = ?", (value,)).fetchone()
    if row is None:
        return None
    return Member(
        id=row["id"],
        phone=row["phone"],
        first_name=row["first_name"],
        last_name=row["last_name"],
        default_denomination=row["default_denomination"],
    )


def settled_units(conn: sqlite3.Connection, account_id: str) -> dict[str, int]:
    """Settled balance per denomination, in stored units (zero balances left out)."""
    totals: dict[str, int] = defaultdict(int)
    for column, sign in (("receiver_id", 1), ("issuer_id", -1)):
        rows = conn.execute(
            f"SELECT denomination, SUM(amount) FROM credexes WHERE {column} = ? AND status = ?"
            " GROUP BY denomination",
            (account_id, OFFER_ACCEPTED),
        )
        for denomination, total in rows:
            totals[denomination] += sign * total
    return {denomination: units for denomination, units in totals.items() if units}


def pending_out_units(conn: sqlite3.Connection, account_id: str) -> dict[str, int]:
    """Units promised by the account's pending outgoing offers, per denomination."""
    rows = conn.execute(
        "SELECT denomination, SUM(amount) FROM credexes WHERE issuer_id = ? AND status = ?"
        " GROUP BY denomination",
        (account_id, OFFER_PENDING),
    )
    return dict(rows)


def available_units(conn: sqlite3.Connection, account_id: str) -> dict[str, int]:
    """What the account can still offer: settled minus pending outgoing, per denomination."""
    available = dict(settled_units(conn, account_id))
    for denomination, promised in pending_out_units(conn, account_id).items():
        available[denomination] = available.get(denomination, 0) - promised
    return {denomination: units for denomination, units in available.items() if units}


def offer_for(conn: sqlite3.Connection, credex_id: str, account_id: str) -> Offer:
    """The credex as seen from ``account_id`` (one of its two sides)."""
    row = conn.execute(
        _CREDEX_WITH_COUNTERPARTY + " WHERE c.id = :id", {"acc": account_id, "id": credex_id}
    ).fetchone()
    return _offer(row, account_id)


def pending_offers(conn: sqlite3.Connection, account_id: str, direction: str) -> tuple[Offer, ...]:
    """The account's pending offers ``in`` (made to it) or ``out`` (made by it), oldest first."""
    side = "c.receiver_id" if direction == "in" else "c.issuer_id"
    rows = conn.execute(
        _CREDEX_WITH_COUNTERPARTY + f" WHERE {side} = :acc AND c.status = :status ORDER BY c.seq",
        {"acc": account_id, "status": OFFER_PENDING},
    ).fetchall()
    return tuple(_offer(row, account_id) for row in rows)


def dashboard(conn: sqlite3.Connection, account: Account) -> Dashboard:
    """The account's balances, availability, net assets and pending offers."""
    balances = settled_units(conn, account.id)
    target = account.default_denomination
    net = sum(convert_units(units, denom, target) for denom, units in balances.items())
    return Dashboard(
        account=account,
        balances={denom: from_units(units) for denom, units in sorted(balances.items())},
        available={
            denom: from_units(units)
            for denom, units in sorted(available_units(conn, account.id).items())
        },
        net_assets=from_units(round_units(net, target)),
        net_denomination=target,
        pending_in=pending_offers(conn, account.id, "in"),
        pending_out=pending_offers(conn, account.id, "out"),
    )


def ledger_page(conn: sqlite3.Connection, account_id: str, offset: int, limit: int) -> LedgerPage:
    """Settled movements of the account, newest first, and how many there are in all."""
    where = " WHERE (c.issuer_id = :acc OR c.receiver_id = :acc) AND c.status = :status"
    params = {"acc": account_id, "status": OFFER_ACCEPTED, "limit": limit, "offset": offset}
    rows = conn.execute(
        _CREDEX_WITH_COUNTERPARTY + where + " ORDER BY c.settled_seq DESC"
        " LIMIT :limit OFFSET :offset",
        params,
    ).fetchall()
    (total,) = conn.execute(
        "SELECT COUNT(*) FROM credexes AS c" + where, {"acc": account_id, "status": OFFER_ACCEPTED}
    ).fetchone()
    entries = tuple(_entry(row, account_id) for row in rows)
    return LedgerPage(entries=entries, offset=offset, total=total, limit=limit)


def _offer(row: sqlite3.Row, account_id: str) -> Offer:
    return Offer(
        id=row["id"],
        amount=from_units(row["amount"]),
        denomination=row["denomination"],
        direction="out" if row["issuer_id"] == account_id else "in",
        counterparty=account_from_row(row, "cp_"),
        status=row["status"],
        created_at=row["created_at"],
    )


def _entry(row: sqlite3.Row, account_id: str) -> LedgerEntry:
    sign = -1 if row["issuer_id"] == account_id else 1
    return LedgerEntry(
        credex_id=row["id"],
        at=row["settled_at"],
        amount=from_units(sign * row["amount"]),
        denomination=row["denomination"],
        counterparty=account_from_row(row, "cp_"),
        description=row["description"],
    )
