"""The JSON shapes of the credex REST API, shared by the server and the client.

Field names follow credex-core where it has one (``accountID``, ``accountHandle``,
``defaultDenom``, ``credexID``, ``InitialAmount``, ``Denomination``, ``startRow``,
``numRows``...). Amounts travel as decimal strings (``"10.50"``), never as floats.
Errors are ``{"error": {"code": ..., "message": ...}}`` with the status of
:func:`status_for`.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from .backend import (
    Account,
    BackendError,
    BackendUnavailable,
    Dashboard,
    LedgerEntry,
    LedgerPage,
    Login,
    Member,
    Offer,
    Unauthorized,
)

JSON = dict[str, Any]

API_KEY_HEADER = "X-API-Key"
"""Carries the API key when the server has one."""
IDEMPOTENCY_HEADER = "Idempotency-Key"
"""Carries the idempotency key of a mutating call."""

STATUS_BY_CODE = {
    "bad_request": 400,
    "unauthorized": 401,
    "forbidden": 403,
    "not_found": 404,
    "no_such_route": 404,
    "method_not_allowed": 405,
    "idempotency_key_reused": 409,
    "not_pending": 409,
    "member_exists": 409,
    "handle_taken": 409,
    "payload_too_large": 413,
    "unavailable": 503,
}
"""HTTP status of each error code; any other business refusal is 422."""


def status_for(error: BackendError) -> int:
    """The HTTP status an error is answered with."""
    if isinstance(error, Unauthorized):
        return 401
    if isinstance(error, BackendUnavailable):
        return 503
    return STATUS_BY_CODE.get(error.code, 422)


def error_json(code: str, message: str) -> JSON:
    """An error body."""
    return {"error": {"code": code, "message": message}}


def account_json(account: Account) -> JSON:
    """An account as JSON."""
    return {
        "accountID": account.id,
        "accountHandle": account.handle,
        "accountName": account.name,
        "accountType": account.type,
        "defaultDenom": account.default_denomination,
    }


def account_from(data: Mapping[str, Any]) -> Account:
    """An account from JSON."""
    return Account(
        id=str(data["accountID"]),
        handle=str(data["accountHandle"]),
        name=str(data["accountName"]),
        type=str(data["accountType"]),
        default_denomination=str(data["defaultDenom"]),
    )


def member_json(member: Member) -> JSON:
    """A member as JSON."""
    return {
        "memberID": member.id,
        "phone": member.phone,
        "firstname": member.first_name,
        "lastname": member.last_name,
        "defaultDenom": member.default_denomination,
    }


def member_from(data: Mapping[str, Any]) -> Member:
    """A member from JSON."""
    return Member(
        id=str(data["memberID"]),
        phone=str(data["phone"]),
        first_name=str(data["firstname"]),
        last_name=str(data["lastname"]),
        default_denomination=str(data["defaultDenom"]),
    )


def login_json(login: Login) -> JSON:
    """A login (token, member, accounts) as JSON."""
    return {
        "token": login.token,
        "member": member_json(login.member),
        "accounts": [account_json(account) for account in login.accounts],
    }


def login_from(data: Mapping[str, Any]) -> Login:
    """A login from JSON."""
    return Login(
        token=str(data["token"]),
        member=member_from(data["member"]),
        accounts=tuple(account_from(item) for item in data["accounts"]),
    )


def offer_json(offer: Offer) -> JSON:
    """An offer as JSON."""
    return {
        "credexID": offer.id,
        "InitialAmount": str(offer.amount),
        "Denomination": offer.denomination,
        "direction": offer.direction,
        "counterparty": account_json(offer.counterparty),
        "credexState": offer.status,
        "createdAt": offer.created_at,
    }


def offer_from(data: Mapping[str, Any]) -> Offer:
    """An offer from JSON."""
    return Offer(
        id=str(data["credexID"]),
        amount=_decimal(data["InitialAmount"]),
        denomination=str(data["Denomination"]),
        direction=str(data["direction"]),
        counterparty=account_from(data["counterparty"]),
        status=str(data["credexState"]),
        created_at=str(data["createdAt"]),
    )


def dashboard_json(dashboard: Dashboard) -> JSON:
    """An account dashboard as JSON."""
    return {
        "account": account_json(dashboard.account),
        "balances": _amounts_json(dashboard.balances),
        "available": _amounts_json(dashboard.available),
        "netCredexAssetsInDefaultDenom": str(dashboard.net_assets),
        "netDenom": dashboard.net_denomination,
        "pendingInData": [offer_json(offer) for offer in dashboard.pending_in],
        "pendingOutData": [offer_json(offer) for offer in dashboard.pending_out],
    }


def dashboard_from(data: Mapping[str, Any]) -> Dashboard:
    """An account dashboard from JSON."""
    return Dashboard(
        account=account_from(data["account"]),
        balances=_amounts_from(data["balances"]),
        available=_amounts_from(data["available"]),
        net_assets=_decimal(data["netCredexAssetsInDefaultDenom"]),
        net_denomination=str(data["netDenom"]),
        pending_in=tuple(offer_from(item) for item in data["pendingInData"]),
        pending_out=tuple(offer_from(item) for item in data["pendingOutData"]),
    )


def entry_json(entry: LedgerEntry) -> JSON:
    """A settled movement as JSON."""
    return {
        "credexID": entry.credex_id,
        "timestamp": entry.at,
        "amount": str(entry.amount),
        "Denomination": entry.denomination,
        "counterparty": account_json(entry.counterparty),
        "description": entry.description,
    }


def entry_from(data: Mapping[str, Any]) -> LedgerEntry:
    """A settled movement from JSON."""
    return LedgerEntry(
        credex_id=str(data["credexID"]),
        at=str(data["timestamp"]),
        amount=_decimal(data["amount"]),
        denomination=str(data["Denomination"]),
        counterparty=account_from(data["counterparty"]),
        description=str(data["description"]),
    )


def page_json(page: LedgerPage) -> JSON:
    """A ledger page as JSON."""
    return {
        "entries": [entry_json(entry) for entry in page.entries],
        "startRow": page.offset,
        "numRows": page.limit,
        "total": page.total,
    }


def page_from(data: Mapping[str, Any]) -> LedgerPage:
    """A ledger page from JSON."""
    return LedgerPage(
        entries=tuple(entry_from(item) for item in data["entries"]),
        offset=int(data["startRow"]),
        total=int(data["total"]),
        limit=int(data["numRows"]),
    )


def _amounts_json(amounts: Mapping[str, Decimal]) -> dict[str, str]:
    return {denomination: str(amount) for denomination, amount in amounts.items()}


def _amounts_from(data: Mapping[str, Any]) -> dict[str, Decimal]:
    return {str(denomination): _decimal(amount) for denomination, amount in data.items()}


def _decimal(value: Any) -> Decimal:
    if not isinstance(value, str):
        raise TypeError(f"expected a decimal string, got {value!r:.40}")
    return Decimal(value)
