"""What a session write is, apart from how it reaches the store: the rules shared by the
blocking :class:`~statehq.state.session.MemberSession` and its asyncio twin
:class:`~statehq.state.async_session.AsyncMemberSession`.

Each public write of a session (``update_state``, ``start_flow``, ``end_flow``, ...) is
described here once as a :class:`Write`: the change to the document, the audit event
it records and which rules apply. :func:`guarded` wraps the change in the rules every
write meets (the stage transition, then the validator on the whole result), and
:func:`refusal_event` is what a refused write leaves in the audit trail. The two
session classes only decide how to run the guarded change (a blocking or an awaited
``mutate``), so the rules cannot drift apart between them.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from .. import metrics
from ..errors import (
    InvalidInput,
    SessionEnded,
    StateValidationError,
    TransitionRefused,
    VersionNotFound,
)
from ..redact import get_logger, mask_identity, redact_text
from ..store import DEFAULT_PRESERVE, HistoryEntry
from ..store.audit import AuditEvent
from ..store.codec import STORE_FIELDS
from .channel_ids import ChannelId, member_of_key
from .documents import active_flow, merge_patch
from .model import STAGE_AUTH, STAGE_INIT, STAGE_MENU, fresh_validation
from .stages import Stages
from .staging import Change
from .tokens import token_expiry
from .validator import StateValidator, watched

log = get_logger(__name__)


@dataclass(frozen=True)
class Write:
    """One session write: the change, its audit event, and which rules it is exempt from.

    ``identity``: the change may set ``channel``/``member_id`` (rollback, binding);
    ``stage``: the stage transition is checked (a rollback restores any stage).
    """

    change: Change
    event: str
    reason: str = ""
    detail: Mapping[str, Any] | None = None
    message_id: str | None = None
    identity: bool = False
    stage: bool = True

    def audit(self, channel: str) -> tuple[AuditEvent, ...]:
        """The audit entries this write appends, in the same script call as the change."""
        return (AuditEvent(self.event, channel, self.reason, self.detail),)


def guarded(key: str, write: Write, validator: StateValidator, stages: Stages) -> Change:
    """``write.change`` wrapped in the rules: transition declared, whole result valid."""

    def apply(doc: dict[str, Any]) -> dict[str, Any]:
        if not doc:
            raise SessionEnded(key)
        before = watched(doc)
        result = write.change(doc)
        after = doc if result is None else result
        source = before.get("stage", STAGE_INIT)
        target = after.get("stage", STAGE_INIT)
        checked = write.stage and isinstance(source, str) and isinstance(target, str)
        if checked and not stages.allows(source, target):
            raise TransitionRefused(key, source, target, stages.targets(source))
        validator.check(key, before, after, identity=write.identity)
        return after

    return apply


def refusal_event(
    key: str, error: Exception, attempted: str, reason: str, channel: str
) -> AuditEvent | None:
    """The audit entry (counted and logged) for a refused write; None for other errors."""
    detail: dict[str, Any] = {"attempted": attempted}
    if isinstance(error, StateValidationError):
        name = "state.refused"
        metrics.REFUSED_WRITES.inc()
        detail["violations"] = [str(v) for v in error.violations]
    elif isinstance(error, TransitionRefused):
        name = "transition.refused"
        metrics.REFUSED_TRANSITIONS.inc()
        detail.update(source=error.source, target=error.target)
    else:
        return None
    log.info("%s for %s: %s", name, mask_identity(key), error)
    return AuditEvent(name, channel, reason, detail)


# -- starting a session -----------------------------------------------------------------------


def fresh_document(key: str, channel: ChannelId | None) -> dict[str, Any]:
    """The document a new session under ``key`` starts with."""
    doc: dict[str, Any] = {"stage": STAGE_INIT, "authenticated": False}
    doc["channel"] = channel.as_dict() if channel else None
    member_id = member_of_key(key)
    if member_id is not None:
        doc["member_id"] = member_id
    return doc


def start(
    validator: StateValidator, key: str, channel: ChannelId | None, expired: bool
) -> tuple[dict[str, Any], list[AuditEvent]]:
    """A new session's document (checked) and audit entries; ``expired``: the last timed out."""
    doc = fresh_document(key, channel)
    name = channel.key if channel else ""
    events = [AuditEvent("session.started", name, "first message" if not expired else "")]
    if expired:
        metrics.EXPIRIES.inc()
        events.insert(0, AuditEvent("session.expired", name, "the previous session timed out"))
    validator.check(key, {}, doc, identity=True)
    return doc, events


