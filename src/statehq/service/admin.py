"""The admin API: one member's state, history and audit trail, and the operator's repairs.

It mirrors ``statehq state show|history|audit|rollback|reset|recover`` (see
:func:`statehq.cli.main.run_state`) over HTTP, mounted at ``/admin``::

    GET  /admin/members/{member}            document, version, TTL (404 without a live session)
    GET  /admin/members/{member}/history    the versions kept for rollback, newest first
    GET  /admin/members/{member}/audit      ?since=<entry id | ISO time>&limit=<1..1000>
    POST /admin/members/{member}/rollback   {"version": 3, "reason": "..."}
    POST /admin/members/{member}/reset      {"reason": "..."}   (the body is optional)
    POST /admin/members/{member}/recover    {"reason": "..."}   (the body is optional)
    GET  /admin/dead                        dead letters, oldest first (?sender=<channel>)
    GET  /admin/dead/{id}                   one dead letter: the update and its error
    POST /admin/dead/{id}/replay            {"reason": "...", "sender": "..."} (both optional)
    POST /admin/dead/{id}/drop              {"reason": "...", "sender": "..."}

MEMBER is a channel identity (``whatsapp:263771234567``), ``member:<id>`` or a bare member
id; a channel bound to a member is followed to the member's session. Writes go through the
state manager (validated, versioned, audited with reason ``admin api`` unless one is given).

Every request needs ``Authorization: Bearer <STATEHQ_ADMIN_TOKEN>``; without a configured
token every path answers 403. Backend tokens are redacted from every response, and the
admin token is never echoed or logged. Errors are ``{"error": "<what happened>"}`` with:

    400  malformed JSON, an invalid member id      409  a concurrent write, a held lease,
    401  no or wrong admin token                        corrupt state, a moved session
    403  the admin API is disabled                 413  a body over 16 KiB
    404  no live session, a version not in         422  a body or query field is invalid, or
         history, an unknown path                       the write would break the state rules
    405  a method the path does not take           503  the store is unavailable
    500  anything unexpected (logged; the body says only "internal error")
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Mount, Route, Router
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocketClose

from ..errors import (
    CorruptState,
    DocumentTooLarge,
    IdentityError,
    InvalidInput,
    InvalidMemberId,
    LeaseError,
    NoLiveSession,
    NoSession,
    SessionEnded,
    SessionMoved,
    StateError,
    StateValidationError,
    StoreUnavailable,
    TransitionRefused,
    VersionConflict,
    VersionNotFound,
)
from ..redact import get_logger, mask_identity, redact_text, redact_value
from ..state import StateManager
from ..state.channel_ids import session_key_for
from ..store.audit import is_stream_id
from . import admin_dead
from .admin_requests import (
    Args,
    Refused,
    json_object,
    no_args,
    reason_of,
    shown,
)
from .dead import NoDeadLetter
from .logs import masked_path

log = get_logger(__name__)

MAX_AUDIT_LIMIT = 1000
DEFAULT_AUDIT_LIMIT = 100

DISABLED = "the admin API is disabled: set STATEHQ_ADMIN_TOKEN to enable it"
UNAUTHORIZED = "missing or wrong admin token: send 'Authorization: Bearer <STATEHQ_ADMIN_TOKEN>'"

_STATUSES: tuple[tuple[type[StateError], int], ...] = (
    (VersionNotFound, 404),
    (NoDeadLetter, 404),
    (SessionEnded, 404),
    (NoSession, 404),
    (InvalidMemberId, 400),
    (StateValidationError, 422),
    (TransitionRefused, 422),
    (DocumentTooLarge, 422),
    (InvalidInput, 400),
    (VersionConflict, 409),  # MutateTimeout too
    (LeaseError, 409),
    (CorruptState, 409),
    (SessionMoved, 409),
    (IdentityError, 409),
    (StoreUnavailable, 503),  # StoreFull too
)
"""The HTTP status of each error statehq raises, most specific first; others are 500."""

_LIMIT = re.compile(r"[0-9]{1,6}")

Operation = Callable[[StateManager, str, Args], dict[str, Any]]
Parser = Callable[[Request], Awaitable[Args]]


def admin_routes(manager: StateManager, token: str | None) -> list[BaseRoute]:
    """The admin API as one ``Mount("/admin", ...)``, for the service's route list.

    ``token`` is the bearer token requests must carry; None or blank disables the API
    (every ``/admin`` path then answers 403).
    """
    routes = [
        *admin_dead.routes(manager, _route),
        _route("", manager, _show, no_args, "GET", "admin-member"),
        _route("/history", manager, _history, no_args, "GET", "admin-history"),
        _route("/audit", manager, _audit, _audit_query, "GET", "admin-audit"),
        _route("/rollback", manager, _rollback, _rollback_body, "POST", "admin-rollback"),
        _route("/reset", manager, _reset, _reason_body, "POST", "admin-reset"),
        _route("/recover", manager, _recover, _reason_body, "POST", "admin-recover"),
    ]
    routes.append(Route("/", lambda _request: _json({"endpoints": index}), name="admin-index"))
    index = [
        {"method": method, "path": f"/admin{route.path}", "does": ENDPOINTS.get(route.name, "")}
        for route in routes
        if isinstance(route, Route)
        for method in sorted((route.methods or set()) - {"HEAD"})
    ]

    router = Router(routes=routes, default=_unknown_path)
    return [Mount("/admin", app=_Guard(router, token), name="admin")]


ENDPOINTS = {
    "admin-index": "this list",
    "admin-member": "the member's state (secrets masked), version and TTL",
    "admin-history": "every version kept, oldest last",
    "admin-audit": "the audit trail; query: since (id or time), limit",
    "admin-rollback": 'restore a version as a new one; body: {"version": N, "reason": "..."}',
    "admin-reset": 'start the session over, keeping who it is; body: {"reason": "..."}',
    "admin-recover": 'repair corrupt or invalid state from history; body: {"reason": "..."}',
    "admin-dead": "dead letters; query: sender",
    "admin-dead-one": "one dead letter and why; query: sender",
    "admin-dead-replay": 'queue a dead letter again; body: {"reason": "...", "sender": "..."}',
    "admin-dead-drop": 'forget a dead letter; body: {"reason": "...", "sender": "..."}',
}
"""What each admin endpoint does, for the listing at ``GET /admin/``."""


# -- the operations (blocking: run in the thread pool) ---------------------------------------


def _show(manager: StateManager, who: str, _: Args) -> dict[str, Any]:
    key, snap = manager.show(who)
    return {
        "key": key,
        "status": "active",
        "version": snap.version,
        "ttl": snap.ttl,
        "state": redact_value(snap.doc),
    }


def _history(manager: StateManager, who: str, _: Args) -> dict[str, Any]:
    key, entries = manager.history(who)
    versions = [
        {"version": e.version, "last_updated": e.last_updated, "state": redact_value(e.doc)}
        for e in entries
    ]
    return {"key": key, "versions": versions}


def _audit(manager: StateManager, who: str, args: Args) -> dict[str, Any]:
    key = session_key_for(who)
    entries = manager.audit.read(who, args["since"], args["limit"])
    return {
        "key": key,
        # After a login the conversation continues under the member's key; say where.
        "bound_to": manager.store.route(key),
        "entries": [redact_value(entry.as_dict()) for entry in entries],
    }


def _rollback(manager: StateManager, who: str, args: Args) -> dict[str, Any]:
    snap = manager.rollback(who, args["version"], reason=args["reason"])
    key = manager.session_key(who)
    log.info(
        "admin api: restored version %d of %s as version %d",
        args["version"],
        mask_identity(key),
        snap.version,
    )
    return {"key": key, "restored": args["version"], "version": snap.version}


def _reset(manager: StateManager, who: str, args: Args) -> dict[str, Any]:
    key = manager.session_key(who)
    snap = manager.reset(who, reason=args["reason"])
    log.info("admin api: reset %s to version %d", mask_identity(key), snap.version)
    return {"key": key, "version": snap.version}


def _recover(manager: StateManager, who: str, args: Args) -> dict[str, Any]:
    key = manager.session_key(who)
    result = manager.recover(who, reason=args["reason"])
    if result.outcome != "healthy":
        log.info("admin api: recovery of %s: %s", mask_identity(key), result.outcome)
    return {
        "key": key,
        "outcome": result.outcome,
        "version": result.version,
        "restored_from": result.restored_from,
        "problem": redact_text(result.problem),
    }


# -- reading the request ----------------------------------------------------------------------


async def _audit_query(request: Request) -> Args:
    query = request.query_params
    unknown = sorted(set(query.keys()) - {"since", "limit"})
    if unknown:
        raise Refused(422, f"unknown query parameter {unknown[0]!r}; this takes since and limit")
    return {"since": _since(query.get("since")), "limit": _limit(query.get("limit"))}


def _since(text: str | None) -> datetime | str | None:
    if text is None:
        return None
    if is_stream_id(text):
        return text
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        hint = " (a '+' in a URL must be written %2B)" if " " in text else ""
        raise Refused(
            422,
            f"since must be an audit entry id like 1767225600000-0 or an ISO time like "
            f"2026-11-22T08:00:00+00:00, got {text[:80]!r}{hint}",
        ) from None
    if moment.tzinfo is None:
        raise Refused(422, "since needs a time zone, e.g. 2026-11-22T08:00:00Z")
    return moment


def _limit(text: str | None) -> int:
    if text is None:
        return DEFAULT_AUDIT_LIMIT
    if not _LIMIT.fullmatch(text) or not 1 <= int(text) <= MAX_AUDIT_LIMIT:
        raise Refused(
            422, f"limit must be a whole number from 1 to {MAX_AUDIT_LIMIT}, got {text[:80]!r}"
        )
    return int(text)


async def _rollback_body(request: Request) -> Args:
    body = await json_object(request, ("version", "reason"))
    if "version" not in body:
        raise Refused(422, "version is required: the version to restore (see /history)")
    version = body["version"]
    if not isinstance(version, int) or isinstance(version, bool) or version < 0:
        raise Refused(422, f"version must be a non-negative whole number, got {shown(version)}")
    return {"version": version, "reason": reason_of(body)}


async def _reason_body(request: Request) -> Args:
    return {"reason": reason_of(await json_object(request, ("reason",)))}


# -- answering --------------------------------------------------------------------------------


def _route(
    path: str,
    manager: StateManager,
    operation: Operation,
    parse: Parser,
    method: str,
    name: str,
    *,
    under: str = "/members/{member}",
) -> Route:
    """A route running ``operation`` (in the thread pool) on what ``parse`` read.

    The operation gets the path's one parameter (the member, a message id) or "".
    """

    async def endpoint(request: Request) -> JSONResponse:
        who: str = next(iter(request.path_params.values()), "")
        try:
            args = await parse(request)
            result = await run_in_threadpool(operation, manager, who, args)
            return _json(result)
        except Refused as refused:
            log.info(
                "admin %s %s: %d %s",
                request.method,
                masked_path(request.url.path),
                refused.status,
                refused.message,
            )
            return _json({"error": redact_text(refused.message), **refused.extra}, refused.status)
        except ClientDisconnect:
            return _json({"error": "the client went away before sending the body"}, 400)
        except NoLiveSession as none:
            return _json({"error": redact_text(str(none)), "status": none.status}, 404)
        except StateError as exc:
            return _state_error(request, exc)
        except Exception:
            log.exception("admin %s %s failed", request.method, masked_path(request.url.path))
            return _json({"error": "internal error"}, 500)

    return Route(f"{under}{path}", endpoint, methods=[method], name=name)


def _state_error(request: Request, exc: StateError) -> JSONResponse:
    status = next((code for kind, code in _STATUSES if isinstance(exc, kind)), 500)
    where = f"admin {request.method} {masked_path(request.url.path)}"
    if status == 500:
        log.error("%s failed: %s: %s", where, type(exc).__name__, exc)
        return _json({"error": "internal error"}, 500)
    log.info("%s: %d %s", where, status, exc)
    return _json({"error": redact_text(str(exc))}, status)


def _json(
    body: Mapping[str, Any], status: int = 200, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    # Member state is personal data: no cache may keep a copy.
    return JSONResponse(
        dict(body), status_code=status, headers={"Cache-Control": "no-store", **(headers or {})}
    )


async def _unknown_path(scope: Scope, receive: Receive, send: Send) -> None:
    message = redact_text(f"no admin endpoint at {scope['path']}"[:300])
    response = _json({"error": message}, 404)
    await response(scope, receive, send)


class _Guard:
    """The admin routes behind the bearer token; 403 everywhere when no token is set.

    Authentication comes before routing, so without the token nothing tells a caller
    which paths exist.
    """

    def __init__(self, app: ASGIApp, token: str | None) -> None:
        self._app = app
        token = (token or "").strip()  # clients' credentials are stripped too
        self._token = token.encode() if token else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await WebSocketClose(code=1008)(scope, receive, send)
            return
        if self._token is None:
            await _json({"error": DISABLED}, 403)(scope, receive, send)
            return
        if not self._authorized(Headers(scope=scope)):
            client = scope.get("client") or ("?", 0)
            log.warning(
                "admin %s %s refused: no or wrong token (from %s)",
                scope["method"],
                masked_path(scope["path"]),
                client[0],
            )
            challenge = {"WWW-Authenticate": 'Bearer realm="statehq admin"'}
            await _json({"error": UNAUTHORIZED}, 401, challenge)(scope, receive, send)
            return
        try:
            await self._app(scope, receive, send)
        except HTTPException as exc:  # raised by routing, before any response started
            await self._routing_error(exc, scope)(scope, receive, send)

    def _authorized(self, headers: Headers) -> bool:
        assert self._token is not None
        scheme, _, credentials = headers.get("authorization", "").partition(" ")
        credentials = credentials.strip()
        if scheme.lower() != "bearer" or not credentials:
            return False
        # Starlette decodes header values as latin-1: this gives back the bytes sent.
        return hmac.compare_digest(credentials.encode("latin-1"), self._token)

    @staticmethod
    def _routing_error(exc: HTTPException, scope: Scope) -> JSONResponse:
        if exc.status_code == 405:
            allowed = ", ".join(sorted((exc.headers or {}).get("Allow", "").split(", ")))
            message = f"{scope['method']} is not allowed on {scope['path']}; use {allowed}"
        else:
            message = f"{exc.detail} ({scope['path']})"
        return _json({"error": redact_text(message[:300])}, exc.status_code, exc.headers)
