"""Every store operation, written once, free of I/O.

Each operation is a generator that yields requests (run a script, run a command,
sleep) and receives their replies; it returns its result. :class:`StateStore` drives
them with a blocking client and :class:`AsyncStateStore` with an asyncio one, so the
logic - argument layout, reply decoding, retries - exists in exactly one place.
"""

from __future__ import annotations

import copy
import os
import random
import secrets
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..config import Settings, StoreSettings, store_settings_of
from ..errors import (
    DocumentTooLarge,
    InvalidInput,
    LeaseBusy,
    LeaseLost,
    MutateTimeout,
    SessionMoved,
    VersionConflict,
    VersionNotFound,
)
from ..metrics import CONFLICTS
from ..redact import redact_text
from . import codec, history
from .audit import AuditEvent, secret_names, timestamp_leaf
from .keys import KeySpace, MemberKeys
from .models import HistoryEntry, Lease, SessionStatus, Snapshot
from .requests import Command, Operation, Script, Sleep

FENCE_TTL_MS = 86_400_000


Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The default clock."""
    return datetime.now(UTC)


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


class Operations:
    """Builds the generators for one key space, one set of limits and one clock."""

    def __init__(self, settings: Settings | StoreSettings, clock: Clock = utc_now) -> None:
        self.settings = store_settings_of(settings)
        self.keys = KeySpace(self.settings.key_prefix, self.settings.shards)
        self.clock = clock

    # -- reads ---------------------------------------------------------------------------

    def get(self, member_id: str) -> Operation:
        """The live snapshot, or None; SessionMoved if the session was bound elsewhere."""
        keys = self.keys.member(member_id)
        reply = yield Script("get", [keys.doc, keys.seen, keys.route], [])
        if reply[0] == 3:
            raise SessionMoved(member_id, reply[1].decode())
        if reply[0] != 1:
            return None
        return _snapshot(codec.unflatten_flat(reply[2], member_id), ttl_ms=reply[1])

    def status(self, member_id: str) -> Operation:
        """Active, expired (remembered for ``expired_memory``), moved, or none."""
        keys = self.keys.member(member_id)
        reply = yield Script("get", [keys.doc, keys.seen, keys.route], [])
        known = {1: SessionStatus.ACTIVE, 2: SessionStatus.EXPIRED, 3: SessionStatus.MOVED}
        return known.get(reply[0], SessionStatus.NONE)

    def history(self, member_id: str, *, skip_corrupt: bool = False) -> Operation:
        """Past versions, newest first; with ``skip_corrupt`` undecodable ones are left out."""
        keys = self.keys.member(member_id)
        entries = yield Command(("LRANGE", keys.hist, "0", "-1"))
        return history.read(entries, member_id, skip_corrupt=skip_corrupt)

    # -- writes --------------------------------------------------------------------------

    def write(
        self,
        member_id: str,
        ops: list[codec.Op],
        *,
        expected_version: int | None = None,
        message_id: str | None = None,
        lease: Lease | None = None,
        audit: tuple[AuditEvent, ...] = (),
        outbox: Outbox | None = None,
        quiet: bool = False,
    ) -> Operation:
        """Apply server operations in one script call; the single write path.

        ``audit`` events are appended to the session's audit stream by the same script,
        each stamped with the versions before and after and the fields that changed.
        ``outbox`` replies are queued by the same script too (they need a ``message_id``):
        the state change, the dedup mark and the replies land together or not at all.
        With ``quiet``, a write that changes nothing keeps the version (see update.lua).
        """
        keys = self.keys.member(member_id)
        if expected_version is not None and (
            not isinstance(expected_version, int) or expected_version < 0
        ):
            raise InvalidInput(f"expected_version must be an int >= 0, got {expected_version!r}")
        if lease is not None and lease.member_id != member_id:
            raise InvalidInput(f"the lease is for member {lease.member_id!r}, not {member_id!r}")
        if outbox is not None and message_id is None:
            raise InvalidInput("replies are queued with the message they answer: pass message_id")
        stamp = timestamp_leaf(self.clock())
        script = self._write_script(
            keys, ops, expected_version, message_id, lease, audit, stamp, outbox, quiet
        )
        reply = yield script
        result = self._parse_write(reply, member_id, expected_version, lease)
        if reply[0] == b"OK" and audit:
            for event, entry_id in zip(audit, reply[4], strict=True):
                yield self.tail_command(member_id, event.event, int(reply[1]), entry_id, stamp)
        return result

    def _write_script(
        self,
        keys: MemberKeys,
        ops: list[codec.Op],
        expected_version: int | None,
        message_id: str | None,
        lease: Lease | None,
        events: tuple[AuditEvent, ...],
        stamp: str,
        outbox: Outbox | None,
        quiet: bool,
    ) -> Script:
        s = self.settings
        key_list = [keys.doc, keys.hist, keys.seen, keys.lease, keys.route, keys.audit]
        if message_id is not None:
            key_list.append(keys.message(message_id))
        if outbox is not None:
            key_list.append(keys.outbox(outbox.channel))
        args: list[bytes | str | int] = [
            "" if expected_version is None else expected_version,
            "" if lease is None else lease.token,
            _ms(s.session_ttl),
            _ms(s.session_ttl + s.expired_memory),
            s.history_length,
            _ms(s.dedup_ttl),
            s.max_document_bytes,
            stamp,
            _ms(s.audit_retention),
            s.audit_max_entries,
            secret_names(),
            "1" if quiet else "",
            len(events),
        ]
        for event in events:
            args.extend(event.encoded())
        replies = outbox.entries if outbox is not None else ()
        args.append(len(replies))
        args.extend(replies)
        for op in ops:
            args.extend(op)
        return Script("update", key_list, args)

    def tail_command(
        self, session: str, event: str, version: int | None, entry_id: bytes | str, stamp: str
    ) -> Command:
        """Add one summary line to the operators' global audit tail."""
        entry = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
        return Command(
            (
                "XADD",
                self.keys.audit_tail(self.keys.shard_of(session)),
                "MAXLEN",
                "~",
                str(max(1, self.settings.audit_tail_length // self.keys.shards)),
                "*",
                "session",
                session,
                "event",
                event,
                "version",
                "" if version is None else str(version),
                "entry",
                entry,
                "ts",
                stamp,
            )
        )

    def _parse_write(
        self, reply: list[Any], member_id: str, expected: int | None, lease: Lease | None
    ) -> Snapshot | None:
        status = reply[0]
        if status == b"OK":
            encoded = reply[3]
            return Snapshot(
                version=int(reply[1]),
                ttl=_seconds(reply[2]),
                load=lambda: codec.decode_encoded_doc(encoded, member_id),
            )
        if status == b"QUIET":
            return Snapshot(None, int(reply[1]), _seconds(reply[2]), quiet=True)
        if status == b"DUP":
            if not reply[4]:
                return Snapshot({}, 0, None, duplicate=True)
            doc = codec.decode_encoded_doc(reply[4], member_id)
            return _snapshot(doc, ttl_ms=reply[3], duplicate=True)
        if status == b"CONFLICT":
            raise VersionConflict(member_id, expected or 0, int(reply[1]))
        if status == b"LEASE":
            current = int(reply[1])
            raise LeaseLost(
                member_id, lease.token if lease else -1, None if current < 0 else current
            )
        if status == b"TOOBIG":
            raise DocumentTooLarge(member_id, int(reply[1]), self.settings.max_document_bytes)
        if status == b"ABSENT":
            return None
        if status == b"MOVED":
            raise SessionMoved(member_id, reply[1].decode())
        raise RuntimeError(f"unexpected reply from update script: {redact_text(repr(reply))}")

    def update(self, member_id: str, patch: object, **kw: Any) -> Operation:
        """Apply an RFC 7386 merge patch."""
        return (yield from self.write(member_id, codec.patch_ops(patch), **kw))

    def replace(self, member_id: str, doc: dict[str, Any], **kw: Any) -> Operation:
        """Write ``doc`` whole without reading what is stored (which may be unreadable).

        The history's patch back to the version replaced is taken from the history's own
        copy of it (the "H" op), not from the stored document, which may be damaged.
        """
        ops = [codec.REBASE, *codec.cleanup_ops(()), *codec.replace_ops({}, doc)]
        return (yield from self.write(member_id, ops, **kw))

    def cleanup(self, member_id: str, preserve: tuple[str, ...], **kw: Any) -> Operation:
        """Keep only the preserved top-level fields; None when there is no session."""
        ops = [(b"E", b"", b""), *codec.cleanup_ops(preserve)]
        return (yield from self.write(member_id, ops, **kw))

    def mutate(
        self,
        member_id: str,
        fn: Callable[[dict[str, Any]], dict[str, Any] | None],
        *,
        deadline: float | None = None,
        message_id: str | None = None,
        lease: Lease | None = None,
        audit: tuple[AuditEvent, ...] = (),
    ) -> Operation:
        """Read, apply ``fn``, compare-and-set; retry with jittered backoff until the deadline."""
        budget = self.settings.mutate_deadline if deadline is None else deadline
        give_up = time.monotonic() + budget
        attempts = 0
        while True:
            attempts += 1
            current = yield from self.get(member_id)
            old = current.doc if current else {}
            version = current.version if current else 0
            draft = copy.deepcopy(old)
            result = fn(draft)
            new = draft if result is None else result
            ops = codec.replace_ops(old, new)
            try:
                return (
                    yield from self.write(
                        member_id,
                        ops,
                        expected_version=version,
                        message_id=message_id,
                        lease=lease,
                        audit=audit,
                    )
                )
            except VersionConflict as conflict:
                CONFLICTS.inc()
                actual = conflict.actual_version
            pause = random.uniform(0, min(0.05, 0.001 * 2 ** min(attempts, 6)))
            if time.monotonic() + pause >= give_up:
                raise MutateTimeout(member_id, version, actual, attempts=attempts, deadline=budget)
            yield Sleep(pause)

    def rollback(self, member_id: str, version: int, **kw: Any) -> Operation:
        """Restore a version from history as a new version."""
        entries: list[HistoryEntry] = yield from self.history(member_id)
        target = next((e for e in entries if e.version == version), None)
        if target is None:
            raise VersionNotFound(member_id, version, [e.version for e in entries])
        restored = {k: v for k, v in target.doc.items() if k not in codec.STORE_FIELDS}
        return (yield from self.mutate(member_id, lambda _old: restored, **kw))

    def touch(self, member_id: str) -> Operation:
        """Slide the session TTL; the new TTL in seconds, or None when there is no session."""
        keys = self.keys.member(member_id)
        s = self.settings
        ttl_args: list[bytes | str | int] = [
            _ms(s.session_ttl),
            _ms(s.session_ttl + s.expired_memory),
        ]
        reply = yield Script("touch", [keys.doc, keys.hist, keys.seen], ttl_args)
        return None if reply < 0 else reply / 1000

    def delete(self, member_id: str) -> Operation:
        """Forget a member's session, history and expiry marker; True if there was a session."""
        keys = self.keys.member(member_id)
        removed = yield Command(("DEL", keys.doc, keys.hist, keys.seen))
        return bool(removed)

    def discard(self, member_id: str) -> Operation:
        """Remove the document and history only (keeping ``seen``, so versions continue).

        For recovery when what is stored under those keys cannot even be read.
        """
        keys = self.keys.member(member_id)
        yield Command(("DEL", keys.doc, keys.hist))

    # -- leases --------------------------------------------------------------------------

    def lease(
        self, member_id: str, ttl: float, *, holder: str | None = None, wait: float = 0.0
    ) -> Operation:
        """Take the member's lease, waiting up to ``wait`` seconds; else LeaseBusy."""
        keys = self.keys.member(member_id)
        if not (isinstance(ttl, int | float) and ttl > 0):
            raise InvalidInput(f"lease ttl must be a number of seconds > 0, got {ttl!r}")
        if not (isinstance(wait, int | float) and wait >= 0):
            raise InvalidInput(f"lease wait must be a number of seconds >= 0, got {wait!r}")
        name = holder or default_holder()
        give_up = time.monotonic() + wait
        while True:
            # Unique to this attempt: the same call sent again after a dropped connection
            # finds its own lease and gets its token back (see lease_acquire.lua).
            attempt = f"{name}#{secrets.token_hex(4)}"
            reply = yield Script(
                "lease_acquire", [keys.lease, keys.fence], [attempt, _ms(ttl), FENCE_TTL_MS]
            )
            if reply[0] == 1:
                return Lease(member_id, int(reply[1]), name, float(ttl))
            remaining = max(int(reply[1]), 0) / 1000
            now = time.monotonic()
            if now >= give_up:
                raise LeaseBusy(member_id, remaining)
            yield Sleep(min(max(remaining, 0.001), 0.05, give_up - now))

    def renew(self, lease: Lease) -> Operation:
        """Extend the lease; LeaseLost if it is no longer current."""
        keys = self.keys.member(lease.member_id)
        ok = yield Script("lease_renew", [keys.lease], [lease.token, _ms(lease.ttl)])
        if not ok:
            raise LeaseLost(lease.member_id, lease.token, None)
        return lease

    def release(self, lease: Lease) -> Operation:
        """Drop the lease if still held; True when it was."""
        keys = self.keys.member(lease.member_id)
        released = yield Script("lease_release", [keys.lease], [lease.token])
        return bool(released)


@dataclass(frozen=True)
class Outbox:
    """Replies to queue with a write: encoded entries for one channel's outbox."""

    channel: str
    entries: tuple[str, ...]


def ping() -> Operation:
    """A round trip to the server."""
    yield Command(("PING",))


def default_holder() -> str:
    """A lease holder name that tells operators which process holds it."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _seconds(ttl_ms: int) -> float | None:
    return ttl_ms / 1000 if ttl_ms >= 0 else None


def _snapshot(doc: dict[str, Any], *, ttl_ms: int, duplicate: bool = False) -> Snapshot:
    version = doc.get("_version")
    return Snapshot(
        doc=doc,
        version=version if isinstance(version, int) else 0,
        ttl=_seconds(ttl_ms),
        duplicate=duplicate,
    )
