"""The admin API's dead letters: list, show, replay and drop (as ``statehq dead`` does).

    GET  /admin/dead                  ?sender=<channel identity>
    GET  /admin/dead/{id}             ?sender=... when several senders share the id
    POST /admin/dead/{id}/replay      {"reason": "...", "sender": "..."} (both optional)
    POST /admin/dead/{id}/drop        {"reason": "...", "sender": "..."} (both optional)

A replay or drop of a letter that is gone answers 404; an id that several senders'
letters share answers 400 until ``sender`` names one.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.routing import Route

from ..errors import InvalidInput
from ..redact import get_logger, mask_identity, redact_value
from ..state import StateManager
from ..store.keys import check_member_id
from .admin_requests import Args, Refused, json_object, reason_of, shown
from .dead import count_and_list, drop_dead, find_dead, replay_dead

log = get_logger(__name__)

Operation = Callable[[StateManager, str, Args], dict[str, Any]]
Parser = Callable[[Request], Awaitable[Args]]
RouteMaker = Callable[..., Route]


def routes(manager: StateManager, route: RouteMaker) -> list[Route]:
    """The dead-letter routes, built by the admin API's own route maker."""
    return [
        route("", manager, _list, _query, "GET", "admin-dead", under="/dead"),
        route("", manager, _show, _query, "GET", "admin-dead-one", under="/dead/{id:path}"),
        route(
            "/replay", manager, _replay, _body, "POST", "admin-dead-replay", under="/dead/{id:path}"
        ),
        route("/drop", manager, _drop, _body, "POST", "admin-dead-drop", under="/dead/{id:path}"),
    ]


def _list(manager: StateManager, _: str, args: Args) -> dict[str, Any]:
    total, letters = count_and_list(manager.store, args["sender"])
    return {"total": total, "dead": [redact_value(letter.as_dict()) for letter in letters]}


def _show(manager: StateManager, message_id: str, args: Args) -> dict[str, Any]:
    letter = find_dead(manager.store, message_id, args["sender"])
    return dict(redact_value(letter.as_dict()))


def _acting(action: Callable[..., bool], outcome: str) -> Operation:
    """The operation that finds a dead letter and replays or drops it (``action``)."""

    def operation(manager: StateManager, message_id: str, args: Args) -> dict[str, Any]:
        letter = find_dead(manager.store, message_id, args["sender"])
        if not action(manager.store, letter, reason=args["reason"]):
            raise Refused(404, f"dead letter {message_id!r:.100} was replayed or dropped meanwhile")
        who = mask_identity(letter.sender)
        log.info("admin api: %s dead letter %s from %s", outcome, letter.id, who)
        return {"id": letter.id, "sender": letter.sender, "outcome": outcome}

    return operation


_replay = _acting(replay_dead, "replayed")
_drop = _acting(drop_dead, "dropped")


async def _query(request: Request) -> Args:
    unknown = sorted(set(request.query_params.keys()) - {"sender"})
    if unknown:
        raise Refused(422, f"unknown query parameter {unknown[0][:80]!r}; this takes sender")
    return {"sender": _sender(request.query_params.get("sender"))}


async def _body(request: Request) -> Args:
    body = await json_object(request, ("reason", "sender"))
    return {"reason": reason_of(body), "sender": _sender(body.get("sender"))}


def _sender(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise Refused(422, f"sender must be a string, got {shown(value)}")
    try:
        return check_member_id(value)
    except InvalidInput as bad:
        raise Refused(400, str(bad)) from None
