"""The :class:`~statehq.credex.backend.Backend` over HTTP: any credex-core compatible API.

Point it at ``STATEHQ_BACKEND_URL`` (``statehq ledger serve``, or a credex-core
deployment speaking the routes of :mod:`statehq.credex.api`). Errors map back onto the
backend's tree: 401 is :class:`Unauthorized`, any other 4xx with an error body is
:class:`Refused` with the server's code, and a refused connection, a timeout, a 5xx or
an answer that is not the expected JSON is :class:`BackendUnavailable`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from decimal import Decimal
from types import TracebackType
from typing import Any, TypeVar

import httpx

from .backend import (
    Account,
    BackendUnavailable,
    Dashboard,
    LedgerPage,
    Login,
    Offer,
    Refused,
    Unauthorized,
)
from .wire import (
    API_KEY_HEADER,
    IDEMPOTENCY_HEADER,
    account_from,
    dashboard_from,
    login_from,
    offer_from,
    page_from,
)

T = TypeVar("T")

URL_ENV = "STATEHQ_BACKEND_URL"
API_KEY_ENV = "STATEHQ_BACKEND_API_KEY"
DEFAULT_TIMEOUT = 5.0


class HttpBackend:
    """A credex REST API as a :class:`~statehq.credex.backend.Backend` (blocking, httpx)."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        headers = {API_KEY_HEADER: api_key} if api_key else {}
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.base_url, headers=headers, timeout=timeout, transport=transport
        )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> HttpBackend:
        """A client for ``STATEHQ_BACKEND_URL`` with ``STATEHQ_BACKEND_API_KEY`` if set."""
        env = os.environ if environ is None else environ
        url = env.get(URL_ENV)
        if not url:
            raise BackendUnavailable(f"{URL_ENV} is not set")
        return cls(url, api_key=env.get(API_KEY_ENV) or None)

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> HttpBackend:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def login(self, phone: str) -> Login | None:
        """Log in by phone number; None when no member has it."""
        return self._maybe(lambda: self._call("/v1/login", login_from, {"phone": phone}))

    def onboard(
        self, phone: str, first_name: str, last_name: str, *, idempotency_key: str
    ) -> Login:
        """Create a member with a personal account and log them in."""
        body = {"phone": phone, "firstname": first_name, "lastname": last_name}
        return self._call("/v1/onboardMember", login_from, body, key=idempotency_key)

    def dashboard(self, token: str, account_id: str) -> Dashboard:
        """The standing of one of the member's accounts."""
        body = {"accountID": account_id}
        return self._call("/v1/getAccountDashboard", dashboard_from, body, token=token)

    def account_by_handle(self, token: str, handle: str) -> Account | None:
        """The account with ``handle``, or None."""
        body = {"accountHandle": handle}
        return self._maybe(
            lambda: self._call("/v1/getAccountByHandle", account_from, body, token=token)
        )

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
        """Offer a secured credex (pending until the receiver accepts)."""
        body = {
            "issuerAccountID": issuer_account_id,
            "receiverAccountID": receiver_account_id,
            "InitialAmount": str(amount),
            "Denomination": denomination,
            "credexType": "PURCHASE",
            "OFFERSorREQUESTS": "OFFERS",
            "securedCredex": True,
        }
        return self._call("/v1/createCredex", offer_from, body, token=token, key=idempotency_key)

    def accept(self, token: str, credex_id: str, *, idempotency_key: str) -> Offer:
        """Accept an offer made to one of the member's accounts."""
        body = {"credexID": credex_id}
        return self._call("/v1/acceptCredex", offer_from, body, token=token, key=idempotency_key)

    def decline(self, token: str, credex_id: str, *, idempotency_key: str) -> Offer:
        """Decline an offer made to one of the member's accounts."""
        body = {"credexID": credex_id}
        return self._call("/v1/declineCredex", offer_from, body, token=token, key=idempotency_key)

    def cancel(self, token: str, credex_id: str, *, idempotency_key: str) -> Offer:
        """Cancel a pending offer the member made."""
        body = {"credexID": credex_id}
        return self._call("/v1/cancelCredex", offer_from, body, token=token, key=idempotency_key)

    def ledger(self, token: str, account_id: str, *, offset: int = 0, limit: int = 5) -> LedgerPage:
        """Settled movements of one of the member's accounts, newest first."""
        body = {"accountID": account_id, "startRow": offset, "numRows": limit}
        return self._call("/v1/getLedger", page_from, body, token=token)

    def _call(
        self,
        path: str,
        parse: Callable[[Any], T],
        body: dict[str, Any],
        *,
        token: str | None = None,
        key: str | None = None,
    ) -> T:
        headers = {}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        if key is not None:
            headers[IDEMPOTENCY_HEADER] = key
        try:
            response = self._http.post(path, json=body, headers=headers)
        except httpx.TimeoutException as exc:
            raise BackendUnavailable(f"{self.base_url}{path} timed out") from exc
        except httpx.HTTPError as exc:
            raise BackendUnavailable(f"{self.base_url}{path}: {exc}") from exc
        data = self._data(path, response)
        try:
            return parse(data)
        except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
            raise BackendUnavailable(f"{self.base_url}{path} answered malformed data") from exc

    def _data(self, path: str, response: httpx.Response) -> Any:
        try:
            payload = response.json()
        except ValueError:
            payload = None
        if response.is_success and isinstance(payload, dict) and "data" in payload:
            return payload["data"]
        error = payload.get("error") if isinstance(payload, dict) else None
        if response.status_code == 401:
            raise Unauthorized(_message(error, "the token is missing, expired or invalid"))
        if 400 <= response.status_code < 500 and isinstance(error, dict):
            code = str(error.get("code") or f"http_{response.status_code}")
            raise Refused(_message(error, response.reason_phrase), code=code)
        raise BackendUnavailable(
            f"{self.base_url}{path} answered {response.status_code} {response.reason_phrase}"
        )

    def _maybe(self, call: Callable[[], T]) -> T | None:
        # login and getAccountByHandle answer 404 not_found for "no such member/account".
        try:
            return call()
        except Refused as exc:
            if exc.code == "not_found":
                return None
            raise


def _message(error: object, default: str) -> str:
    message = error.get("message") if isinstance(error, dict) else None
    return str(message) if message else default
