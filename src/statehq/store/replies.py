"""Replies a channel reads instead of receiving: the web chat's way out, per sender.

A worker delivering to such a channel appends each rendered reply to the sender's
stream; the page reads it (a blocking read, resumed from the last id it saw). The
stream keeps the last :data:`KEEP` replies for :data:`TTL_MS` after the newest.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ..config import Settings, StoreSettings, store_settings_of
from .keys import KeySpace
from .requests import Command, Operation

KEEP = 200
TTL_MS = 86_400_000


@dataclass(frozen=True)
class Reply:
    """One delivered reply: its stream id (resume point) and the rendered body."""

    id: str
    body: dict[str, Any]


class Replies:
    """The reply streams under one key prefix."""

    def __init__(self, settings: Settings | StoreSettings) -> None:
        self.keys = KeySpace(store_settings_of(settings).key_prefix)

    def append(self, sender: str, body: dict[str, Any]) -> Operation:
        """Add a reply to ``sender``'s stream; returns its id."""
        key = self.keys.member(sender).replies
        encoded = json.dumps(body, ensure_ascii=False)
        entry_id = yield Command(("XADD", key, "MAXLEN", "~", str(KEEP), "*", "body", encoded))
        yield Command(("PEXPIRE", key, str(TTL_MS)))
        return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)

    def after(self, sender: str, last_id: str = "0", wait_ms: int = 0) -> Operation:
        """Replies after ``last_id`` (oldest first); waits up to ``wait_ms`` for one."""
        key = self.keys.member(sender).replies
        wait = ("BLOCK", str(wait_ms)) if wait_ms > 0 else ()
        reply = yield Command(("XREAD", "COUNT", "100", *wait, "STREAMS", key, last_id))
        return [Reply(_text(i), json.loads(fields[b"body"])) for i, fields in _entries(reply)]


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _entries(reply: Any) -> list[tuple[bytes | str, dict[bytes, bytes]]]:
    """The entries of an XREAD reply on one stream (redis-py's list, or a RESP3 map)."""
    if not reply:
        return []
    entries = next(iter(reply.values())) if isinstance(reply, dict) else reply[0][1]
    return [(entry_id, _fields(fields)) for entry_id, fields in entries]


def _fields(raw: Any) -> dict[bytes, bytes]:
    if isinstance(raw, dict):
        return raw
    return dict(zip(raw[0::2], raw[1::2], strict=True))
