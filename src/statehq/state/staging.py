"""A turn in progress: a message's writes held until they are committed as one.

:meth:`MemberSession.begin_turn` starts one; each write is validated and applied to a
draft at once (so a refusal still raises where it happens), and its audit events are
held; :meth:`MemberSession.commit_turn` hands the lot to one store script.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from ..store import Snapshot
from ..store.audit import AuditEvent

Change = Callable[[dict[str, Any]], dict[str, Any] | None]


class StagedTurn:
    """The snapshot a turn began from, and the audit events its writes have made."""

    def __init__(self, base: Snapshot) -> None:
        self.base = base
        self.events: list[AuditEvent] = []

    @property
    def version(self) -> int:
        """The version the session will have once the turn is committed."""
        return self.base.version + (1 if self.events else 0)

    def stage(self, current: Snapshot, apply: Change, events: tuple[AuditEvent, ...]) -> Snapshot:
        """``current`` with ``apply`` done to a copy of its document; the events held."""
        draft = copy.deepcopy(current.doc)
        result = apply(draft)
        self.events.extend(events)
        return Snapshot(draft if result is None else result, current.version, current.ttl)
