"""``/webhooks/whatsapp``: Meta's verify handshake, and every update queued before the 200.

A POST is refused (nothing written) only when it is not Meta's: too big (413), unsigned
(401), signed with another secret (403) or not JSON at all (400). Otherwise every message
and status of every entry and change is queued in its sender's inbox
(:mod:`statehq.store.inbox`) and only then does Meta get its 200. A store that cannot
take them gets a 503 (the only 5xx), so Meta redelivers; updates already queued by a
failed request are recognised by their ids then.

Each update is validated on its own. A malformed one (a wrong type, an id the store
cannot key, a timestamp out of range) is rejected alone: logged, counted and audited,
while the rest of the batch is queued and the request answered 200, since the signature
proved it came from Meta and redelivering a poison update forever helps nobody.
Updates that are not ours (another object, field or phone number) are logged and
acknowledged.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from .. import metrics
from ..channels.whatsapp import (
    SIGNATURE_HEADER,
    Batch,
    Rejected,
    SignatureError,
    parse_webhook,
    verify_signature,
)
from ..config import Settings
from ..digits import is_digits
from ..errors import InvalidInput, StateError
from ..redact import get_logger, redact_text
from ..store import AsyncStateStore
from ..store.audit import AuditEvent
from ..store.inbox import Inbox, Update
from ..store.keys import MAX_MESSAGE_ID_LENGTH, check_member_id, check_message_id
from ..text import clean_text

log = get_logger(__name__)

PATH = "/webhooks/whatsapp"
MAX_BODY_BYTES = 3 * 1024 * 1024
TRAIL = "whatsapp:_rejected"
"""The audit trail of rejected updates that name no valid sender."""


def webhook_routes(store: AsyncStateStore, settings: Settings) -> list[Route]:
    """The GET (verify) and POST (updates) routes of the WhatsApp webhook."""
    inbox = Inbox(store.settings)

    async def verify(request: Request) -> Response:
        params = request.query_params
        expected = settings.whatsapp_verify_token
        given = params.get("hub.verify_token", "")
        if (
            expected
            and params.get("hub.mode") == "subscribe"
            and hmac.compare_digest(given.encode(), expected.encode())
        ):
            return PlainTextResponse(params.get("hub.challenge", ""))
        log.warning("webhook verification refused: the verify token does not match")
        return PlainTextResponse("verification failed: hub.verify_token does not match", 403)

    async def receive(request: Request) -> Response:
        secret = settings.whatsapp_app_secret
        if not secret:
            return _error(503, "WHATSAPP_APP_SECRET is not set, so no update can be verified")
        body = await _read_limited(request)
        if body is None:
            return _error(413, f"the body is larger than {MAX_BODY_BYTES} bytes")
        try:
            verify_signature(body, request.headers.get(SIGNATURE_HEADER), secret)
        except SignatureError as unsigned:
            log.warning("webhook POST refused: %s", unsigned)
            return _error(unsigned.status, str(unsigned))
        try:
            batch = parse_webhook(json.loads(body), settings.whatsapp_phone_number_id)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            return _error(400, f"the body is not valid JSON: {exc}")
        except (ValueError, RecursionError) as exc:
            # JSON, signed by Meta, that Python will not hold (nested thousands deep, an
            # integer of thousands of digits): nothing in it can be queued, and
            # redelivering it forever would help nobody. Recorded and acknowledged.
            unreadable = f"the body cannot be read: {type(exc).__name__}"
            batch = Batch(rejected=(Rejected("unreadable", unreadable),))
        updates, unqueueable = _updates(batch)
        rejected, skipped = [*batch.rejected, *unqueueable], list(batch.skipped)
        for reason in skipped:
            log.info("webhook update acknowledged, not processed: %s", redact_text(reason))
        try:
            # One bound for the whole request: a hung store answers 503 in this time even
            # when a call must open a fresh connection first (itself retried once).
            async with asyncio.timeout(settings.store_timeout):
                queued = await store.execute(inbox.push(updates)) if updates else []
                await _record(store, rejected)
        except (StateError, TimeoutError) as error:
            log.error("webhook could not queue %d updates: %s", len(updates), error or "timeout")
            return _error(503, "the store is unavailable; the updates were not queued")
        for update in queued:
            metrics.MESSAGES_IN.labels(update.kind).inc()
        duplicates = len(updates) - len(queued)
        if duplicates:
            metrics.DEDUP_HITS.labels("received").inc(duplicates)
        answer = {
            "queued": len(queued),
            "duplicates": duplicates,
            "ignored": len(skipped),
            "rejected": len(rejected),
        }
        return JSONResponse(answer)

    return [Route(PATH, verify, methods=["GET"]), Route(PATH, receive, methods=["POST"])]


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


def _updates(batch: Batch) -> tuple[list[Update], list[Rejected]]:
    """The batch's messages and statuses as inbox updates, and those the inbox cannot take.

    The parser validated each field; what is checked here is what only the whole update
    shows (a status's inbox id joins its message id and status name), so that one bad
    update is rejected alone and never fails the queueing of the rest.
    """
    updates: list[Update] = []
    rejected: list[Rejected] = []
    candidates = [
        (
            m.sender,
            Update(m.message_id, f"whatsapp:{m.sender}", m.kind, m.timestamp, m.text, m.choice),
        )
        for m in batch.messages
    ]
    candidates += [
        (
            s.recipient,
            Update(
                _status_id(s.message_id, s.status),
                f"whatsapp:{s.recipient}",
                "status",
                s.timestamp,
                status=s.status,
                error_code=s.error_code,
                error_title=s.error_title,
                about=s.message_id,
            ),
        )
        for s in batch.statuses
    ]
    for sender, update in candidates:
        try:
            check_message_id(update.id)
            check_member_id(update.channel)
        except InvalidInput as bad:
            about = (update.about or update.id)[:256]
            rejected.append(Rejected("bad_id", clean_text(str(bad)), sender, about))
            continue
        updates.append(update)
    return updates, rejected


def _status_id(message_id: str, status: str) -> str:
    """The inbox id of a status: one per message and status, and always a valid id."""
    joined = f"status:{message_id}:{status}"
    if len(joined) <= MAX_MESSAGE_ID_LENGTH:
        return joined
    digest = hashlib.sha256(message_id.encode()).hexdigest()[:40]
    return f"status:{digest}:{status}"


async def _record(store: AsyncStateStore, rejected: list[Rejected]) -> None:
    """Log, count and audit each malformed update: in its sender's trail when the sender
    was valid, else in the webhook's own trail, :data:`TRAIL` (``statehq audit
    whatsapp:_rejected``; no sender can be called that)."""
    for bad in rejected:
        metrics.UPDATES_REJECTED.labels(bad.reason).inc()
        log.warning(
            "webhook update rejected (%s): %s", bad.reason, redact_text(clean_text(bad.detail))
        )
        channel = f"whatsapp:{bad.sender}" if bad.sender else ""
        session_key = await store.resolve(channel) if channel else TRAIL
        detail = {"message_id": bad.message_id, "reason": bad.reason}
        event = AuditEvent("message.rejected", channel, clean_text(bad.detail)[:300], detail)
        await store.audit_append(session_key, event)


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": redact_text(message)}, status_code=status)
