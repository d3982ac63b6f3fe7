"""The inbox: every update queued once, per sender, in timestamp order.

The webhook answers 200 only after :meth:`Inbox.push` returned. Then workers pick a
sender with work (:meth:`Inbox.claim`), take that sender's lease, and drain its inbox
oldest first (:meth:`Inbox.next`, :meth:`Inbox.ack`). Keys, all in the sender's hash
slot except the shared ready set::

    <prefix>:{<sender>}:inbox          sorted set  update ids by timestamp, then arrival
    <prefix>:{<sender>}:inbox:body     hash        id -> encoded update
    <prefix>:{<sender>}:inbox:tries    hash        id -> times a worker took it
    <prefix>:{<sender>}:inbox:seq      string      arrival counter
    <prefix>:{<sender>}:rcvd:<id>      string      "received" mark (dedup TTL)
    <prefix>:inbox-ready               sorted set  senders with work -> when due (ms)

Every method returns an operation generator: run it with ``store.execute(...)`` on a
:class:`~statehq.store.StateStore` or ``await astore.execute(...)`` on an
:class:`~statehq.store.AsyncStateStore`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from ..config import Settings
from ..errors import InvalidInput
from ..flows import Inbound
from ..state import ChannelId
from ..store.keys import KeySpace, check_message_id
from ..store.requests import Command, Operation, Script

UNDERSTOOD = ("text", "button", "list", "quick_reply", "flow")
"""Update kinds the flow engine takes; ``unsupported`` gets a polite reply, the rest none."""


@dataclass(frozen=True)
class Update:
    """One queued update: a member's message, or delivery news (``kind == "status"``)."""

    id: str
    channel: str
    kind: str
    timestamp: int
    text: str = ""
    choice: str | None = None
    status: str | None = None
    error_code: int | None = None
    error_title: str | None = None
    about: str | None = None  # a status's message id

    def encode(self) -> str:
        """The update as stored in the inbox."""
        return json.dumps(asdict(self), ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def decode(cls, raw: bytes | str) -> Update:
        """An update read back from the inbox."""
        fields = json.loads(raw)
        if not isinstance(fields, dict):
            raise InvalidInput("an inbox entry is not an object")
        return cls(**fields)

    def inbound(self) -> Inbound | None:
        """The message for the flow engine, or None when it must not move a flow."""
        if self.kind not in UNDERSTOOD:
            return None
        return Inbound(ChannelId.parse(self.channel), self.id, self.text, self.choice)


@dataclass(frozen=True)
class Taken:
    """An update a worker took from a sender's inbox, and how many times it was taken."""

    id: str
    update: Update | None  # None when its body was lost: acknowledge and move on
    attempts: int


class Inbox:
    """Builds the inbox operations for one key prefix and dedup TTL."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.keys = KeySpace(settings.key_prefix)
        self.ready = f"{settings.key_prefix}:inbox-ready"

    def _base(self, sender: str) -> str:
        return self.keys.member(sender).base

    def _queue_keys(self, sender: str) -> list[str]:
        base = self._base(sender)
        return [f"{base}:inbox", f"{base}:inbox:body", f"{base}:inbox:tries"]

    def push(self, updates: Iterable[Update]) -> Operation:
        """Queue updates (each id once, ever, within the dedup TTL); returns the new ones.

        Updates are grouped by sender: one script call per sender, then one call marks
        every sender with work. A redelivery still marks its sender, so an update queued
        by a request that failed before the mark is picked up.
        """
        by_sender: dict[str, list[Update]] = {}
        for update in updates:
            check_message_id(update.id)
            by_sender.setdefault(update.channel, []).append(update)
        queued: list[Update] = []
        for sender, items in by_sender.items():
            base = self._base(sender)
            keys = [f"{base}:inbox", f"{base}:inbox:body", f"{base}:inbox:seq"]
            keys.extend(f"{base}:rcvd:{item.id}" for item in items)
            args: list[bytes | str | int] = [max(1, round(self.settings.dedup_ttl * 1000))]
            for item in items:
                args.extend((item.timestamp, item.id, item.encode()))
            flags = yield Script("inbox_push", keys, args)
            queued.extend(item for item, new in zip(items, flags, strict=True) if new)
        if by_sender:
            yield Script("ready_mark", [self.ready], ["0", *by_sender])
        return queued

    def claim(self, visibility: float) -> Operation:
        """A sender whose inbox has work, hidden from other workers for ``visibility`` s."""
        sender = yield Script("ready_claim", [self.ready], [max(1, round(visibility * 1000))])
        return sender.decode() if isinstance(sender, bytes) else None

    def defer(self, sender: str, delay: float) -> Operation:
        """Let ``sender`` be picked again in ``delay`` seconds (its lease was busy)."""
        yield Script("ready_mark", [self.ready], [str(max(1, round(delay * 1000))), sender])

    def next(self, sender: str, *, done: str | None = None) -> Operation:
        """The sender's oldest queued update, or None when the inbox is empty.

        ``done``: the update just processed, acknowledged first (as by :meth:`ack`).
        """
        reply = yield Script("inbox_next", self._queue_keys(sender), [done] if done else [])
        if not reply:
            return None
        body = reply[1]
        update = Update.decode(body) if body else None
        return Taken(reply[0].decode(), update, int(reply[2]))

    def ack(self, sender: str, update_id: str) -> Operation:
        """Forget a processed update; returns how many the sender still has queued."""
        left = yield Script("inbox_ack", self._queue_keys(sender), [update_id])
        return int(left)

    def finish(self, sender: str) -> Operation:
        """A worker is done with ``sender``: off the ready set, unless more arrived."""
        yield Command(("ZREM", self.ready, sender))
        left = yield Command(("ZCARD", self._queue_keys(sender)[0]))
        if left:
            yield Script("ready_mark", [self.ready], ["0", sender])

    def applied(self, session_key: str, message_id: str) -> Operation:
        """True when the state change of ``message_id`` was committed to ``session_key``."""
        found = yield Command(("EXISTS", self.keys.member(session_key).message(message_id)))
        return bool(found)

    def first_reply(self, sender: str, window: float) -> Operation:
        """True for the first unsupported message of a burst (none in the last ``window`` s)."""
        key = f"{self._base(sender)}:polite"
        fresh = yield Command(("SET", key, "1", "NX", "PX", str(max(1, round(window * 1000)))))
        return bool(fresh)

    # -- the outbox: replies committed with a turn, waiting to be sent ---------------------

    def outbox(self, session_key: str, sender: str) -> Operation:
        """The replies queued for ``sender`` under ``session_key``, oldest first."""
        entries = yield Command(("LRANGE", self.keys.member(session_key).outbox(sender), "0", "-1"))
        return [entry.decode() for entry in entries]

    def queue_replies(self, session_key: str, sender: str, entries: list[str]) -> Operation:
        """Queue replies that belong to no state change (a polite refusal)."""
        if entries:
            yield Command(("RPUSH", self.keys.member(session_key).outbox(sender), *entries))

    def sent(self, session_key: str, sender: str, entry: str) -> Operation:
        """Drop a reply from the outbox once it has been sent (or given up on)."""
        popped = yield Script("outbox_pop", [self.keys.member(session_key).outbox(sender)], [entry])
        return bool(popped)

    # -- for /metrics ---------------------------------------------------------------------

    def depth(self, limit: int = 1000) -> Operation:
        """(senders with work, updates queued among the first ``limit`` of them, oldest due ms)."""
        senders = yield Command(("ZRANGE", self.ready, "0", str(limit - 1), "WITHSCORES"))
        names = senders[0::2]
        queued = 0
        for name in names:
            queued += int((yield Command(("ZCARD", self._queue_keys(name.decode())[0]))))
        total = yield Command(("ZCARD", self.ready))
        oldest = float(senders[1]) if senders else None
        return int(total), queued, oldest


def entry(reply_id: str, to: str, body: dict[str, Any]) -> str:
    """An outbox entry: what to send, to whom, and an id that recognises a resend."""
    return json.dumps({"id": reply_id, "to": to, "body": body}, ensure_ascii=False)
