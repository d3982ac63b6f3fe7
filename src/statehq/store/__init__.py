"""The atomic store: one server-side script per operation on Redis/Valkey."""

from .aio import AsyncStateStore
from .audit import AuditEntry, AuditEvent
from .embedded import EmbeddedValkey
from .models import DEFAULT_PRESERVE, HistoryEntry, Lease, SessionStatus, Snapshot
from .sync import StateStore

__all__ = [
    "DEFAULT_PRESERVE",
    "AsyncStateStore",
    "AuditEntry",
    "AuditEvent",
    "EmbeddedValkey",
    "HistoryEntry",
    "Lease",
    "SessionStatus",
    "Snapshot",
    "StateStore",
]
