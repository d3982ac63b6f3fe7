"""What the store hands back: snapshots, history entries, session status, leases."""

from __future__ import annotations

import enum
from collections.abc import Callable
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
"""Top-level fields :meth:`StateStore.cleanup` keeps by default (README: The state model)."""


class Snapshot:
    """A member's document at one version.

    ``doc`` is the caller's own copy (changing it changes nothing stored) and includes the
    store-owned ``_version`` and ``_last_updated``. ``ttl`` is the remaining session time
    in seconds. ``duplicate`` is true when a write carried a ``message_id`` that had already
    been applied: nothing was written, and the snapshot shows the current state.
    ``quiet`` is true when a quiet write changed nothing: the version was kept and
    ``doc`` is empty (the caller holds the document it wrote).

    A write's snapshot decodes ``doc`` on first access: callers that only need the new
    version do not pay for rebuilding the document.
    """

    __slots__ = ("_doc", "_load", "duplicate", "quiet", "ttl", "version")

    def __init__(
        self,
        doc: dict[str, Any] | None = None,
        version: int = 0,
        ttl: float | None = None,
        duplicate: bool = False,
        *,
        load: Callable[[], dict[str, Any]] | None = None,
        quiet: bool = False,
    ) -> None:
        self._doc = doc
        self._load = load
        self.version = version
        self.ttl = ttl
        self.duplicate = duplicate
        self.quiet = quiet

    @property
    def doc(self) -> dict[str, Any]:
        """The document, including ``_version`` and ``_last_updated``."""
        if self._doc is None:
            self._doc = self._load() if self._load is not None else {}
            self._load = None
        return self._doc

    @property
    def last_updated(self) -> str | None:
        """ISO-8601 UTC time of the write that produced this version."""
        value = self.doc.get("_last_updated")
        return value if isinstance(value, str) else None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Snapshot):
            return NotImplemented
        mine = (self.doc, self.version, self.ttl, self.duplicate)
        return mine == (other.doc, other.version, other.ttl, other.duplicate)

    __hash__ = None  # type: ignore[assignment]  # mutable document: not hashable

    def __repr__(self) -> str:
        from ..redact import redact_value  # the token must not reach a log via repr()

        return (
            f"Snapshot(doc={redact_value(self.doc)!r}, version={self.version}, ttl={self.ttl}, "
            f"duplicate={self.duplicate})"
        )


@dataclass(frozen=True)
class HistoryEntry:
    """One past version kept in the member's history ring."""

    version: int
    last_updated: str | None
    doc: dict[str, Any]


class SessionStatus(enum.Enum):
    """Whether a session is live, expired recently, moved to a member's key, or unknown."""

    ACTIVE = "active"
    EXPIRED = "expired"
    MOVED = "moved"
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
