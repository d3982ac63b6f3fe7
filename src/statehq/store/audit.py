"""The audit trail as the store keeps it: one Redis stream per session key.

State changes append their entries inside ``update.lua``, in the same script call as
the write, so there is never a change without its entry. Events that change no state
(a refused write, a message id, an expiry noticed) go through ``audit_append.lua``.
After either, a one-line summary is added to the operators' global tail; that second
call is an index for ``statehq audit tail``, and the per-session stream stays the
record (on Cluster the tail lives in another slot, so it cannot share the script).

Retention: every append trims entries older than ``audit_retention`` and keeps at most
``audit_max_entries``; a stream nobody appends to expires after the retention period.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ..digits import is_digits
from ..errors import InvalidInput
from ..redact import SECRET_FIELDS, redact_text, redact_value
from ..text import clean_text
from .requests import Command, Operation, Script, Sleep

if TYPE_CHECKING:
    from .operations import Operations

MAX_READ = 10_000


@dataclass(frozen=True)
class AuditEvent:
    """An event to record: its name, the channel it came through, why, and extra detail.

    ``reason`` and ``detail`` are redacted before they are stored.
    """

    event: str
    channel: str = ""
    reason: str = ""
    detail: Mapping[str, Any] | None = None

    def encoded(self) -> list[bytes | str | int]:
        """The four script arguments: event, channel, reason, detail (JSON)."""
        if not self.event or not isinstance(self.event, str):
            raise InvalidInput(f"an audit event needs a name, got {self.event!r}")
        detail = json.dumps(redact_value(dict(self.detail or {})), ensure_ascii=False)
        # Text from outside may hold a lone surrogate: stored as U+FFFD, so an event is
        # never lost to its wording (and an action is never left unaudited).
        fields = (self.event, self.channel, redact_text(self.reason), detail)
        return [clean_text(field) for field in fields]


@dataclass(frozen=True)
class AuditEntry:
    """One recorded event, as read back.

    ``fields`` names the leaves a state change set, ``removed`` the ones it deleted, and
    ``values`` their new values, except secret fields, which are never copied.
    """

    id: str
    session: str
    at: str
    event: str
    channel: str
    reason: str
    version_before: int | None
    version_after: int | None
    fields: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    values: dict[str, Any] = field(default_factory=dict)
    detail: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (for the CLI and the admin API)."""
        return {
            "id": self.id,
            "session": self.session,
            "at": self.at,
            "event": self.event,
            "channel": self.channel,
            "reason": self.reason,
            "version_before": self.version_before,
            "version_after": self.version_after,
            "fields": self.fields,
            "removed": self.removed,
            "values": self.values,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class TailEntry:
    """A summary line of the global tail: which session, which event, which entry."""

    id: str
    session: str
    at: str
    event: str
    version: int | None
    entry_id: str


def secret_names() -> str:
    """The script argument naming the top-level fields whose values are never audited."""
    return "\n".join(sorted(SECRET_FIELDS))


def timestamp_leaf(moment: datetime) -> str:
    """A timestamp as the JSON string leaf the scripts store."""
    text = moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
    return json.dumps(text)


def stream_id(since: datetime | str | None) -> str:
    """The first stream id at or after ``since`` (a time, or an entry id to page from)."""
    if since is None:
        return "-"
    if isinstance(since, datetime):
        if since.tzinfo is None:
            raise InvalidInput("since must be timezone-aware (UTC), got a naive datetime")
        return str(max(0, int(since.timestamp() * 1000)))  # before 1970: from the start
    if isinstance(since, str) and is_stream_id(since):
        # An entry id: start just after it, so paging never repeats an entry.
        return f"({since}"
    shown = repr(since[:60] if isinstance(since, str) else since)
    raise InvalidInput(
        f"since must be a datetime or an audit entry id like 1767225600000-0 (each part "
        f"below 2**64, and not the last id there can be), got {shown}"
    )


_LAST_PART = 2**64 - 1


def is_stream_id(text: str) -> bool:
    """True for an audit entry id a read can start after (``<ms>[-<seq>]``, parts < 2**64)."""
    ms, dash, seq = text.partition("-")
    if not is_digits(ms) or (dash and not is_digits(seq)) or len(text) > 41:
        return False
    parts = (int(ms), int(seq) if seq else 0)
    # Nothing comes after the very last id, so Redis refuses to start after it.
    return all(part <= _LAST_PART for part in parts) and parts != (_LAST_PART, _LAST_PART)


def check_limit(limit: object) -> int:
    """``limit`` if it is a sensible number of entries to read."""
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_READ:
        raise InvalidInput(f"limit must be a whole number from 1 to {MAX_READ}, got {limit!r}")
    return limit


def decode_entry(
    session: str, entry_id: bytes, raw: Sequence[bytes] | Mapping[bytes, bytes]
) -> AuditEntry:
    """An entry from a stream reply (``[id, [k1, v1, k2, v2, ...]]``)."""
    values = _fields(raw)
    return AuditEntry(
        id=entry_id.decode(),
        session=session,
        at=_json(values.get("ts"), ""),
        event=values.get("event", ""),
        channel=values.get("channel", ""),
        reason=values.get("reason", ""),
        version_before=_int(values.get("v_before")),
        version_after=_int(values.get("v_after")),
        fields=_json(values.get("fields"), []),
        removed=_json(values.get("removed"), []),
        values=_json(values.get("values"), {}),
        detail=_json(values.get("detail"), {}),
    )


def decode_tail(entry_id: bytes, raw: Sequence[bytes] | Mapping[bytes, bytes]) -> TailEntry:
    """A global-tail summary from a stream reply."""
    values = _fields(raw)
    return TailEntry(
        id=entry_id.decode(),
        session=values.get("session", ""),
        at=_json(values.get("ts"), ""),
        event=values.get("event", ""),
        version=_int(values.get("version")),
        entry_id=values.get("entry", ""),
    )


def _fields(raw: Sequence[bytes] | Mapping[bytes, bytes]) -> dict[str, str]:
    # redis-py parses stream entries into a dict; a raw reply is a flat list.
    pairs = raw.items() if isinstance(raw, Mapping) else zip(raw[::2], raw[1::2], strict=True)
    return {k.decode(): v.decode("utf-8", "replace") for k, v in pairs}


def _json(text: str | None, default: Any) -> Any:
    if not text:
        return default
    try:
        return json.loads(text)
    except ValueError:
        return default


def _int(text: str | None) -> int | None:
    return int(text) if text and is_digits(text.removeprefix("-")) else None


# -- operations (sans-I/O generators, driven by StateStore / AsyncStateStore) -----------


def entry_args(
    ops: Operations, fields: list[bytes | str | int]
) -> tuple[str, list[bytes | str | int]]:
    """The timestamp leaf, and the arguments every appending script starts with:
    retention in ms, max entries, timestamp, then the entry's own ``fields``."""
    s = ops.settings
    leaf = timestamp_leaf(ops.clock())
    return leaf, [max(1, round(s.audit_retention * 1000)), s.audit_max_entries, leaf, *fields]


def append(ops: Operations, session: str, event: AuditEvent) -> Operation:
    """Record an event that changes no state; returns the entry id."""
    keys = ops.keys.member(session)
    leaf, args = entry_args(ops, event.encoded())
    entry_id = yield Script("audit_append", [keys.audit, keys.seen], args)
    yield ops.tail_command(session, event.event, None, entry_id, leaf)
    return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)


