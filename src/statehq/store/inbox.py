"""The inbox: every update queued once, per sender, in timestamp order.

The webhook answers 200 only after :meth:`Inbox.push` returned (one round trip: the
updates and the ready marks in one pipeline). Then workers pick a sender with work
(:meth:`Inbox.claim`), take that sender's lease, and drain its inbox oldest first
(:meth:`Inbox.next`, :meth:`Inbox.ack`), and :meth:`Inbox.finish` the sender; the
service's workers do each of these steps in fewer round trips, and for several senders
at once, with :class:`statehq.store.drain.Drain`. An update whose handling keeps failing
is set aside as a dead letter (:meth:`Inbox.bury`; see :mod:`statehq.store.dead_letters`).
The keys are listed in :mod:`statehq.store.keys`: all in the sender's hash slot except
the shared ready set.

No sequence of partial failures leaves queued work unreachable: a sender leaves the
ready set only through ``ready_done``, after its inbox was seen empty and only if
nobody marked it since; the webhook marks after queueing (a failed mark answers 503,
so Meta redelivers and marks again); and :meth:`Inbox.reconcile` re-marks any inbox
that holds work without a mark.

Every method returns an operation generator: run it with ``store.execute(...)`` on a
:class:`~statehq.store.StateStore` or ``await astore.execute(...)`` on an
:class:`~statehq.store.AsyncStateStore`.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..config import Settings, StoreSettings, store_settings_of
from ..errors import InvalidInput, StateError
from .keys import KeySpace, MemberKeys, check_message_id
from .requests import Command, Operation, Pipeline, Scan, Script

MAX_TIMESTAMP = 9_000_000_000
"""The latest timestamp (s) an update may carry: its inbox score must stay exact (< 2^53)."""


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
    name: str | None = None  # the sender's profile name, when the channel gives one

    def __post_init__(self) -> None:
        if type(self.timestamp) is not int or not 0 <= self.timestamp <= MAX_TIMESTAMP:
            raise InvalidInput(
                f"update {self.id[:80]!r}: timestamp {str(self.timestamp)[:20]!r} is not a "
                f"number of seconds between 0 and {MAX_TIMESTAMP}"
            )

    def encode(self) -> str:
        """The update as stored in the inbox (ASCII: any text, even unpaired surrogates)."""
        # vars(), not asdict(): the fields are flat, and asdict's deep copy cost the
        # webhook ~3% of its time. Same fields, same order.
        return json.dumps(vars(self), separators=(",", ":"))

    @classmethod
    def decode(cls, raw: bytes | str) -> Update:
        """An update read back from the inbox; :class:`InvalidInput` when it is not one."""
        try:
            fields = json.loads(raw)
            if not isinstance(fields, dict):
                raise InvalidInput("an inbox entry is not an object")
            return cls(**fields)
        except (ValueError, TypeError, InvalidInput) as bad:
            raise InvalidInput(f"an inbox entry is not an update: {bad}") from bad


@dataclass(frozen=True)
class Taken:
    """An update a worker took from a sender's inbox, and how many times it was taken.

    ``update`` is None when its body was lost (acknowledge and move on) or could not be
    read back; ``problem`` then says why, and the raw body is kept in ``raw``.
    """

    id: str
    update: Update | None
    attempts: int
    raw: str = ""
    problem: str | None = None


@dataclass(frozen=True)
class Claim:
    """A sender a worker picked, and the hidden-until score its claim set (ms)."""

    sender: str
    hidden_until: str


def taken_of(reply: Any) -> Taken | None:
    """An ``inbox_next`` reply as a :class:`Taken`; None when the inbox was empty."""
    if not reply:
        return None
    taken_id, body, attempts = reply[0].decode(), reply[1], int(reply[2])
    if not body:
        return Taken(taken_id, None, attempts)
    raw = body.decode(errors="replace")
    try:
        return Taken(taken_id, Update.decode(body), attempts, raw)
    except InvalidInput as unreadable:
        return Taken(taken_id, None, attempts, raw, str(unreadable))


_PICK = random.Random()  # its own generator: the global one belongs to the application


class Inbox:
    """Builds the inbox operations for one key prefix and dedup TTL."""

    def __init__(self, settings: Settings | StoreSettings) -> None:
        self.settings = store_settings_of(settings)
        self.keys = KeySpace(self.settings.key_prefix, self.settings.shards)

    def _member(self, sender: str) -> MemberKeys:
        return self.keys.member(sender)

    def _queue_keys(self, sender: str) -> list[str]:
        k = self._member(sender)
        return [k.inbox, k.inbox_body, k.inbox_tries, k.inbox_errors]

    def push(self, updates: Iterable[Update]) -> Operation:
        """Queue updates (each id once, ever, within the dedup TTL); returns the new ones.

        Updates are grouped by sender: one script call per sender, then one call per
        piece of the ready set marks the senders with work, all in one pipeline (one
        round trip on a single server; on a Cluster the marks still follow the pushes).
        Every script is in one slot, the pushes in their sender's and the marks in their
        piece's. A redelivery still marks its sender, so an update queued by a request
        that failed before the mark is picked up. Any failure raises: the caller answers
        503 and the channel redelivers.
        """
        by_sender: dict[str, list[Update]] = {}
        for update in updates:
            check_message_id(update.id)
            by_sender.setdefault(update.channel, []).append(update)
        if not by_sender:
            return []
        requests = [self._push_script(sender, items) for sender, items in by_sender.items()]
        requests.extend(self._marks(by_sender))
        replies = yield Pipeline(tuple(requests))
        for reply in replies:
            if isinstance(reply, StateError):
                raise reply
        queued: list[Update] = []
        for items, flags in zip(by_sender.values(), replies, strict=False):
            queued.extend(item for item, new in zip(items, flags, strict=True) if new)
        return queued

    def _push_script(self, sender: str, items: list[Update]) -> Script:
        k = self._member(sender)
        keys = [k.inbox, k.inbox_body, k.inbox_seq]
        keys.extend(k.received(item.id) for item in items)
        args: list[bytes | str | int] = [max(1, round(self.settings.dedup_ttl * 1000))]
        for item in items:
            args.extend((item.timestamp, item.id, item.encode()))
        return Script("inbox_push", keys, args)

    def _marks(self, senders: Iterable[str]) -> list[Script]:
        by_piece: dict[str, list[str]] = {}
        for sender in senders:
            by_piece.setdefault(self.keys.ready_of(sender), []).append(sender)
        return [Script("ready_mark", [key], ["0", *marked]) for key, marked in by_piece.items()]

    def mark(self, senders: Iterable[str]) -> Operation:
        """Say ``senders`` have work, due now (one call per piece of the ready set)."""
        for script in self._marks(senders):  # noqa: UP028 - a list cannot take replies
            yield script

    def claim(self, visibility: float) -> Operation:
        """A :class:`Claim` on a sender with work, hidden from others for ``visibility`` s."""
        for key in self._pieces():
            reply = yield Script("ready_claim", [key], [max(1, round(visibility * 1000))])
            if reply:
                return Claim(reply[0].decode(), reply[1].decode())
        return None

    def _pieces(self) -> list[str]:
        """The pieces of the ready set in the order to try them: workers start at a random
        one, so they spread over the pieces."""
        pieces = self.keys.inbox_readies()
        start = _PICK.randrange(len(pieces))
        return pieces[start:] + pieces[:start]

    def defer(self, sender: str, delay: float) -> Operation:
        """Let ``sender`` be picked again in ``delay`` seconds (its lease was busy)."""
        ready = self.keys.ready_of(sender)
        yield Script("ready_mark", [ready], [str(max(1, round(delay * 1000))), sender])

    def next(self, sender: str, *, done: str | None = None) -> Operation:
        """The sender's oldest queued update, or None when the inbox is empty.

        ``done``: the update just processed, acknowledged first (as by :meth:`ack`).
        """
        reply = yield Script("inbox_next", self._queue_keys(sender), [done] if done else [])
        return taken_of(reply)

    def ack(self, sender: str, update_id: str) -> Operation:
        """Forget a processed update; returns how many the sender still has queued."""
        left = yield Script("inbox_ack", self._queue_keys(sender), [update_id])
        return int(left)

    def untake(self, sender: str, update_id: str) -> Operation:
        """Take back the attempt counted for an update the store failed under (not its fault)."""
        yield Script("inbox_untake", [self._member(sender).inbox_tries], [update_id])

    def failed(self, sender: str, update_id: str, error: str) -> Operation:
        """Remember the error handling an update raised (shown if it becomes a dead letter)."""
        yield Command(("HSET", self._member(sender).inbox_errors, update_id, error[:2000]))

    def last_error(self, sender: str, update_id: str) -> Operation:
        """The error recorded by :meth:`failed` for a queued update, if any."""
        raw = yield Command(("HGET", self._member(sender).inbox_errors, update_id))
        return raw.decode(errors="replace") if raw else None

    def bury(self, sender: str, update_id: str, why: dict[str, Any]) -> Operation:
        """Move a queued update to the sender's dead letters with ``why`` (JSON-ready)."""
        k = self._member(sender)
        keys = [*self._queue_keys(sender), k.dead, k.dead_why]
        encoded = json.dumps(why, ensure_ascii=False, default=str)
        moved = yield Script("inbox_dead", keys, [update_id, encoded])
        return bool(moved)

    def finish(self, claim: Claim, delay: float = 0.0) -> Operation:
        """A worker is done with a sender: off the ready set, unless work remains.

        Work left (or newly arrived) keeps the sender ready, due in ``delay`` seconds (a
        retry backoff). The inbox is read first and the sender removed only if nobody
        marked it since the claim (``ready_done``), so a failure between the two calls,
        or an update queued between them, leaves the sender ready.
        """
        left = yield Command(("ZCARD", self._member(claim.sender).inbox))
        if left:
            millis = str(max(1, round(delay * 1000))) if delay > 0 else "0"
            yield Script("ready_mark", [self.keys.ready_of(claim.sender)], [millis, claim.sender])
        else:
            done: list[bytes | str | int] = [claim.sender, claim.hidden_until]
            yield Script("ready_done", [self.keys.ready_of(claim.sender)], done)

    def reconcile(self, batch: int = 500) -> Operation:
        """Mark every sender whose inbox holds work but who is not in the ready set.

        Returns the senders marked. SCAN, never KEYS; cheap enough to run every few
        seconds, and the safety net under every partial failure named above.
        """
        marked: list[str] = []
        cursor = "0"
        while True:
            cursor, found = yield Scan(cursor, self.keys.inbox_pattern(), batch)
            for raw_key in found:
                key = raw_key.decode(errors="replace")
                try:
                    sender = self.keys.member_of(key)
                    if key != self._member(sender).inbox:
                        continue  # another key the pattern happened to match
                except (ValueError, InvalidInput):
                    continue  # not a key statehq wrote
                if (yield Command(("ZSCORE", self.keys.ready_of(sender), sender))) is not None:
                    continue
                if (yield Command(("ZCARD", key))):
                    yield from self.mark([sender])
                    marked.append(sender)
            if cursor == "0":
                return marked

    def applied(self, session_key: str, message_id: str) -> Operation:
        """True when the state change of ``message_id`` was committed to ``session_key``."""
        found = yield Command(("EXISTS", self.keys.member(session_key).message(message_id)))
        return bool(found)

    def first_reply(self, sender: str, window: float) -> Operation:
        """True for the first unsupported message of a burst (none in the last ``window`` s)."""
        key = self._member(sender).polite
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

    def queue_view(self, sender: str, session_key: str) -> Operation:
        """What waits around a sender, for the inspector: queued updates, replies not yet
        sent, dead letters, and who holds its lease (None when nobody does)."""
        k = self._member(sender)
        backlog = yield Command(("ZCARD", k.inbox))
        pending = yield Command(("LLEN", self.keys.member(session_key).outbox(sender)))
        dead = yield Command(("HLEN", k.dead))
        lease = yield Command(("GET", k.lease))
        holder = lease.decode(errors="replace").partition(":")[2] if lease else None
        counts = {"backlog": int(backlog), "pending": int(pending), "dead": int(dead)}
        return {**counts, "lease": holder}

    # -- for /metrics ---------------------------------------------------------------------

    def depth(self, limit: int = 1000) -> Operation:
        """(senders with work, updates queued among the first ``limit`` of them, oldest due ms)."""
        total, queued, oldest, counted = 0, 0, None, 0
        for key in self.keys.inbox_readies():
            total += int((yield Command(("ZCARD", key))))
            first = yield Command(("ZRANGE", key, "0", "0"))
            due = (yield Command(("ZSCORE", key, first[0]))) if first else None
            if due is not None and (oldest is None or float(due) < oldest):
                oldest = float(due)
            if counted < limit:
                names = yield Command(("ZRANGE", key, "0", str(limit - counted - 1)))
                for name in names:
                    queued += int((yield Command(("ZCARD", self._member(name.decode()).inbox))))
                counted += len(names)
        return total, queued, oldest


def entry(reply_id: str, to: str, body: dict[str, Any]) -> str:
    """An outbox entry: what to send, to whom, and an id that recognises a resend."""
    return json.dumps({"id": reply_id, "to": to, "body": body}, ensure_ascii=False)
