"""Exporting and restoring sessions (the store side of backup, restore and migrate).

Every topology: a record read in one call restores to the same document, version,
history, TTL, bindings and audit trail; restoring is idempotent and never replaces a
newer session unless forced.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from statehq import StateStore
from statehq.errors import DocumentTooLarge, InvalidInput
from statehq.store import AuditEvent, RestoreStatus, SessionRecord, SessionStatus
from statehq.store.records import HistoryRecord
from statehq.store.requests import Command, Operation, Scan

RESTORED = AuditEvent("session.restored", reason="test restore")
CHANNEL = "whatsapp:263770000001"
MEMBER = "member:m1"


def wipe(store: StateStore) -> int:
    """Delete every key under the test's prefix (a FLUSHALL that spares other tests)."""

    def delete_all() -> Operation:
        cursor, removed = "0", 0
        while True:
            cursor, keys = yield Scan(cursor, f"{store.settings.key_prefix}:*", 1000)
            for key in keys:  # one by one: on a Cluster the keys live in many slots
                removed += yield Command(("DEL", key.decode()))
            if cursor == "0":
                return removed

    removed: int = store.execute(delete_all())
    return removed


def seed_member(store: StateStore, key: str, writes: int = 3) -> None:
    """A session with ``writes`` versions and an audit entry for each."""
    for n in range(writes):
        event = AuditEvent("state.updated", reason=f"write {n}")
        store.update(key, {"stage": "INIT", "profile": {"n": n, "tags": []}}, audit=[event])


@pytest.fixture
def bound(store: StateStore) -> None:
    """member:m1 with history, and a WhatsApp channel bound to it."""
    store.update(CHANNEL, {"channel": {"type": "whatsapp", "identifier": "263770000001"}})
    seed_member(store, MEMBER)
    store.bind(CHANNEL, 1, MEMBER, AuditEvent("identity.bound"))


@pytest.mark.usefixtures("bound")
def test_a_record_restores_the_session_exactly_after_a_wipe(store: StateStore) -> None:
    before = store.export_session(MEMBER, with_audit=True)
    assert before is not None
    assert before.version == 3
    assert [entry.version for entry in before.history] == [3, 2, 1]
    assert before.bindings == [CHANNEL]
    assert [entry["event"] for entry in before.audit or []] == ["state.updated"] * 3
    assert "_version" not in before.doc
    live = store.get(MEMBER)
    history = store.history(MEMBER)
    assert wipe(store) > 0
    assert store.get(MEMBER) is None
    outcome = store.restore_session(SessionRecord.from_json(before.to_json()), event=RESTORED)
    assert outcome.status is RestoreStatus.RESTORED
    assert outcome.live_version is None
    assert outcome.bindings_restored == (CHANNEL,)
    assert outcome.audit_added == 3
    after = store.get(MEMBER)
    assert after is not None
    assert live is not None
    assert after.doc == live.doc  # _version and _last_updated included
    assert after.ttl is not None
    assert live.ttl is not None
    assert abs(after.ttl - live.ttl) < 2
    assert store.history(MEMBER) == history
    assert store.route(CHANNEL) == MEMBER
    events = [entry.event for entry in store.audit_read(MEMBER)]
    assert events == ["state.updated"] * 3 + ["session.restored"]
    again = store.export_session(MEMBER, with_audit=True)
    assert again is not None
    assert replace(again, ttl=None, audit=None) == replace(before, ttl=None, audit=None)


@pytest.mark.usefixtures("bound")
def test_restoring_twice_writes_nothing_the_second_time(store: StateStore) -> None:
    record = store.export_session(MEMBER, with_audit=True)
    assert record is not None
    wipe(store)
    store.restore_session(record, event=RESTORED)
    trail = store.audit_read(MEMBER)
    outcome = store.restore_session(record, event=RESTORED)
    assert outcome.status is RestoreStatus.UNCHANGED
    assert outcome.live_version == record.version
    assert (outcome.audit_added, outcome.bindings_restored, outcome.bindings_refused) == (0, (), ())
    assert store.audit_read(MEMBER) == trail
    snap = store.get(MEMBER)
    assert snap is not None
    assert snap.version == record.version


