"""statehq: durable, atomic, versioned, member-centric conversation state for bots.

```python
from statehq import StateManager, StateStore
manager = StateManager(StateStore.open())   # embedded Valkey under ./.statehq, or STATEHQ_REDIS_URL
session = manager.open("whatsapp:263771234567")
session.update_state({"profile": {"name": "Ann"}})   # validated, versioned, audited
```
"""

from .config import BotSettings, ServiceSettings, Settings, StoreSettings, WhatsAppSettings
from .errors import (
    ConfigError,
    CorruptState,
    DocumentTooLarge,
    IdentityError,
    InvalidInput,
    InvalidMemberId,
    InvalidMessageId,
    InvalidPatch,
    LeaseBusy,
    LeaseError,
    LeaseLost,
    MutateTimeout,
    NoLiveSession,
    NoSession,
    SessionEnded,
    SessionMoved,
    StateError,
    StateValidationError,
    StoreFull,
    StoreRefused,
    StoreUnavailable,
    TransitionRefused,
    VersionConflict,
    VersionNotFound,
    Violation,
)
from .state import (
    AsyncMemberSession,
    AsyncStateManager,
    AuditLog,
    ChannelId,
    MemberSession,
    RecoveryResult,
    Stages,
    StateManager,
    StateValidator,
)
from .store import (
    DEFAULT_PRESERVE,
    AsyncStateStore,
    AuditEntry,
    AuditEvent,
    HistoryEntry,
    Lease,
    SessionStatus,
    Snapshot,
    StateStore,
)

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_PRESERVE",
    "AsyncMemberSession",
    "AsyncStateManager",
    "AsyncStateStore",
    "AuditEntry",
    "AuditEvent",
    "AuditLog",
    "BotSettings",
    "ChannelId",
    "ConfigError",
    "CorruptState",
    "DocumentTooLarge",
    "HistoryEntry",
    "IdentityError",
    "InvalidInput",
    "InvalidMemberId",
    "InvalidMessageId",
    "InvalidPatch",
    "Lease",
    "LeaseBusy",
    "LeaseError",
    "LeaseLost",
    "MemberSession",
    "MutateTimeout",
    "NoLiveSession",
    "NoSession",
    "RecoveryResult",
    "ServiceSettings",
    "SessionEnded",
    "SessionMoved",
    "SessionStatus",
    "Settings",
    "Snapshot",
    "Stages",
    "StateError",
    "StateManager",
    "StateStore",
    "StateValidationError",
    "StateValidator",
    "StoreFull",
    "StoreRefused",
    "StoreSettings",
    "StoreUnavailable",
    "TransitionRefused",
    "VersionConflict",
    "VersionNotFound",
    "Violation",
    "WhatsAppSettings",
    "__version__",
]
