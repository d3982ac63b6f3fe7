"""The state manager: opens member sessions on a store, and the operator's tools.

    manager = StateManager(StateStore.open())
    session = manager.open("whatsapp:263771234567")
    if session.expired: ...            # tell the member their session expired
    session.start_flow("offer")        # validated, versioned, audited

Nothing above this layer touches the store directly (README: Architecture).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, TypeAlias

from ..errors import (
    CorruptState,
    InvalidInput,
    NoLiveSession,
    SessionMoved,
    StateError,
    VersionConflict,
)
from ..store import HistoryEntry, Lease, SessionStatus, Snapshot, StateStore
from ..store.audit import AuditEntry, TailEntry
from ..store.operations import Clock, utc_now
from . import identity, recovery, writes
from .channel_ids import ChannelId, parse_who, session_key_for
from .recovery import RecoveryResult
from .session import MemberSession
from .stages import Stages
from .tokens import TokenRefresher
from .validator import StateValidator


class AuditLog:
    """Reading the audit trail: one session's entries, or the operators' global tail."""

    def __init__(self, store: StateStore) -> None:
        self._store = store

    def read(
        self, member: str, since: datetime | str | None = None, limit: int = 100
    ) -> list[AuditEntry]:
        """Entries of ``member`` (a member id, ``member:<id>`` or a channel identity)."""
        return self._store.audit_read(session_key_for(member), since, limit)

    def tail(self, since: datetime | str | None = None, limit: int = 100) -> list[TailEntry]:
        """The newest summaries across every session (or those after ``since``)."""
        return self._store.audit_tail(since, limit)


class StateManager:
    """Opens :class:`MemberSession` handles and runs identity and recovery operations."""

    def __init__(
        self,
        store: StateStore,
        *,
        stages: Stages | None = None,
        refresher: TokenRefresher | None = None,
        clock: Clock = utc_now,
    ) -> None:
        self.store = store
        self.stages = stages or Stages()
        self.validator = StateValidator(self.stages)
        self.refresher = refresher
        self.clock = clock
        self.audit = AuditLog(store)

    def open(
        self,
        who: ChannelId | str,
        *,
        lease: Lease | None = None,
        touch: bool = True,
        prefetched: Mapping[str, Prefetched] | None = None,
    ) -> MemberSession:
        """The live session of a channel identity (or ``member:<id>``), started if needed.

        Follows a bound channel to its member's session; repairs corrupt or invalid state
        (see ``session.recovered``); starts a new session after expiry with the identity
        kept (``session.expired`` is then true). Opening slides the session's TTL unless
        ``touch`` is false (a turn's commit slides it anyway).

        ``prefetched``: what ``store.get`` returned (or raised) for some session keys,
        read by the caller in a round trip it made anyway (a worker reads the session
        with the message it takes). Each is used once, in place of reading that key.
        """
        channel, key = parse_who(who)
        known = dict(prefetched) if prefetched else {}
        for _ in range(3):
            try:
                snap = _read(self.store, key, known)
            except SessionMoved as moved:
                key = moved.target
                continue
            except CorruptState:
                return self._recover_into(key, channel, lease)
            if snap is None:
                return self._start(key, channel, lease)
            if self.validator.violations(snap.doc):
                return self._recover_into(key, channel, lease)
            if touch:
                self.store.touch(key)
            return MemberSession(self, key, channel, snap, lease=lease)
        raise SessionMoved(key, key)  # a route cycle: only a hand edit can make one

    def update(
        self,
        who: ChannelId | str,
        patch: Mapping[str, Any],
        *,
        expect: int | None = None,
        reason: str = "",
    ) -> tuple[str, Snapshot]:
        """Merge ``patch`` into ``who``'s session, starting one if there is none.

        A patch that would be refused is refused before anything is written: on a member
        with no session it is checked against the session it would start, so a refusal
        never leaves a new session behind. ``expect``: only at this version.
        """
        if not isinstance(patch, Mapping):
            raise InvalidInput(f"a patch must be an object, got {type(patch).__name__}")
        channel, key = parse_who(who)
        key = self.store.resolve(key)
        if self.store.get(key) is None:
            writes.check_fresh(self.validator, self.stages, key, channel, patch)
        session = self.open(who)
        if expect is not None and session.version != expect:
            raise VersionConflict(session.key, expect, session.version)
        return session.key, session.update_state(patch, reason=reason)

    def reopen(self, session: MemberSession) -> Snapshot:
        """A fresh snapshot for ``session`` (used by :meth:`MemberSession.reload`)."""
        fresh = self.open(session.channel or session.key, lease=session.lease)
        session.key = fresh.key
        return fresh._snap

    def recover(self, who: ChannelId | str, *, reason: str = "operator") -> RecoveryResult:
        """Repair a session now (no-op ``healthy`` result when nothing is wrong)."""
        channel, key = self._resolve(who)
        result, _ = recovery.recover(self, key, channel, reason)
        return result

    def reset(self, who: ChannelId | str, *, reason: str = "operator reset") -> Snapshot:
        """Replace a session with the safe state that keeps identity (audited)."""
        channel, key = self._resolve(who)
        return recovery.reset(self, key, channel, reason)

    # -- the operator's actions (the CLI and the admin API both call these) ----------------

    def session_key(self, who: ChannelId | str) -> str:
        """The key ``who``'s conversation lives under now, following a binding."""
        key = who.key if isinstance(who, ChannelId) else session_key_for(who)
        return self.store.resolve(key)

    def show(self, who: ChannelId | str) -> tuple[str, Snapshot]:
        """The live session of ``who`` (its key and snapshot), read without touching it.

        Raises :class:`NoLiveSession` (saying expired or none) when there is none.
        """
        key = self.session_key(who)
        snap = self.store.get(key)
        if snap is None:
            raise NoLiveSession(str(who), self.store.status(key).value)
        return key, snap

    def history(self, who: ChannelId | str) -> tuple[str, list[HistoryEntry]]:
        """The versions kept for rollback, newest first (unreadable ones skipped)."""
        key = self.session_key(who)
        return key, self.store.history(key, skip_corrupt=True)

    def rollback(self, who: ChannelId | str, version: int, *, reason: str) -> Snapshot:
        """Restore ``version`` from history as a new version (validated, audited).

        Raises :class:`NoLiveSession` when there is no live session to roll back.
        """
        key = self.session_key(who)
        if self.store.get(key) is None:
            status = self.store.status(key).value
            raise NoLiveSession(str(who), status, "; nothing to roll back")
        return self.open(who).rollback(version, reason=reason)

    def unbind(self, channel: ChannelId | str, *, reason: str = "operator") -> str:
        """Detach a channel identity from its member (a number that changed hands)."""
        parsed = channel if isinstance(channel, ChannelId) else ChannelId.parse(channel)
        return identity.unbind(self, parsed, reason)

    # -- internals -----------------------------------------------------------------------

    def _resolve(self, who: ChannelId | str) -> tuple[ChannelId | None, str]:
        channel, key = parse_who(who)
        target = self.store.route(key)
        return channel, target or key

    def _start(self, key: str, channel: ChannelId | None, lease: Lease | None) -> MemberSession:
        expired = self.store.status(key) is SessionStatus.EXPIRED
        doc, events = writes.start(self.validator, key, channel, expired)
        try:
            snap = self.store.update(key, doc, expected_version=0, audit=events, lease=lease)
        except (VersionConflict, SessionMoved):
            return self.open(channel or key, lease=lease)  # someone else started it first
        return MemberSession(self, key, channel, snap, expired=expired, lease=lease)

    def _recover_into(
        self, key: str, channel: ChannelId | None, lease: Lease | None
    ) -> MemberSession:
        try:
            result, snap = recovery.recover(self, key, channel, "found while opening the session")
        except VersionConflict:  # another process repaired or wrote it first: read that
            return self.open(channel or key, lease=lease)
        if snap is None:
            return self._start(key, channel, lease)
        return MemberSession(self, key, channel, snap, recovered=result, lease=lease)


Prefetched: TypeAlias = Snapshot | StateError | None
"""What ``StateStore.get`` returned for a key, or the error it raised (a moved session,
corrupt state): a read made ahead, handed to :meth:`StateManager.open`."""


def _read(store: StateStore, key: str, known: dict[str, Prefetched]) -> Snapshot | None:
    """``key``'s snapshot: the one read ahead, once, else a fresh read."""
    if key not in known:
        return store.get(key)
    found = known.pop(key)
    if isinstance(found, StateError):
        raise found
    return found
