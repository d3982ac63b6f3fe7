"""Writing mapped legacy sessions into statehq, once, and deleting the source only after.

Each mapped session becomes a :class:`~statehq.store.SessionRecord` at version 1 with
the legacy session's remaining TTL, written by the store's session import
(:meth:`~statehq.store.StateStore.restore_session`): one script per session, audited as
``session.migrated`` naming the source keys, binding a signed-in member's number.

Running twice writes nothing the second time: a statehq session that already holds the
mapped document is reported ``unchanged`` (the record then carries that session's own
version and write time, so the import script sees the same session and only completes a
missing binding). A statehq session holding anything else - the member has moved on in
statehq - is never replaced: the legacy key is skipped, saying so. Legacy keys are
deleted (``delete_source``) only once the statehq session has been read back equal to
the mapped document, and each only if it still holds the value that was read.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..store import AuditEvent, RestoreStatus, SessionRecord, StateStore
from .mapping import Mapped, map_session
from .pieces import BotOutline, Unmapped
from .source import LegacySession, LegacySource

EVENT = "session.migrated"
REASON = "statehq migrate"

Progress = Callable[[int, int], None]
"""Told ``(done, total)`` after each legacy session."""


class Outcome(enum.StrEnum):
    """What happened to one legacy session."""

    MIGRATED = "migrated"
    UNCHANGED = "unchanged"
    """statehq already holds it (an earlier run): nothing written."""
    WOULD_MIGRATE = "would migrate"
    """A dry run's ``migrated``."""
    SKIPPED = "skipped"
    """Not migrated; the report's ``reason`` says why."""


@dataclass(frozen=True)
class KeyReport:
    """The result for one legacy session, named by its main source key."""

    source: str
    source_keys: list[str]
    layout: str
    outcome: Outcome
    session: str | None = None
    reason: str | None = None
    ttl: float | None = None
    bindings: tuple[str, ...] = ()
    unmapped: tuple[Unmapped, ...] = ()
    deleted: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "source": self.source,
            "source_keys": self.source_keys,
            "layout": self.layout,
            "outcome": self.outcome.value,
            "session": self.session,
            "reason": self.reason,
            "ttl": None if self.ttl is None else round(self.ttl, 1),
            "bindings": list(self.bindings),
            "unmapped": [item.as_dict() for item in self.unmapped],
            "deleted": list(self.deleted),
        }


@dataclass
class Migration:
    """One ``statehq migrate`` run from ``source`` into ``store`` for the bot ``outline``."""

    source: LegacySource
    store: StateStore
    outline: BotOutline
    dry_run: bool = False
    delete_source: bool = False
    progress: Progress | None = None

    def run(self, match: str = "*") -> list[KeyReport]:
        """Migrate every legacy session whose keys match ``match``; one report each."""
        sessions = self.source.sessions(match)
        mapped = one_per_session_key([map_session(session, self.outline) for session in sessions])
        reports = []
        for done, (item, superseded_by) in enumerate(mapped, 1):
            if superseded_by is not None:
                report = _skipped(
                    item,
                    f"{superseded_by} maps to {item.session_key} too and was written more "
                    f"recently; it is migrated instead",
                )
            else:
                report = self._migrate(item)
            reports.append(report)
            if self.progress is not None:
                self.progress(done, len(mapped))
        return reports

    def _migrate(self, item: Mapped) -> KeyReport:
        if item.skipped is not None or item.session_key is None or item.doc is None:
            return _skipped(item, item.skipped or "nothing to migrate")
        legacy, key = item.legacy, item.session_key
        unmapped = list(item.unmapped)
        ttl = legacy.ttl
        if ttl is None:
            ttl = self.store.settings.session_ttl
            unmapped.append(Unmapped("ttl", f"the legacy keys never expire; given {ttl:.0f} s"))
        live = self.store.export_session(key)
        if live is not None and live.doc != item.doc:
            return _skipped(
                item,
                f"statehq already holds {key} at version {live.version} with another "
                f"document; not replaced",
            )
        record = SessionRecord(
            key=key,
            version=live.version if live else 1,
            ttl=ttl,
            doc=item.doc,
            bindings=list(item.bindings),
            last_updated=live.last_updated if live else None,
        )
        report = KeyReport(
            legacy.name,
            legacy.keys,
            legacy.layout,
            Outcome.WOULD_MIGRATE if live is None else Outcome.UNCHANGED,
            session=key,
            ttl=ttl,
            bindings=item.bindings,
            unmapped=tuple(unmapped),
        )
        if self.dry_run:
            return report
        return self._write(item, record, report)

    def _write(self, item: Mapped, record: SessionRecord, report: KeyReport) -> KeyReport:
        legacy = item.legacy
        channel = item.bindings[0] if item.bindings else record.key
        detail = {"from": legacy.keys, "layout": legacy.layout}
        event = AuditEvent(EVENT, channel, REASON, detail)
        outcome = self.store.restore_session(record, event=event)
        if outcome.refused:
            why = (
                f"{record.key} is bound to {outcome.moved_to}; not migrated"
                if outcome.status is RestoreStatus.MOVED
                else f"statehq already holds {record.key} at version {outcome.live_version} "
                f"with another document; not replaced"
            )
            return _skipped(item, why)
        unmapped = report.unmapped + tuple(
            Unmapped("binding", refused) for refused in outcome.bindings_refused
        )
        done = Outcome.MIGRATED if outcome.status is RestoreStatus.RESTORED else Outcome.UNCHANGED
        deleted = self._delete_source(item) if self.delete_source else ()
        return KeyReport(
            report.source,
            report.source_keys,
            report.layout,
            done,
            session=record.key,
            ttl=report.ttl,
            bindings=report.bindings,
            unmapped=unmapped,
            deleted=deleted,
        )

    def _delete_source(self, item: Mapped) -> tuple[str, ...]:
        """Delete the legacy keys once the statehq session reads back as mapped."""
        written = self.store.export_session(item.session_key) if item.session_key else None
        if written is None or written.doc != item.doc:
            return ()
        parts = item.legacy.parts.values()
        return tuple(part.key.key for part in parts if self.source.delete_if_unchanged(part))


def _skipped(item: Mapped, reason: str) -> KeyReport:
    legacy = item.legacy
    return KeyReport(
        legacy.name,
        legacy.keys,
        legacy.layout,
        Outcome.SKIPPED,
        session=item.session_key,
        reason=reason,
        ttl=legacy.ttl,
        unmapped=item.unmapped,
    )


def one_per_session_key(mapped: list[Mapped]) -> list[tuple[Mapped, str | None]]:
    """Each mapped session, with the legacy key that wins its statehq key when another
    legacy session maps there too (the most recently written: the longest TTL left)."""
    winners: dict[str, LegacySession] = {}
    for item in mapped:
        if item.session_key is None or item.skipped is not None:
            continue
        best = winners.get(item.session_key)
        if best is None or _freshness(item.legacy) > _freshness(best):
            winners[item.session_key] = item.legacy
    result: list[tuple[Mapped, str | None]] = []
    for item in mapped:
        winner = winners.get(item.session_key or "")
        lost = winner is not None and winner is not item.legacy and item.skipped is None
        result.append((item, winner.name if lost and winner else None))
    return result


def _freshness(session: LegacySession) -> float:
    return float("inf") if session.ttl is None else session.ttl
