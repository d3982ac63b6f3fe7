"""Dead letters: updates a worker set aside, and what an operator does with them.

An update whose handling raised ``STATEHQ_MAX_ATTEMPTS`` times (or that could not be
read back from the inbox) leaves its sender's inbox for the sender's dead letters
(:meth:`statehq.service.inbox.Inbox.bury`), kept with the error, the number of attempts
and when. Nothing is lost: an operator lists them, reads one, and replays it (back into
the inbox, in timestamp order, attempts reset) once the cause is fixed, or drops it.
Each replay and drop is audited in the sender's trail with the operator's reason.

One implementation of each action, used by ``statehq dead`` and the admin API alike.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ..errors import InvalidInput, StateError
from ..store import StateStore
from ..store.audit import AuditEvent
from ..store.keys import KeySpace, check_member_id, check_message_id
from ..store.requests import Command, Operation, Script
from .inbox import Inbox, Update

MAX_LISTED = 10_000


class NoDeadLetter(StateError):
    """No dead letter has that message id (or it was replayed or dropped already)."""


class AmbiguousDeadLetter(InvalidInput):
    """Dead letters of several senders share the message id: name the sender."""


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
            cursor_raw, keys = yield Command(
                ("SCAN", cursor, "MATCH", self.keys.dead_pattern(), "COUNT", "500", "TYPE", "hash")
            )
            cursor = cursor_raw.decode() if isinstance(cursor_raw, bytes) else str(cursor_raw)
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

    def replay(self, letter: DeadLetter) -> Operation:
        """Requeue a dead letter and mark its sender ready; False if it was gone."""
        k = self.keys.member(letter.sender)
        keys = [k.inbox, k.inbox_body, k.inbox_seq, k.dead, k.dead_why]
        moved = yield Script("dead_replay", keys, [letter.id, letter.timestamp()])
        if moved:
            yield Script("ready_mark", [self.inbox.ready], ["0", letter.sender])
        return bool(moved)

    def drop(self, letter: DeadLetter) -> Operation:
        """Forget a dead letter; False if it was gone."""
        k = self.keys.member(letter.sender)
        dropped = yield Script("dead_drop", [k.dead, k.dead_why], [letter.id])
        return bool(dropped)


# -- the operator's actions (the CLI and the admin API call these) ---------------------------


def list_dead(store: StateStore, sender: str | None = None) -> list[DeadLetter]:
    """Every dead letter (of ``sender`` only, when given), oldest first."""
    dead = DeadLetters(Inbox(store.settings))
    senders = [sender] if sender is not None else store.execute(dead.senders())
    letters: list[DeadLetter] = []
    for name in senders:
        letters.extend(store.execute(dead.of(name)))
        if len(letters) >= MAX_LISTED:
            break
    return sorted(letters, key=lambda letter: (letter.at, letter.sender, letter.id))[:MAX_LISTED]


def find_dead(store: StateStore, message_id: str, sender: str | None = None) -> DeadLetter:
    """The dead letter with ``message_id``; :class:`NoDeadLetter` when there is none."""
    check_message_id(message_id)
    matches = [letter for letter in list_dead(store, sender) if letter.id == message_id]
    if not matches:
        where = f" from {sender}" if sender else ""
        raise NoDeadLetter(f"no dead letter {message_id!r:.100}{where}; see `statehq dead list`")
    if len(matches) > 1:
        senders = ", ".join(letter.sender for letter in matches)
        raise AmbiguousDeadLetter(
            f"dead letters of several senders have id {message_id!r:.100} ({senders}); "
            f"name one with --sender"
        )
    return matches[0]


def replay_dead(store: StateStore, letter: DeadLetter, *, reason: str) -> bool:
    """Requeue a dead letter for processing, audited; False when it was already gone."""
    dead = DeadLetters(Inbox(store.settings))
    if not store.execute(dead.replay(letter)):
        return False
    _audit(store, letter, "dead.replayed", reason)
    return True


def drop_dead(store: StateStore, letter: DeadLetter, *, reason: str) -> bool:
    """Forget a dead letter for good, audited; False when it was already gone."""
    dead = DeadLetters(Inbox(store.settings))
    if not store.execute(dead.drop(letter)):
        return False
    _audit(store, letter, "dead.dropped", reason)
    return True


def _audit(store: StateStore, letter: DeadLetter, event: str, reason: str) -> None:
    detail = {"message_id": letter.id, "attempts": letter.attempts, "error": letter.error[:300]}
    session_key = store.resolve(letter.sender)
    store.audit_append(session_key, AuditEvent(event, letter.sender, reason, detail))