def check_fresh(
    validator: StateValidator,
    stages: Stages,
    key: str,
    channel: ChannelId | None,
    patch: Mapping[str, Any],
) -> None:
    """Refuse ``patch`` on a member with no session before that session is started.

    Every rule the write will meet - the document's and the stage transition from the
    fresh session's INIT - so a refusal never leaves a new session behind.
    """
    fresh = fresh_document(key, channel)
    merged = merge_patch(copy.deepcopy(fresh), copy.deepcopy(dict(patch)))
    validator.check(key, {}, merged, identity=True)
    source, target = fresh["stage"], merged.get("stage", STAGE_INIT)
    if isinstance(target, str) and not stages.allows(source, target):
        raise TransitionRefused(key, source, target, stages.targets(source))


# -- the writes of a session, described once ------------------------------------------------


def update_state(patch: Mapping[str, Any], reason: str, message_id: str | None) -> Write:
    """Merge ``patch`` (RFC 7386: null deletes)."""
    if not isinstance(patch, Mapping):
        raise InvalidInput(f"a patch must be an object, got {type(patch).__name__}")
    frozen = copy.deepcopy(dict(patch))
    return Write(
        lambda doc: merge_patch(doc, frozen), "state.updated", reason, message_id=message_id
    )


def custom(change: Change, event: str, reason: str, detail: Mapping[str, Any] | None) -> Write:
    """A caller's own change to the document (it gets a private copy of the document)."""
    if not callable(change):
        raise InvalidInput(f"a change must be a function of the document, got {change!r:.60}")
    return Write(change, event, reason, detail)


def transition(stage: str, reason: str) -> Write:
    """Move to ``stage``."""

    def move(doc: dict[str, Any]) -> None:
        doc["stage"] = stage

    return Write(move, "stage.changed", reason, {"to": stage})


def start_flow(flow_id: str, step: str, data: Mapping[str, Any] | None) -> Write:
    """Enter flow ``flow_id`` at ``step`` with ``data``."""
    initial = copy.deepcopy(dict(data or {}))

    def start(doc: dict[str, Any]) -> None:
        doc["stage"] = flow_id
        doc["flow_data"] = {
            "id": flow_id,
            "step": step,
            "data": copy.deepcopy(initial),
            "_validation": fresh_validation(),
        }

    return Write(start, "flow.started", detail={"flow": flow_id, "step": step})


def advance(
    key: str,
    flow_id: str | None,
    step: str,
    data: Mapping[str, Any] | None,
    message_id: str | None,
) -> Write:
    """Go to ``step`` of the flow the handle last saw, merging ``data``."""
    patch = copy.deepcopy(dict(data or {}))

    def go(doc: dict[str, Any]) -> None:
        flow = active_flow(doc, key, flow_id)
        flow["step"] = step
        flow["data"] = merge_patch(flow.get("data") or {}, patch)
        flow["_validation"] = fresh_validation()

    detail = {"flow": flow_id, "step": step}
    return Write(go, "flow.step", detail=detail, message_id=message_id)


