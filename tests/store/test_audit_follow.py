"""Following the audit trail: one session's, and every session's global tail."""

from __future__ import annotations

from statehq import StateStore
from statehq.store.audit import AuditEvent


def test_following_a_session_returns_only_what_came_after(store: StateStore) -> None:
    store.update("whatsapp:1", {"stage": "INIT"}, audit=[AuditEvent("state.updated", "", "a")])
    first = store.audit_read("whatsapp:1")
    assert store.audit_follow("whatsapp:1", first[-1].id) == []
    store.update("whatsapp:1", {"stage": "AUTH"}, audit=[AuditEvent("state.updated", "", "b")])
    fresh = store.audit_follow("whatsapp:1", first[-1].id, wait_ms=200)
    assert [entry.reason for entry in fresh] == ["b"]


def test_following_the_tail_sees_every_session_once(store: StateStore) -> None:
    store.update("whatsapp:0", {"stage": "INIT"})  # before following: not reported
    lines, positions = store.audit_follow_tail({}, wait_ms=100)
    assert lines == []
    sessions = [f"whatsapp:{n}" for n in range(1, 40)]  # spread over every tail piece
    for session in sessions:
        store.update(session, {"stage": "INIT"}, audit=[AuditEvent("state.updated", "", "x")])
    seen: list[str] = []
    for _ in range(20):
        lines, positions = store.audit_follow_tail(positions, wait_ms=100)
        seen += [line.session for line in lines]
        if len(seen) >= len(sessions):
            break
    assert sorted(seen) == sorted(sessions)
    assert store.audit_follow_tail(positions, wait_ms=50)[0] == []
