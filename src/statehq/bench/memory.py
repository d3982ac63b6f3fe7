"""Memory per session: what a member's conversation leaves in the store, key by key.

:func:`session_memory` gives ``sessions`` members the twelve credex writes of
:mod:`statehq.bench.conversation` (under a lease, each with its message id and audit
event, as a worker writes them), then asks the server ``MEMORY USAGE`` of every key
they made and averages by kind:

===============  ===========================================================================
``doc``          the document hash
``history``      the history ring (``history_length`` versions)
``markers``      ``seen`` (tells "expired" from "never"), ``fence`` (lease tokens), ``lease``
``state``        doc + history + markers: the session itself (the 4 KB goal of issue 17)
``dedup``        one ``msg:<id>`` mark per processed message, kept for the dedup TTL
``audit``        the session's audit stream (kept for the audit retention)
``audit_tail``   this run's share of the operators' shared audit tail
``total``        all of the above
===============  ===========================================================================

The run writes under a prefix of its own and deletes its keys afterwards, so it can share
a server (the bench's private one) with other measurements.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

from ..store import StateStore
from ..store.keys import KeySpace
from ..store.requests import Batch, Command, Operation, Scan
from .conversation import conversation, session_key

SESSIONS = 1000
CONFIG = (
    "hash-max-listpack-entries",
    "hash-max-listpack-value",
    "list-max-listpack-size",
    "stream-node-max-bytes",
)
KINDS = {"doc": "doc", "hist": "history", "seen": "markers", "fence": "markers"}
KINDS |= {"lease": "markers", "msg": "dedup", "audit": "audit"}
_ORDER = ("doc", "history", "markers", "dedup", "audit", "audit_tail", "other")
PAGE = 500


def session_memory(
    url: str | None = None,
    sessions: int = SESSIONS,
    *,
    history_length: int = 10,
    progress: Callable[[str], None] | None = None,
    **settings: Any,
) -> dict[str, Any]:
    """Bytes per session by kind (see the module docstring), with how they were measured.

    ``url`` is the store to measure on (None: the embedded server); ``settings`` override
    store settings (``audit_max_entries=...``). Returns ``{"per_session": {kind: bytes},
    "sessions", "updates", "history_length", "encodings", "server"}``.
    """
    prefix = f"statehq-memory-{uuid.uuid4().hex[:8]}"
    with StateStore.open(
        url, key_prefix=prefix, history_length=history_length, **settings
    ) as store:
        updates = _converse(store, sessions, progress)
        try:
            sizes = store.execute(_usage(store, prefix))
            return {
                "sessions": sessions,
                "updates": updates,
                "history_length": history_length,
                "per_session": _per_session(sizes, sessions),
                "encodings": store.execute(_encodings(store)),
                "server": store.execute(_config()),
            }
        finally:
            store.execute(_delete(prefix))


def _converse(store: StateStore, sessions: int, progress: Callable[[str], None] | None) -> int:
    """Give each session its conversation, as a worker would; the updates per session."""
    turns = 0
    for member in range(sessions):
        key = session_key(member)
        with store.lease(key, ttl=30) as lease:
            talk = conversation(member)
            for turn in talk:
                store.update(
                    key, turn.patch, message_id=turn.message_id, lease=lease, audit=(turn.event,)
                )
        turns = len(talk)
        if progress is not None and (member + 1) % 250 == 0:
            progress(f"memory: {member + 1:,} of {sessions:,} sessions written")
    return turns


def kind_of(key: str) -> str:
    """The breakdown a key counts in: ``...}:hist`` is ``history``, ``...}:msg:<id>`` dedup."""
    if "}:" not in key:  # a key every member shares
        return "audit_tail" if ":audit-tail" in key else "other"
    return KINDS.get(key.split("}:", 1)[1].split(":", 1)[0], "other")


def _scan(prefix: str) -> Operation:
    """Every key under ``prefix``, on every master."""
    cursor = "0"
    found: list[str] = []
    while True:
        cursor, page = yield Scan(cursor, f"{prefix}:*", PAGE)
        found.extend(key.decode() if isinstance(key, bytes) else key for key in page)
        if cursor == "0":
            return sorted(set(found))


def _usage(store: StateStore, prefix: str) -> Operation:
    """``MEMORY USAGE`` (every element counted) summed by kind."""
    keys = yield from _scan(prefix)
    totals: Counter[str] = Counter()
    for start in range(0, len(keys), PAGE):
        page = keys[start : start + PAGE]
        commands = tuple(Command(("MEMORY", "USAGE", key, "SAMPLES", "0")) for key in page)
        sizes = yield Batch(commands)
        for key, size in zip(page, sizes, strict=True):
            totals[kind_of(key)] += int(size) if isinstance(size, int) else 0
    return totals


def _per_session(totals: Counter[str], sessions: int) -> dict[str, float]:
    """Bytes per session by kind, with ``state`` and ``total`` added."""
    per = {kind: totals.get(kind, 0) / max(sessions, 1) for kind in _ORDER}
    per["state"] = per["doc"] + per["history"] + per["markers"]
    per["total"] = sum(totals.values()) / max(sessions, 1)
    return {kind: round(value, 1) for kind, value in per.items()}


def _encodings(store: StateStore) -> Operation:
    """How the server encodes the first session's keys (listpack, hashtable, quicklist...)."""
    keys = KeySpace(store.settings.key_prefix, store.settings.shards).member(session_key(0))
    found: dict[str, str] = {}
    for name, key in (("doc", keys.doc), ("history", keys.hist), ("audit", keys.audit)):
        encoding = yield Command(("OBJECT", "ENCODING", key))
        found[name] = encoding.decode() if isinstance(encoding, bytes) else str(encoding)
    return found


def _config() -> Operation:
    """The server settings that decide those encodings."""
    values = {}
    for name in CONFIG:
        reply = yield Command(("CONFIG", "GET", name))
        pairs = (
            reply.items() if isinstance(reply, dict) else zip(reply[::2], reply[1::2], strict=True)
        )
        for key, value in pairs:
            text = key.decode() if isinstance(key, bytes) else key
            values[text] = value.decode() if isinstance(value, bytes) else value
    return values


def _delete(prefix: str) -> Operation:
    """Remove what the run wrote."""
    keys = yield from _scan(prefix)
    for start in range(0, len(keys), PAGE):
        yield Batch(tuple(Command(("UNLINK", key)) for key in keys[start : start + PAGE]))
