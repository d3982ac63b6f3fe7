"""Calling the Telegram Bot API: ``POST {TELEGRAM_API_URL}/bot<token>/<method>`` with JSON.

The Bot API answers ``{"ok": true, "result": ...}``, or ``{"ok": false, "error_code",
"description", "parameters"}``. :class:`BotApi` posts over kept-alive connections
(:mod:`statehq.channels.http11`, each method's request head built once) and never
raises for a failed call: it answers a :class:`CallResult` the caller records.

    retried     429 Too Many Requests, waiting ``parameters.retry_after`` as Telegram
                asks; any 5xx and network errors that prove the request never left,
                with backoff. A call waits ``max_wait`` seconds in all at most (a
                longer ``retry_after`` is not waited: the call fails), so a worker never
                holds a member's lease past its renewal
    permanent   every other answer: 400 (chat not found, message can't be edited, query
                too old), 401 (the bot token is wrong), 403 (the member blocked the bot),
                404 (no such method, or a malformed token)

The bot token is part of every URL path. It is never logged and never part of a result
or an error message: failures name the method, never the URL.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import httpx

from ... import metrics
from ..http11 import HttpClient, PreparedRequest

DEFAULT_API_URL = "https://api.telegram.org"
CONNECT_TIMEOUT = 3.0  # seconds; a connection Telegram does not accept by then will not come
NOT_SENT = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.WriteError,
    httpx.WriteTimeout,
    httpx.LocalProtocolError,
)
"""Transport errors that prove Telegram never got the whole request: retried. Any other
(a read timeout, a connection dropped before the answer) may follow a delivery: not."""
DETAIL_LIMIT = 300
MAX_WAIT = 10.0
"""The most seconds one call waits between its attempts, in all: a worker renews its lease
(30 s by default) before each reply, not during one."""


@dataclass(frozen=True)
class CallResult:
    """What came of one Bot API call, after every attempt it took.

    ``result`` is the answer's ``result`` on success; ``status`` the last HTTP status (None
    after a network error); ``error_code``, ``description`` and ``retry_after`` Telegram's
    error fields; ``retryable`` says the last failure was of a kind worth retrying (the
    caller gave up after ``attempts``, or because the wait asked for was too long).
    """

    ok: bool
    method: str
    result: Any = None
    status: int | None = None
    error_code: int | None = None
    description: str = ""
    retry_after: int | None = None
    attempts: int = 1
    retryable: bool = False

    @property
    def failure_label(self) -> str:
        """The metrics label of a failure: ``telegram_<error_code>``, else ``network``."""
        code = self.error_code or self.status
        return f"telegram_{code}" if code else "network"

    @property
    def detail(self) -> str:
        """What went wrong, in words (the method and Telegram's description; no secrets)."""
        return f"{self.method}: {self.description}" if self.description else self.method


class BotApi:
    """Calls one bot's Bot API methods; safe from several threads (the client's pool is).

    ``sleep`` is what waits between attempts (tests pass a no-op); ``client`` lets a caller
    share its own :class:`~statehq.channels.http11.HttpClient`, which is then not closed
    here. Raises ValueError for a URL that is not http(s).
    """

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        attempts: int = 5,
        backoff: float = 0.25,
        max_backoff: float = 4.0,
        max_wait: float = MAX_WAIT,
        timeout: float = 10.0,
        sleep: Callable[[float], None] = time.sleep,
        client: HttpClient | None = None,
    ) -> None:
        if attempts < 1:
            raise ValueError(f"attempts must be at least 1, not {attempts}")
        self.base_url = base_url.rstrip("/")
        self._token = token
        self._attempts = attempts
        self._backoff = backoff
        self._max_backoff = max_backoff
        self._max_wait = max_wait
        self._timeout = timeout
        self._sleep = sleep
        self._owns_client = client is None
        self._client = client if client is not None else HttpClient()
        self._requests: dict[str, PreparedRequest] = {}
        self._lock = threading.Lock()
        self._request("getMe")  # a URL this client cannot use fails here, not at a reply

    def __repr__(self) -> str:
        return f"BotApi({self.base_url!r}, attempts={self._attempts})"  # never the token

    def call(self, method: str, params: dict[str, Any] | None = None) -> CallResult:
        """Call ``method`` with ``params``, retrying what is retryable; never raises for a
        failure. Counts the call in ``statehq_messages_out_total`` by method when it
        succeeds, each retry and a final failure by :attr:`CallResult.failure_label`."""
        data = json.dumps(params or {}, ensure_ascii=False).encode()
        request = self._request(method)
        waited = 0.0
        for attempt in range(1, self._attempts + 1):
            result = self._attempt(request, method, data, attempt)
            if result.ok:
                metrics.MESSAGES_OUT.labels(method).inc()
                return result
            wait = self._wait(result, attempt)
            if wait is None or waited + wait > self._max_wait:
                metrics.SEND_FAILURES.labels(result.failure_label).inc()
                return result
            metrics.SEND_RETRIES.labels(result.failure_label).inc()
            self._sleep(wait)
            waited += wait
        raise AssertionError("unreachable: the last attempt always returns")

    def close(self) -> None:
        """Close the kept-alive connections (unless the client was passed in)."""
        if self._owns_client:
            self._client.close()

    def __enter__(self) -> BotApi:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _request(self, method: str) -> PreparedRequest:
        request = self._requests.get(method)
        if request is None:
            with self._lock:
                request = self._client.prepare(
                    "POST",
                    f"{self.base_url}/bot{self._token}/{method}",
                    {"Content-Type": "application/json"},
                    timeout=self._timeout,
                    connect_timeout=min(self._timeout, CONNECT_TIMEOUT),
                )
                self._requests[method] = request
        return request

    def _wait(self, result: CallResult, attempt: int) -> float | None:
        """Seconds to wait before the next attempt; None to give up now."""
        if not result.retryable or attempt == self._attempts:
            return None
        if result.retry_after is not None:
            return float(result.retry_after)
        cap = min(self._max_backoff, self._backoff * 2 ** (attempt - 1))
        return max(self._backoff / 4, random.uniform(0, cap))  # full jitter, with a floor

    def _attempt(
        self, request: PreparedRequest, method: str, data: bytes, attempt: int
    ) -> CallResult:
        try:
            response = self._client.send(request, data)
        except NOT_SENT as exc:  # the request never reached Telegram whole: safe to send again
            return CallResult(
                False, method, None, None, None, type(exc).__name__, None, attempt, True
            )
        except httpx.TransportError as exc:
            # Sent, but no answer: Telegram may have acted on it, and a second sendMessage
            # would reach the member twice. Given up at once (audited as message.failed).
            detail = f"{type(exc).__name__}: sent without an answer; not resent"
            return CallResult(False, method, None, None, None, detail, None, attempt, False)
        try:
            payload = json.loads(response.body)
        except ValueError:
            payload = None
        answer = payload if isinstance(payload, dict) else {}
        if response.is_success and answer.get("ok") is True:
            return CallResult(True, method, answer.get("result"), response.status, attempts=attempt)
        code = answer.get("error_code")
        code = code if type(code) is int else response.status
        parameters = answer.get("parameters")
        retry_after = parameters.get("retry_after") if isinstance(parameters, dict) else None
        retry_after = retry_after if type(retry_after) is int and retry_after >= 0 else None
        description = answer.get("description")
        if not isinstance(description, str):
            description = f"HTTP {response.status} {response.reason}".strip()
        retryable = code == 429 or response.status >= 500 or code >= 500
        text = description.replace(self._token, "<token>")[:DETAIL_LIMIT]
        return CallResult(
            False, method, None, response.status, code, text, retry_after, attempt, retryable
        )
