"""Stages and tokens the state tests share, importable by module path.

(``from conftest import ...`` depends on which ``conftest`` module pytest imported first.)
"""

from __future__ import annotations

import base64
import json

from statehq.state import Stages

FLOWS = ("offer", "ledger")
PRE_AUTH_FLOWS = ("register",)


def make_stages() -> Stages:
    """INIT -> AUTH -> MENU -> offer|ledger, and register before login."""
    stages = Stages()
    for flow in FLOWS:
        stages.add_flow(flow)
    for flow in PRE_AUTH_FLOWS:
        stages.add_flow(flow, before_auth=True)
    return stages


def make_jwt(exp: float, subject: str = "m1", secret_tag: str = "sig") -> str:
    """A JWT-shaped token with an exp claim (statehq reads exp; it never verifies)."""

    def part(data: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    signature = base64.urlsafe_b64encode(f"{secret_tag}-{exp}".encode()).rstrip(b"=").decode()
    return (
        f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part({'sub': subject, 'exp': exp})}.{signature}"
    )
