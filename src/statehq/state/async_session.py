"""One member session for asyncio: the twin of :class:`~statehq.state.session.MemberSession`.

Every write is the same :class:`~statehq.state.writes.Write` the blocking session makes,
guarded by the same rules (:func:`~statehq.state.writes.guarded`) and audited the same
way; only the store call is awaited. Turns (``begin_turn``/``commit_turn``) are the
service's and stay on the blocking session.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Awaitable, Callable, Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeAlias

from .. import metrics
from ..errors import (
    InvalidInput,
    SessionEnded,
    SessionMoved,
    StateValidationError,
    TransitionRefused,
)
from ..redact import get_logger, mask_identity
from ..store import Lease, Snapshot
from . import writes
from .channel_ids import ChannelId
from .reading import SessionReader
from .staging import Change
from .tokens import token_expiry
from .writes import Write

if TYPE_CHECKING:
    from .async_manager import AsyncStateManager
    from .recovery import RecoveryResult

log = get_logger(__name__)

AsyncTokenRefresher: TypeAlias = Callable[[str, str], "str | Awaitable[str]"]
"""``refresher(member_id, token)``: a fresh token from the backend, returned or awaited."""


class AsyncMemberSession(SessionReader):
    """A handle on one session, opened by :meth:`AsyncStateManager.open`.

    ``expired`` is true when this session was started because the previous one expired;
    ``recovered`` says what recovery did if the stored state was corrupt or invalid.
    Reads (``get_member_id()``, ``get_flow()``, ...) are the blocking session's; every
    write is awaited.
    """

    manager: AsyncStateManager

    def __init__(
        self,
        manager: AsyncStateManager,
        key: str,
        channel: ChannelId | None,
        snapshot: Snapshot,
        *,
        expired: bool = False,
        recovered: RecoveryResult | None = None,
        lease: Lease | None = None,
    ) -> None:
        self.manager = manager
        self.key = key
        self.channel = channel
        self.expired = expired
        self.recovered = recovered
        self.lease = lease
        self._snap = snapshot

    @property
    def snapshot(self) -> Snapshot:
        """What this handle last read or wrote (document, version, TTL)."""
        return self._snap

    async def get_jwt(self) -> str | None:
        """The backend token, refreshed first when it is about to expire; never an expired one."""
        token = self._snap.doc.get("jwt_token")
        margin = timedelta(seconds=self.manager.store.settings.jwt_refresh_margin)
        usable, due = writes.token_due(token, self.manager.clock(), margin)
        if not due or not isinstance(token, str):
            return usable
        fresh = await self._refresh(token)
        if fresh is not None:
            return fresh
        if usable is None:
            await self._write(writes.expired_token(token))
        return usable

    async def touch(self) -> float | None:
        """Slide the session's TTL without writing; the new TTL, or None once it ended."""
        return await self.manager.store.touch(self.key)

    async def reload(self) -> None:
        """Read the session again from the store."""
        fresh = await self.manager.open(self.channel or self.key, lease=self.lease)
        self.key, self._snap = fresh.key, fresh._snap

    # -- writing: each write is described in statehq.state.writes -------------------------

    async def update_state(
        self, patch: Mapping[str, Any], *, reason: str = "", message_id: str | None = None
    ) -> Snapshot:
        """Merge ``patch`` (RFC 7386: null deletes) after validating the whole result."""
        return await self._write(writes.update_state(patch, reason, message_id))

    async def apply(
        self,
        change: Change,
        *,
        event: str = "state.updated",
        reason: str = "",
        detail: Mapping[str, Any] | None = None,
    ) -> Snapshot:
        """Apply ``change(doc)`` (it edits a private copy, or returns the new document).

        Validated, transition-checked, audited as ``event`` and retried on conflicts like
        every write: for changes a merge patch cannot say (replacing a nested object).
        """
        return await self._write(writes.custom(change, event, reason, detail))

    async def merge_on_server(
        self, patch: Mapping[str, Any], *, reason: str = "", message_id: str | None = None
    ) -> Snapshot:
        """Apply ``patch`` as one server-side merge: no read, no compare-and-set.

        N concurrent merges are N new versions with nothing lost, where
        :meth:`update_state` (read, validate, compare-and-set) would retry under
        contention. The rules are checked on this handle's document with the patch merged
        in, so use it only for a patch whose validity cannot depend on writes made since
        the handle last read: one that restates every field the rules tie its values to
        (the aiogram storage restates stage, flow id and step with each data merge).
        """
        write = writes.update_state(patch, reason, message_id)
        manager = self.manager
        try:
            writes.guarded(self.key, write, manager.validator, manager.stages)(self.state())
        except (StateValidationError, TransitionRefused) as refused:
            await self._audit_refusal(refused, write)
            raise
        try:
            snap: Snapshot = await manager.store.update(
                self.key,
                copy.deepcopy(dict(patch)),
                message_id=message_id,
                lease=self._fencing_lease(),
                audit=write.audit(self._channel_name()),
            )
        except SessionMoved:  # bound to a member meanwhile: check the patch there
            await self.reload()
            return await self.merge_on_server(patch, reason=reason, message_id=message_id)
        self._snap = snap
        return snap

    async def transition(self, stage: str, *, reason: str = "") -> Snapshot:
        """Move to ``stage`` if the stage machine declares the move from the current one."""
        return await self._write(writes.transition(stage, reason))

    async def start_flow(
        self, flow_id: str, step: str = "start", data: Mapping[str, Any] | None = None
    ) -> Snapshot:
        """Enter flow ``flow_id`` at ``step`` (its stage must be reachable from here)."""
        return await self._write(writes.start_flow(flow_id, step, data))

    async def advance(
        self, step: str, data: Mapping[str, Any] | None = None, *, message_id: str | None = None
    ) -> Snapshot:
        """Go to ``step``, merging ``data`` into the flow's data; validation starts afresh."""
        write = writes.advance(self.key, self._flow_id(), step, data, message_id)
        return await self._write(write)

    async def record_validation(self, ok: bool, error: str | None = None) -> int:
        """Count an input attempt at the current step; returns the attempts so far."""
        at = self.manager.clock().isoformat(timespec="milliseconds").replace("+00:00", "Z")
        write = writes.record_validation(self.key, self.get_flow(), ok, error, at)
        snap = await self._write(write)
        attempts: int = snap.doc["flow_data"]["_validation"]["attempts"]
        return attempts

    async def end_flow(self, *, reason: str = "") -> Snapshot:
        """Finish the active flow: keep identity, token, profile and account; back to MENU."""
        flow_id = self._flow_id()
        if flow_id is None:
            raise InvalidInput(f"session {self.key!r} has no active flow to end")
        stages = self.manager.stages
        return await self._write(writes.leave_flow(stages, flow_id, "flow.ended", reason))

    async def cancel_flow(self, *, reason: str = "") -> Snapshot:
        """Abandon the active flow with the same cleanup as :meth:`end_flow` (no-op without one)."""
        flow_id = self._flow_id()
        if flow_id is None:
            return self._snap
        stages = self.manager.stages
        return await self._write(writes.leave_flow(stages, flow_id, "flow.cancelled", reason))

    async def set_jwt(self, token: str, *, reason: str = "") -> Snapshot:
        """Store a new backend token (it must carry an ``exp`` claim)."""
        return await self._write(writes.set_jwt(token, reason))

    async def authenticate(
        self,
        member_id: str,
        token: str,
        *,
        profile: Mapping[str, Any] | None = None,
        current_account: Mapping[str, Any] | None = None,
        reason: str = "login",
    ) -> Snapshot:
        """Log the member in: bind this channel to ``member_id`` and store the token.

        The session continues under the member's key with nothing lost (flow, stage,
        profile); see :mod:`statehq.state.identity` for the two steps and their race.
        """
        from .async_identity import bind

        self._snap = await bind(self, member_id, token, profile, current_account, reason)
        return self._snap

    async def rollback(self, version: int, *, reason: str = "operator rollback") -> Snapshot:
        """Restore ``version`` from history as a new version (validated and audited)."""
        entries = await self.manager.store.history(self.key, skip_corrupt=True)
        return await self._write(writes.rollback(self.key, entries, version, reason))

    async def record_message(self, direction: str, message_id: str, kind: str = "") -> None:
        """Audit an inbound (``in``) or outbound (``out``) message id."""
        event = writes.message_event(direction, message_id, kind, self._channel_name())
        await self.manager.store.audit_append(self.key, event)

    # -- internals -----------------------------------------------------------------------

    async def _write(self, write: Write) -> Snapshot:
        manager = self.manager
        apply = writes.guarded(self.key, write, manager.validator, manager.stages)
        events = write.audit(self._channel_name())
        for _ in range(3):
            lease = self._fencing_lease()
            try:
                snap: Snapshot = await manager.store.mutate(
                    self.key, apply, message_id=write.message_id, lease=lease, audit=events
                )
            except SessionMoved as moved:
                self.key = moved.target
                continue
            except (StateValidationError, TransitionRefused) as refused:
                await self._audit_refusal(refused, write)
                raise
            self._snap = snap
            return snap
        raise SessionEnded(self.key)

    def _fencing_lease(self) -> Lease | None:
        # A lease fences the key it was taken on (see MemberSession._fencing_lease).
        lease = self.lease
        return lease if isinstance(lease, Lease) and lease.member_id == self.key else None

    async def _audit_refusal(self, refused: Exception, write: Write) -> None:
        channel = self._channel_name()
        event = writes.refusal_event(self.key, refused, write.event, write.reason, channel)
        if event is not None:
            await self.manager.store.audit_append(self.key, event)

    async def _refresh(self, token: str) -> str | None:
        refresher, member_id = self.manager.refresher, self.get_member_id()
        if refresher is None or member_id is None:
            return None
        try:
            fresh = refresher(member_id, token)
            if inspect.isawaitable(fresh):
                fresh = await fresh
        except Exception as exc:  # the backend's failure must not end the conversation
            metrics.TOKEN_REFRESHES.labels("failed").inc()
            who = mask_identity(self.key)
            log.warning("token refresh for %s failed: %s", who, type(exc).__name__)
            return None
        if not isinstance(fresh, str) or token_expiry(fresh) is None:
            metrics.TOKEN_REFRESHES.labels("failed").inc()
            return None
        metrics.TOKEN_REFRESHES.labels("refreshed").inc()
        await self._write(writes.refreshed_token(token, fresh))
        return fresh
