"""Backup files: every session as JSON Lines, and putting them back.

The file (format 1) is UTF-8 JSON Lines. The first line is a header::

    {"statehq_backup": 1, "created": "2026-11-22T08:00:00.000000Z", "sessions": 1234,
     "with_audit": false, "statehq": "0.1.0"}

then one line per session (:class:`statehq.store.SessionRecord`: document, version,
TTL, history, bound channels, and the audit trail when taken with it), and a last line
``{"statehq_backup_end": {"sessions": n}}`` saying how many were written: a file cut
short (a full disk, a partial copy) is told apart from a complete one.
``sessions`` is how many sessions the backup found when it started; one that expires
before it is read is left out, so the file may hold fewer.

Each session is read in one atomic call, so every record is consistent while the bot
keeps writing; the backup as a whole is not a snapshot of one instant.

Restoring is idempotent and careful: a session already as recorded is left alone, and
a live session newer than its record (or different at the same version) is refused
unless ``force``. A line that cannot be restored - not JSON, not a record, a document
the validator refuses - is skipped and reported with its line number; the other lines
are still restored, and nothing of the skipped session is written.

The file holds what the sessions hold, backend tokens (``jwt_token``) included, so a
restored member is still logged in: keep it as private as the store itself.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, Any

from .. import __version__
from ..errors import CorruptState, InvalidInput
from ..store import AuditEvent, RestoreStatus, SessionRecord, StateStore
from .channel_ids import ChannelId, member_of_key
from .manager import StateManager

FORMAT = 1
"""The version of the file format this statehq writes and reads."""

Progress = Callable[[int, int | None], None]
"""Called as sessions are done: ``progress(done, total)`` (total None when unknown)."""


@dataclass(frozen=True)
class BackupHeader:
    """The first line of a backup file."""

    created: str
    sessions: int | None
    with_audit: bool
    statehq: str = __version__
    format: int = FORMAT

    def to_json(self) -> str:
        """The header line, without its newline."""
        return json.dumps(
            {
                "statehq_backup": self.format,
                "created": self.created,
                "sessions": self.sessions,
                "with_audit": self.with_audit,
                "statehq": self.statehq,
            }
        )

    @classmethod
    def parse(cls, line: bytes) -> BackupHeader:
        """Read a header line; :class:`InvalidInput` when it is not one this statehq reads."""
        try:
            data = json.loads(line)
        except (ValueError, UnicodeDecodeError):
            data = None
        if not isinstance(data, dict) or "statehq_backup" not in data:
            raise InvalidInput("is not a statehq backup (its first line is not a backup header)")
        format_ = data["statehq_backup"]
        if format_ != FORMAT:
            raise InvalidInput(
                f"is a statehq backup in format {format_!r}; this statehq ({__version__}) reads "
                f"format {FORMAT} only"
            )
        sessions = data.get("sessions")
        return cls(
            created=str(data.get("created", "")),
            sessions=sessions if isinstance(sessions, int) and sessions >= 0 else None,
            with_audit=data.get("with_audit") is True,
            statehq=str(data.get("statehq", "")),
        )


@dataclass
class BackupSummary:
    """What a backup wrote."""

    sessions: int = 0
    bindings: int = 0
    audit_entries: int = 0
    with_audit: bool = False
    unreadable: list[str] = field(default_factory=list)
    """Sessions whose stored document could not be decoded: not in the file."""

    def as_dict(self) -> dict[str, Any]:
        """The JSON-ready form."""
        return {
            "sessions": self.sessions,
            "bindings": self.bindings,
            "audit_entries": self.audit_entries,
            "with_audit": self.with_audit,
            "unreadable": self.unreadable,
        }


@dataclass
class RestoreSummary:
    """What a restore did, record by record, added up."""

    created: str = ""
    """When the backup was taken (its header's ``created``)."""
    counts: dict[str, int] = field(default_factory=lambda: {s.value: 0 for s in RestoreStatus})
    refused: list[str] = field(default_factory=list)
    """One sentence per session left alone because the store holds a newer one."""
    invalid: list[str] = field(default_factory=list)
    """One sentence per line skipped, starting ``line N:``."""
    bindings_restored: int = 0
    bindings_refused: list[str] = field(default_factory=list)
    audit_added: int = 0

    @property
    def complete(self) -> bool:
        """True when every line was restored or already there, bindings included."""
        return not (self.refused or self.invalid or self.bindings_refused)

    def as_dict(self) -> dict[str, Any]:
        """The JSON-ready form."""
        return {
            "backup_created": self.created,
            **self.counts,
            "invalid": len(self.invalid),
            "bindings_restored": self.bindings_restored,
            "audit_added": self.audit_added,
            "problems": [*self.invalid, *self.refused, *self.bindings_refused],
        }


# -- backup ------------------------------------------------------------------------------


def write_backup(
    store: StateStore,
    stream: IO[bytes],
    *,
    with_audit: bool = False,
    progress: Progress | None = None,
) -> BackupSummary:
    """Write every live session of ``store`` to ``stream`` (see the module docstring)."""
    keys = list(store.session_keys())  # first, so the header and progress know the total
    bindings = store.route_map()
    header = BackupHeader(_timestamp(datetime.now(UTC)), len(keys), with_audit)
    stream.write(header.to_json().encode() + b"\n")
    summary = BackupSummary(with_audit=with_audit)
    for done, key in enumerate(keys, start=1):
        try:
            record = store.export_session(
                key, with_audit=with_audit, bindings=bindings.get(key, [])
            )
        except CorruptState:
            summary.unreadable.append(key)
            record = None
        if record is not None:
            stream.write(record.to_json().encode() + b"\n")
            summary.sessions += 1
            summary.bindings += len(record.bindings)
            summary.audit_entries += len(record.audit or ())
        if progress is not None:
            progress(done, len(keys))
    stream.write(json.dumps({END: {"sessions": summary.sessions}}).encode() + b"\n")
    return summary


def _timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


# -- restore -----------------------------------------------------------------------------


END = "statehq_backup_end"
"""The key of the last line, which counts the sessions written."""


@dataclass
class Ending:
    """What the end of a backup file said: the sessions it counts (None: no end line)."""

    sessions: int | None = None
    records: int = 0

    def problem(self) -> str | None:
        """Why the file is not whole, if it is not."""
        if self.sessions is None:
            return (
                f"the file ends without its last line after {self.records} sessions: "
                f"it was cut short (a full disk, a partial copy?)"
            )
        if self.sessions != self.records:
            return f"the file holds {self.records} sessions, its last line counts {self.sessions}"
        return None


def read_backup(
    stream: IO[bytes], ending: Ending | None = None
) -> tuple[BackupHeader, Iterator[tuple[int, bytes]]]:
    """The header, and the session lines with their numbers (blank lines left out).

    The end line is not yielded: it is recorded in ``ending``. Raises
    :class:`InvalidInput` when the first line is not a backup header.
    """
    first = stream.readline()
    if not first.strip():
        raise InvalidInput("is empty, not a statehq backup")
    header = BackupHeader.parse(first)
    end = ending if ending is not None else Ending()

    def lines() -> Iterator[tuple[int, bytes]]:
        for number, line in enumerate(stream, start=2):
            if not line.strip():
                continue
            if line.startswith(b'{"' + END.encode()):
                end.sessions = _counted(line)
                continue
            end.records += 1
            yield number, line

    return header, lines()


def _counted(line: bytes) -> int:
    try:
        count = json.loads(line)[END]["sessions"]
    except (ValueError, KeyError, TypeError):
        return -1
    return count if isinstance(count, int) else -1


def restore_backup(
    manager: StateManager,
    stream: IO[bytes],
    *,
    force: bool = False,
    progress: Progress | None = None,
    reason: str = "restore from backup",
) -> RestoreSummary:
    """Restore every session in ``stream`` (see the module docstring)."""
    ending = Ending()
    header, lines = read_backup(stream, ending)
    summary = RestoreSummary(created=header.created)
    for done, (number, line) in enumerate(lines, start=1):
        try:
            record = check_record(manager, SessionRecord.from_json(line))
            event = AuditEvent("session.restored", "", reason, {"backup": header.created})
            outcome = manager.store.restore_session(record, event=event, force=force)
        except InvalidInput as bad:
            summary.invalid.append(f"line {number}: {bad}")
        else:
            summary.counts[outcome.status.value] += 1
            if outcome.refused:
                summary.refused.append(outcome.explain(record.version))
            summary.bindings_restored += len(outcome.bindings_restored)
            summary.bindings_refused += outcome.bindings_refused
            summary.audit_added += outcome.audit_added
        if progress is not None:
            progress(done, header.sessions)
    cut = ending.problem()
    if cut:
        summary.invalid.append(cut)
    return summary


def check_record(manager: StateManager, record: SessionRecord) -> SessionRecord:
    """``record`` if its keys are session keys and its document passes the validator.

    Raises :class:`InvalidInput` naming the problem (nothing is written for it).
    """
    if member_of_key(record.key) is None:
        ChannelId.parse(record.key)  # a channel identity, else InvalidInput
    for channel in record.bindings:
        ChannelId.parse(channel)
    found = manager.validator.violations(record.doc)
    if found:
        problems = "; ".join(str(violation) for violation in found)
        raise InvalidInput(f"{record.key}: the document breaks the state rules: {problems}")
    return record
