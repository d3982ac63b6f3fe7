"""Everything an operator needs to see about one member, in one report.

The answer to "member X is stuck": the document (secrets masked), its version and TTL,
where the conversation is (stage, flow, step), which channels are bound to it, and per
channel what waits around it - updates queued in the inbox, replies not yet sent, dead
letters, and which worker holds the lease.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..redact import redact_value
from ..store import SessionStatus
from ..store.inbox import Inbox
from .channel_ids import member_of_key

if TYPE_CHECKING:
    from .lookup import Located
    from .manager import StateManager


@dataclass(frozen=True)
class Waiting:
    """What waits around one channel identity (a sender) of the member."""

    channel: str
    backlog: int
    """Updates queued in the inbox, not yet processed."""
    pending: int
    """Replies written with the state but not yet sent."""
    dead: int
    """Updates set aside after failing (``statehq dead list --sender``)."""
    lease: str | None
    """The worker holding this sender's lease, or None."""


@dataclass(frozen=True)
class SessionReport:
    """One member's session as ``statehq state show`` prints it."""

    located: Located
    status: str
    version: int | None
    ttl: float | None
    document: dict[str, Any] | None
    """The document, secrets redacted (None without a live session)."""
    bound_channels: list[str]
    waiting: list[Waiting] = field(default_factory=list)
    raw: dict[str, Any] | None = None
    """The document as stored, unredacted: for checks, never for printing."""

    @property
    def flow(self) -> str | None:
        """The flow the member is in, if any."""
        return self._flow_field("id")

    @property
    def step(self) -> str | None:
        """The step of that flow, if any."""
        return self._flow_field("step")

    @property
    def stage(self) -> str | None:
        """The session's stage."""
        stage = (self.document or {}).get("stage")
        return stage if isinstance(stage, str) else None

    @property
    def refused_input(self) -> tuple[str, int] | None:
        """The error of the member's last refused answer in this step, and how many
        attempts were made: the usual reason a member "is stuck"."""
        flow = (self.document or {}).get("flow_data")
        checks = flow.get("_validation") if isinstance(flow, dict) else None
        last = checks.get("last_attempt") if isinstance(checks, dict) else None
        if not isinstance(last, dict) or last.get("ok") is not False:
            return None
        attempts = checks.get("attempts") if isinstance(checks, dict) else 0
        return str(last.get("error") or ""), attempts if isinstance(attempts, int) else 0

    def _flow_field(self, name: str) -> str | None:
        flow = (self.document or {}).get("flow_data")
        value = flow.get(name) if isinstance(flow, dict) else None
        return value if isinstance(value, str) else None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (the document already redacted)."""
        return {
            "asked": self.located.asked,
            "found_by": self.located.via,
            "key": self.located.key,
            "status": self.status,
            "version": self.version,
            "ttl": self.ttl,
            "stage": self.stage,
            "flow": self.flow,
            "step": self.step,
            "refused_input": (
                {"error": self.refused_input[0], "attempts": self.refused_input[1]}
                if self.refused_input
                else None
            ),
            "bound_channels": self.bound_channels,
            "channels": [vars(w) for w in self.waiting],
            "document": self.document,
        }


def inspect(manager: StateManager, located: Located) -> SessionReport:
    """Gather the report for a located session (reads only; the TTL is not slid)."""
    store, key = manager.store, located.key
    snap = store.get(key)
    status = SessionStatus.ACTIVE if snap else store.status(key)
    document = redact_value(snap.doc) if snap else None
    hint = _channel_of(snap.doc if snap else None)
    bound = store.bound_channels(key, hint) if member_of_key(key) else []
    senders = bound if member_of_key(key) else [key]
    inbox = Inbox(store.settings)
    waiting = []
    for sender in senders:
        view = store.execute(inbox.queue_view(sender, key))
        waiting.append(
            Waiting(sender, view["backlog"], view["pending"], view["dead"], view["lease"])
        )
    return SessionReport(
        located=located,
        status=status.value,
        version=snap.version if snap else None,
        ttl=snap.ttl if snap else None,
        document=document,
        bound_channels=bound,
        waiting=waiting,
        raw=snap.doc if snap else None,
    )


def _channel_of(doc: dict[str, Any] | None) -> str | None:
    channel = (doc or {}).get("channel")
    if isinstance(channel, dict) and channel.get("type") and channel.get("identifier"):
        return f"{channel['type']}:{channel['identifier']}"
    return None
