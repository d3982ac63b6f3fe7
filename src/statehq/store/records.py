"""A session as a backup (or a migration) carries it: :class:`SessionRecord`.

A record is semantic: whole documents per version, as a reader of the session sees
them, never the storage encoding (the hash of path -> leaf, the encoded history ring).
How the store keeps a session may change from one release to the next; a backup taken
before must still restore after.

The documents in a record hold neither ``_version`` nor ``_last_updated``: those are the
store's, and they are the record's (and each history entry's) ``version`` and
``last_updated``. :meth:`SessionRecord.from_dict` refuses a document that holds them.

A record's JSON form (one line of a backup file)::

    {"key": "member:7", "version": 12, "ttl": 287.5, "last_updated": "2026-...Z",
     "doc": {...}, "history": [{"version": 12, "last_updated": "...", "doc": {...}}, ...],
     "bindings": ["whatsapp:263771234567"], "audit": [{"id": "1767225600000-0", ...}]}

``audit`` is left out when the backup was taken without the audit trail.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..digits import is_digits
from ..errors import InvalidInput
from ..text import has_surrogate
from .codec import STORE_FIELDS
from .keys import check_member_id

MAX_VERSION = 2**53
"""Versions above this would lose precision in the server's Lua numbers."""

_STREAM_ID_PARTS = 2


@dataclass(frozen=True)
class HistoryRecord:
    """One past version of a session: its number, when it was written, its document."""

    version: int
    doc: dict[str, Any]
    last_updated: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The JSON-ready form."""
        return {"version": self.version, "last_updated": self.last_updated, "doc": self.doc}


@dataclass(frozen=True)
class SessionRecord:
    """One session at one moment: everything needed to put it back exactly.

    ``key`` is the session key (``member:7`` or a channel identity such as
    ``whatsapp:263771234567``); ``ttl`` the seconds it had left (None: no expiry);
    ``history`` its past versions newest first (the first is normally ``version``
    itself, as the store keeps it); ``bindings`` the channel identities whose route
    points at ``key``; ``audit`` its audit entries oldest first, in the form of
    :meth:`statehq.store.AuditEntry.as_dict`, or None when they were not taken.
    """

    key: str
    version: int
    ttl: float | None
    doc: dict[str, Any]
    history: list[HistoryRecord] = field(default_factory=list)
    bindings: list[str] = field(default_factory=list)
    audit: list[dict[str, Any]] | None = None
    last_updated: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The JSON-ready form (see the module docstring)."""
        data: dict[str, Any] = {
            "key": self.key,
            "version": self.version,
            "ttl": self.ttl,
            "last_updated": self.last_updated,
            "doc": self.doc,
            "history": [entry.as_dict() for entry in self.history],
            "bindings": list(self.bindings),
        }
        if self.audit is not None:
            data["audit"] = self.audit
        return data

    def to_json(self) -> str:
        """One line of JSON, no newline; UTF-8 text as is, big integers exact.

        A lone surrogate (which no UTF-8 can hold) makes the line ASCII with ``\\u``
        escapes instead, so every record can be written to a file and read back exactly.
        """
        data = self.as_dict()
        text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        if has_surrogate(text):
            text = json.dumps(data, ensure_ascii=True, separators=(",", ":"), allow_nan=False)
        return text

    @classmethod
    def from_json(cls, text: str | bytes) -> SessionRecord:
        """Read :meth:`to_json`'s output; :class:`InvalidInput` says what is wrong."""
        try:
            data = json.loads(text, parse_constant=_no_constant)
        except (ValueError, UnicodeDecodeError) as exc:
            raise InvalidInput(f"not JSON ({exc})") from None
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: object) -> SessionRecord:
        """Check and read the JSON-ready form; :class:`InvalidInput` names the bad field."""
        record = _object(data, "a session record")
        key = _text(record.get("key"), "key")
        check_member_id(key)
        version = _version(record.get("version"), "version")
        history = [
            _history(item, f"history[{index}]")
            for index, item in enumerate(_list(record.get("history", []), "history"))
        ]
        bindings = [
            _binding(item, key, f"bindings[{index}]")
            for index, item in enumerate(_list(record.get("bindings", []), "bindings"))
        ]
        audit = record.get("audit")
        return cls(
            key=key,
            version=version,
            ttl=_ttl(record.get("ttl")),
            doc=_document(record.get("doc"), "doc"),
            history=history,
            bindings=bindings,
            audit=None if audit is None else _audit(audit),
            last_updated=_optional_text(record.get("last_updated"), "last_updated"),
        )


