"""``/webhooks/whatsapp``: Meta's verify handshake, and every update queued before the 200.

A POST is refused (nothing written) when it is too big (413), unsigned (401), signed
with another secret (403) or not JSON (400). Otherwise every message and status of every
entry and change is queued in its sender's inbox (:mod:`statehq.service.inbox`) and only
then does Meta get its 200. A store that cannot take them gets a 503, so Meta redelivers;
updates already queued by a failed request are recognised by their ids then.
Updates that are not ours (another object, field or phone number) are logged and
acknowledged.
"""

from __future__ import annotations

import hmac
import json

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from .. import metrics
from ..channels.whatsapp import (
    SIGNATURE_HEADER,
    Batch,
    SignatureError,
    parse_webhook,
    verify_signature,
)
from ..config import Settings
from ..errors import InvalidInput, StateError
from ..numbers import is_digits
from ..redact import get_logger, redact_text
from ..state import ChannelId
from ..store import AsyncStateStore
from ..store.keys import check_message_id
from .inbox import Inbox, Update

log = get_logger(__name__)

PATH = "/webhooks/whatsapp"
MAX_BODY_BYTES = 3 * 1024 * 1024


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
            payload = json.loads(body)
        except ValueError as exc:
            return _error(400, f"the body is not valid JSON: {exc}")
        batch = parse_webhook(payload, settings.whatsapp_phone_number_id)
        updates, refused = _updates(batch)
        skipped = [*batch.skipped, *refused]
        for reason in skipped:
            log.info("webhook update acknowledged, not processed: %s", redact_text(reason))
        try:
            queued = await store.execute(inbox.push(updates)) if updates else []
        except StateError as error:
            log.error("webhook could not queue %d updates: %s", len(updates), error)
            return _error(503, "the store is unavailable; the updates were not queued")
        for update in queued:
            metrics.MESSAGES_IN.labels(update.kind).inc()
        duplicates = len(updates) - len(queued)
        if duplicates:
            metrics.DEDUP_HITS.labels("received").inc(duplicates)
        answer = {"queued": len(queued), "duplicates": duplicates, "ignored": len(skipped)}
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


def _updates(batch: Batch) -> tuple[list[Update], list[str]]:
    """The batch's messages and statuses as inbox updates, and what could not be queued."""
    updates: list[Update] = []
    refused: list[str] = []
    for m in batch.messages:
        try:
            channel = ChannelId("whatsapp", m.sender).key
            check_message_id(m.message_id)
        except InvalidInput as bad:
            refused.append(f"message {m.message_id[:80]!r}: {bad}")
            continue
        updates.append(Update(m.message_id, channel, m.kind, m.timestamp, m.text, m.choice))
    for s in batch.statuses:
        update_id = f"status:{s.message_id}:{s.status}"
        try:
            channel = ChannelId("whatsapp", s.recipient).key
            check_message_id(update_id)
        except InvalidInput as bad:
            refused.append(f"status of {s.message_id[:80]!r}: {bad}")
            continue
        updates.append(
            Update(
                update_id,
                channel,
                "status",
                s.timestamp,
                status=s.status,
                error_code=s.error_code,
                error_title=s.error_title,
                about=s.message_id,
            )
        )
    return updates, refused


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": redact_text(message)}, status_code=status)