def test_a_newer_live_session_is_refused_unless_forced(store: StateStore) -> None:
    seed_member(store, MEMBER, writes=2)
    record = store.export_session(MEMBER)
    assert record is not None
    store.update(MEMBER, {"profile": {"n": 99}})
    outcome = store.restore_session(record, event=RESTORED)
    assert outcome.status is RestoreStatus.NEWER
    assert outcome.refused
    assert outcome.live_version == 3
    assert "newer than the backup's 2" in outcome.explain(record.version)
    snap = store.get(MEMBER)
    assert snap is not None
    assert (snap.version, snap.doc["profile"]["n"]) == (3, 99)
    forced = store.restore_session(record, event=RESTORED, force=True)
    assert forced.status is RestoreStatus.RESTORED
    assert forced.live_version == 3
    snap = store.get(MEMBER)
    assert snap is not None
    # The backup's content as the next version: versions never go back (a second,
    # different version 3 would be two histories), and the replaced one stays in history.
    assert (snap.version, snap.doc["profile"]["n"]) == (4, 1)
    assert [e.version for e in store.history(MEMBER)] == [4, 3, 2, 1]
    assert store.history(MEMBER)[1].doc["profile"]["n"] == 99
    last = store.audit_read(MEMBER)[-1]
    assert (last.event, last.version_before, last.version_after) == ("session.restored", 3, 4)
    again = store.restore_session(record, event=RESTORED)
    assert again.status is RestoreStatus.NEWER  # the record is version 2, the store 4


def test_the_same_version_with_another_document_is_refused(store: StateStore) -> None:
    seed_member(store, MEMBER, writes=2)
    record = store.export_session(MEMBER)
    assert record is not None
    other = replace(record, doc={**record.doc, "profile": {"n": "elsewhere"}})
    outcome = store.restore_session(other, event=RESTORED)
    assert outcome.status is RestoreStatus.DIFFERENT
    assert store.get(MEMBER).doc["profile"] == {"n": 1, "tags": []}  # type: ignore[union-attr]


@pytest.mark.usefixtures("bound")
def test_a_key_bound_elsewhere_is_never_restored(store: StateStore) -> None:
    record = SessionRecord(CHANNEL, 7, 300.0, {"stage": "INIT"})
    for force in (False, True):
        outcome = store.restore_session(record, event=RESTORED, force=force)
        assert outcome.status is RestoreStatus.MOVED
        assert outcome.moved_to == MEMBER
        assert "identity unbind" in outcome.explain(7)
    assert store.route(CHANNEL) == MEMBER


def test_a_channel_with_its_own_live_session_is_bound_only_when_forced(
    store: StateStore,
) -> None:
    seed_member(store, MEMBER)
    exported = store.export_session(MEMBER)
    assert exported is not None
    record = replace(exported, bindings=[CHANNEL])
    wipe(store)
    store.update(CHANNEL, {"stage": "INIT"})  # the number wrote again after the wipe
    outcome = store.restore_session(record, event=RESTORED)
    assert outcome.status is RestoreStatus.RESTORED
    assert outcome.bindings_restored == ()
    assert "has a live session of its own (version 1)" in outcome.bindings_refused[0]
    assert store.route(CHANNEL) is None
    forced = store.restore_session(record, event=RESTORED, force=True)
    assert forced.status is RestoreStatus.UNCHANGED
    assert forced.bindings_restored == (CHANNEL,)
    assert store.route(CHANNEL) == MEMBER
    # Binding drops the channel's own session, as a login does.
    assert store.status(CHANNEL) is SessionStatus.MOVED
    assert store.export_session(CHANNEL) is None


def test_missing_audit_entries_are_merged_in_order(store: StateStore) -> None:
    seed_member(store, MEMBER, writes=2)
    record = store.export_session(MEMBER, with_audit=True)
    assert record is not None
    assert record.audit is not None
    # Taken an hour ago: after a wipe, a new entry could otherwise get an old one's id
    # (ids are milliseconds), which only a test this fast would see.
    record = replace(record, audit=[{**e, "id": earlier(e["id"])} for e in record.audit])
    wipe(store)
    store.restore_session(replace(record, audit=None), event=RESTORED)
    store.audit_append(MEMBER, AuditEvent("note.later"))
    outcome = store.restore_session(record, event=RESTORED)
    assert outcome.status is RestoreStatus.UNCHANGED
    assert outcome.audit_added == 2
    trail = store.audit_read(MEMBER)
    assert [e.event for e in trail] == [
        "state.updated",
        "state.updated",
        "session.restored",
        "note.later",
    ]
    assert [e.id for e in trail] == sorted(
        (e.id for e in trail), key=lambda i: tuple(map(int, i.split("-")))
    )
    assert store.restore_session(record, event=RESTORED).audit_added == 0


