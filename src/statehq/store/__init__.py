"""The atomic store: one server-side script per operation on Redis/Valkey."""

from .aio import AsyncStateStore
from .audit import AuditEntry, AuditEvent
from .backup import RestoreOutcome, RestoreStatus
from .embedded import EmbeddedValkey
from .models import DEFAULT_PRESERVE, HistoryEntry, Lease, SessionStatus, Snapshot
from .records import HistoryRecord, SessionRecord
from .survey import ScanPage, SessionSummary, StoreSurvey
from .sync import StateStore

__all__ = [
    "DEFAULT_PRESERVE",
    "AsyncStateStore",
    "AuditEntry",
    "AuditEvent",
    "EmbeddedValkey",
    "HistoryEntry",
    "HistoryRecord",
    "Lease",
    "RestoreOutcome",
    "RestoreStatus",
    "ScanPage",
    "SessionRecord",
    "SessionStatus",
    "SessionSummary",
    "Snapshot",
    "StateStore",
    "StoreSurvey",
]
