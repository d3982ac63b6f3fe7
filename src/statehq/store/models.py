"""What the store hands back: snapshots, history entries, session status, leases."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

DEFAULT_PRESERVE: tuple[str, ...] = (
    "member_id",
    "channel",
    "jwt_token",
    "authenticated",
    "profile",
    "current_account",
)
"""Top-level fields :meth:`StateStore.cleanup` keeps by default (DESIGN.md §2)."""


@dataclass(frozen=True)
class Snapshot:
    """A member's document at one version.

    ``doc`` is the caller's own copy (changing it changes nothing stored) and includes the
    store-owned ``_version`` and ``_last_updated``. ``ttl`` is the remaining session time
    in seconds. ``duplicate`` is true when a write carried a ``message_id`` that had already
    been applied: nothing was written, and the snapshot shows the current state.
    """

    doc: dict[str, Any]
    version: int
    ttl: float | None
    duplicate: bool = False

    @property
    def last_updated(self) -> str | None:
        """ISO-8601 UTC time of the write that produced this version."""
        value = self.doc.get("_last_updated")
        return value if isinstance(value, str) else None


@dataclass(frozen=True)
class HistoryEntry:
    """One past version kept in the member's history ring."""

    version: int
    last_updated: str | None
    doc: dict[str, Any]


class SessionStatus(enum.Enum):
    """Whether a member has a live session, had one that expired, or has none on record."""

    ACTIVE = "active"
    EXPIRED = "expired"
    NONE = "none"


@dataclass
class Lease:
    """The right to process one member's messages, proven by a fencing token.

    Pass it to writes (``lease=``): the store refuses them with :class:`LeaseLost` once the
    token is no longer current. Use it as a context manager to release it on exit.
    """

    member_id: str
    token: int
    holder: str
    ttl: float
    _release: Any = field(default=None, repr=False, compare=False)

    def __enter__(self) -> Lease:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._release is not None:
            self._release(self)

    async def __aenter__(self) -> Lease:
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._release is not None:
            await self._release(self)
