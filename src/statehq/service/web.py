"""The web page: a chat with the bot beside a live inspector of the member's state.

``GET /`` serves the page (HTML, CSS and JavaScript from package data: no build step,
no CDN). It chats through the web channel (:mod:`statehq.channels.web`) and reads two
Server-Sent Event streams, both resumable with ``Last-Event-ID``:

``/web/replies?member=<phone>``  the bot's replies to ``web:<phone>`` (reply stream ids)
``/web/inspect?member=<phone>``  the session's state, sent again after every audit
                                 entry (audit stream ids), or when its TTL runs out

Both are blocking reads on the store (XREAD BLOCK), never polling loops, and both need
the admin token (``?token=``: EventSource cannot send headers). Writes (rollback, reset,
replay) go through the admin API with the same token.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import time
from collections.abc import AsyncIterator
from importlib import resources
from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from ..digits import is_digits
from ..errors import StateError
from ..redact import get_logger, redact_value
from ..store import AsyncStateStore
from ..store.dead_letters import DeadLetters
from ..store.inbox import Inbox
from ..store.models import SessionStatus
from ..store.replies import Replies

log = get_logger(__name__)

WAIT_MS = 1000  # one blocking read; below the store's reply timeout
HEARTBEAT = 15.0  # seconds between comments that keep idle proxies from closing a stream
STATIC = {"app.js": "text/javascript", "style.css": "text/css", "index.html": "text/html"}


def page_routes(store: AsyncStateStore, token: str | None) -> list[BaseRoute]:
    """The page's static files and its two event streams."""
    return [
        Route("/static/{name}", _static, methods=["GET"]),
        Route("/web/replies", _replies(store, token), methods=["GET"]),
        Route("/web/inspect", _inspect(store, token), methods=["GET"]),
    ]


def page() -> Response:
    """The page itself (``GET /`` for a browser)."""
    return _static_file("index.html")


async def _static(request: Request) -> Response:
    return _static_file(request.path_params["name"])


def _static_file(name: str) -> Response:
    if name not in STATIC:
        return Response("not found", status_code=404, media_type="text/plain")
    text = (resources.files("statehq.service") / "static" / name).read_text(encoding="utf-8")
    return Response(text, media_type=STATIC[name], headers={"Cache-Control": "no-cache"})


def _member(request: Request, token: str | None) -> str | Response:
    """The phone the stream is for, or the error response."""
    given = request.query_params.get("token", "")
    if not token:
        return _plain(403, "the inspector is off: set STATEHQ_ADMIN_TOKEN")
    if not hmac.compare_digest(given.encode(), token.encode()):
        return _plain(401, "the admin token is missing or wrong (?token=)")
    phone = request.query_params.get("member", "").removeprefix("+")
    if not is_digits(phone) or not 8 <= len(phone) <= 15:
        return _plain(400, "member must be a phone number of 8-15 digits")
    return phone


def _plain(status: int, message: str) -> Response:
    return Response(message, status_code=status, media_type="text/plain")


def _event(name: str, data: Any, event_id: str | None = None) -> str:
    head = f"id: {event_id}\n" if event_id else ""
    return f"{head}event: {name}\ndata: {json.dumps(data, ensure_ascii=False, default=str)}\n\n"


def _stream(events: AsyncIterator[str]) -> StreamingResponse:
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(events, media_type="text/event-stream", headers=headers)


def _replies(store: AsyncStateStore, token: str | None) -> Any:
    replies = Replies(store.settings)

    async def endpoint(request: Request) -> Response:
        phone = _member(request, token)
        if isinstance(phone, Response):
            return phone
        sender = f"web:{phone}"
        last = request.headers.get("last-event-id") or request.query_params.get("after") or "0"

        async def events() -> AsyncIterator[str]:
            nonlocal last
            yield "retry: 1000\n\n"
            beat = time.monotonic()
            while True:
                try:
                    found = await store.execute(replies.after(sender, last, WAIT_MS))
                except StateError as error:
                    yield _event("trouble", {"error": str(error)})
                    await asyncio.sleep(1.0)
                    continue
                for reply in found:
                    last = reply.id
                    yield _event("reply", reply.body, reply.id)
                if time.monotonic() - beat > HEARTBEAT:
                    beat = time.monotonic()
                    yield ": still here\n\n"

        return _stream(events())

    return endpoint


def _inspect(store: AsyncStateStore, token: str | None) -> Any:
    inbox = Inbox(store.settings)

    async def endpoint(request: Request) -> Response:
        phone = _member(request, token)
        if isinstance(phone, Response):
            return phone
        channel = f"web:{phone}"
        resume = request.headers.get("last-event-id")

        async def events() -> AsyncIterator[str]:
            yield "retry: 1000\n\n"
            key = await store.resolve(channel)
            last = resume or await _newest_id(store, key)
            state = await _state(store, inbox, channel, key)
            yield _event("state", state, last if last != "0-0" else None)
            while True:
                try:
                    entries = await store.audit_follow(key, last, WAIT_MS)
                    moved = await store.resolve(channel)
                except StateError as error:
                    yield _event("trouble", {"error": str(error)})
                    await asyncio.sleep(1.0)
                    continue
                if entries:
                    last = entries[-1].id
                if moved != key:  # logged in: the conversation continues under the member
                    key, last = moved, await _newest_id(store, moved)
                elif not entries and not _expired_since(state):
                    continue
                state = await _state(store, inbox, channel, key)
                state["new_entries"] = [redact_value(e.as_dict()) for e in entries]
                yield _event("state", state, last if last != "0-0" else None)

        return _stream(events())

    return endpoint


async def _newest_id(store: AsyncStateStore, key: str) -> str:
    newest = await store.audit_read(key, None, 1)
    return newest[-1].id if newest else "0-0"


def _expired_since(state: dict[str, Any]) -> bool:
    """True when the session was live and its TTL has run out since it was read."""
    ends = state.get("expires_at")
    return state.get("status") == "active" and ends is not None and time.time() >= ends


async def _state(store: AsyncStateStore, inbox: Inbox, channel: str, key: str) -> dict[str, Any]:
    """Everything the inspector shows of one session, secrets masked."""
    status = await store.status(key)
    snapshot = await store.get(key) if status is SessionStatus.ACTIVE else None
    history = await store.history(key)
    audit = await store.audit_read(key, None, 50)
    queue = await store.execute(inbox.queue_view(channel, key))
    dead = await store.execute(DeadLetters(inbox).of(channel)) if queue["dead"] else []
    doc = redact_value(snapshot.doc) if snapshot else None
    flow = (doc or {}).get("flow_data") or {}
    return {
        "key": key,
        "channel": channel,
        "status": "active" if snapshot else status.value,
        "version": snapshot.version if snapshot else None,
        "ttl": snapshot.ttl if snapshot else None,
        "expires_at": time.time() + snapshot.ttl if snapshot and snapshot.ttl else None,
        "stage": (doc or {}).get("stage"),
        "flow": flow.get("id"),
        "step": flow.get("step"),
        "document": doc,
        "history": [
            {"version": e.version, "last_updated": e.last_updated, "state": redact_value(e.doc)}
            for e in history
        ],
        "audit": [redact_value(entry.as_dict()) for entry in audit],
        "dead_letters": [redact_value(letter.as_dict()) for letter in dead],
        **queue,
    }