def test_every_session_is_listed_once_on_every_master(store: StateStore) -> None:
    keys = {f"member:m{n}" for n in range(60)}
    for key in keys:
        store.update(key, {"stage": "INIT"})
    store.update(CHANNEL, {"stage": "INIT"})
    store.bind(CHANNEL, 1, "member:m1", AuditEvent("identity.bound"))
    listed = list(store.session_keys())
    assert sorted(listed) == sorted(keys)  # the bound channel has no document of its own
    assert store.route_map() == {"member:m1": [CHANNEL]}


def test_no_expiry_and_a_history_without_the_current_version(store: StateStore) -> None:
    record = SessionRecord(
        "member:old",
        5,
        None,
        {"stage": "INIT", "member_id": "old"},
        history=[HistoryRecord(4, {"stage": "INIT"}, "2020-01-01T00:00:00.000000Z")],
    )
    assert store.restore_session(record, event=RESTORED).status is RestoreStatus.RESTORED
    snap = store.get("member:old")
    assert snap is not None
    assert (snap.version, snap.ttl) == (5, None)
    assert [e.version for e in store.history("member:old")] == [5, 4]
    assert store.restore_session(record, event=RESTORED).status is RestoreStatus.UNCHANGED


def test_what_the_store_cannot_hold_is_refused_before_writing(store: StateStore) -> None:
    huge = SessionRecord(MEMBER, 1, 60.0, {"profile": {"blob": "x" * 2_000_000}})
    with pytest.raises(DocumentTooLarge):
        store.restore_session(huge, event=RESTORED)
    with pytest.raises(InvalidInput):
        store.restore_session(SessionRecord("bad{key}", 1, 60.0, {}), event=RESTORED)
    assert list(store.session_keys()) == []


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"version": 0}, "version must be a whole number from 1"),
        ({"version": True}, "version must be a whole number"),
        ({"ttl": -1}, "ttl must be more than 0"),
        ({"key": "a{b}"}, "must not contain '{'"),
        ({"doc": {"_version": 3}}, "doc must not hold _version"),
        ({"history": [{"version": 1}]}, "history[0].doc must be a JSON object"),
        ({"bindings": ["member:m1"]}, "bindings[0] is the record's own key"),
        ({"audit": [{"id": "12"}]}, "audit[0].id must be an audit entry id"),
        ({"audit": [{"id": "1-0", "event": 3}]}, "audit[0].event has the wrong type"),
    ],
)
def test_a_bad_record_is_refused_with_the_field_named(change: dict[str, Any], message: str) -> None:
    good = {"key": MEMBER, "version": 2, "ttl": 60, "doc": {}, "history": [], "bindings": []}
    with pytest.raises(InvalidInput, match=message.replace("[", r"\[").replace("]", r"\]")):
        SessionRecord.from_dict({**good, **change})


keys = st.text(max_size=6).filter(lambda k: k not in ("_version", "_last_updated"))
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10)
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=3),
    max_leaves=16,
)
documents = st.dictionaries(keys, values, max_size=5)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(first=documents, second=documents)
def test_any_session_survives_export_json_and_restore(
    store: StateStore, first: dict[str, Any], second: dict[str, Any]
) -> None:
    key = f"member:{uuid.uuid4().hex}"
    store.mutate(key, lambda _: first)
    store.mutate(key, lambda _: second)
    record = store.export_session(key)
    assert record is not None
    live, history = store.get(key), store.history(key)
    store.delete(key)
    line = record.to_json()
    line.encode()  # every record can be written as UTF-8, lone surrogates included
    restored = SessionRecord.from_json(line)
    assert restored == record
    assert store.restore_session(restored, event=RESTORED).status is RestoreStatus.RESTORED
    after = store.get(key)
    assert after is not None
    assert live is not None
    assert (after.doc, after.version) == (live.doc, live.version)
    assert after.ttl is not None
    assert live.ttl is not None
    assert abs(after.ttl - live.ttl) < 2
    assert store.history(key) == history
    # The stored form is byte for byte what a write produces: restoring again is a no-op.
    assert store.restore_session(restored, event=RESTORED).status is RestoreStatus.UNCHANGED


def earlier(entry_id: str, ms: int = 3_600_000) -> str:
    """An audit entry id ``ms`` milliseconds older."""
    millis, seq = entry_id.split("-")
    return f"{int(millis) - ms}-{seq}"
