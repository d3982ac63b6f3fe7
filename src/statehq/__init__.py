"""statehq: durable, atomic, versioned, member-centric conversation state for bots.

```python
from statehq import StateStore
store = StateStore.open()          # embedded Valkey under ./.statehq, or STATEHQ_REDIS_URL
snap = store.update("whatsapp:263771234567", {"flow_data": {"step": "amount"}})
```
"""

from .config import Settings
from .errors import (
    ConfigError,
    CorruptState,
    DocumentTooLarge,
    InvalidInput,
    InvalidMemberId,
    InvalidMessageId,
    InvalidPatch,
    LeaseBusy,
    LeaseError,
    LeaseLost,
    MutateTimeout,
    StateError,
    StoreFull,
    StoreUnavailable,
    VersionConflict,
    VersionNotFound,
)
from .store import (
    DEFAULT_PRESERVE,
    AsyncStateStore,
    HistoryEntry,
    Lease,
    SessionStatus,
    Snapshot,
    StateStore,
)

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_PRESERVE",
    "AsyncStateStore",
    "ConfigError",
    "CorruptState",
    "DocumentTooLarge",
    "HistoryEntry",
    "InvalidInput",
    "InvalidMemberId",
    "InvalidMessageId",
    "InvalidPatch",
    "Lease",
    "LeaseBusy",
    "LeaseError",
    "LeaseLost",
    "MutateTimeout",
    "SessionStatus",
    "Settings",
    "Snapshot",
    "StateError",
    "StateStore",
    "StoreFull",
    "StoreUnavailable",
    "VersionConflict",
    "VersionNotFound",
    "__version__",
]
