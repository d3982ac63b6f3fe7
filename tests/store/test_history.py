"""The history ring: the newest version in full, older ones as reverse patches (issue 17).

Every kept version rebuilds exactly (hypothesis, through every write path: merge patch,
read-modify-write, whole replacement); entries are patches whose size follows the change,
not the document; rollback reaches every kept version; a damaged document leaves the
ring intact and recoverable; a ring written before patches, or holding garbage, reads
as far as it can; backup records still carry full versions.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_roundtrip import body, documents, merge_patch

from statehq import StateStore
from statehq.errors import CorruptState
from statehq.store import codec, history
from statehq.store.audit import AuditEvent
from statehq.store.models import HistoryEntry

server_settings = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
WAYS = ("update", "mutate", "replace")


def raw(store: StateStore) -> redis.Redis:
    return store._client  # type: ignore[return-value]


def ring(store: StateStore, member: str) -> list[bytes]:
    return raw(store).lrange(store._ops.keys.member(member).hist, 0, -1)  # type: ignore[return-value]


def write(store: StateStore, member: str, way: str, change: dict[str, Any]) -> dict[str, Any]:
    """Write ``change`` one of three ways; the document the store should now hold."""
    if way == "update":
        snap = store.update(member, change)
    elif way == "mutate":
        snap = store.mutate(member, lambda doc: merge_patch(body(doc), change))
    else:
        snap = store.replace(member, change)
    return body(snap.doc)


# -- the format, without a server -------------------------------------------------------------


def stored(doc: dict[str, Any], version: int) -> dict[str, bytes]:
    flat = codec.flatten(doc)
    flat[codec.VERSION_FIELD] = str(version).encode()
    flat[codec.UPDATED_FIELD] = json.dumps(f"2026-01-01T00:00:{version % 60:02d}Z").encode()
    return flat


@given(st.lists(documents, min_size=1, max_size=8))
def test_written_rings_read_back_every_version(docs: list[dict[str, Any]]) -> None:
    versions = list(range(len(docs), 0, -1))
    entries = history.write([stored(doc, v) for doc, v in zip(docs, versions, strict=True)])
    assert entries[0][:1] == b"{"
    assert all(entry[:1] == b"-" for entry in entries[1:])
    read = history.read(entries, "m", skip_corrupt=False)
    assert [e.version for e in read] == versions
    assert [body(e.doc) for e in read] == docs


def test_a_patch_with_a_raw_newline_is_written_as_json() -> None:
    entry = history.patch_entry({"a": '"x\ny"', "b": None}, "3", '"t"')
    assert entry.startswith("-{")
    newer = {"a": '"z"', "b": "1", "_version": "4", "_last_updated": '"u"'}
    raw_entries = [json.dumps(newer).encode(), entry.encode()]
    older = history._next(history._next(None, raw_entries[0]), raw_entries[1])
    assert older == {"a": '"x\ny"', "_version": "3", "_last_updated": '"t"'}


# -- through the server -----------------------------------------------------------------------


@server_settings
@given(
    first=documents,
    changes=st.lists(st.tuples(st.sampled_from(WAYS), documents), min_size=1, max_size=12),
)
def test_every_kept_version_rebuilds_exactly(
    store: StateStore, first: dict[str, Any], changes: list[tuple[str, dict[str, Any]]]
) -> None:
    member = f"m-{uuid.uuid4().hex}"
    expected = [write(store, member, "update", first)]
    for way, change in changes:
        expected.append(write(store, member, way, change))
    kept = store.history(member)
    n = store.settings.history_length
    assert [e.version for e in kept] == list(range(len(expected), 0, -1))[:n]
    assert [body(e.doc) for e in kept] == expected[::-1][:n]
    assert all(isinstance(e.last_updated, str) for e in kept)


def test_entries_are_patches_that_do_not_grow_with_the_document(
    store: StateStore, member: str
) -> None:
    store.update(member, {"notes": "x" * 50_000, "profile": {"name": "Ann"}, "step": 0})
    for step in range(1, 12):
        store.update(member, {"step": step, "flow_data": {"id": "offer", "n": step}})
    entries = ring(store, member)
    assert len(entries) == store.settings.history_length
    assert len(entries[0]) > 50_000  # the newest version, in full
    assert all(entry.startswith(b"-") and len(entry) < 120 for entry in entries[1:])
    assert [e.doc["step"] for e in store.history(member)] == list(range(11, 1, -1))


def test_rollback_reaches_every_kept_version(server_url: str, prefix: str, member: str) -> None:
    with StateStore.open(url=server_url, key_prefix=prefix, history_length=20) as store:
        store.update(member, {"stage": "MENU", "profile": {"name": "Ann"}})
        for n in range(2, 11):
            flow = {"id": "offer", "step": f"s{n}", "data": {"n": n}} if n % 3 else None
            store.update(member, {"flow_data": flow, "profile": {"seen": n}})
        versions = {e.version: body(e.doc) for e in store.history(member)}
        assert sorted(versions) == list(range(1, 11))
        for version, doc in sorted(versions.items()):
            assert body(store.rollback(member, version).doc) == doc


def test_a_damaged_document_leaves_the_ring_intact_and_recoverable(
    store: StateStore, member: str
) -> None:
    for step in ("amount", "recipient", "confirm"):
        store.update(member, {"flow_data": {"id": "offer", "step": step}, "stage": "offer"})
    before = store.history(member)
    doc_key = store._ops.keys.member(member).doc
    raw(store).hset(doc_key, mapping={"flow_data.step": "{not json", "mobile": '"2637"'})
    with pytest.raises(CorruptState):
        store.get(member)
    assert store.history(member) == before  # the ring never reads the hash
    snap = store.replace(member, body(before[0].doc), expected_version=3)  # what recovery does
    after = store.history(member)
    assert body(snap.doc) == body(before[0].doc)
    assert [e.version for e in after] == [4, 3, 2, 1]
    assert after[1:] == before  # the damage did not leak into the versions it replaced


def test_a_ring_written_before_patches_reads_and_carries_on(store: StateStore, member: str) -> None:
    for n in range(3):
        store.update(member, {"n": n, "flow_data": {"step": n}})
    legacy = [
        json.dumps({k: v.decode() for k, v in stored_of(entry).items()}).encode()
        for entry in store.history(member)
    ]
    key = store._ops.keys.member(member).hist
    raw(store).delete(key)
    raw(store).rpush(key, *legacy)  # full copies, as every write left them before issue 17
    store.update(member, {"n": 3})
    store.update(member, {"flow_data": None})
    entries = ring(store, member)
    assert [entry[:1] for entry in entries] == [b"{", b"-", b"-", b"{", b"{"]
    docs = [body(e.doc) for e in store.history(member)]
    assert docs == [{"n": 3}, {"n": 3, "flow_data": {"step": 2}}] + [
        {"n": n, "flow_data": {"step": n}} for n in (2, 1, 0)
    ]


def stored_of(entry: HistoryEntry) -> dict[str, bytes]:
    flat = codec.flatten(body(entry.doc))
    flat[codec.VERSION_FIELD] = str(entry.version).encode()
    flat[codec.UPDATED_FIELD] = json.dumps(entry.last_updated).encode()
    return flat


def test_garbage_in_the_ring_loses_only_the_versions_patched_from_it(
    store: StateStore, member: str
) -> None:
    for n in range(5):
        store.update(member, {"n": n})
    key = store._ops.keys.member(member).hist
    raw(store).lset(key, 2, "garbage")
    assert [e.version for e in store.history(member, skip_corrupt=True)] == [5, 4]
    with pytest.raises(CorruptState):
        store.history(member)


def test_a_leaf_with_a_raw_newline_keeps_the_older_versions_right(
    store: StateStore, member: str
) -> None:
    store.update(member, {"stage": "A", "n": 1})
    store.update(member, {"stage": "B"})
    raw(store).hset(store._ops.keys.member(member).doc, "stage", '"x\ny"')  # a hand edit
    store.update(member, {"stage": "C"})
    assert ring(store, member)[1].startswith(b"-{")  # that patch fell back to JSON
    kept = store.history(member, skip_corrupt=True)
    assert [(e.version, body(e.doc)) for e in kept] == [
        (3, {"stage": "C", "n": 1}),
        (1, {"stage": "A", "n": 1}),
    ]


def test_a_backup_record_holds_full_versions_and_restore_writes_patches(
    store: StateStore, member: str
) -> None:
    store.update(member, {"stage": "MENU", "profile": {"name": "Ann"}})
    store.update(member, {"flow_data": {"id": "offer", "step": "amount"}, "stage": "offer"})
    store.update(member, {"flow_data": None, "stage": "MENU"})
    record = store.export_session(member)
    assert record is not None
    kept = store.history(member)
    as_file = record.as_dict()["history"]
    assert [(h["version"], h["doc"]) for h in as_file] == [(e.version, body(e.doc)) for e in kept]
    store.delete(member)
    store.restore_session(record, event=AuditEvent("session.restored", reason="test"))
    assert store.history(member) == kept
    assert [entry[:1] for entry in ring(store, member)] == [b"{", b"-", b"-"]
