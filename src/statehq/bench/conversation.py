"""One member's conversation with the credex bot, as the state writes it makes.

Twelve updates, recorded from the real engine talking to the built-in ledger (a
greeting, the login, an offer sent, a second offer abandoned after a wrong handle) and
replayed here as merge patches with their audit events, so a benchmark can give many
sessions the same shape of document and history without running the flows. Every
value that differs between members in real use (phone, ids, names, token, offer key,
timestamps inside the flow) differs here too, derived from the member's number.
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from dataclasses import dataclass
from typing import Any

from ..store.audit import AuditEvent

FIRST_NAMES = ("Tendai", "Alice", "Rudo", "Farai", "Chipo", "Tatenda", "Nyasha", "Blessing")
LAST_NAMES = ("Moyo", "Dube", "Ncube", "Sibanda", "Mpofu", "Chikwanha", "Banda", "Mutasa")
CHANNEL = "whatsapp"


@dataclass(frozen=True)
class Turn:
    """One state write: the merge patch, the audit event, the inbound message id."""

    patch: dict[str, Any]
    event: AuditEvent
    message_id: str


def _digest(*parts: object) -> bytes:
    return hashlib.sha256("|".join(map(str, parts)).encode()).digest()


def _uuid(*parts: object) -> str:
    return str(uuid.UUID(bytes=_digest(*parts)[:16], version=4))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _jwt(member_id: str, phone: str, issued: int) -> str:
    """A token shaped like the ledger's (HS256, sub/phone/iat/exp): about 260 characters."""
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    claims = {"sub": member_id, "phone": phone, "iat": issued, "exp": issued + 300}
    body = _b64(json.dumps(claims, separators=(",", ":")).encode())
    return f"{header}.{body}.{_b64(_digest(header, body))}"


def _wamid(phone: str, n: int) -> str:
    """A WhatsApp message id: ``wamid.`` and about 56 base64 characters."""
    return "wamid." + base64.b64encode(phone.encode() + _digest(phone, n)[:30]).decode()


def _account(member: int, first: str, last: str) -> dict[str, Any]:
    return {
        "id": _uuid("account", member),
        "handle": f"{first}_{last}".lower(),
        "name": f"{first} {last}",
        "type": "PERSONAL",
        "default_denomination": "USD",
    }


def _names(member: int) -> tuple[str, str]:
    return FIRST_NAMES[member % 8], LAST_NAMES[(member // 8) % 8]


def _flow_start() -> dict[str, Any]:
    validation = {"in_progress": False, "attempts": 0, "last_attempt": None}
    return {"id": "offer", "step": "amount", "data": {}, "_validation": validation}


def session_key(member: int) -> str:
    """The session key member number ``member`` has after logging in (``member:<id>``)."""
    return f"member:{_uuid('member', member)}"


def conversation(member: int, issued: int = 1_767_225_600) -> list[Turn]:
    """The twelve writes of member number ``member``'s conversation, in order."""
    phone = f"2637{71_000_000 + member:08d}"
    member_id = session_key(member).removeprefix("member:")
    first, last = _names(member)
    account = _account(member, first, last)
    recipient = _account(member + 1, *_names(member + 1))
    profile = {"first_name": first, "last_name": last, "phone": phone, "accounts": [account]}
    error = "I could not find @nobody. Check the handle with them and send it again."
    attempt = {"at": "2026-01-01T00:01:12.380Z", "ok": False, "error": error}
    login = {
        "stage": "AUTH",
        "flow_data": None,
        "member_id": member_id,
        "jwt_token": _jwt(member_id, phone, issued),
        "authenticated": True,
        "profile": profile,
        "current_account": account,
    }
    steps: list[tuple[dict[str, Any], str, str, dict[str, Any]]] = [
        (
            {
                "stage": "INIT",
                "authenticated": False,
                "channel": {"type": CHANNEL, "identifier": phone},
            },
            "session.started",
            "",
            {},
        ),
        ({"stage": "AUTH"}, "stage.changed", "greeting", {"to": "AUTH"}),
        (login, "auth.login", "login", {"member_id": member_id}),
        ({"stage": "MENU"}, "stage.changed", "home", {"to": "MENU"}),
        ({"stage": "offer", "flow_data": _flow_start()}, "flow.started", "", {"flow": "offer"}),
        (
            {"flow_data": {"step": "recipient", "data": {"amount": "9", "denomination": "USD"}}},
            "flow.step",
            "",
            {"step": "recipient"},
        ),
        (
            {
                "flow_data": {
                    "step": "confirm",
                    "data": {"recipient": recipient, "offer_key": _digest(member).hex()[:40]},
                }
            },
            "flow.step",
            "",
            {"step": "confirm"},
        ),
        ({"flow_data": None, "stage": "MENU"}, "flow.ended", "completed", {"flow": "offer"}),
        ({"stage": "offer", "flow_data": _flow_start()}, "flow.started", "", {"flow": "offer"}),
        (
            {"flow_data": {"step": "recipient", "data": {"amount": "99", "denomination": "ZWG"}}},
            "flow.step",
            "",
            {"step": "recipient"},
        ),
        (
            {
                "flow_data": {
                    "_validation": {"in_progress": True, "attempts": 1, "last_attempt": attempt}
                }
            },
            "validation.failed",
            "",
            {"step": "recipient"},
        ),
        ({"flow_data": None, "stage": "MENU"}, "flow.cancelled", "the member went home", {}),
    ]
    channel = f"{CHANNEL}:{phone}"
    return [
        Turn(patch, AuditEvent(event, channel, reason, detail), _wamid(phone, n))
        for n, (patch, event, reason, detail) in enumerate(steps)
    ]
