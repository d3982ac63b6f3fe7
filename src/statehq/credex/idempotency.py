"""Idempotency keys: a repeated request gets the first answer, not a second effect.

The bot derives each key from the inbound WhatsApp message, so a message delivered twice,
or processed again after a worker died mid-call, repeats the key. Within the write
transaction that would perform the operation, the ledger first looks the key up:

* unknown key: perform, then store (operation, request fingerprint, response) in the
  same transaction; a refused operation rolls back and stores nothing, so a retry is
  judged afresh;
* same key, same operation and request: return the stored response, change nothing;
* same key, anything else: ``Refused(idempotency_key_reused)``: a key names one request.

Keys live in a scope (the member's id for calls with a token) so two members can never
collide on, or probe, each other's keys.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Mapping

from .backend import Refused

MAX_KEY_LENGTH = 200


def fingerprint(request: Mapping[str, object]) -> str:
    """A digest of a request's parameters (values are stringified: Decimal("1.0") == "1.0")."""
    canonical = json.dumps(request, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def check_key(key: object) -> str:
    """The key if usable: a non-empty string of at most 200 characters."""
    if not isinstance(key, str) or not key or len(key) > MAX_KEY_LENGTH:
        raise Refused(
            f"idempotency key must be 1 to {MAX_KEY_LENGTH} characters",
            code="invalid_idempotency_key",
        )
    return key


def recall(
    conn: sqlite3.Connection, scope: str, key: str, operation: str, digest: str
) -> str | None:
    """The stored response JSON of a replay, None for a new key; refuses a reused key."""
    row = conn.execute(
        "SELECT operation, fingerprint, response FROM idempotency WHERE scope = ? AND key = ?",
        (scope, key),
    ).fetchone()
    if row is None:
        return None
    if row["operation"] != operation or row["fingerprint"] != digest:
        raise Refused(
            f"idempotency key {key!r:.60} was already used for a different "
            f"{row['operation']} request; use a new key for a new request",
            code="idempotency_key_reused",
        )
    return str(row["response"])


def remember(
    conn: sqlite3.Connection,
    scope: str,
    key: str,
    operation: str,
    digest: str,
    response: str,
    at: str,
) -> None:
    """Store the response of a performed request, in the transaction that performed it."""
    conn.execute(
        "INSERT INTO idempotency (scope, key, operation, fingerprint, response, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (scope, key, operation, digest, response, at),
    )