def record_validation(
    key: str, flow: Mapping[str, Any] | None, ok: bool, error: str | None, at: str
) -> Write:
    """Count an input attempt at the current step of ``flow`` (the handle's copy)."""
    error = redact_text(error) if error else error  # it may echo what the member typed
    expected = flow.get("id") if flow else None

    def count(doc: dict[str, Any]) -> None:
        current = active_flow(doc, key, expected)
        validation = dict(current.get("_validation") or fresh_validation())
        validation["attempts"] = int(validation.get("attempts", 0)) + 1
        validation["in_progress"] = not ok
        validation["last_attempt"] = {"at": at, "ok": ok, "error": None if ok else error}
        current["_validation"] = validation

    event = "validation.passed" if ok else "validation.failed"
    shown = flow or {}
    detail = {"flow": shown.get("id"), "step": shown.get("step"), "error": error}
    return Write(count, event, detail=detail)


def leave_flow(stages: Stages, flow_id: str, event: str, reason: str) -> Write:
    """End or cancel the active flow: keep identity, token, profile, account; back home."""

    def leave(doc: dict[str, Any]) -> dict[str, Any]:
        kept = {k: doc[k] for k in DEFAULT_PRESERVE if k in doc}
        current = doc.get("stage", STAGE_INIT)
        back_to_auth = not doc.get("authenticated") and stages.allows(current, STAGE_AUTH)
        kept["stage"] = STAGE_AUTH if back_to_auth else STAGE_MENU
        for name in STORE_FIELDS:
            if name in doc:
                kept[name] = doc[name]
        return kept

    return Write(leave, event, reason, {"flow": flow_id})


def set_jwt(token: str, reason: str) -> Write:
    """Store a new backend token (it must carry an ``exp`` claim)."""
    if token_expiry(token) is None:
        raise InvalidInput("the token is not a JWT with a readable exp claim; not stored")

    def put(doc: dict[str, Any]) -> None:
        doc["jwt_token"] = token

    return Write(put, "token.stored", reason)


def refreshed_token(token: str, fresh: str) -> Write:
    """Replace ``token`` by ``fresh``, unless another handle stored a newer one."""

    def put(doc: dict[str, Any]) -> None:
        if doc.get("jwt_token") == token:
            doc["jwt_token"] = fresh

    return Write(put, "token.refreshed")


def expired_token(expired: Any) -> Write:
    """Drop the expired token and the login (a newer token stored meanwhile stays)."""

    def drop(doc: dict[str, Any]) -> None:
        if doc.get("jwt_token") == expired:
            doc["jwt_token"] = None
            doc["authenticated"] = False

    return Write(drop, "token.expired", "the backend token expired and was not refreshed")


def rollback(key: str, entries: list[HistoryEntry], version: int, reason: str) -> Write:
    """Restore ``version`` from ``entries`` (the history) as a new version."""
    target = next((e for e in entries if e.version == version), None)
    if target is None:
        raise VersionNotFound(key, version, [e.version for e in entries])
    restored = {k: v for k, v in target.doc.items() if not k.startswith("_")}

    def restore(doc: dict[str, Any]) -> dict[str, Any]:
        return {**restored, **{k: doc[k] for k in STORE_FIELDS if k in doc}}

    return Write(
        restore,
        "state.rolled_back",
        reason,
        {"to_version": version},
        identity=True,
        stage=False,
    )


def token_due(token: Any, now: datetime, margin: timedelta) -> tuple[str | None, bool]:
    """The stored token if it may be handed out, and whether to refresh it first.

    A token within ``margin`` of its expiry is refreshed first (the caller falls back to
    the old one while it is still valid); an expired one is never handed out.
    """
    expiry = token_expiry(token) if isinstance(token, str) else None
    if expiry is None or not isinstance(token, str):
        return None, False
    if expiry - now > margin:
        return token, False
    return (token if expiry > now else None), True


def message_event(direction: str, message_id: str, kind: str, channel: str) -> AuditEvent:
    """The audit entry of an inbound (``in``) or outbound (``out``) message id."""
    if direction not in ("in", "out"):
        raise InvalidInput(f"direction must be 'in' or 'out', got {direction!r}")
    return AuditEvent(f"message.{direction}", channel, "", {"message_id": message_id, "kind": kind})
