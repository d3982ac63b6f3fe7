"""Sessions out of the store and back in: the operations behind backup, restore and migrate.

- :func:`session_page` lists sessions a page at a time (SCAN over every master, never
  KEYS); :func:`route_map` reads every identity route once, to give each session its
  bound channels.
- :func:`export` reads one session - document, version, TTL, history, audit - in one
  script call (``session_export.lua``): all of a session's keys share a hash tag, so the
  read is atomic on a Cluster too, and the record is consistent while writes continue.
- :func:`restore` writes one record back in one script call (``session_restore.lua``):
  refused when the live session is newer (or differs at the same version), nothing
  written when the live session already is the record, else document, history, version
  marker and TTL exactly as recorded, with one audit entry. Forced over a live session,
  the record's document is written as that session's next version instead (as a
  rollback does): versions never go back, and the live one stays in history. The
  record's bindings are then restored as routes, each with the ``bind`` script.

Records are semantic (:mod:`statehq.store.records`): this module is the one place that
turns them into the storage encoding and back.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import CorruptState, DocumentTooLarge, IdentityError, SessionMoved, VersionConflict
from . import codec, history, routes
from .audit import AuditEvent, decode_entry, entry_args
from .records import HistoryRecord, SessionRecord
from .requests import Command, Operation, Scan, Script

if TYPE_CHECKING:
    from .operations import Operations

PAGE_SIZE = 1000
"""Keys asked of the server per SCAN call."""


class RestoreStatus(enum.StrEnum):
    """What restoring one record did to its session."""

    RESTORED = "restored"
    """Written: there was no live session, or an older one (or ``force`` replaced it)."""
    UNCHANGED = "unchanged"
    """The live session already is the record: nothing was written."""
    NEWER = "newer"
    """Refused: the live session is at a newer version (``force`` replaces it)."""
    DIFFERENT = "different"
    """Refused: the live session is at the same version with another document."""
    MOVED = "moved"
    """Refused: the key is bound to another session; unbind it first (even with force)."""


REFUSED = frozenset({RestoreStatus.NEWER, RestoreStatus.DIFFERENT, RestoreStatus.MOVED})


@dataclass(frozen=True)
class RestoreOutcome:
    """The result of restoring one :class:`SessionRecord`.

    ``live_version`` is the version the live session had before (None: there was none;
    for ``moved``, the key it is bound to is ``moved_to``). ``bindings_restored`` are
    the channels bound by this call; ``bindings_refused`` say, one sentence each, why a
    channel was not bound.
    """

    key: str
    status: RestoreStatus
    live_version: int | None = None
    audit_added: int = 0
    bindings_restored: tuple[str, ...] = ()
    bindings_refused: tuple[str, ...] = ()
    moved_to: str | None = None

    @property
    def refused(self) -> bool:
        """True when the session was not restored because of what the store holds."""
        return self.status in REFUSED

    def explain(self, version: int) -> str:
        """A sentence for an operator about a refused record at ``version``."""
        if self.status is RestoreStatus.NEWER:
            return (
                f"{self.key} is at version {self.live_version} in the store, newer than the "
                f"backup's {version}; not restored (--force replaces it)"
            )
        if self.status is RestoreStatus.DIFFERENT:
            return (
                f"{self.key} is at version {version} in the store with another document than "
                f"the backup's; not restored (--force replaces it)"
            )
        if self.status is RestoreStatus.MOVED:
            return (
                f"{self.key} is bound to {self.moved_to}; not restored (statehq identity "
                f"unbind {self.key} first if that binding is wrong)"
            )
        return f"{self.key} {self.status.value} at version {version}"


# -- listing -----------------------------------------------------------------------------


def session_page(ops: Operations, cursor: str = "0", count: int = PAGE_SIZE) -> Operation:
    """One page of session keys: ``(next cursor, keys)``; a next cursor of ``"0"`` ends.

    SCAN may return a key twice (while the server resizes its table); callers that
    must see each session once keep a set.
    """
    following, found = yield Scan(cursor, ops.keys.doc_pattern(), count, type="hash")
    return following, [ops.keys.member_of(_text(key)) for key in found]


def route_map(ops: Operations) -> Operation:
    """Every identity route: ``{session key: [channel keys routed to it]}``, sorted."""
    bound: dict[str, list[str]] = {}
    cursor = "0"
    while True:
        cursor, found = yield Scan(cursor, ops.keys.route_pattern(), PAGE_SIZE, type="string")
        for key in found:
            target = yield Command(("GET", _text(key)))
            if target is not None:
                channel = ops.keys.member_of(_text(key))
                bound.setdefault(_text(target), []).append(channel)
        if cursor == "0":
            return {target: sorted(set(channels)) for target, channels in bound.items()}


# -- export ------------------------------------------------------------------------------


def export(
    ops: Operations, key: str, *, with_audit: bool = False, bindings: list[str] | None = None
) -> Operation:
    """The record of ``key``'s live session, or None when it has none (or moved).

    ``bindings``: the channels routed to ``key`` when the caller already knows them (a
    backup reads every route once); None looks them up (see :func:`routes.bound_channels`).
    Raises :class:`CorruptState` when the document cannot be decoded; an undecodable
    history entry is left out, as recovery would skip it.
    """
    keys = ops.keys.member(key)
    reply = yield Script(
        "session_export",
        [keys.doc, keys.hist, keys.route, keys.audit],
        ["1" if with_audit else ""],
    )
    if reply[0] != 1:
        return None
    doc = codec.decode_encoded_doc(reply[2], key)
    version = doc.get(codec.VERSION_FIELD)
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise CorruptState(key, f"the document's _version is {version!r}, not a version")
    if bindings is None:
        bindings = yield from routes.bound_channels(ops, key, _channel_key(doc))
    audit = [decode_entry(key, entry_id, raw).as_dict() for entry_id, raw in reply[4]]
    return SessionRecord(
        key=key,
        version=version,
        ttl=reply[1] / 1000 if reply[1] >= 0 else None,
        doc=_without_store_fields(doc),
        history=_history(reply[3], key),
        bindings=list(bindings),
        audit=audit if with_audit else None,
        last_updated=_last_updated(doc),
    )


def _history(encoded: list[bytes], key: str) -> list[HistoryRecord]:
    """The stored ring (a full version, then reverse patches) as full versions."""
    return [
        HistoryRecord(entry.version, _without_store_fields(entry.doc), _last_updated(entry.doc))
        for entry in history.read(encoded, key, skip_corrupt=True)
    ]


def _channel_key(doc: dict[str, Any]) -> str | None:
    channel = doc.get("channel")
    if isinstance(channel, dict) and {"type", "identifier"} <= channel.keys():
        return f"{channel['type']}:{channel['identifier']}"
    return None


# -- restore -----------------------------------------------------------------------------


def restore(ops: Operations, record: SessionRecord, *, force: bool, event: AuditEvent) -> Operation:
    """Put ``record`` back (see the module docstring); returns a :class:`RestoreOutcome`.

    ``event`` is the audit entry the write appends (``session.restored`` for a restore,
    ``session.migrated`` for a migration). Raises :class:`InvalidInput` (nothing written)
    for a record the store cannot hold: a bad key, a document over the size limit.
    """
    keys = ops.keys.member(record.key)
    # Never forced in the script: a live session is replaced below, as a new version.
    stamp, args = _restore_args(ops, record, False, event)
    reply = yield Script(
        "session_restore", [keys.doc, keys.hist, keys.seen, keys.route, keys.audit], args
    )
    status = RestoreStatus[_text(reply[0])]
    if status is RestoreStatus.MOVED:
        return RestoreOutcome(record.key, status, moved_to=_text(reply[1]))
    live_version = int(reply[1]) if int(reply[1]) >= 0 else None
    if status in REFUSED and force and live_version is not None:
        # Forced over a live session: the backup's content becomes the next version, as
        # a rollback does, so versions only ever go up and the live one stays in history.
        replaced = yield from _replace_live(ops, record, live_version, event)
        if replaced is None:  # the session changed in between: report it as found
            return RestoreOutcome(record.key, status, live_version)
        status = RestoreStatus.RESTORED
    elif status in REFUSED:
        return RestoreOutcome(record.key, status, live_version)
    if status is RestoreStatus.RESTORED and not force_replaced(reply):
        yield ops.tail_command(record.key, event.event, record.version, reply[3], stamp)
    restored, refused = [], []
    for channel in record.bindings:
        problem = yield from _bind(ops, channel, record.key, force, event.reason)
        if problem is None:
            restored.append(channel)
        elif problem:
            refused.append(problem)
    audit_added = 0 if force_replaced(reply) else int(reply[2])
    return RestoreOutcome(
        record.key, status, live_version, audit_added, tuple(restored), tuple(refused)
    )


def force_replaced(reply: Any) -> bool:
    """True when the script refused and the record was written by :func:`_replace_live`
    (its write already put its own line in the audit tail)."""
    return _text(reply[0]) in {status.name for status in REFUSED}


def _replace_live(
    ops: Operations, record: SessionRecord, live_version: int, event: AuditEvent
) -> Operation:
    """Write the record's document as the live session's next version; None if the live
    session moved on since it was read (nothing written then)."""
    try:
        snap = yield from ops.replace(
            record.key, dict(record.doc), expected_version=live_version, audit=(event,)
        )
    except VersionConflict:
        return None
    return snap


def _restore_args(
    ops: Operations, record: SessionRecord, force: bool, event: AuditEvent
) -> tuple[str, list[bytes | str | int]]:
    """The write's timestamp, and the script's arguments in the order its header gives."""
    stamp, audit_args = entry_args(ops, event.encoded())
    unstamped = "1" if record.last_updated is None else ""
    args: list[bytes | str | int] = [record.version, "1" if force else "", unstamped]
    args += _ttl_args(ops, record)
    args += [*audit_args, *_document_args(ops, record, stamp), *_history_args(ops, record, stamp)]
    return stamp, args + _audit_args(ops, record)


def _bind(ops: Operations, channel: str, target: str, force: bool, reason: str) -> Operation:
    """Route ``channel`` to ``target``: None when bound now, "" when it already was, else why not.

    A channel with a live session of its own (it wrote after the backup) is not bound
    unless forced: binding drops that session, as the identity binding always does.
    """
    current = yield from routes.route(ops, channel)
    if current == target:
        return ""
    if current is not None:
        return f"{channel} is bound to {current}, not {target}; left as it is"
    try:
        live = yield from ops.get(channel)
        if live is not None and not force:
            return (
                f"{channel} has a live session of its own (version {live.version}); not bound "
                f"to {target} (--force binds it and drops that session)"
            )
        event = AuditEvent("identity.bound", channel, reason, {"to": target, "restored": True})
        yield from routes.bind(ops, channel, live.version if live else 0, target, event)
    except (IdentityError, VersionConflict, SessionMoved, CorruptState) as exc:
        # Someone bound or wrote the channel between the checks above and the script.
        return f"{channel} not bound to {target}: {exc}"
    return None


def _ttl_args(ops: Operations, record: SessionRecord) -> list[bytes | str | int]:
    if record.ttl is None:
        return ["", ""]
    ttl_ms = max(1, round(record.ttl * 1000))
    return [ttl_ms, ttl_ms + max(1, round(ops.settings.expired_memory * 1000))]


def _stored_fields(
    doc: dict[str, Any], version: int, last_updated: str | None, stamp: str
) -> dict[str, bytes]:
    """A document as the store keeps it, with its version and write time."""
    flat = codec.flatten(_without_store_fields(doc))
    flat[codec.VERSION_FIELD] = str(version).encode()
    written = json.dumps(last_updated) if last_updated is not None else stamp
    flat[codec.UPDATED_FIELD] = written.encode()
    return flat


def _document_args(ops: Operations, record: SessionRecord, stamp: str) -> list[bytes | str | int]:
    flat = _stored_fields(record.doc, record.version, record.last_updated, stamp)
    size = codec.document_size(flat)
    if size > ops.settings.max_document_bytes:
        raise DocumentTooLarge(record.key, size, ops.settings.max_document_bytes)
    args: list[bytes | str | int] = [len(flat)]
    for path, leaf in flat.items():
        args += [_bytes(path), leaf]
    return args


def _history_args(ops: Operations, record: SessionRecord, stamp: str) -> list[bytes | str | int]:
    """The history ring, newest first, starting with the record's own version (as every
    write leaves it: recovery and rollback read the current version from there), stored
    as every write stores it: that version in full, the older ones as reverse patches."""
    entries = list(record.history)
    if not entries or entries[0].version != record.version:
        entries.insert(0, HistoryRecord(record.version, record.doc, record.last_updated))
    entries = entries[: ops.settings.history_length]
    flats = [_stored_fields(e.doc, e.version, e.last_updated, stamp) for e in entries]
    ring = history.write(flats)
    return [len(ring), *ring]


def _audit_args(ops: Operations, record: SessionRecord) -> list[bytes | str | int]:
    """The record's audit entries still within retention, oldest first, one per id."""
    retained_from = ops.clock().timestamp() * 1000 - ops.settings.audit_retention * 1000
    by_id = {}
    for entry in record.audit or ():
        millis, seq = (int(part) for part in str(entry["id"]).split("-"))
        if millis >= retained_from:
            by_id[(millis, seq)] = entry
    chosen = [by_id[order] for order in sorted(by_id)][-ops.settings.audit_max_entries :]
    args: list[bytes | str | int] = [len(chosen)]
    for entry in chosen:
        args += [str(entry["id"]), *_stream_fields(entry)]
    return args


def _stream_fields(entry: dict[str, Any]) -> list[bytes | str | int]:
    """An audit entry (:meth:`AuditEntry.as_dict` form) as the stream fields the scripts
    write: ts, event, channel, reason, detail, v_before, v_after, fields, removed, values."""

    def number(value: object) -> str:
        return "" if value is None else str(value)

    def encoded(value: object) -> bytes:
        return _bytes(json.dumps(value, ensure_ascii=False))

    return [
        encoded(entry.get("at", "")),
        _bytes(str(entry.get("event", ""))),
        _bytes(str(entry.get("channel", ""))),
        _bytes(str(entry.get("reason", ""))),
        encoded(entry.get("detail") or {}),
        number(entry.get("version_before")),
        number(entry.get("version_after")),
        encoded(entry.get("fields") or []),
        encoded(entry.get("removed") or []),
        encoded(entry.get("values") or {}),
    ]


def _without_store_fields(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k not in codec.STORE_FIELDS}


def _last_updated(doc: dict[str, Any]) -> str | None:
    value = doc.get(codec.UPDATED_FIELD)
    return value if isinstance(value, str) else None


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _bytes(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")
