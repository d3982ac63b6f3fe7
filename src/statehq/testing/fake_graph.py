"""A stand-in for Meta's Graph API servers: the WhatsApp Cloud API ``/messages`` endpoint.

It is the only fake statehq's tests use (everything else runs against real servers): Meta
cannot be called from a test, so this speaks its protocol over real HTTP instead. Point
``WHATSAPP_GRAPH_URL`` (or :class:`~statehq.channels.whatsapp.GraphSender`) at
:attr:`FakeGraph.url` and posts come to ``{url}/{phone_number_id}/messages``:

    with FakeGraph(access_token="t") as graph:
        graph.fail_next(1, code=130429)          # the next send hits the rate limit
        ...                                      # run the service or a sender
        graph.wait_for(2)                        # the failed attempt and the retry
        assert graph.messages_to("263771234567")[0]["text"]["body"] == "Hello"

Answers have Meta's shapes: a ``wamid`` for a message, ``{"success": true}`` for a read
receipt, and Meta's error payload (``error.code``, ``error_data.details``, ``fbtrace_id``)
for a wrong token (190, HTTP 401), a malformed body (100), a phone number id it does not
know (100 with ``error_subcode`` 33, HTTP 400, when given ``phone_number_ids``) or a
failure queued with :meth:`FakeGraph.fail_next`. ``GET {url}/{phone_number_id}`` answers
the number's ``display_phone_number``, ``verified_name``, ``quality_rating`` and ``id``,
as Meta does (``statehq doctor`` asks it). It is a raw ASGI app served by uvicorn on its own thread,
fast enough (thousands of requests a second) to stand in for Meta in the benchmark.

``GET /_fake/received`` lists the bodies received, for a fake run in another process:
``python -m statehq.testing.fake_graph --port 8999 [--token T]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import signal
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import uvicorn

from .asgi import BackgroundServer, Receive, Scope, Send, listen, read_body, respond

ERRORS: dict[int, tuple[int, str, str]] = {
    1: (500, "An unknown error occurred", "Invalid request or possible server error."),
    2: (
        503,
        "Service temporarily unavailable",
        "Temporary due to downtime or due to being overloaded.",
    ),
    100: (400, "(#100) Invalid parameter", "The request included invalid parameters."),
    190: (401, "Invalid OAuth access token - Cannot parse access token", ""),
    130429: (400, "(#130429) Rate limit hit", "Cloud API message throughput has been reached."),
    131026: (
        400,
        "(#131026) Message undeliverable",
        "Unable to deliver message. The recipient may not be a WhatsApp user.",
    ),
    131047: (
        400,
        "(#131047) Re-engagement message",
        "Message failed to send because more than 24 hours have passed since the customer "
        "last replied to this number.",
    ),
    131056: (
        400,
        "(#131056) (Business Account, Consumer Account) pair rate limit hit",
        "Message failed to send because there were too many messages sent from this phone "
        "number to the same phone number in a short period of time.",
    ),
}
"""Graph error codes the fake knows: ``code -> (HTTP status, message, details)``."""
TRANSIENT = frozenset({1, 2})


def error_payload(
    code: int, *, details: str | None = None, subcode: int | None = None
) -> dict[str, Any]:
    """Meta's error body for ``code`` (see :data:`ERRORS`; other codes get a generic one)."""
    _, message, known = ERRORS.get(code, (400, f"(#{code}) Graph API error {code}", ""))
    error: dict[str, Any] = {"message": message, "type": "OAuthException", "code": code}
    if details or known:
        error["error_data"] = {"messaging_product": "whatsapp", "details": details or known}
    if subcode is not None:
        error["error_subcode"] = subcode
    if code in TRANSIENT:
        error["is_transient"] = True
    error["fbtrace_id"] = f"A{secrets.token_urlsafe(16)}"
    return {"error": error}


def unknown_object_payload(method: str, object_id: str) -> dict[str, Any]:
    """Meta's answer (HTTP 400) for an id it has no such object for, or none this token may
    use: code 100, ``error_subcode`` 33."""
    error = {
        "message": (
            f"Unsupported {method} request. Object with ID '{object_id}' does not exist, "
            "cannot be loaded due to missing permissions, or does not support this "
            "operation. Please read the Graph API documentation at "
            "https://developers.facebook.com/docs/graph-api"
        ),
        "type": "GraphMethodException",
        "code": 100,
        "error_subcode": 33,
        "fbtrace_id": f"A{secrets.token_urlsafe(16)}",
    }
    return {"error": error}