def check_audit_id(entry_id: object, where: str) -> str:
    """An audit entry id as ``<ms>-<seq>`` in canonical form (what the stream returns)."""
    parts = entry_id.split("-") if isinstance(entry_id, str) else []
    if len(parts) != _STREAM_ID_PARTS or not all(is_digits(part) for part in parts):
        raise InvalidInput(f"{where} must be an audit entry id like 1767225600000-0")
    millis, seq = (int(part) for part in parts)
    if millis >= MAX_VERSION or seq >= MAX_VERSION or (millis, seq) == (0, 0):
        raise InvalidInput(f"{where} is not an audit entry id statehq writes: {entry_id!r:.60}")
    return f"{millis}-{seq}"


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


def _object(value: object, where: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise InvalidInput(f"{where} must be a JSON object, got {type(value).__name__}")
    return value


def _list(value: object, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise InvalidInput(f"{where} must be a list, got {type(value).__name__}")
    return value


def _text(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise InvalidInput(f"{where} must be a string, got {type(value).__name__}")
    return value


def _optional_text(value: object, where: str) -> str | None:
    return None if value is None else _text(value, where)


def _version(value: object, where: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value < MAX_VERSION:
        raise InvalidInput(f"{where} must be a whole number from 1, got {value!r:.40}")
    return value


def _ttl(value: object) -> float | None:
    if value is None:
        return None
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        raise InvalidInput(f"ttl must be seconds (a number) or null, got {value!r:.40}")
    if value <= 0:
        raise InvalidInput(f"ttl must be more than 0 seconds, got {value}")
    return float(value)


def _document(value: object, where: str) -> dict[str, Any]:
    doc = dict(_object(value, where))
    for name in sorted(STORE_FIELDS & doc.keys()):
        raise InvalidInput(f"{where} must not hold {name}: it is the record's own field")
    return doc


def _history(value: object, where: str) -> HistoryRecord:
    entry = _object(value, where)
    return HistoryRecord(
        version=_version(entry.get("version"), f"{where}.version"),
        doc=_document(entry.get("doc"), f"{where}.doc"),
        last_updated=_optional_text(entry.get("last_updated"), f"{where}.last_updated"),
    )


def _binding(value: object, key: str, where: str) -> str:
    channel = check_member_id(_text(value, where))
    if channel == key:
        raise InvalidInput(f"{where} is the record's own key; a session is not bound to itself")
    return channel


_AUDIT_TYPES: dict[str, tuple[type, ...]] = {
    "at": (str,),
    "event": (str,),
    "channel": (str,),
    "reason": (str,),
    "version_before": (int, type(None)),
    "version_after": (int, type(None)),
    "fields": (list,),
    "removed": (list,),
    "values": (dict,),
    "detail": (dict,),
}
"""The fields of an audit entry a restore writes back, and the JSON types each may have."""


def _audit(value: object) -> list[dict[str, Any]]:
    entries = []
    for index, item in enumerate(_list(value, "audit")):
        where = f"audit[{index}]"
        entry = dict(_object(item, where))
        entry["id"] = check_audit_id(entry.get("id"), f"{where}.id")
        for name, types in _AUDIT_TYPES.items():
            if name in entry and not isinstance(entry[name], types):
                kind = type(entry[name]).__name__
                raise InvalidInput(f"{where}.{name} has the wrong type ({kind})")
        entries.append(entry)
    return entries
