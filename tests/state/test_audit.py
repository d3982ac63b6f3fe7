"""The audit trail: written with the change, readable, bounded by age and by length."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from statehq import StateStore
from statehq.errors import InvalidInput, StateValidationError
from statehq.state import StateManager
from statehq.store.audit import AuditEvent
from tests.state.stages import make_stages

PHONE = "whatsapp:263771234567"


def test_a_state_change_and_its_entry_are_one_write(
    manager: StateManager, store: StateStore
) -> None:
    session = manager.open(PHONE)
    session.transition("AUTH", reason="greeting")
    entry = manager.audit.read(PHONE)[-1]
    assert entry.event == "stage.changed"
    assert entry.reason == "greeting"
    assert entry.channel == PHONE
    assert (entry.version_before, entry.version_after) == (1, 2)
    assert entry.fields == ["stage"]
    assert entry.values == {"stage": "AUTH"}
    assert entry.session == PHONE
    assert datetime.fromisoformat(entry.at) <= datetime.now(UTC)
    # Every version in the history has exactly one state-change entry.
    versions = [e.version_after for e in manager.audit.read(PHONE) if e.fields]
    assert sorted(versions) == sorted(h.version for h in store.history(PHONE))


def test_a_refused_write_leaves_no_change_entry(manager: StateManager) -> None:
    session = manager.open(PHONE)
    with pytest.raises(StateValidationError):
        session.update_state({"bogus": 1})
    events = [e.event for e in manager.audit.read(PHONE)]
    assert events == ["session.started", "state.refused"]


def test_deleted_fields_are_named(manager: StateManager, token: Callable[..., str]) -> None:
    session = manager.open(PHONE)
    session.transition("AUTH")
    session.authenticate("m1", token())
    session.transition("MENU")
    session.start_flow("offer", "amount", {"amount": 5})
    session.cancel_flow()
    entry = manager.audit.read("m1")[-1]
    assert entry.event == "flow.cancelled"
    assert "flow_data.data.amount" in entry.removed
    assert "flow_data.step" in entry.removed
    assert entry.values == {"stage": "MENU"}


def test_messages_in_and_out_are_recorded(manager: StateManager) -> None:
    session = manager.open(PHONE)
    session.record_message("in", "wamid.IN1", "text")
    session.record_message("out", "wamid.OUT1", "buttons")
    last = manager.audit.read(PHONE)[-2:]
    assert [(e.event, e.detail["message_id"]) for e in last] == [
        ("message.in", "wamid.IN1"),
        ("message.out", "wamid.OUT1"),
    ]
    assert last[0].version_after == session.version
    with pytest.raises(InvalidInput):
        session.record_message("sideways", "x")


def test_read_pages_with_since_and_limit(manager: StateManager) -> None:
    session = manager.open(PHONE)
    for i in range(7):
        session.record_message("in", f"m{i}")
    newest = manager.audit.read(PHONE, limit=3)
    assert [e.detail["message_id"] for e in newest] == ["m4", "m5", "m6"]
    first = manager.audit.read(PHONE, since=datetime.now(UTC) - timedelta(minutes=1), limit=3)
    assert first[0].event == "session.started"
    page2 = manager.audit.read(PHONE, since=first[-1].id, limit=3)
    assert [e.detail["message_id"] for e in page2] == ["m2", "m3", "m4"]
    assert manager.audit.read(PHONE, since=datetime.now(UTC) + timedelta(minutes=1)) == []
    for bad in (0, 10_001, "5"):
        with pytest.raises(InvalidInput, match="limit"):
            manager.audit.read(PHONE, limit=bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="since"):
        manager.audit.read(PHONE, since="yesterday")
    for other_digits in ("\u00b2", "\u0663-1", "1-\u00b9"):  # a superscript, Arabic-Indic digits
        with pytest.raises(InvalidInput, match="since"):
            manager.audit.read(PHONE, since=other_digits)


def test_the_global_tail_shows_every_session(manager: StateManager) -> None:
    manager.open(PHONE).transition("AUTH")
    manager.open("web:abc").record_message("in", "w1")
    tail = manager.audit.tail(limit=10)
    assert [(t.session, t.event) for t in tail] == [
        (PHONE, "session.started"),
        (PHONE, "stage.changed"),
        ("web:abc", "session.started"),
        ("web:abc", "message.in"),
    ]
    entry = manager.audit.read(PHONE)[-1]
    assert tail[1].entry_id == entry.id
    assert tail[1].version == 2


def test_retention_by_length(server_url: str, prefix: str) -> None:
    with StateStore.open(url=server_url, key_prefix=prefix, audit_max_entries=5) as store:
        manager = StateManager(store, stages=make_stages())
        session = manager.open(PHONE)
        for i in range(20):
            session.record_message("in", f"m{i}")
        entries = manager.audit.read(PHONE, limit=100)
        assert [e.detail["message_id"] for e in entries] == [f"m{i}" for i in range(15, 20)]


def test_retention_by_age_and_the_trail_outlives_the_session(server_url: str, prefix: str) -> None:
    with StateStore.open(
        url=server_url, key_prefix=prefix, audit_retention=1.0, session_ttl=0.3
    ) as store:
        manager = StateManager(store, stages=make_stages())
        manager.open(PHONE).record_message("in", "old")
        time.sleep(0.5)
        assert store.get(PHONE) is None  # the session expired ...
        assert len(manager.audit.read(PHONE)) == 2  # ... its audit did not
        time.sleep(0.7)
        store.audit_append(PHONE, AuditEvent("note", reason="after a quiet second"))
        assert [e.event for e in manager.audit.read(PHONE)] == ["note"]
        time.sleep(1.2)
        assert manager.audit.read(PHONE) == []  # a quiet stream expires whole


def test_text_that_is_no_utf_8_is_recorded_with_a_replacement_character(
    store: StateStore, member: str
) -> None:
    # A lone surrogate (JSON's "\ud800") in a reason or a detail must not lose the entry.
    event = AuditEvent("operator.note", "whatsapp:1", "caf\ud800", {"note": "x\udc00y"})
    store.audit_append(member, event)
    (entry,) = store.audit_read(member, limit=10)
    assert entry.reason == "caf\ufffd"
    assert entry.detail == {"note": "x\ufffdy"}