@dataclass(frozen=True)
class Received:
    """One POST to ``/{phone_number_id}/messages`` and the answer the fake gave it."""

    phone_number_id: str
    body: dict[str, Any]
    authorization: str | None
    at: float
    status: int
    answer: dict[str, Any]
    peer: str = ""  # the client's "host:port": one per connection, so reuse can be counted

    @property
    def is_read(self) -> bool:
        """Whether this was a read receipt rather than a message."""
        return self.body.get("status") == "read"

    @property
    def ok(self) -> bool:
        """Whether the fake accepted it (HTTP 200)."""
        return self.status == 200


@dataclass
class _Failure:
    code: int
    status: int
    to: str | None
    subcode: int | None = field(default=None)


class FakeGraph(BackgroundServer):
    """Meta's ``/messages`` endpoint on a local port; see the module docstring.

    The port is bound when the object is made (``port=0`` picks a free one), so
    :attr:`url` is known before :meth:`start`. With ``access_token`` set, any other
    bearer token is answered 401 (code 190). With ``phone_number_ids`` set, any other
    phone number id is answered 400 (code 100, subcode 33); without, every id is one.
    :meth:`add_number` serves another number with a token of its own (several numbers
    in one deployment); template messages are checked and recorded like any other.
    :attr:`display_phone_number` and :attr:`verified_name` are what a lookup of a number
    answers. ``delay`` (seconds) slows every answer. ``chunked`` sends answers with
    ``Transfer-Encoding: chunked`` instead of a ``Content-Length``; ``close_connections``
    ends each connection after its answer (``Connection: close``). With ``ssl_certfile``
    and ``ssl_keyfile`` it speaks https (see
    :func:`~statehq.testing.topologies.tls.make_certificates`). Started once, stopped
    once; the accessors are safe from any thread.
    """

    title = "the fake Graph server"

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        access_token: str | None = None,
        phone_number_ids: Iterable[str] | None = None,
        *,
        ssl_certfile: str | None = None,
        ssl_keyfile: str | None = None,
    ) -> None:
        self.access_token = access_token
        self.phone_number_ids = frozenset(phone_number_ids) if phone_number_ids else None
        # phone number id -> the only token it accepts (several numbers, each its own)
        self.tokens: dict[str, str] = {}
        self.display_phone_number = "+1 555-010-0199"
        self.verified_name = "statehq test number"
        self.delay = 0.0
        self.chunked = False
        self.close_connections = False
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._sock = listen(host, port, family)
        bound = self._sock.getsockname()[1]
        self._certificate = (ssl_certfile, ssl_keyfile)
        scheme = "https" if ssl_certfile else "http"
        shown = f"[{host}]" if family == socket.AF_INET6 else host
        self.url = f"{scheme}://{shown}:{bound}"
        self._changed = threading.Condition()
        self._received: list[Received] = []
        self._failures: deque[_Failure] = deque()

    # -- lifecycle ------------------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> FakeGraph:
        """Serve on a background thread (its own event loop); returns once listening."""
        config = uvicorn.Config(
            self,
            interface="asgi3",
            lifespan="off",
            log_level="warning",
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=1,
            ssl_certfile=self._certificate[0],
            ssl_keyfile=self._certificate[1],
        )
        return self._serve(config, timeout)

    # -- programming and inspecting -------------------------------------------------------

    def fail_next(
        self,
        times: int,
        *,
        code: int,
        status: int | None = None,
        to: str | None = None,
        subcode: int | None = None,
    ) -> None:
        """Answer the next ``times`` posts (only those to ``to``, if given) with error
        ``code``; ``status`` defaults to Meta's for that code (400 for most, 401 for 190,
        500 for 1, 503 for 2)."""
        if times < 0:
            raise ValueError(f"times must not be negative, not {times}")
        status = status if status is not None else ERRORS.get(code, (400, "", ""))[0]
        with self._changed:
            self._failures.extend(_Failure(code, status, to, subcode) for _ in range(times))

    def received(self) -> list[Received]:
        """Every post so far, failed attempts included, in arrival order (a copy)."""
        with self._changed:
            return list(self._received)

    def messages_to(self, wa_id: str) -> list[dict[str, Any]]:
        """Bodies of the messages (not read receipts) accepted for ``wa_id``, in order.

        Rejected attempts are left out: this is what the member would see.
        """
        with self._changed:
            return [
                r.body
                for r in self._received
                if r.ok and not r.is_read and r.body.get("to") == wa_id
            ]

    def add_number(self, phone_number_id: str, access_token: str) -> None:
        """Serve another business number, which accepts only ``access_token``."""
        with self._changed:
            self.tokens[phone_number_id] = access_token

    def sent_from(self, phone_number_id: str) -> list[Received]:
        """The messages (not read receipts) accepted from ``phone_number_id``, in order."""
        with self._changed:
            return [
                r
                for r in self._received
                if r.ok and not r.is_read and r.phone_number_id == phone_number_id
            ]

    def templates_to(self, wa_id: str) -> list[dict[str, Any]]:
        """The ``template`` objects of the template messages accepted for ``wa_id``."""
        return [b["template"] for b in self.messages_to(wa_id) if b.get("type") == "template"]

    def wait_for(
        self,
        count: int,
        timeout: float = 10.0,
        predicate: Callable[[Received], bool] | None = None,
    ) -> list[Received]:
        """Block until at least ``count`` posts (matching ``predicate``) have arrived; returns
        them. Raises AssertionError, listing what did arrive, after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        matching: list[Received] = []
        seen = 0
        with self._changed:
            while True:
                if len(self._received) < seen:  # reset() meanwhile: start over
                    matching, seen = [], 0
                fresh = self._received[seen:]
                seen = len(self._received)
                matching.extend(r for r in fresh if predicate is None or predicate(r))
                if len(matching) >= count:
                    return matching
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(self._missing(count, len(matching), timeout))
                self._changed.wait(left)

    def summary(self) -> dict[str, Any]:
        """Counts for a benchmark: accepted messages, replies answering each message id
        (``biz_opaque_callback_data``), and when the last one arrived (monotonic clock)."""
        with self._changed:
            accepted = [r for r in self._received if r.ok and not r.is_read]
            last = accepted[-1].at if accepted else None
            callbacks = [r.body.get("biz_opaque_callback_data") for r in accepted]
        distinct = {c for c in callbacks if isinstance(c, str)}
        return {
            "accepted": len(accepted),
            "distinct_replies": len(distinct),
            "answered_messages": len({c.split("#")[0] for c in distinct}),
            "last_at": last,
        }

    def reset(self) -> None:
        """Forget every post received and every failure still queued."""
        with self._changed:
            self._received.clear()
            self._failures.clear()

    def _missing(self, count: int, matched: int, timeout: float) -> str:
        last = [
            f"{r.status} {r.body.get('type') or r.body.get('status')} to {r.body.get('to')}"
            for r in self._received[-5:]
        ]
        return (
            f"FakeGraph at {self.url}: expected {count} matching posts within {timeout}s, "
            f"got {matched} (of {len(self._received)} received); last: {last or 'none'}"
        )

    # -- the ASGI app ---------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one request (uvicorn calls this)."""
        if scope["type"] != "http":
            return
        parts = [p for p in scope["path"].split("/") if p]
        if scope["method"] == "GET" and parts == ["_fake", "received"]:
            await respond(send, 200, [r.body for r in self.received()])
        elif scope["method"] == "GET" and parts == ["_fake", "summary"]:
            await respond(send, 200, self.summary())
        elif scope["method"] == "POST" and len(parts) in (2, 3) and parts[-1] == "messages":
            await self._messages(parts[-2], scope, receive, send)  # optional /vXX.X prefix
        elif scope["method"] == "GET" and len(parts) in (1, 2):
            await respond(send, *self._phone_number(parts[-1], scope))
        else:
            missing = error_payload(100, details=f"Unknown path components: {scope['path']}")
            await respond(send, 400, missing)

    async def _messages(self, phone: str, scope: Scope, receive: Receive, send: Send) -> None:
        raw = await read_body(receive)
        authorization = _header(scope, b"authorization")
        if self.delay:
            await asyncio.sleep(self.delay)
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        if not isinstance(body, dict):
            body = {}
            status, answer = 400, error_payload(100, details="The body is not a JSON object.")
        else:
            status, answer = self._answer(body, authorization, phone)
        client = scope.get("client")
        peer = f"{client[0]}:{client[1]}" if client else ""
        record = Received(phone, body, authorization, time.monotonic(), status, answer, peer)
        with self._changed:
            self._received.append(record)
            self._changed.notify_all()
        await respond(send, status, answer, self.chunked, self.close_connections)

    def _phone_number(self, phone: str, scope: Scope) -> tuple[int, dict[str, Any]]:
        """A lookup of a phone number id: its details, as Meta answers them."""
        if not self._authorized(_header(scope, b"authorization"), phone):
            return 401, error_payload(190)
        if not self._known(phone):
            return 400, unknown_object_payload("get", phone)
        return 200, {
            "verified_name": self.verified_name,
            "code_verification_status": "VERIFIED",
            "display_phone_number": self.display_phone_number,
            "quality_rating": "GREEN",
            "platform_type": "CLOUD_API",
            "id": phone,
        }

    def _authorized(self, authorization: str | None, phone: str | None = None) -> bool:
        token = self.tokens.get(phone, self.access_token) if phone else self.access_token
        return token is None or authorization == f"Bearer {token}"

    def _known(self, phone: str) -> bool:
        known = self.phone_number_ids is None or phone in self.phone_number_ids
        return known or phone in self.tokens

    def _answer(
        self, body: dict[str, Any], authorization: str | None, phone: str
    ) -> tuple[int, dict[str, Any]]:
        if not self._authorized(authorization, phone):
            return 401, error_payload(190)
        if not self._known(phone):
            return 400, unknown_object_payload("post", phone)
        invalid = _invalid(body)
        if invalid:
            return 400, error_payload(100, details=invalid)
        failure = self._take_failure(body.get("to"))
        if failure is not None:
            return failure.status, error_payload(failure.code, subcode=failure.subcode)
        if body.get("status") == "read":
            return 200, {"success": True}
        to = body["to"]
        return 200, {
            "messaging_product": "whatsapp",
            "contacts": [{"input": to, "wa_id": to}],
            "messages": [{"id": f"wamid.FAKE{uuid.uuid4().hex.upper()}"}],
        }

    def _take_failure(self, to: Any) -> _Failure | None:
        with self._changed:
            for failure in self._failures:
                if failure.to is None or failure.to == to:
                    self._failures.remove(failure)
                    return failure
        return None


