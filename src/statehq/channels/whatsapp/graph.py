"""Sending to members through the WhatsApp Cloud API (Meta's Graph API ``/messages``).

:class:`GraphSender` posts the bodies :func:`~statehq.channels.whatsapp.render` builds
over one keep-alive connection pool and never raises for a failed send: it answers a
:class:`SendResult` the caller records. What is worth trying again is tried again, with
exponential backoff and full jitter (many workers hitting one rate limit must not come
back in step):

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
from dataclasses import dataclass, replace
from types import TracebackType
from typing import Any

import httpx

from ... import metrics

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
read timeout, a connection dropped before the answer) may follow a delivery: not."""


@dataclass(frozen=True)
class SendResult:
    """What came of one send, after every attempt it took.

    ``wamid`` is the message id Meta assigned (statuses in webhooks refer to it);
    ``status`` is the last HTTP status (None after a network error); ``code`` the Graph
    ``error.code`` and ``subcode`` its ``error.error_subcode`` (100 with 33: no such phone
    number id for this token); ``retryable`` says the last failure was of a kind worth
    retrying, that is: the sender gave up after ``attempts`` tries rather than at the
    first answer.
    """

    ok: bool
    wamid: str | None
    status: int | None
    code: int | None
    detail: str
    attempts: int
    retryable: bool
    subcode: int | None = None

    @property
    def failure_label(self) -> str:
        """The metrics label of a failure: the Graph code, else ``http_<status>``, else
        ``network``."""
        if self.code:
            return str(self.code)
        return f"http_{self.status}" if self.status else "network"


class GraphSender:
    """Posts ``/messages`` bodies for one WhatsApp business phone number.

    ``sleep`` is what waits between attempts (tests pass a no-op); ``transport`` lets a
    caller share its own :class:`httpx.BaseTransport`, which the sender then does not
    close. Safe to use from several threads: httpx's connection pool is.

    Requests go straight to the transport (httpx's connection pool) rather than through
    an :class:`httpx.Client`: a Graph call needs no cookies, redirects or auth flows, and
    skipping those layers takes about a third off the CPU each reply costs.
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
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if attempts < 1:
            raise ValueError(f"attempts must be at least 1, not {attempts}")
        if backoff < 0 or max_backoff < 0:
            raise ValueError("backoff and max_backoff must not be negative")
        self.base_url = base_url.rstrip("/")
        self.url = f"{self.base_url}/{phone_number_id}/messages"
        self._token = access_token
        self._headers = {
            "Authorization": f"Bearer {access_token}",
            "Content-Type": "application/json",
        }
        connect = min(timeout, CONNECT_TIMEOUT)
        self._timeout = {"connect": connect, "read": timeout, "write": timeout, "pool": connect}
        self._attempts = attempts
        self._backoff = backoff
        self._max_backoff = max_backoff
        self._sleep = sleep
        self._owns_transport = transport is None
        self._transport = transport if transport is not None else httpx.HTTPTransport()

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
        """Close the connection pool (unless the transport was passed in)."""
        if self._owns_transport:
            self._transport.close()

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
        for attempt in range(1, self._attempts + 1):
            result = replace(self._attempt(body), attempts=attempt)
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

    def _attempt(self, body: dict[str, Any]) -> SendResult:
        request = httpx.Request(
            "POST",
            self.url,
            content=json.dumps(body, ensure_ascii=False).encode(),
            headers=self._headers,
            extensions={"timeout": self._timeout},
        )
        try:
            response = self._transport.handle_request(request)
            try:
                response.read()
            finally:
                response.close()
        except NOT_SENT as exc:  # the request never reached Meta whole: safe to send again
            return SendResult(False, None, None, None, type(exc).__name__, 1, True)
        except httpx.TransportError as exc:
            # Sent, but no answer: Meta may have delivered it, and a second post would
            # reach the member twice. Given up at once (audited as message.failed).
            detail = f"{type(exc).__name__}: sent without an answer; not resent"
            return SendResult(False, None, None, None, detail, 1, False)
        try:
            payload = json.loads(response.content)
        except ValueError:
            payload = None
        status = response.status_code
        if response.is_success:
            return SendResult(True, _wamid(payload), status, None, "", 1, False)
        error = payload.get("error") if isinstance(payload, dict) else None
        error = error if isinstance(error, dict) else {}
        code, subcode = error_code(error.get("code")), error_code(error.get("error_subcode"))
        retryable = status >= 500 or status == 429 or code in RETRYABLE_CODES
        detail = self._detail(error, response.reason_phrase or f"HTTP {status}")
        return SendResult(False, None, status, code, detail, 1, retryable, subcode)

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
