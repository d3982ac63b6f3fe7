"""Reading an admin request: JSON bodies, reasons, and the refusals bad input gets.

Shared by every admin route module (:mod:`.admin`, :mod:`.admin_dead`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from starlette.requests import Request

from ..digits import is_digits
from ..text import has_surrogate

DEFAULT_REASON = "admin api"
"""The audit reason of a write whose request gives none."""
MAX_REASON_LENGTH = 200
MAX_BODY_BYTES = 16 * 1024

Args = dict[str, Any]


class Refused(Exception):
    """A request answered with an error status, having written nothing."""

    def __init__(self, status: int, message: str, extra: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra = dict(extra or {})


async def no_args(request: Request) -> Args:
    """The parser of a request that takes nothing."""
    return {}


def reason_of(body: Mapping[str, Any]) -> str:
    """The audit reason a body gives (:data:`DEFAULT_REASON` when none); refused if bad."""
    reason = body.get("reason")
    if reason is None:
        return DEFAULT_REASON
    if not isinstance(reason, str):
        raise Refused(422, f"reason must be a string, got {shown(reason)}")
    if not reason.strip():
        raise Refused(422, f"reason must not be blank (omit it to record {DEFAULT_REASON!r})")
    if has_surrogate(reason):
        raise Refused(422, "reason holds a lone surrogate (like \\ud800), which is not text")
    if len(reason) > MAX_REASON_LENGTH:
        raise Refused(422, f"reason is {len(reason)} characters, the limit is {MAX_REASON_LENGTH}")
    return reason


async def json_object(request: Request, fields: tuple[str, ...]) -> dict[str, Any]:
    """The request's JSON object body (``{}`` when empty) holding only ``fields``."""
    raw = await read_body(request)
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise Refused(400, f"the body is not valid JSON ({exc})") from None
    if not isinstance(body, dict):
        raise Refused(422, f"the body must be a JSON object, got {json_type(body)}")
    unknown = sorted(set(body) - set(fields))
    if unknown:
        raise Refused(422, f"unknown field {unknown[0][:80]!r}; the body takes {', '.join(fields)}")
    return body


async def read_body(request: Request) -> bytes:
    too_large = Refused(413, f"the body is larger than {MAX_BODY_BYTES} bytes")
    declared = request.headers.get("content-length", "")
    if is_digits(declared) and int(declared) > MAX_BODY_BYTES:
        raise too_large
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise too_large
    return bytes(body)


def shown(value: Any) -> str:
    """A value as the client sent it (JSON), shortened for an error message."""
    text = json.dumps(value, ensure_ascii=False)
    return f"{json_type(value)} {text[:60]}{'...' if len(text) > 60 else ''}"


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "an array" if isinstance(value, list) else "an object"