def _invalid(body: dict[str, Any]) -> str | None:
    """Why Graph would refuse this body as malformed (code 100), or None."""
    if body.get("messaging_product") != "whatsapp":
        return "The parameter messaging_product is required and must be 'whatsapp'."
    if body.get("status") == "read":
        return None if isinstance(body.get("message_id"), str) else "message_id is required."
    if not isinstance(body.get("to"), str) or not body["to"]:
        return "The parameter to is required."
    kind = body.get("type", "text")
    if not isinstance(kind, str) or not isinstance(body.get(kind), dict):
        return f"The parameter {kind} is required."
    if kind == "interactive" and body["interactive"].get("type") == "flow":
        return _invalid_flow(body["interactive"])
    if kind == "template":
        return _invalid_template(body["template"])
    return None


def _invalid_template(template: dict[str, Any]) -> str | None:
    """Why Graph would refuse a template message as malformed, or None."""
    if not isinstance(template.get("name"), str) or not template["name"]:
        return "The parameter template.name is required."
    language = template.get("language")
    if not isinstance(language, dict) or not isinstance(language.get("code"), str):
        return "The parameter template.language.code is required."
    for component in template.get("components") or ():
        for parameter in component.get("parameters") or ():
            text = parameter.get("text") if isinstance(parameter, dict) else None
            if isinstance(text, str) and (any(c in text for c in "\n\t") or " " * 5 in text):
                return (
                    "Param text cannot have new-line/tab characters or more than 4 "
                    "consecutive spaces"
                )
    return None


