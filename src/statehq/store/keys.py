"""Every Redis key statehq uses, built in one place.

All keys of one member share the hash tag ``{<member_id>}``, so every script touches a
single Cluster slot and runs on Redis Cluster unchanged::

    <prefix>:{<member>}:doc       hash    path -> JSON leaf: the document  (session TTL)
    <prefix>:{<member>}:hist      list    versions, newest first: the newest  (session TTL)
                                          in full, older ones as reverse patches
    <prefix>:{<member>}:seen      string  last version written             (TTL + expired memory)
    <prefix>:{<member>}:lease     string  "<token>:<holder>"               (lease TTL)
    <prefix>:{<member>}:fence     string  fencing-token counter            (1 day, refreshed)
    <prefix>:{<member>}:msg:<id>  string  version a message produced       (dedup TTL)
    <prefix>:{<member>}:route     string  session key this one moved to    (no TTL: identity)
    <prefix>:{<member>}:channels  set     channel keys routed to this one  (no TTL: an index)
    <prefix>:{<member>}:outbox:<channel>  list  replies queued for sending (dedup TTL)
    <prefix>:{<member>}:audit     stream  audit trail                      (audit retention)
    <prefix>:{<sender>}:inbox           sorted set  queued update ids by timestamp, then arrival
    <prefix>:{<sender>}:inbox:body      hash    id -> encoded update
    <prefix>:{<sender>}:inbox:tries     hash    id -> times a worker took it
    <prefix>:{<sender>}:inbox:errors    hash    id -> the last error handling it raised
    <prefix>:{<sender>}:inbox:seq       string  arrival counter
    <prefix>:{<sender>}:rcvd:<id>       string  "received" mark of an update   (dedup TTL)
    <prefix>:{<sender>}:polite          string  an unsupported-type reply was sent (window)
    <prefix>:{<sender>}:replies         stream  replies for a channel that reads them (1 day)
    <prefix>:{<sender>}:dead            hash    id -> a dead letter's encoded update
    <prefix>:{<sender>}:dead:why        hash    id -> why it was set aside (error, attempts)
    <prefix>:audit-tail[:<n>]     stream  every session's audit summaries  (length-capped)
    <prefix>:inbox-ready[:<n>]    sorted set  senders with work -> when due (ms)

The last two are the only keys every member shares. On a Cluster they are split into
``shards`` pieces (``:0`` to ``:<shards - 1>``; one server has one piece and no suffix),
each in its own slot, so no single slot takes every message: a member's summaries and
its ready mark go to the piece :meth:`KeySpace.shard_of` names.

"Member" here is a session key: a channel identity (``whatsapp:263771234567``) until the
backend names the member, then ``member:<id>``; see :mod:`statehq.state.identity`.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass

from ..errors import InvalidMemberId, InvalidMessageId
from ..text import has_surrogate

MAX_MEMBER_ID_LENGTH = 200
MAX_MESSAGE_ID_LENGTH = 256


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _has_control(text: str) -> bool:
    return _CONTROL.search(text) is not None


def check_member_id(member_id: object) -> str:
    """Return ``member_id`` if the store can key it, else raise :class:`InvalidMemberId`."""
    if not isinstance(member_id, str):
        raise InvalidMemberId(member_id, f"must be a string, not {type(member_id).__name__}")
    if not member_id or member_id.strip() != member_id:
        raise InvalidMemberId(member_id, "must be non-empty with no leading or trailing spaces")
    if len(member_id) > MAX_MEMBER_ID_LENGTH:
        raise InvalidMemberId(
            member_id, f"is {len(member_id)} characters, the limit is {MAX_MEMBER_ID_LENGTH}"
        )
    if "{" in member_id or "}" in member_id:
        raise InvalidMemberId(member_id, "must not contain '{' or '}' (they route Cluster keys)")
    if _has_control(member_id):
        raise InvalidMemberId(member_id, "must not contain control characters")
    if has_surrogate(member_id):
        raise InvalidMemberId(member_id, "must not contain lone surrogates (not valid UTF-8)")
    return member_id


def check_message_id(message_id: object) -> str:
    """Return ``message_id`` if usable as a dedup mark, else raise :class:`InvalidMessageId`."""
    if not isinstance(message_id, str):
        raise InvalidMessageId(message_id, f"must be a string, not {type(message_id).__name__}")
    if not message_id.strip():
        raise InvalidMessageId(message_id, "must not be empty or blank")
    if len(message_id) > MAX_MESSAGE_ID_LENGTH:
        raise InvalidMessageId(
            message_id, f"is {len(message_id)} characters, the limit is {MAX_MESSAGE_ID_LENGTH}"
        )
    if _has_control(message_id):
        raise InvalidMessageId(message_id, "must not contain control characters")
    if has_surrogate(message_id):
        raise InvalidMessageId(message_id, "must not contain lone surrogates (not valid UTF-8)")
    return message_id


@dataclass(frozen=True)
class MemberKeys:
    """The keys of one member; see the module docstring for what each holds."""

    doc: str
    hist: str
    seen: str
    lease: str
    fence: str
    route: str
    audit: str
    base: str

    def message(self, message_id: str) -> str:
        """The dedup mark of one inbound message."""
        return f"{self.base}:msg:{check_message_id(message_id)}"

    def outbox(self, channel: str) -> str:
        """Replies to ``channel`` written with this session's state, waiting to be sent."""
        return f"{self.base}:outbox:{check_member_id(channel)}"

    @property
    def channels(self) -> str:
        """The channel identities bound to this member (an index of the routes to it)."""
        return f"{self.base}:channels"

    @property
    def inbox(self) -> str:
        """The sender's queued update ids, scored by timestamp then arrival."""
        return f"{self.base}:inbox"

    @property
    def inbox_body(self) -> str:
        """Queued update id -> the encoded update."""
        return f"{self.base}:inbox:body"

    @property
    def inbox_tries(self) -> str:
        """Queued update id -> how many times a worker took it."""
        return f"{self.base}:inbox:tries"

    @property
    def inbox_errors(self) -> str:
        """Queued update id -> the last error its handling raised."""
        return f"{self.base}:inbox:errors"

    @property
    def inbox_seq(self) -> str:
        """The arrival counter that orders updates sharing a timestamp."""
        return f"{self.base}:inbox:seq"

    def received(self, message_id: str) -> str:
        """The "received" mark of one inbound update (the webhook's dedup)."""
        return f"{self.base}:rcvd:{check_message_id(message_id)}"

    @property
    def replies(self) -> str:
        """Replies delivered to a channel that reads them (the web chat), as a stream."""
        return f"{self.base}:replies"

    @property
    def polite(self) -> str:
        """Set while the polite reply to an unsupported message type is fresh."""
        return f"{self.base}:polite"

    @property
    def dead(self) -> str:
        """Dead letters: updates set aside after failing (id -> the encoded update)."""
        return f"{self.base}:dead"

    @property
    def dead_why(self) -> str:
        """Why each dead letter was set aside (id -> JSON: error, attempts, when)."""
        return f"{self.base}:dead:why"


