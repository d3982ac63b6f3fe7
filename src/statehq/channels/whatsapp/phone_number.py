"""Asking the Graph API about the business number: is the id one this token can use?

``GET {WHATSAPP_GRAPH_URL}/{WHATSAPP_PHONE_NUMBER_ID}`` with the access token answers
the number's details when both are right, error 190 for a bad token and error 100
(subcode 33) for an id the token cannot use. ``statehq doctor`` runs it; nothing is
sent to anyone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from ...redact import redact_text
from .graph import error_code
from .graph_errors import explain

FIELDS = "display_phone_number,verified_name,quality_rating"
LOOKUP_TIMEOUT = 5.0  # seconds; Meta answers in well under one


@dataclass(frozen=True)
class PhoneNumber:
    """A WhatsApp business number as the Graph API describes it."""

    id: str
    display_phone_number: str
    verified_name: str
    quality_rating: str


@dataclass(frozen=True)
class Lookup:
    """What came of a lookup: the ``number``, or the ``problem`` and, if known, the ``fix``."""

    number: PhoneNumber | None
    problem: str = ""
    fix: str | None = None


def look_up_phone_number(
    graph_url: str,
    phone_number_id: str,
    access_token: str,
    *,
    timeout: float = LOOKUP_TIMEOUT,
) -> Lookup:
    """Ask the Graph API for ``phone_number_id`` with ``access_token``; never raises for a
    failure (a network error, an error answer, an answer that is not the Graph API's)."""
    base = graph_url.rstrip("/")
    headers = {"Authorization": f"Bearer {access_token}"}
    try:
        response = httpx.get(
            f"{base}/{phone_number_id}", params={"fields": FIELDS}, headers=headers, timeout=timeout
        )
    except httpx.HTTPError as unanswered:
        reason = f"{type(unanswered).__name__}: {unanswered}".replace(access_token, "<token>")
        return _failed(base, None, None, None, reason)
    payload = _json(response)
    if response.is_success and isinstance(payload, dict) and "display_phone_number" in payload:
        return Lookup(_number(payload, phone_number_id))
    error = payload.get("error") if isinstance(payload, dict) else None
    if not isinstance(error, dict):
        what = "an answer that is not the Graph API's" if response.is_success else "no JSON error"
        return _failed(base, response.status_code, None, None, what)
    code, subcode = error_code(error.get("code")), error_code(error.get("error_subcode"))
    message = str(error.get("message") or response.reason_phrase)[:300]
    return _failed(base, response.status_code, code, subcode, message)


def _failed(
    base: str, status: int | None, code: int | None, subcode: int | None, detail: str
) -> Lookup:
    problem, fix = explain(base, status, code, subcode, redact_text(detail))
    return Lookup(None, problem, fix)


def _number(payload: dict[str, Any], phone_number_id: str) -> PhoneNumber:
    return PhoneNumber(
        id=str(payload.get("id", phone_number_id)),
        display_phone_number=str(payload["display_phone_number"]),
        verified_name=str(payload.get("verified_name", "")),
        quality_rating=str(payload.get("quality_rating", "")),
    )


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None