def _invalid_flow(interactive: dict[str, Any]) -> str | None:
    """Why Graph would refuse an interactive Flow message (navigate), or None."""
    action = interactive.get("action")
    if not isinstance(action, dict) or action.get("name") != "flow":
        return "interactive.action.name must be 'flow'."
    params = action.get("parameters")
    if not isinstance(params, dict):
        return "interactive.action.parameters is required."
    if params.get("flow_message_version") != "3":
        return "flow_message_version must be '3'."
    for name in ("flow_token", "flow_id", "flow_cta"):
        if not isinstance(params.get(name), str) or not params[name]:
            return f"The parameter {name} is required."
    if len(params["flow_cta"]) > 20:
        return "flow_cta is limited to 20 characters."
    payload = params.get("flow_action_payload")
    if params.get("flow_action", "navigate") == "navigate":
        if not isinstance(payload, dict) or not isinstance(payload.get("screen"), str):
            return "flow_action_payload.screen is required when flow_action is navigate."
        if "data" in payload and (not isinstance(payload["data"], dict) or not payload["data"]):
            return "flow_action_payload.data must be a non-empty object."
    return None


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value).decode("latin-1")
    return None


def main(argv: Sequence[str] | None = None) -> None:
    """Run a fake Graph API in the foreground until SIGINT or SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m statehq.testing.fake_graph")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--token", default=None, help="the only access token accepted")
    parser.add_argument(
        "--phone-number-id",
        action="append",
        default=None,
        help="a phone number id it knows (repeatable; default: every id is one)",
    )
    parser.add_argument("--delay", type=float, default=0.0, help="seconds per answer")
    args = parser.parse_args(argv)
    stop_signals = {signal.SIGINT, signal.SIGTERM}
    # Blocked before the server thread starts, so it inherits the mask and the signals
    # wait for sigwait() here instead of interrupting the event loop.
    signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)
    graph = FakeGraph(args.host, args.port, args.token, args.phone_number_id)
    graph.delay = args.delay
    with graph:
        print(f"listening on {graph.url}", flush=True)
        signal.sigwait(stop_signals)


if __name__ == "__main__":
    main()
