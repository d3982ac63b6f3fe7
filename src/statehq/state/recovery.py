"""Recovery of a session whose stored document cannot be read or breaks the rules.

Corruption, a bad migration, a hand edit: the newest version in the history that
decodes and validates is written back as a new version; if none does, the session is
reset to a safe state that keeps the identity (member id and channel) and nothing
else. Both are audited (``state.recovered`` / ``state.reset``) and counted, and
:attr:`RecoveryResult.message` is what the member is told.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .. import metrics
from ..errors import CorruptState, NoSession
from ..redact import get_logger, mask_identity
from ..store import HistoryEntry, SessionStatus, Snapshot
from ..store.audit import AuditEvent
from ..store.codec import STORE_FIELDS
from .channel_ids import ChannelId, member_of_key
from .model import STAGE_INIT

if TYPE_CHECKING:
    from .manager import StateManager
    from .validator import StateValidator

log = get_logger(__name__)

RESTORED_MESSAGE = (
    "Something went wrong with your session, so I put it back the way it was a moment ago. "
    "Please check where you are and carry on."
)
RESET_MESSAGE = (
    "Something went wrong with your session and I could not restore it, so we are starting "
    "again from the beginning. Your account is safe."
)


@dataclass(frozen=True)
class RecoveryResult:
    """What recovery did: ``healthy`` (nothing), ``restored`` from a version, or ``reset``."""

    outcome: str
    version: int
    restored_from: int | None
    problem: str

    @property
    def message(self) -> str:
        """A sentence for the member (empty when nothing needed recovering)."""
        return {"restored": RESTORED_MESSAGE, "reset": RESET_MESSAGE}.get(self.outcome, "")


def diagnose(manager: StateManager, key: str) -> tuple[Snapshot | None, str]:
    """The stored snapshot (None if unreadable or absent) and what is wrong ("" if nothing)."""
    try:
        snap = manager.store.get(key)
    except CorruptState as exc:
        return None, exc.detail
    return snap, violations_of(manager.validator, snap)


def recover(
    manager: StateManager, key: str, channel: ChannelId | None, reason: str
) -> tuple[RecoveryResult, Snapshot | None]:
    """Repair ``key`` if it needs it; see the module docstring."""
    snap, problem = diagnose(manager, key)
    if not problem:
        version = snap.version if snap else 0
        return RecoveryResult("healthy", version, None, ""), snap
    doc, event, source = plan(
        manager.validator, key, channel, _history(manager, key), problem, reason
    )
    written = _write(manager, key, doc, event, snap if source is not None else None)
    return finished(key, written, source, problem), written


def violations_of(validator: StateValidator, snap: Snapshot | None) -> str:
    """What is wrong with a stored snapshot, in one line ("" when nothing)."""
    found = validator.violations(snap.doc) if snap is not None else []
    return "; ".join(str(v) for v in found)


def plan(
    validator: StateValidator,
    key: str,
    channel: ChannelId | None,
    history: list[HistoryEntry],
    problem: str,
    reason: str,
) -> tuple[dict[str, Any], AuditEvent, int | None]:
    """The document to write, its audit entry, and the version it restores (None: a reset)."""
    for entry in history:
        if validator.violations(entry.doc):
            continue
        doc = {k: v for k, v in entry.doc.items() if k not in STORE_FIELDS}
        detail = {"restored_from": entry.version, "problem": problem}
        return doc, AuditEvent("state.recovered", "", reason, detail), entry.version
    event = AuditEvent("state.reset", "", reason, {"problem": problem})
    return safe_state(key, channel, history), event, None


def finished(key: str, written: Snapshot, source: int | None, problem: str) -> RecoveryResult:
    """Count and log what recovery did; the result handed to the caller."""
    if source is None:
        metrics.RECOVERIES.labels("reset").inc()
        log.warning("reset %s, no valid version in history: %s", mask_identity(key), problem)
        return RecoveryResult("reset", written.version, None, problem)
    metrics.RECOVERIES.labels("restored").inc()
    log.warning("restored %s from version %d: %s", mask_identity(key), source, problem)
    return RecoveryResult("restored", written.version, source, problem)


def reset(manager: StateManager, key: str, channel: ChannelId | None, reason: str) -> Snapshot:
    """Replace ``key``'s session with the safe state that keeps identity (audited).

    Raises :class:`NoSession` for a key with no session, live, expired or in history: a
    mistyped member id must not create one.
    """
    history = _history(manager, key)
    if not history and manager.store.status(key) is SessionStatus.NONE:
        raise NoSession(key, "reset")
    doc = safe_state(key, channel, history)
    return _write(manager, key, doc, AuditEvent("state.reset", "", reason, {}))


def _history(manager: StateManager, key: str) -> list[HistoryEntry]:
    """The decodable history entries, newest first; none when the list itself is garbage."""
    try:
        return manager.store.history(key, skip_corrupt=True)
    except CorruptState:
        return []


def safe_state(key: str, channel: ChannelId | None, history: list[Any]) -> dict[str, Any]:
    """Identity only: the member id (from the key) and the channel, at stage INIT."""
    doc: dict[str, Any] = {"stage": STAGE_INIT, "authenticated": False}
    member_id = member_of_key(key)
    if member_id is not None:
        doc["member_id"] = member_id
    if channel is None and member_id is None:
        channel = ChannelId.parse(key)
    if channel is None:
        channel = _channel_from(history)
    doc["channel"] = channel.as_dict() if channel else None
    return doc


def _channel_from(history: list[Any]) -> ChannelId | None:
    for entry in history:
        stored = entry.doc.get("channel")
        try:
            return ChannelId(stored["type"], stored["identifier"])
        except (TypeError, KeyError, ValueError):
            continue
    return None


def _write(
    manager: StateManager,
    key: str,
    doc: dict[str, Any],
    event: AuditEvent,
    seen: Snapshot | None = None,
) -> Snapshot:
    store = manager.store
    # When the bad document was readable, only replace that version: a valid write that
    # landed since must not be overwritten by an older version (VersionConflict instead).
    expected = seen.version if seen is not None else None
    try:
        return store.replace(key, doc, expected_version=expected, audit=(event,))
    except CorruptState:
        # Not even a hash (someone SET a string over it): clear the keys, keep the version counter.
        store.discard(key)
        return store.replace(key, doc, audit=(event,))
