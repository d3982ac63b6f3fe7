"""The state manager for asyncio: the twin of :class:`~statehq.state.manager.StateManager`.

    manager = AsyncStateManager(await AsyncStateStore.open())
    session = await manager.open("telegram:12345")
    await session.update_state({"profile": {"name": "Ann"}})   # validated, versioned, audited

Every rule is the blocking manager's, from the same code: a new session's document and
audit entries and the check of a patch on a member with no session
(:mod:`statehq.state.writes`), recovery's choice of version (:mod:`statehq.state.recovery`),
binding (:mod:`statehq.state.identity`). Only the store calls are awaited here.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ..errors import (
    CorruptState,
    InvalidInput,
    NoLiveSession,
    NoSession,
    SessionMoved,
    VersionConflict,
)
from ..store import AsyncStateStore, HistoryEntry, Lease, SessionStatus, Snapshot
from ..store.audit import AuditEntry, AuditEvent, TailEntry
from ..store.operations import Clock, utc_now
from . import recovery, writes
from .async_identity import unbind
from .async_session import AsyncMemberSession, AsyncTokenRefresher
from .channel_ids import ChannelId, parse_who, session_key_for
from .recovery import RecoveryResult
from .stages import Stages
from .validator import StateValidator


class AsyncAuditLog:
    """Reading the audit trail: one session's entries, or the operators' global tail."""

    def __init__(self, store: AsyncStateStore) -> None:
        self._store = store

    async def read(
        self, member: str, since: datetime | str | None = None, limit: int = 100
    ) -> list[AuditEntry]:
        """Entries of ``member`` (a member id, ``member:<id>`` or a channel identity)."""
        return await self._store.audit_read(session_key_for(member), since, limit)

    async def tail(self, since: datetime | str | None = None, limit: int = 100) -> list[TailEntry]:
        """The newest summaries across every session (or those after ``since``)."""
        return await self._store.audit_tail(since, limit)


class AsyncStateManager:
    """Opens :class:`AsyncMemberSession` handles on an :class:`AsyncStateStore`.

    ``refresher(member_id, token)`` may return the fresh token or an awaitable of it.
    """

    def __init__(
        self,
        store: AsyncStateStore,
        *,
        stages: Stages | None = None,
        refresher: AsyncTokenRefresher | None = None,
        clock: Clock = utc_now,
    ) -> None:
        self.store = store
        self.stages = stages or Stages()
        self.validator = StateValidator(self.stages)
        self.refresher = refresher
        self.clock = clock
        self.audit = AsyncAuditLog(store)

    async def open(
        self, who: ChannelId | str, *, lease: Lease | None = None, touch: bool = True
    ) -> AsyncMemberSession:
        """The live session of a channel identity (or ``member:<id>``), started if needed.

        Follows a bound channel to its member's session; repairs corrupt or invalid state
        (audited, as the blocking manager does); starts a new session after expiry with
        the identity kept (``session.expired`` is then true). Opening slides the TTL
        unless ``touch`` is false.
        """
        session = await self._open(who, lease, touch, start=True)
        assert session is not None
        return session

    async def find(
        self, who: ChannelId | str, *, lease: Lease | None = None, touch: bool = False
    ) -> AsyncMemberSession | None:
        """The live session of ``who`` as :meth:`open` gives it, or None: never starts one.

        For reads that should leave no trace when there is nothing to read.
        """
        return await self._open(who, lease, touch, start=False)

    async def update(
        self,
        who: ChannelId | str,
        patch: Mapping[str, Any],
        *,
        expect: int | None = None,
        reason: str = "",
    ) -> tuple[str, Snapshot]:
        """Merge ``patch`` into ``who``'s session, starting one if there is none.

        A patch that would be refused is refused before anything is written, even on a
        member with no session. ``expect``: only at this version.
        """
        if not isinstance(patch, Mapping):
            raise InvalidInput(f"a patch must be an object, got {type(patch).__name__}")
        channel, key = parse_who(who)
        key = await self.store.resolve(key)
        if await self.store.get(key) is None:
            writes.check_fresh(self.validator, self.stages, key, channel, patch)
        session = await self.open(who)
        if expect is not None and session.version != expect:
            raise VersionConflict(session.key, expect, session.version)
        return session.key, await session.update_state(patch, reason=reason)

    async def session_key(self, who: ChannelId | str) -> str:
        """The key ``who``'s conversation lives under now, following a binding."""
        key = who.key if isinstance(who, ChannelId) else session_key_for(who)
        return await self.store.resolve(key)

    async def show(self, who: ChannelId | str) -> tuple[str, Snapshot]:
        """The live session of ``who`` (its key and snapshot), read without touching it.

        Raises :class:`NoLiveSession` (saying expired or none) when there is none.
        """
        key = await self.session_key(who)
        snap = await self.store.get(key)
        if snap is None:
            raise NoLiveSession(str(who), (await self.store.status(key)).value)
        return key, snap

    async def history(self, who: ChannelId | str) -> tuple[str, list[HistoryEntry]]:
        """The versions kept for rollback, newest first (unreadable ones skipped)."""
        key = await self.session_key(who)
        return key, await self.store.history(key, skip_corrupt=True)

    async def rollback(self, who: ChannelId | str, version: int, *, reason: str) -> Snapshot:
        """Restore ``version`` from history as a new version (validated, audited)."""
        key = await self.session_key(who)
        if await self.store.get(key) is None:
            status = (await self.store.status(key)).value
            raise NoLiveSession(str(who), status, "; nothing to roll back")
        return await (await self.open(who)).rollback(version, reason=reason)

    async def recover(self, who: ChannelId | str, *, reason: str = "operator") -> RecoveryResult:
        """Repair a session now (no-op ``healthy`` result when nothing is wrong)."""
        channel, key = parse_who(who)
        result, _ = await self._recover(await self.store.resolve(key), channel, reason)
        return result

    async def reset(self, who: ChannelId | str, *, reason: str = "operator reset") -> Snapshot:
        """Replace a session with the safe state that keeps identity (audited).

        Raises :class:`NoSession` for a key with no session, live, expired or in history.
        """
        channel, key = parse_who(who)
        key = await self.store.resolve(key)
        history = await self._history(key)
        if not history and await self.store.status(key) is SessionStatus.NONE:
            raise NoSession(key, "reset")
        doc = recovery.safe_state(key, channel, history)
        return await self._replace(key, doc, AuditEvent("state.reset", "", reason, {}), None)

    async def unbind(self, channel: ChannelId | str, *, reason: str = "operator") -> str:
        """Detach a channel identity from its member (a number that changed hands)."""
        parsed = channel if isinstance(channel, ChannelId) else ChannelId.parse(channel)
        return await unbind(self, parsed, reason)

    # -- internals -----------------------------------------------------------------------

    async def _open(
        self, who: ChannelId | str, lease: Lease | None, touch: bool, *, start: bool
    ) -> AsyncMemberSession | None:
        channel, key = parse_who(who)
        for _ in range(3):
            try:
                snap = await self.store.get(key)
            except SessionMoved as moved:
                key = moved.target
                continue
            except CorruptState:
                return await self._recover_into(key, channel, lease)
            if snap is None:
                return await self._start(key, channel, lease) if start else None
            if self.validator.violations(snap.doc):
                return await self._recover_into(key, channel, lease)
            if touch:
                await self.store.touch(key)
            return AsyncMemberSession(self, key, channel, snap, lease=lease)
        raise SessionMoved(key, key)  # a route cycle: only a hand edit can make one

    async def _start(
        self, key: str, channel: ChannelId | None, lease: Lease | None
    ) -> AsyncMemberSession:
        expired = await self.store.status(key) is SessionStatus.EXPIRED
        doc, events = writes.start(self.validator, key, channel, expired)
        try:
            snap = await self.store.update(key, doc, expected_version=0, audit=events, lease=lease)
        except (VersionConflict, SessionMoved):
            return await self.open(channel or key, lease=lease)  # someone else started it
        return AsyncMemberSession(self, key, channel, snap, expired=expired, lease=lease)

    async def _recover_into(
        self, key: str, channel: ChannelId | None, lease: Lease | None
    ) -> AsyncMemberSession:
        try:
            result, snap = await self._recover(key, channel, "found while opening the session")
        except VersionConflict:  # another process repaired or wrote it first: read that
            return await self.open(channel or key, lease=lease)
        if snap is None:
            return await self._start(key, channel, lease)
        return AsyncMemberSession(self, key, channel, snap, recovered=result, lease=lease)

    async def _recover(
        self, key: str, channel: ChannelId | None, reason: str
    ) -> tuple[RecoveryResult, Snapshot | None]:
        """:func:`statehq.state.recovery.recover`, awaited: restore or reset, audited."""
        try:
            snap: Snapshot | None = await self.store.get(key)
        except CorruptState as exc:
            snap, problem = None, exc.detail
        else:
            problem = recovery.violations_of(self.validator, snap)
        if not problem:
            return RecoveryResult("healthy", snap.version if snap else 0, None, ""), snap
        history = await self._history(key)
        doc, event, source = recovery.plan(self.validator, key, channel, history, problem, reason)
        written = await self._replace(key, doc, event, snap if source is not None else None)
        return recovery.finished(key, written, source, problem), written

    async def _history(self, key: str) -> list[HistoryEntry]:
        try:
            return await self.store.history(key, skip_corrupt=True)
        except CorruptState:  # the list itself is garbage
            return []

    async def _replace(
        self, key: str, doc: dict[str, Any], event: AuditEvent, seen: Snapshot | None
    ) -> Snapshot:
        # As recovery._write: only replace the version found bad, never a newer valid one.
        expected = seen.version if seen is not None else None
        try:
            return await self.store.replace(key, doc, expected_version=expected, audit=(event,))
        except CorruptState:
            await self.store.discard(key)
            return await self.store.replace(key, doc, audit=(event,))
