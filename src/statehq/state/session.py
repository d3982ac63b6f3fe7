"""One member session: validated writes, turns and the flow helpers.

Reads come from :class:`~statehq.state.reading.SessionReader` (always copies); every
write goes through :meth:`MemberSession._write`, which validates the whole
resulting document, checks the stage transition, and lets the store write it together
with its audit entries in one script call (a compare-and-set retried until the
store's deadline, so concurrent writers on other channels lose nothing).
"""

from __future__ import annotations

import contextlib
import copy
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
from ..redact import get_logger, mask_identity, redact_text
from ..store import DEFAULT_PRESERVE, Lease, Snapshot
from ..store.audit import AuditEvent
from ..store.codec import STORE_FIELDS
from ..store.operations import Outbox
from .channel_ids import ChannelId
from .documents import active_flow, merge_patch
from .model import STAGE_AUTH, STAGE_INIT, STAGE_MENU, fresh_validation
from .reading import SessionReader
from .staging import Change, StagedTurn
from .tokens import token_expiry
from .validator import watched

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
        if not isinstance(token, str):
            return None
        expiry = token_expiry(token)
        now = self.manager.clock()
        if expiry is None:
            return None
        margin = timedelta(seconds=self.manager.store.settings.jwt_refresh_margin)
        if expiry - now > margin:
            return token
        fresh = self._refresh(token)
        if fresh is not None:
            return fresh
        if expiry > now:
            return token
        self._expire_token()
        return None

    def reload(self) -> None:
        """Read the session again from the store."""
        fresh = self.manager.reopen(self)
        self._snap = fresh

    # -- writing -------------------------------------------------------------------------

    def update_state(
        self, patch: Mapping[str, Any], *, reason: str = "", message_id: str | None = None
    ) -> Snapshot:
        """Merge ``patch`` (RFC 7386: null deletes) after validating the whole result."""
        if not isinstance(patch, Mapping):
            raise InvalidInput(f"a patch must be an object, got {type(patch).__name__}")
        frozen = copy.deepcopy(dict(patch))
        return self._write(
            lambda doc: merge_patch(doc, frozen),
            "state.updated",
            reason=reason,
            message_id=message_id,
        )

    def transition(self, stage: str, *, reason: str = "") -> Snapshot:
        """Move to ``stage`` if the stage machine declares the move from the current one."""

        def move(doc: dict[str, Any]) -> None:
            doc["stage"] = stage

        return self._write(move, "stage.changed", reason=reason, detail={"to": stage})

    def start_flow(
        self, flow_id: str, step: str = "start", data: Mapping[str, Any] | None = None
    ) -> Snapshot:
        """Enter flow ``flow_id`` at ``step`` (its stage must be reachable from here)."""
        initial = copy.deepcopy(dict(data or {}))

        def start(doc: dict[str, Any]) -> None:
            doc["stage"] = flow_id
            doc["flow_data"] = {
                "id": flow_id,
                "step": step,
                "data": initial,
                "_validation": fresh_validation(),
            }

        return self._write(start, "flow.started", detail={"flow": flow_id, "step": step})

    def advance(
        self, step: str, data: Mapping[str, Any] | None = None, *, message_id: str | None = None
    ) -> Snapshot:
        """Go to ``step``, merging ``data`` into the flow's data; validation starts afresh."""
        patch = copy.deepcopy(dict(data or {}))

        flow_id = self._flow_id()

        def go(doc: dict[str, Any]) -> None:
            flow = active_flow(doc, self.key, flow_id)
            flow["step"] = step
            flow["data"] = merge_patch(flow.get("data") or {}, patch)
            flow["_validation"] = fresh_validation()

        detail = {"flow": flow_id, "step": step}
        return self._write(go, "flow.step", detail=detail, message_id=message_id)

    def record_validation(self, ok: bool, error: str | None = None) -> int:
        """Count an input attempt at the current step; returns the attempts so far."""
        at = self.manager.clock().isoformat(timespec="milliseconds").replace("+00:00", "Z")
        error = redact_text(error) if error else error  # it may echo what the member typed

        expected = self._flow_id()

        def count(doc: dict[str, Any]) -> None:
            flow = active_flow(doc, self.key, expected)
            validation = dict(flow.get("_validation") or fresh_validation())
            validation["attempts"] = int(validation.get("attempts", 0)) + 1
            validation["in_progress"] = not ok
            validation["last_attempt"] = {"at": at, "ok": ok, "error": None if ok else error}
            flow["_validation"] = validation

        flow = self.get_flow() or {}
        event = "validation.passed" if ok else "validation.failed"
        detail = {"flow": flow.get("id"), "step": flow.get("step"), "error": error}
        snap = self._write(count, event, detail=detail)
        attempts: int = snap.doc["flow_data"]["_validation"]["attempts"]
        return attempts

    def end_flow(self, *, reason: str = "") -> Snapshot:
        """Finish the active flow: keep identity, token, profile and account; back to MENU."""
        flow_id = self._flow_id()
        if flow_id is None:
            raise InvalidInput(f"session {self.key!r} has no active flow to end")
        return self._write(self._leave_flow, "flow.ended", reason=reason, detail={"flow": flow_id})

    def cancel_flow(self, *, reason: str = "") -> Snapshot:
        """Abandon the active flow with the same cleanup as :meth:`end_flow` (no-op without one)."""
        flow_id = self._flow_id()
        if flow_id is None:
            return self._snap
        detail = {"flow": flow_id}
        return self._write(self._leave_flow, "flow.cancelled", reason=reason, detail=detail)

    def set_jwt(self, token: str, *, reason: str = "") -> Snapshot:
        """Store a new backend token (it must carry an ``exp`` claim)."""
        if token_expiry(token) is None:
            raise InvalidInput("the token is not a JWT with a readable exp claim; not stored")

        def put(doc: dict[str, Any]) -> None:
            doc["jwt_token"] = token

        return self._write(put, "token.stored", reason=reason)

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
        target = next((e for e in entries if e.version == version), None)
        if target is None:
            from ..errors import VersionNotFound

            raise VersionNotFound(self.key, version, [e.version for e in entries])
        restored = {k: v for k, v in target.doc.items() if not k.startswith("_")}

        def restore(doc: dict[str, Any]) -> dict[str, Any]:
            return {**restored, **{k: doc[k] for k in STORE_FIELDS if k in doc}}

        detail = {"to_version": version}
        return self._write(
            restore, "state.rolled_back", reason=reason, detail=detail, identity=True, stage=False
        )

    def record_message(self, direction: str, message_id: str, kind: str = "") -> None:
        """Audit an inbound (``in``) or outbound (``out``) message id."""
        if direction not in ("in", "out"):
            raise InvalidInput(f"direction must be 'in' or 'out', got {direction!r}")
        event = AuditEvent(
            f"message.{direction}",
            self._channel_name(),
            "",
            {"message_id": message_id, "kind": kind},
        )
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

    def _write(
        self,
        change: Change,
        event: str,
        *,
        reason: str = "",
        detail: Mapping[str, Any] | None = None,
        message_id: str | None = None,
        identity: bool = False,
        stage: bool = True,
    ) -> Snapshot:
        store, validator, stages = self.manager.store, self.manager.validator, self.manager.stages
        events = (AuditEvent(event, self._channel_name(), reason, detail),)

        def apply(doc: dict[str, Any]) -> dict[str, Any]:
            if not doc:
                raise SessionEnded(self.key)
            before = watched(doc)
            result = change(doc)
            after = doc if result is None else result
            source = before.get("stage", STAGE_INIT)
            target = after.get("stage", STAGE_INIT)
            checked = stage and isinstance(source, str) and isinstance(target, str)
            if checked and not stages.allows(source, target):
                raise TransitionRefused(self.key, source, target, stages.targets(source))
            validator.check(self.key, before, after, identity=identity)
            return after

        if self._staged is not None:
            return self._stage(apply, events)
        for _ in range(3):
            lease = self._fencing_lease()
            try:
                with self._refusals_audited(event, reason):
                    snap = store.mutate(
                        self.key, apply, message_id=message_id, lease=lease, audit=events
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

    def _stage(self, apply: Change, events: tuple[AuditEvent, ...]) -> Snapshot:
        staged = self._staged
        assert staged is not None
        with self._refusals_audited(events[0].event, events[0].reason):
            self._snap = staged.stage(self._snap, apply, events)
        return self._snap

    @contextlib.contextmanager
    def _refusals_audited(self, attempted: str, reason: str) -> Iterator[None]:
        """A refused write is counted and audited, then raised on."""
        try:
            yield
        except StateValidationError as refused:
            metrics.REFUSED_WRITES.inc()
            self._audit_refusal("state.refused", refused, attempted, reason)
            raise
        except TransitionRefused as refused:
            metrics.REFUSED_TRANSITIONS.inc()
            self._audit_refusal("transition.refused", refused, attempted, reason)
            raise

    def _audit_refusal(self, name: str, error: Exception, attempted: str, reason: str) -> None:
        detail: dict[str, Any] = {"attempted": attempted}
        if isinstance(error, StateValidationError):
            detail["violations"] = [str(v) for v in error.violations]
        if isinstance(error, TransitionRefused):
            detail.update(source=error.source, target=error.target)
        log.info("%s for %s: %s", name, mask_identity(self.key), error)
        self.manager.store.audit_append(
            self.key, AuditEvent(name, self._channel_name(), reason, detail)
        )

    def _leave_flow(self, doc: dict[str, Any]) -> dict[str, Any]:
        kept = {k: doc[k] for k in DEFAULT_PRESERVE if k in doc}
        flow_id = doc.get("stage", STAGE_INIT)
        stages = self.manager.stages
        back_to_auth = not doc.get("authenticated") and stages.allows(flow_id, STAGE_AUTH)
        kept["stage"] = STAGE_AUTH if back_to_auth else STAGE_MENU
        for name in STORE_FIELDS:
            if name in doc:
                kept[name] = doc[name]
        return kept

    def _flow_id(self) -> str | None:
        flow = self._snap.doc.get("flow_data")
        return flow.get("id") if isinstance(flow, dict) else None

    def _channel_name(self) -> str:
        channel = self.get_channel()
        return channel.key if channel else ""

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

        def put(doc: dict[str, Any]) -> None:
            if doc.get("jwt_token") == token:  # another handle may have stored a newer one
                doc["jwt_token"] = fresh

        self._write(put, "token.refreshed")
        return fresh

    def _expire_token(self) -> None:
        expired = self._snap.doc.get("jwt_token")

        def drop(doc: dict[str, Any]) -> None:
            if doc.get("jwt_token") == expired:  # a newer token stored meanwhile stays
                doc["jwt_token"] = None
                doc["authenticated"] = False

        self._write(drop, "token.expired", reason="the backend token expired and was not refreshed")
