"""One member session: validated writes, turns and the flow helpers.

Reads come from :class:`~statehq.state.reading.SessionReader` (always copies); every
write goes through :meth:`MemberSession._write`, which validates the whole
resulting document, checks the stage transition, and lets the store write it together
with its audit entries in one script call (a compare-and-set retried until the
store's deadline, so concurrent writers on other channels lose nothing).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any

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
from ..store.audit import AuditEvent
from ..store.operations import Outbox
from . import writes
from .channel_ids import ChannelId
from .documents import merge_patch as merge_patch  # imported from here by older callers
from .reading import SessionReader
from .staging import Change, StagedTurn
from .tokens import token_expiry
from .writes import Write

if TYPE_CHECKING:
    from .manager import StateManager
    from .recovery import RecoveryResult

log = get_logger(__name__)


class MemberSession(SessionReader):
    """A handle on one session, opened by :meth:`StateManager.open`.

    ``expired`` is true when this session was started because the previous one expired
    (tell the member so); ``recovered`` says what recovery did if the stored state was
    corrupt or invalid when the session was opened.
    """

    manager: StateManager

    def __init__(
        self,
        manager: StateManager,
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
        self._staged: StagedTurn | None = None

    # -- reading: see SessionReader; the token may need a refresh (a write) ----------------

    def get_jwt(self) -> str | None:
        """The backend token, refreshed first when it is about to expire; never an expired one."""
        token = self._snap.doc.get("jwt_token")
        margin = timedelta(seconds=self.manager.store.settings.jwt_refresh_margin)
        usable, due = writes.token_due(token, self.manager.clock(), margin)
        if not due or not isinstance(token, str):
            return usable
        fresh = self._refresh(token)
        if fresh is not None:
            return fresh
        if usable is None:
            self._write(writes.expired_token(token))
        return usable

    def reload(self) -> None:
        """Read the session again from the store."""
        fresh = self.manager.reopen(self)
        self._snap = fresh

    # -- writing: each write is described in statehq.state.writes -------------------------

    def update_state(
        self, patch: Mapping[str, Any], *, reason: str = "", message_id: str | None = None
    ) -> Snapshot:
        """Merge ``patch`` (RFC 7386: null deletes) after validating the whole result."""
        return self._write(writes.update_state(patch, reason, message_id))

    def apply(
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
        return self._write(writes.custom(change, event, reason, detail))

    def transition(self, stage: str, *, reason: str = "") -> Snapshot:
        """Move to ``stage`` if the stage machine declares the move from the current one."""
        return self._write(writes.transition(stage, reason))

    def start_flow(
        self, flow_id: str, step: str = "start", data: Mapping[str, Any] | None = None
    ) -> Snapshot:
        """Enter flow ``flow_id`` at ``step`` (its stage must be reachable from here)."""
        return self._write(writes.start_flow(flow_id, step, data))

    def advance(
        self, step: str, data: Mapping[str, Any] | None = None, *, message_id: str | None = None
    ) -> Snapshot:
        """Go to ``step``, merging ``data`` into the flow's data; validation starts afresh."""
        return self._write(writes.advance(self.key, self._flow_id(), step, data, message_id))

    def record_validation(self, ok: bool, error: str | None = None) -> int:
        """Count an input attempt at the current step; returns the attempts so far."""
        at = self.manager.clock().isoformat(timespec="milliseconds").replace("+00:00", "Z")
        snap = self._write(writes.record_validation(self.key, self.get_flow(), ok, error, at))
        attempts: int = snap.doc["flow_data"]["_validation"]["attempts"]
        return attempts

    def end_flow(self, *, reason: str = "") -> Snapshot:
        """Finish the active flow: keep identity, token, profile and account; back to MENU."""
        flow_id = self._flow_id()
        if flow_id is None:
            raise InvalidInput(f"session {self.key!r} has no active flow to end")
        return self._write(writes.leave_flow(self.manager.stages, flow_id, "flow.ended", reason))

    def cancel_flow(self, *, reason: str = "") -> Snapshot:
        """Abandon the active flow with the same cleanup as :meth:`end_flow` (no-op without one)."""
        flow_id = self._flow_id()
        if flow_id is None:
            return self._snap
        stages = self.manager.stages
        return self._write(writes.leave_flow(stages, flow_id, "flow.cancelled", reason))

    def set_jwt(self, token: str, *, reason: str = "") -> Snapshot:
        """Store a new backend token (it must carry an ``exp`` claim)."""
        return self._write(writes.set_jwt(token, reason))

    def authenticate(
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
        profile); see :func:`statehq.state.identity.bind`.
        """
        from .identity import bind

        staging = self._staged is not None
        self._flush_turn()
        self._staged = None
        snap = bind(self, member_id, token, profile, current_account, reason)
        self._snap = snap
        if staging:
            self._staged = StagedTurn(snap)
        return snap

    def rollback(self, version: int, *, reason: str = "operator rollback") -> Snapshot:
        """Restore ``version`` from history as a new version (validated and audited)."""
        entries = self.manager.store.history(self.key, skip_corrupt=True)
        return self._write(writes.rollback(self.key, entries, version, reason))

    def record_message(self, direction: str, message_id: str, kind: str = "") -> None:
        """Audit an inbound (``in``) or outbound (``out``) message id."""
        event = writes.message_event(direction, message_id, kind, self._channel_name())
        self.manager.store.audit_append(self.key, event)

    # -- turns: a message's writes committed as one ---------------------------------------

    def begin_turn(self) -> None:
        """Hold every write from now on until :meth:`commit_turn` writes them as one.

        Writes are validated and their transitions checked as they are made (a refusal
        still raises at once); the store sees them only at the commit, together with the
        message's dedup mark and its replies. A worker that dies before the commit has
        changed nothing, so the message can simply be processed again.
        """
        self._staged = StagedTurn(self._snap)

    @property
    def turn_version(self) -> int:
        """The version the session will have once the turn is committed."""
        return self.version if self._staged is None else self._staged.version

    def commit_turn(self, message_id: str | None, outbox: Outbox | None = None) -> Snapshot:
        """Write the turn's changes, dedup mark, audit entries and replies in one script.

        Raises :class:`~statehq.errors.VersionConflict` when the session changed since the
        turn began (run the turn again); returns a ``duplicate`` snapshot, writing
        nothing, when ``message_id`` had already been applied.
        """
        staged, self._staged = self._staged, None
        if staged is None:
            raise InvalidInput("commit_turn() without begin_turn()")
        if message_id is None and not staged.events:
            return self._snap
        doc = self._snap.doc
        snap = self.manager.store.commit(
            self.key,
            staged.base.doc,
            doc,
            expected_version=staged.base.version,
            message_id=message_id,
            lease=self._fencing_lease(),
            audit=tuple(staged.events),
            outbox=outbox,
        )
        if snap.quiet:
            snap = Snapshot(doc, snap.version, snap.ttl)
        self._snap = snap
        return snap

    def _flush_turn(self) -> None:
        """Write what the turn holds so far (before a step that writes elsewhere: a login)."""
        if self._staged is None:
            return
        self.commit_turn(None)
        self._staged = StagedTurn(self._snap)

    # -- internals -----------------------------------------------------------------------

    def _write(self, write: Write) -> Snapshot:
        manager = self.manager
        apply = writes.guarded(self.key, write, manager.validator, manager.stages)
        events = write.audit(self._channel_name())
        if self._staged is not None:
            return self._stage(apply, write, events)
        for _ in range(3):
            lease = self._fencing_lease()
            try:
                with self._refusals_audited(write):
                    snap = manager.store.mutate(
                        self.key, apply, message_id=write.message_id, lease=lease, audit=events
                    )
            except SessionMoved as moved:
                self.key = moved.target
                continue
            self._snap = snap
            return snap
        raise SessionEnded(self.key)

    def _fencing_lease(self) -> Lease | None:
        # A lease fences the key it was taken on: after a login moved the session to the
        # member's key, the channel's lease does not apply there (the turn's compare-and-set
        # and the message's dedup mark still make its commit happen at most once).
        lease = self.lease
        return lease if isinstance(lease, Lease) and lease.member_id == self.key else None

    def _stage(self, apply: Change, write: Write, events: tuple[AuditEvent, ...]) -> Snapshot:
        staged = self._staged
        assert staged is not None
        with self._refusals_audited(write):
            self._snap = staged.stage(self._snap, apply, events)
        return self._snap

    @contextlib.contextmanager
    def _refusals_audited(self, write: Write) -> Iterator[None]:
        """A refused write is counted and audited, then raised on."""
        try:
            yield
        except (StateValidationError, TransitionRefused) as refused:
            channel = self._channel_name()
            event = writes.refusal_event(self.key, refused, write.event, write.reason, channel)
            if event is not None:
                self.manager.store.audit_append(self.key, event)
            raise

    def _refresh(self, token: str) -> str | None:
        refresher, member_id = self.manager.refresher, self.get_member_id()
        if refresher is None or member_id is None:
            return None
        try:
            fresh = refresher(member_id, token)
        except Exception as exc:  # the backend's failure must not end the conversation
            metrics.TOKEN_REFRESHES.labels("failed").inc()
            who = mask_identity(self.key)
            log.warning("token refresh for %s failed: %s", who, type(exc).__name__)
            return None
        if token_expiry(fresh) is None:
            metrics.TOKEN_REFRESHES.labels("failed").inc()
            return None
        metrics.TOKEN_REFRESHES.labels("refreshed").inc()
        self._write(writes.refreshed_token(token, fresh))
        return fresh
