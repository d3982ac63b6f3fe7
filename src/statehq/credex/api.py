"""The built-in ledger as a small credex-core compatible REST API (Starlette).

Route and field names follow credex-core's ``/v1`` API (Great-Sun-Group/credex-core),
so :class:`~statehq.credex.client.HttpBackend` can talk to either. Every route is
``POST`` with a JSON object body and answers ``{"data": ...}`` (shapes in
:mod:`~statehq.credex.wire`):

=============================  ======================================  =====  ===  =============
route                          body fields                             token  key  data
=============================  ======================================  =====  ===  =============
/v1/login                      phone                                   no     no   login
/v1/onboardMember              phone, firstname, lastname,             no     yes  login
                               defaultDenom (optional, USD only)
/v1/getAccountDashboard        accountID                               yes    no   dashboard
/v1/getMemberDashboardByPhone  phone (the caller's own)                yes    no   member, a
                                                                                   dashboard per
                                                                                   account
/v1/getAccountByHandle         accountHandle ('@' and case ignored)    yes    no   account
/v1/createCredex               issuerAccountID, receiverAccountID,     yes    yes  offer
                               Denomination, InitialAmount (decimal
                               string or number); optional:
                               credexType, securedCredex (true),
                               OFFERSorREQUESTS (OFFERS)
/v1/acceptCredex               credexID                                yes    yes  offer
/v1/declineCredex              credexID                                yes    yes  offer
/v1/cancelCredex               credexID                                yes    yes  offer
/v1/getLedger                  accountID, startRow (default 0),        yes    no   ledger page
                               numRows (default 10, at most 100)
=============================  ======================================  =====  ===  =============

Headers: ``Authorization: Bearer <jwt>`` where "token" says yes; ``Idempotency-Key``
where "key" says yes (400 without it); ``X-API-Key`` on every request when the app has
an API key (401 without it or when wrong).

A login is ``{token, member, accounts}``; an offer is seen from the caller's side
(``direction`` ``in`` or ``out``). An unknown phone (login) or handle is 404
``not_found``. Errors are ``{"error": {"code", "message"}}``: 400 ``bad_request``
(malformed JSON, a missing or ill-typed field: the message names it), 401
``unauthorized`` (token or API key), 403 ``forbidden``, 404 ``not_found``, 409
``not_pending`` / ``member_exists`` / ``idempotency_key_reused`` / ``handle_taken``,
413 ``payload_too_large`` (over 64 KB), 422 any other refusal (``insufficient_balance``,
``invalid_amount``...), 503 ``unavailable`` (the database). Amounts are decimal strings
(``"10.50"``), never floats.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..digits import is_digits
from .backend import Backend, BackendError, Refused, Unauthorized
from .wire import (
    API_KEY_HEADER,
    IDEMPOTENCY_HEADER,
    JSON,
    account_json,
    dashboard_json,
    error_json,
    login_json,
    member_json,
    offer_json,
    page_json,
    status_for,
)

MAX_BODY_BYTES = 64 * 1024


class Call:
    """One request's JSON body and headers, with typed accessors that answer 400."""

    def __init__(self, body: dict[str, Any], token: str | None, key: str | None) -> None:
        self.body = body
        self._token = token
        self._key = key

    def text(self, name: str) -> str:
        """A required string field."""
        value = self.body.get(name)
        if not isinstance(value, str):
            raise _bad(f"field {name!r} is required and must be a string")
        return value

    def decimal(self, name: str) -> Decimal:
        """A required amount: a decimal string or a JSON number."""
        value = self.body.get(name)
        if isinstance(value, Decimal | int) and not isinstance(value, bool):
            return Decimal(value)
        if isinstance(value, str):
            try:
                return Decimal(value)
            except InvalidOperation:
                pass
        raise _bad(f"field {name!r} is required and must be a decimal number")

    def integer(self, name: str, default: int) -> int:
        """An optional integer field."""
        value = self.body.get(name, default)
        if not isinstance(value, int) or isinstance(value, bool):
            raise _bad(f"field {name!r} must be an integer")
        return value

    def token(self) -> str:
        """The bearer token; 401 without one."""
        if not self._token:
            raise Unauthorized("token missing: send Authorization: Bearer <token>")
        return self._token

    def key(self) -> str:
        """The idempotency key; 400 without one."""
        if not self._key:
            raise _bad(f"the {IDEMPOTENCY_HEADER} header is required for this call")
        return self._key


Handler = Callable[[Backend, Call], Any]


def create_app(backend: Backend, *, api_key: str | None) -> Starlette:
    """The REST app serving ``backend`` (normally a :class:`~statehq.credex.ledger.Ledger`)."""
    routes = [
        Route(path, _endpoint(handler, backend, api_key), methods=["POST"])
        for path, handler in ROUTES.items()
    ]
    return Starlette(routes=routes, exception_handlers={HTTPException: _http_error})


def _endpoint(
    handler: Handler, backend: Backend, api_key: str | None
) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        try:
            _check_api_key(request, api_key)
            call = Call(await _json_body(request), _bearer(request), _idempotency_key(request))
            # The ledger blocks (SQLite, a lock): keep it off the event loop.
            data = await run_in_threadpool(handler, backend, call)
        except BackendError as exc:
            return JSONResponse(error_json(exc.code, str(exc)), status_code=status_for(exc))
        return JSONResponse({"data": data})

    return endpoint