class KeySpace:
    """Builds :class:`MemberKeys` under one prefix."""

    def __init__(self, prefix: str, shards: int = 1) -> None:
        self.prefix = prefix
        self.shards = max(1, shards)

    def member(self, member_id: str) -> MemberKeys:
        """All keys of ``member_id`` (validated)."""
        base = f"{self.prefix}:{{{check_member_id(member_id)}}}"
        return MemberKeys(
            doc=f"{base}:doc",
            hist=f"{base}:hist",
            seen=f"{base}:seen",
            lease=f"{base}:lease",
            fence=f"{base}:fence",
            route=f"{base}:route",
            audit=f"{base}:audit",
            base=base,
        )

    def shard_of(self, member_id: str) -> int:
        """Which piece of the shared keys ``member_id`` belongs to (stable, spread evenly)."""
        return zlib.crc32(member_id.encode(errors="surrogatepass")) % self.shards

    def _piece(self, name: str, shard: int) -> str:
        return f"{self.prefix}:{name}" if self.shards == 1 else f"{self.prefix}:{name}:{shard}"

    def audit_tail(self, shard: int = 0) -> str:
        """One piece of the operators' stream of every session's audit summaries."""
        return self._piece("audit-tail", shard)

    def audit_tails(self) -> list[str]:
        """Every piece of the audit tail."""
        return [self.audit_tail(n) for n in range(self.shards)]

    def inbox_ready(self, shard: int = 0) -> str:
        """One piece of the senders with work, scored by when a worker may next pick them."""
        return self._piece("inbox-ready", shard)

    def inbox_readies(self) -> list[str]:
        """Every piece of the ready set."""
        return [self.inbox_ready(n) for n in range(self.shards)]

    def ready_of(self, sender: str) -> str:
        """The piece of the ready set that marks ``sender``."""
        return self.inbox_ready(self.shard_of(sender))

    def inbox_pattern(self) -> str:
        """A SCAN pattern matching every sender's inbox key."""
        return f"{self.prefix}:{{*}}:inbox"

    def dead_pattern(self) -> str:
        """A SCAN pattern matching every sender's dead-letter key."""
        return f"{self.prefix}:{{*}}:dead"

    def doc_pattern(self) -> str:
        """A SCAN pattern matching every member's document key."""
        return f"{self.prefix}:{{*}}:doc"

    def member_key_pattern(self) -> str:
        """A SCAN pattern matching every key of every member (not the shared keys)."""
        return f"{self.prefix}:{{*}}:*"

    def route_pattern(self) -> str:
        """A SCAN pattern matching every identity route (a channel bound to a member)."""
        return f"{self.prefix}:{{*}}:route"

    def member_of(self, doc_key: str) -> str:
        """The member id inside a key produced by :meth:`member` (a document, an inbox)."""
        start = doc_key.index("{") + 1
        return doc_key[start : doc_key.index("}", start)]
