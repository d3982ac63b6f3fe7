"""Dead letters as the store keeps them: updates a worker set aside, with why.

An update whose handling raised ``STATEHQ_MAX_ATTEMPTS`` times (or that could not be
read back from the inbox) leaves its sender's inbox for the sender's dead letters
(:meth:`statehq.store.inbox.Inbox.bury`), kept with the error, the number of attempts
and when. :class:`DeadLetters` lists them (SCAN, never KEYS), requeues one in timestamp
order with its attempts reset, or forgets one; the operator's actions built on these
are in :mod:`statehq.service.dead`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ..errors import InvalidInput
from .inbox import Inbox, Update
from .keys import KeySpace, check_member_id
from .requests import Command, Operation, Scan, Script


@dataclass(frozen=True)
class DeadLetter:
    """One update set aside: whose, which, why, and the update itself."""

    sender: str
    id: str
    error: str
    attempts: int
    at: str
    update: dict[str, Any] = field(default_factory=dict)
    raw: str = ""

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (for ``--json`` and the admin API)."""
        return {
            "sender": self.sender,
            "id": self.id,
            "error": self.error,
            "attempts": self.attempts,
            "at": self.at,
            "update": self.update or None,
            "raw": None if self.update else self.raw,
        }

    def timestamp(self) -> int:
        """The update's own timestamp (0 when it could not be read), for requeueing."""
        stamp = self.update.get("timestamp")
        return stamp if type(stamp) is int and stamp >= 0 else 0


def _letter(sender: str, message_id: str, body: bytes | None, why: bytes | None) -> DeadLetter:
    raw = body.decode(errors="replace") if body else ""
    try:
        update = Update.decode(raw).__dict__ if raw else {}
    except InvalidInput:
        update = {}
    try:
        reason = json.loads(why) if why else {}
        reason = reason if isinstance(reason, dict) else {}
    except ValueError:
        reason = {}
    attempts = reason.get("attempts")
    return DeadLetter(
        sender=sender,
        id=message_id,
        error=str(reason.get("error", "")),
        attempts=attempts if type(attempts) is int else 0,
        at=str(reason.get("at", "")),
        update=update,
        raw=raw,
    )


def _pairs(reply: Any) -> dict[bytes, bytes]:
    """An HGETALL reply as a dict (drivers give a dict, or a flat list over RESP2)."""
    if isinstance(reply, dict):
        return reply
    return dict(zip(reply[0::2], reply[1::2], strict=True))


class DeadLetters:
    """Builds the dead-letter operations for one key prefix."""

    def __init__(self, inbox: Inbox) -> None:
        self.inbox = inbox
        self.keys: KeySpace = inbox.keys

    def senders(self) -> Operation:
        """Every sender that has dead letters (SCAN, never KEYS)."""
        found: list[str] = []
        cursor = "0"
        while True:
            cursor, keys = yield Scan(cursor, self.keys.dead_pattern(), 500, "hash")
            for raw_key in keys:
                key = raw_key.decode(errors="replace")
                try:
                    sender = self.keys.member_of(key)
                    if key == self.keys.member(sender).dead:
                        found.append(sender)
                except (ValueError, InvalidInput):
                    continue  # not a key statehq wrote
            if cursor == "0":
                return sorted(set(found))

    def of(self, sender: str) -> Operation:
        """The dead letters of one sender, oldest first."""
        k = self.keys.member(check_member_id(sender))
        bodies = yield Command(("HGETALL", k.dead))
        whys = yield Command(("HGETALL", k.dead_why))
        found, reasons = _pairs(bodies), _pairs(whys)
        letters = [
            _letter(sender, raw_id.decode(errors="replace"), body, reasons.get(raw_id))
            for raw_id, body in found.items()
        ]
        return sorted(letters, key=lambda letter: (letter.at, letter.id))

    def find(self, sender: str, message_id: str) -> Operation:
        """The sender's dead letter with ``message_id``, or None."""
        k = self.keys.member(check_member_id(sender))
        body = yield Command(("HGET", k.dead, message_id))
        if body is None:
            return None
        why = yield Command(("HGET", k.dead_why, message_id))
        return _letter(sender, message_id, body, why)

    def replay(self, letter: DeadLetter) -> Operation:
        """Requeue a dead letter and mark its sender ready; False if it was gone."""
        k = self.keys.member(letter.sender)
        keys = [k.inbox, k.inbox_body, k.inbox_seq, k.dead, k.dead_why]
        moved = yield Script("dead_replay", keys, [letter.id, letter.timestamp()])
        if moved:
            yield from self.inbox.mark([letter.sender])
        return bool(moved)

    def drop(self, letter: DeadLetter) -> Operation:
        """Forget a dead letter; False if it was gone."""
        k = self.keys.member(letter.sender)
        dropped = yield Script("dead_drop", [k.dead, k.dead_why], [letter.id])
        return bool(dropped)