def _check_api_key(request: Request, api_key: str | None) -> None:
    if api_key is None:
        return
    given = request.headers.get(API_KEY_HEADER, "")
    # compare_digest: the time taken does not reveal how much of a guess was right.
    if not hmac.compare_digest(given.encode(), api_key.encode()):
        raise Unauthorized(f"the {API_KEY_HEADER} header is missing or wrong")


async def _json_body(request: Request) -> dict[str, Any]:
    declared = request.headers.get("content-length", "0")
    if not is_digits(declared) or int(declared) > MAX_BODY_BYTES:
        raise _too_large()
    raw = bytearray()
    async for chunk in request.stream():  # a chunked body has no content-length to trust
        raw += chunk
        if len(raw) > MAX_BODY_BYTES:
            raise _too_large()
    try:
        body = json.loads(raw, parse_float=Decimal)  # exact amounts, never binary floats
    except (ValueError, RecursionError) as exc:
        raise _bad(f"the request body is not valid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise _bad("the request body must be a JSON object")
    return body


def _bearer(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _idempotency_key(request: Request) -> str | None:
    return request.headers.get(IDEMPOTENCY_HEADER) or None


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = {404: "no_such_route", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    return JSONResponse(error_json(code, str(exc.detail)), status_code=exc.status_code)


def _bad(message: str) -> Refused:
    return Refused(message, code="bad_request")


def _too_large() -> Refused:
    return Refused(f"the request body is over {MAX_BODY_BYTES} bytes", code="payload_too_large")


def _not_found(what: str) -> Refused:
    return Refused(f"no {what}", code="not_found")


# -- handlers: (backend, call) -> the "data" of the answer ------------------------------


def _login(backend: Backend, call: Call) -> JSON:
    login = backend.login(call.text("phone"))
    if login is None:
        raise _not_found("member has that phone number")
    return login_json(login)


def _onboard(backend: Backend, call: Call) -> JSON:
    denomination = call.body.get("defaultDenom", "USD")
    if denomination != "USD":
        raise Refused("this ledger opens accounts in USD only", code="unsupported")
    login = backend.onboard(
        call.text("phone"),
        call.text("firstname"),
        call.text("lastname"),
        idempotency_key=call.key(),
    )
    return login_json(login)


def _account_dashboard(backend: Backend, call: Call) -> JSON:
    return dashboard_json(backend.dashboard(call.token(), call.text("accountID")))


def _member_dashboard(backend: Backend, call: Call) -> JSON:
    token, phone = call.token(), call.text("phone")
    login = backend.login(phone)
    if login is None:
        raise _not_found("member has that phone number")
    # dashboard() checks each account against the caller's token: another member's
    # phone is refused as forbidden; the fresh token of this lookup is thrown away.
    dashboards = [dashboard_json(backend.dashboard(token, a.id)) for a in login.accounts]
    return {"member": member_json(login.member), "dashboards": dashboards}


def _account_by_handle(backend: Backend, call: Call) -> JSON:
    account = backend.account_by_handle(call.token(), call.text("accountHandle"))
    if account is None:
        raise _not_found("account has that handle")
    return account_json(account)


def _create_credex(backend: Backend, call: Call) -> JSON:
    if call.body.get("securedCredex", True) is not True:
        raise Refused("only secured credexes are supported", code="unsupported")
    if call.body.get("OFFERSorREQUESTS", "OFFERS") != "OFFERS":
        raise Refused("only OFFERS are supported", code="unsupported")
    offer = backend.create_credex(
        call.token(),
        issuer_account_id=call.text("issuerAccountID"),
        receiver_account_id=call.text("receiverAccountID"),
        amount=call.decimal("InitialAmount"),
        denomination=call.text("Denomination"),
        idempotency_key=call.key(),
    )
    return offer_json(offer)


def _accept(backend: Backend, call: Call) -> JSON:
    token, credex_id = call.token(), call.text("credexID")
    return offer_json(backend.accept(token, credex_id, idempotency_key=call.key()))


def _decline(backend: Backend, call: Call) -> JSON:
    token, credex_id = call.token(), call.text("credexID")
    return offer_json(backend.decline(token, credex_id, idempotency_key=call.key()))


def _cancel(backend: Backend, call: Call) -> JSON:
    token, credex_id = call.token(), call.text("credexID")
    return offer_json(backend.cancel(token, credex_id, idempotency_key=call.key()))


def _ledger(backend: Backend, call: Call) -> JSON:
    token, account_id = call.token(), call.text("accountID")
    offset, limit = call.integer("startRow", 0), call.integer("numRows", 10)
    return page_json(backend.ledger(token, account_id, offset=offset, limit=limit))


ROUTES: dict[str, Handler] = {
    "/v1/login": _login,
    "/v1/onboardMember": _onboard,
    "/v1/getAccountDashboard": _account_dashboard,
    "/v1/getMemberDashboardByPhone": _member_dashboard,
    "/v1/getAccountByHandle": _account_by_handle,
    "/v1/createCredex": _create_credex,
    "/v1/acceptCredex": _accept,
    "/v1/declineCredex": _decline,
    "/v1/cancelCredex": _cancel,
    "/v1/getLedger": _ledger,
}
"""Every route of the API and the handler that answers it."""
