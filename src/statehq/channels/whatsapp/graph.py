"""Sending to members through the WhatsApp Cloud API (Meta's Graph API ``/messages``).

:class:`GraphSender` posts the bodies :func:`~statehq.channels.whatsapp.render` builds
over kept-alive connections (:mod:`statehq.channels.http11`: the request head is built
once, so a reply costs a JSON encode, one write and one parsed answer) and never raises
for a failed send: it answers a :class:`SendResult` the caller records. What is worth
trying again is tried again, with exponential backoff and full jitter (many workers
hitting one rate limit must not come back in step):

    retried     130429 throughput rate limit, 131056 pair rate limit, HTTP 429,
                any HTTP 5xx, network errors and timeouts
    permanent   everything else: 131047 (more than 24 hours since the member last
                wrote), 131026 (undeliverable), 100 (invalid parameter), 190 (token
                expired or wrong), any other 4xx

The access token travels only in the ``Authorization`` header: it is never logged and
never part of a result or an error message.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import httpx

from ... import metrics
from ..base import Note
from ..http11 import HttpClient

DEFAULT_GRAPH_URL = "https://graph.facebook.com/v23.0"
RETRYABLE_CODES = frozenset({130429, 131056})
"""Graph error codes that mean "not now": the throughput and the pair rate limits."""
DETAIL_LIMIT = 300
CONNECT_TIMEOUT = 3.0  # seconds; a connection Meta does not accept by then will not come
NOT_SENT = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.WriteError,
    httpx.WriteTimeout,
    httpx.LocalProtocolError,
)
"""Transport errors that prove Meta never got the whole request: retried. Any other (a
read timeout, a connection dropped before the answer) may follow a delivery: not.
(:mod:`~statehq.channels.http11` raises httpx's errors, and itself sends a request again
only on a kept-alive connection the server had closed before it read any of it.)"""


@dataclass(frozen=True)
class SendResult:
    """What came of one send, after every attempt it took.

    ``wamid`` is the message id Meta assigned (statuses in webhooks refer to it);
    ``status`` is the last HTTP status (None after a network error); ``code`` the Graph
    ``error.code`` and ``subcode`` its ``error.error_subcode`` (100 with 33: no such phone
    number id for this token); ``retryable`` says the last failure was of a kind worth
    retrying, that is: the sender gave up after ``attempts`` tries rather than at the
    first answer. ``note`` is what the audit trail should say about the send besides its
    outcome (set by the delivery, e.g. a reply sent as its template after 131047).
    """

    ok: bool
    wamid: str | None
    status: int | None
    code: int | None
    detail: str
    attempts: int
    retryable: bool
    subcode: int | None = None
    note: Note | None = None

    @property
    def failure_label(self) -> str:
        """The metrics label of a failure: the Graph code, else ``http_<status>``, else
        ``network``."""
        if self.code:
            return str(self.code)
        return f"http_{self.status}" if self.status else "network"


class GraphSender:
    """Posts ``/messages`` bodies for one WhatsApp business phone number.

    ``sleep`` is what waits between attempts (tests pass a no-op); ``client`` lets a
    caller share its own :class:`~statehq.channels.http11.HttpClient` (for its CA file,
    say), which the sender then does not close. ``timeout`` bounds each wait to write the
    request or read the answer; connecting gets at most :data:`CONNECT_TIMEOUT` of it.
    Safe to use from several threads: the client's pool is. Raises ValueError for a URL
    that is not http(s), or a token with a line break (it could never be sent).

    The request head (``POST``, path, ``Host``, ``Authorization``, ``Content-Type``) is
    built once, here. httpx built it for every reply and ran it through httpcore's pool
    and h11's state machine: 5x the client CPU of a reply now (240 us, not 45, on the
    2-core VM).
    """

    def __init__(
        self,
        base_url: str,
        phone_number_id: str,
        access_token: str,
        *,
        attempts: int = 5,
        backoff: float = 0.25,
        max_backoff: float = 4.0,
        timeout: float = 10.0,
        sleep: Callable[[float], None] = time.sleep,
        client: HttpClient | None = None,
    ) -> None:
        if attempts < 1:
            raise ValueError(f"attempts must be at least 1, not {attempts}")
        if backoff < 0 or max_backoff < 0:
            raise ValueError("backoff and max_backoff must not be negative")
        self.base_url = base_url.rstrip("/")
        self.number = phone_number_id
        self.url = f"{self.base_url}/{phone_number_id}/messages"
        self._token = access_token
        self._attempts = attempts
        self._backoff = backoff
        self._max_backoff = max_backoff
        self._sleep = sleep
        self._owns_client = client is None
        self._client = client if client is not None else HttpClient()
        headers = {"Authorization": f"Bearer {access_token}", "Content-Type": "application/json"}
        self._request = self._client.prepare(
            "POST",
            self.url,
            headers,
            timeout=timeout,
            connect_timeout=min(timeout, CONNECT_TIMEOUT),
        )

    def __repr__(self) -> str:
        return f"GraphSender({self.url!r}, attempts={self._attempts})"

    def send(self, body: dict[str, Any]) -> SendResult:
        """Post one message body, retrying what is retryable; never raises for a failure.

        Counts the message in ``statehq_messages_out_total`` by its ``type`` when it is
        accepted, each retry in ``statehq_send_retries_total`` and a final failure in
        ``statehq_send_failures_total``, both by :attr:`SendResult.failure_label`.
        """
        return self._deliver(body, str(body.get("type", "unknown")))

    def mark_read(self, message_id: str) -> SendResult:
        """Mark an inbound message as read (the member sees blue ticks); type ``read``."""
        body = {"messaging_product": "whatsapp", "status": "read", "message_id": message_id}
        return self._deliver(body, "read")

    def close(self) -> None:
        """Close the kept-alive connections (unless the client was passed in)."""
        if self._owns_client:
            self._client.close()

    def __enter__(self) -> GraphSender:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _deliver(self, body: dict[str, Any], kind: str) -> SendResult:
        data = json.dumps(body, ensure_ascii=False).encode()
        for attempt in range(1, self._attempts + 1):
            result = self._attempt(data, attempt)
            if result.ok:
                metrics.MESSAGES_OUT.labels(kind).inc()
                return result
            if not result.retryable or attempt == self._attempts:
                metrics.SEND_FAILURES.labels(result.failure_label).inc()
                return result
            metrics.SEND_RETRIES.labels(result.failure_label).inc()
            self._sleep(self.delay(attempt - 1))
        raise AssertionError("unreachable: the last attempt always returns")

    def delay(self, retry: int) -> float:
        """Seconds to wait before retry number ``retry`` (from 0): full jitter under an
        exponential cap, with a floor so a retry never comes back at once."""
        cap = min(self._max_backoff, self._backoff * 2**retry)
        return max(self._backoff / 4, random.uniform(0, cap))

    def _attempt(self, data: bytes, attempt: int) -> SendResult:
        try:
            response = self._client.send(self._request, data)
        except NOT_SENT as exc:  # the request never reached Meta whole: safe to send again
            return SendResult(False, None, None, None, type(exc).__name__, attempt, True)
        except httpx.TransportError as exc:
            # Sent, but no answer: Meta may have delivered it, and a second post would
            # reach the member twice. Given up at once (audited as message.failed).
            detail = f"{type(exc).__name__}: sent without an answer; not resent"
            return SendResult(False, None, None, None, detail, attempt, False)
        try:
            payload = json.loads(response.body)
        except ValueError:
            payload = None
        status = response.status
        if response.is_success:
            return SendResult(True, _wamid(payload), status, None, "", attempt, False)
        error = payload.get("error") if isinstance(payload, dict) else None
        error = error if isinstance(error, dict) else {}
        code, subcode = error_code(error.get("code")), error_code(error.get("error_subcode"))
        retryable = status >= 500 or status == 429 or code in RETRYABLE_CODES
        detail = self._detail(error, response.reason or f"HTTP {status}")
        return SendResult(False, None, status, code, detail, attempt, retryable, subcode)

    def _detail(self, error: dict[str, Any], fallback: str) -> str:
        """The error's message and details, short, and scrubbed of the token."""
        data = error.get("error_data")
        details = data.get("details") if isinstance(data, dict) else None
        parts = [str(p) for p in (error.get("message"), details) if p]
        text = ": ".join(parts) or fallback
        text = str(text).replace(self._token, "<token>") if self._token else str(text)
        return text[:DETAIL_LIMIT]


def error_code(value: Any) -> int | None:
    """An error code or subcode as Meta sends it (an integer), or None for anything else."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _wamid(payload: Any) -> str | None:
    """``messages[0].id`` of a success answer, if it is there."""
    messages = payload.get("messages") if isinstance(payload, dict) else None
    first = messages[0] if isinstance(messages, list) and messages else None
    wamid = first.get("id") if isinstance(first, dict) else None
    return wamid if isinstance(wamid, str) else None