def read(
    ops: Operations, session: str, since: datetime | str | None = None, limit: int = 100
) -> Operation:
    """Entries oldest first: the newest ``limit`` ones, or the first ``limit`` after ``since``."""
    keys = ops.keys.member(session)
    count = str(check_limit(limit))
    if since is None:
        reply = yield Command(("XREVRANGE", keys.audit, "+", "-", "COUNT", count))
        reply = list(reversed(reply))
    else:
        reply = yield Command(("XRANGE", keys.audit, stream_id(since), "+", "COUNT", count))
    return [decode_entry(session, entry_id, raw) for entry_id, raw in reply]


def follow(ops: Operations, session: str, after: str = "$", wait_ms: int = 0) -> Operation:
    """Entries written after the entry id ``after`` (``$``: from now), waiting up to
    ``wait_ms`` for the first: a blocking read, so a watcher never polls."""
    key = ops.keys.member(session).audit
    wait = ("BLOCK", str(wait_ms)) if wait_ms > 0 else ()
    reply = yield Command(("XREAD", "COUNT", "100", *wait, "STREAMS", key, after))
    if not reply:
        return []
    entries = next(iter(reply.values())) if isinstance(reply, dict) else reply[0][1]
    return [decode_entry(session, entry_id, raw) for entry_id, raw in entries]


def follow_tail(ops: Operations, after: dict[str, str], wait_ms: int = 0) -> Operation:
    """Global tail lines written after ``after`` (piece key -> entry id, ``$`` for now).

    Returns ``(lines, after)`` with ``after`` moved past what was read. One piece is a
    blocking read; several (a Cluster) are read in turn - one XREAD cannot span slots -
    with a pause when all were quiet.
    """
    pieces = ops.keys.audit_tails()
    positions = {key: after.get(key, "$") for key in pieces}
    lines: list[tuple[tuple[int, int], TailEntry]] = []
    block = ("BLOCK", str(wait_ms)) if wait_ms > 0 and len(pieces) == 1 else ()
    for key in pieces:
        if positions[key] == "$":  # pin "now" to an id so the next call misses nothing
            newest = yield Command(("XREVRANGE", key, "+", "-", "COUNT", "1"))
            positions[key] = newest[0][0].decode() if newest else "0-0"
        reply = yield Command(("XREAD", "COUNT", "100", *block, "STREAMS", key, positions[key]))
        entries = (
            (next(iter(reply.values())) if isinstance(reply, dict) else reply[0][1])
            if reply
            else []
        )
        for entry_id, raw in entries:
            lines.append((_order(entry_id), decode_tail(entry_id, raw)))
            positions[key] = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
    if not lines and not block and wait_ms > 0:
        yield Sleep(min(wait_ms, 500) / 1000)
    lines.sort(key=lambda line: line[0])
    return [line for _, line in lines], positions


def tail(ops: Operations, since: datetime | str | None = None, limit: int = 100) -> Operation:
    """The global tail, oldest first: the newest ``limit`` lines, or those after ``since``.

    On a Cluster the tail is in pieces; each is read and the lines merged by entry id.
    """
    count = str(check_limit(limit))
    lines: list[tuple[tuple[int, int], TailEntry]] = []
    for key in ops.keys.audit_tails():
        if since is None:
            reply = yield Command(("XREVRANGE", key, "+", "-", "COUNT", count))
        else:
            reply = yield Command(("XRANGE", key, stream_id(since), "+", "COUNT", count))
        lines.extend((_order(entry_id), decode_tail(entry_id, raw)) for entry_id, raw in reply)
    lines.sort(key=lambda line: line[0])
    chosen = lines[-int(count) :] if since is None else lines[: int(count)]
    return [entry for _, entry in chosen]


def _order(entry_id: bytes | str) -> tuple[int, int]:
    """A stream entry id (``<ms>-<seq>``) as numbers, to merge the pieces in time order."""
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    millis, _, seq = text.partition("-")
    return int(millis), int(seq or 0)
