"""Memory per session: statehq beside the seed design's layout and aiogram's, on one server.

Every layout holds the same conversation: the twelve credex writes of
:mod:`statehq.bench.conversation`. statehq's side is :func:`statehq.bench.memory.session_memory`
(the session document, its history ring of ``history_versions`` versions and its markers,
plus what a worker leaves beside them: dedup marks and the audit stream). The peers keep
the final document only, as they would after the same twelve writes:

- the seed design: the document as one JSON string under ``channel:<wa_id>`` (with its
  ``_version`` and ``_last_updated``), plus the ``<key>_stage``, ``<key>_option`` and
  ``<key>_direction`` keys the seed notes describe, every key with the 300 s TTL;
- aiogram: the FSM state (the stage) and the data (the rest of the document) as
  ``RedisStorage`` writes them, with the same TTL.

Every figure is ``MEMORY USAGE <key> SAMPLES 0`` summed over a layout's keys and divided
by its sessions, so the three are counted the same way.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import reduce
from typing import Any

import redis

from ..state.documents import merge_patch
from .conversation import conversation

SESSION_TTL = 300
PAGE = 500
LAST_UPDATED = "2026-01-01T00:02:00.000Z"
SEED_FIELDS = {"option": "handle_action_menu", "direction": "OUT"}


@dataclass
class MemoryResult:
    """Bytes per session of one layout, by kind of key."""

    layout: str
    label: str
    sessions: int
    history_versions: int
    bytes_per_session: float
    """The session's own keys: what the comparison and the 4 KB goal are about."""
    breakdown: dict[str, float] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)


def final_session(member: int) -> tuple[int, str, dict[str, Any]]:
    """Member ``member``'s phone number, stage and document after the twelve writes."""
    turns = conversation(member)
    doc: dict[str, Any] = reduce(merge_patch, (turn.patch for turn in turns), {})
    stage = str(doc.pop("stage"))
    phone = int(doc["channel"]["identifier"])
    return phone, stage, doc


def _sessions(count: int) -> Iterator[tuple[int, str, dict[str, Any]]]:
    return (final_session(member) for member in range(count))


def seed_keys(phone: int) -> dict[str, str]:
    """The seed layout's keys of one session, by kind."""
    base = f"channel:{phone}"
    return {"document": base, **{part: f"{base}_{part}" for part in ("stage", *SEED_FIELDS)}}


def write_seed_sessions(client: redis.Redis, count: int) -> list[tuple[str, str]]:
    """Write ``count`` sessions in the seed layout; their ``(kind, key)`` pairs."""
    written: list[tuple[str, str]] = []
    pipe = client.pipeline(transaction=False)
    for n, (phone, stage, doc) in enumerate(_sessions(count)):
        keys = seed_keys(phone)
        document = {**doc, "_version": 12, "_last_updated": LAST_UPDATED}
        values = {"document": json.dumps(document), "stage": stage, **SEED_FIELDS}
        for kind, key in keys.items():
            pipe.set(key, values[kind], ex=SESSION_TTL)
            written.append((kind, key))
        if n % PAGE == PAGE - 1:
            pipe.execute()
    pipe.execute()
    return written


def usage_by_kind(client: redis.Redis, keyed: list[tuple[str, str]]) -> Counter[str]:
    """``MEMORY USAGE`` (every element counted) of each key, summed by its kind."""
    totals: Counter[str] = Counter()
    for start in range(0, len(keyed), PAGE):
        page = keyed[start : start + PAGE]
        pipe = client.pipeline(transaction=False)
        for _, key in page:
            pipe.memory_usage(key, samples=0)
        for (kind, _), size in zip(page, pipe.execute(), strict=True):
            totals[kind] += int(size or 0)
    return totals


def _result(layout: str, label: str, totals: Counter[str], sessions: int) -> MemoryResult:
    per = {kind: round(total / sessions, 1) for kind, total in totals.items()}
    return MemoryResult(layout, label, sessions, 0, round(sum(per.values()), 1), per)


def seed_memory(client: redis.Redis, sessions: int) -> MemoryResult:
    """The seed design's layout, ``sessions`` sessions."""
    keyed = write_seed_sessions(client, sessions)
    try:
        totals = usage_by_kind(client, keyed)
    finally:
        _unlink(client, [key for _, key in keyed])
    label = "seed: JSON under channel:{wa_id} + _stage, _option, _direction keys"
    return _result("seed", label, totals, sessions)


def aiogram_memory(client: redis.Redis, url: str, sessions: int) -> MemoryResult:
    """aiogram's ``RedisStorage``, ``sessions`` sessions (needs the ``bench`` extra)."""
    from .peers import aiogram_sessions

    keys = aiogram_sessions(url, _sessions(sessions))
    keyed = [(key.rsplit(":", 1)[1], key) for key in keys]
    try:
        totals = usage_by_kind(client, keyed)
    finally:
        _unlink(client, keys)
    return _result("aiogram", "aiogram RedisStorage: state + data keys", totals, sessions)


def statehq_memory(
    url: str, sessions: int, history_versions: int, progress: Callable[[str], None]
) -> MemoryResult:
    """statehq's session (doc + history + markers), with the rest of its keys beside it."""
    from .memory import session_memory

    measured = session_memory(url, sessions, history_length=history_versions, progress=progress)
    per: dict[str, float] = measured["per_session"]
    details = {k: v for k, v in measured.items() if k != "per_session"}
    label = f"statehq: document + {history_versions}-version history + markers"
    return MemoryResult(
        "statehq", label, sessions, history_versions, per["state"], dict(per), details
    )


def _unlink(client: redis.Redis, keys: list[str]) -> None:
    for start in range(0, len(keys), PAGE):
        client.unlink(*keys[start : start + PAGE])


def run_memory(
    url: str, sessions: int, history_versions: int, progress: Callable[[str], None]
) -> list[MemoryResult]:
    """statehq, the seed layout and aiogram, ``sessions`` sessions each, one after another."""
    progress(f"memory: {sessions:,} sessions per layout, the same twelve-write conversation ...")
    results = [statehq_memory(url, sessions, history_versions, progress)]
    with redis.Redis.from_url(url) as client:
        results.append(seed_memory(client, sessions))
        results.append(aiogram_memory(client, url, sessions))
    for r in results:
        progress(f"  {r.layout}: {r.bytes_per_session:,.0f} bytes per session")
    return results
