"""``/webhooks/<channel>``: each registered channel's updates queued before the 200.

Channel-neutral: a :class:`~statehq.channels.base.Channel` says what a request holds
(:meth:`~statehq.channels.base.Channel.receive`) and this route does the rest, the same
for every channel. A request that is not the channel's (too big: 413; for WhatsApp
unsigned: 401, signed with another secret: 403, not JSON at all: 400) is refused with
nothing written. Otherwise every update is queued in its sender's inbox
(:mod:`statehq.store.inbox`) and only then does the channel get its 200. A store that
cannot take them gets a 503 (the only 5xx), so the channel redelivers; updates already
queued by a failed request are recognised by their ids then.

Each update is judged on its own. A malformed one (a wrong type, an id the store cannot
key, a timestamp out of range) is rejected alone: logged, counted and audited, while
the rest of the batch is queued and the request answered 200, since redelivering a
poison update forever helps nobody. Updates that are not ours (for WhatsApp: another
object, field or phone number) are logged and acknowledged.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from .. import metrics
from ..channels.base import Channel, Refusal, Rejected
from ..config import Settings
from ..digits import is_digits
from ..errors import InvalidInput, StateError
from ..redact import get_logger, redact_text
from ..store import AsyncStateStore
from ..store.audit import AuditEvent
from ..store.inbox import Inbox, Update
from ..store.keys import check_member_id, check_message_id
from ..text import clean_text

log = get_logger(__name__)

Endpoint = Callable[[Request], Awaitable[Response]]

MAX_BODY_BYTES = 3 * 1024 * 1024
REJECTED = "_rejected"
"""The identifier whose trail holds rejected updates that name no valid sender
(``statehq audit whatsapp:_rejected``); no sender can be called that."""


def path_of(channel: Channel) -> str:
    """The webhook path of a channel."""
    return f"/webhooks/{channel.type}"


def webhook_routes(
    store: AsyncStateStore, settings: Settings, channels: list[Channel]
) -> list[Route]:
    """The GET (handshake) and POST (updates) routes of every channel's webhook."""
    routes: list[Route] = []
    for channel in channels:
        routes.append(Route(path_of(channel), _verifier(channel), methods=["GET"]))
        routes.append(
            Route(path_of(channel), _receiver(store, settings, channel), methods=["POST"])
        )
    return routes


def _verifier(channel: Channel) -> Endpoint:
    async def verify(request: Request) -> Response:
        status, text = channel.verify(dict(request.query_params))
        if status != 200:
            log.warning("%s webhook verification refused: %s", channel.type, text)
        return PlainTextResponse(text, status)

    return verify


def _receiver(store: AsyncStateStore, settings: Settings, channel: Channel) -> Endpoint:
    inbox = Inbox(store.settings)

    async def receive(request: Request) -> Response:
        body = await _read_limited(request)
        if body is None:
            return _error(413, f"the body is larger than {MAX_BODY_BYTES} bytes")
        try:
            received = channel.receive(request.headers, body)
        except Refusal as refused:
            log.warning("%s webhook POST refused: %s", channel.type, refused.message)
            return _error(refused.status, refused.message)
        updates, unqueueable = _queueable(received.updates)
        rejected = [*received.rejected, *unqueueable]
        for reason in received.skipped:
            log.info("webhook update acknowledged, not processed: %s", redact_text(reason))
        try:
            # One bound for the whole request: a hung store answers 503 in this time even
            # when a call must open a fresh connection first (itself retried once).
            async with asyncio.timeout(settings.store_timeout):
                queued = await store.execute(inbox.push(updates)) if updates else []
                await _record(store, channel.type, rejected)
        except (StateError, TimeoutError) as error:
            log.error("webhook could not queue %d updates: %s", len(updates), error or "timeout")
            return _error(503, "the store is unavailable; the updates were not queued")
        except Exception:
            # Whatever else the store's client raised (a Cluster client in the middle of a
            # failover has raised more than redis' own errors): nothing was acknowledged,
            # so the sender must redeliver, which a 503 asks for and a 500 may not.
            log.exception("webhook could not queue %d updates", len(updates))
            return _error(503, "the store failed; the updates were not queued")
        for update in queued:
            metrics.MESSAGES_IN.labels(update.kind).inc()
        duplicates = len(updates) - len(queued)
        if duplicates:
            metrics.DEDUP_HITS.labels("received").inc(duplicates)
        answer = {
            "queued": len(queued),
            "duplicates": duplicates,
            "ignored": len(received.skipped),
            "rejected": len(rejected),
        }
        return JSONResponse(answer)

    return receive


async def _read_limited(request: Request) -> bytes | None:
    """The raw body (signatures cover its exact bytes), or None past the limit."""
    declared = request.headers.get("content-length", "")
    if is_digits(declared) and int(declared) > MAX_BODY_BYTES:
        return None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _queueable(updates: tuple[Update, ...]) -> tuple[list[Update], list[Rejected]]:
    """The updates the inbox can take, and the others rejected alone.

    A channel validates each field; what is checked here is what only the whole update
    shows (its inbox id, its sender's key), so that one bad update never fails the
    queueing of the rest.
    """
    good: list[Update] = []
    rejected: list[Rejected] = []
    for update in updates:
        try:
            check_member_id(update.channel)
        except InvalidInput as bad:
            rejected.append(Rejected("bad_sender", clean_text(str(bad))))
            continue
        try:
            check_message_id(update.id)
        except InvalidInput as bad:
            sender = update.channel.partition(":")[2]
            about = (update.about or "")[:256] or None
            rejected.append(Rejected("bad_id", clean_text(str(bad)), sender, about))
            continue
        good.append(update)
    return good, rejected


async def _record(store: AsyncStateStore, channel_type: str, rejected: list[Rejected]) -> None:
    """Log, count and audit each malformed update: in its sender's trail when the sender
    was valid, else in the channel's trail of rejected updates (:data:`REJECTED`)."""
    for bad in rejected:
        metrics.UPDATES_REJECTED.labels(bad.reason).inc()
        log.warning(
            "webhook update rejected (%s): %s", bad.reason, redact_text(clean_text(bad.detail))
        )
        channel = f"{channel_type}:{bad.sender}" if bad.sender else ""
        session_key = await store.resolve(channel) if channel else f"{channel_type}:{REJECTED}"
        detail = {"message_id": bad.message_id, "reason": bad.reason}
        event = AuditEvent("message.rejected", channel, clean_text(bad.detail)[:300], detail)
        await store.audit_append(session_key, event)


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": redact_text(message)}, status_code=status)
