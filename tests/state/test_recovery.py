"""Recovery from state damaged under the key by hand: restore from history, else reset."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import redis
from prometheus_client import REGISTRY

from statehq import StateStore
from statehq.state import StateManager
from statehq.state.recovery import RESET_MESSAGE, RESTORED_MESSAGE

PHONE = "whatsapp:263771234567"


def recoveries(outcome: str) -> float:
    return REGISTRY.get_sample_value("statehq_recoveries_total", {"outcome": outcome}) or 0.0


def doc_key(store: StateStore, session: str) -> str:
    return f"{store.settings.key_prefix}:{{{session}}}:doc"


def hist_key(store: StateStore, session: str) -> str:
    return f"{store.settings.key_prefix}:{{{session}}}:hist"


@pytest.fixture
def at_amount(manager: StateManager, token: Callable[..., str]) -> int:
    """m1 logged in, in the offer flow at step 'recipient'; returns that version."""
    session = manager.open(PHONE)
    session.transition("AUTH")
    session.authenticate("m1", token())
    session.transition("MENU")
    session.start_flow("offer", "amount")
    return session.advance("recipient", {"amount": 5}).version


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda r, k: r.hset(k, "flow_data.step", "{not json"), id="bad-leaf"),
        pytest.param(lambda r, k: r.hset(k, "orphan.child", '"x"'), id="orphan-field"),
        pytest.param(lambda r, k: r.hset(k, "stage", '"NOWHERE"'), id="invalid-stage"),
        pytest.param(lambda r, k: r.hset(k, "mobile_number", '"2637"'), id="unknown-field"),
        pytest.param(lambda r, k: (r.delete(k), r.set(k, "garbage")), id="wrong-type"),
    ],
)
def test_damaged_state_is_restored_from_the_newest_valid_version(
    manager: StateManager,
    store: StateStore,
    raw: redis.Redis,
    at_amount: int,
    damage: Callable[[redis.Redis, str], object],
) -> None:
    before = recoveries("restored")
    damage(raw, doc_key(store, "member:m1"))
    session = manager.open(PHONE)
    assert session.recovered is not None
    assert session.recovered.outcome == "restored"
    assert session.recovered.message == RESTORED_MESSAGE
    assert session.get_flow()["step"] == "recipient"  # type: ignore[index]
    assert session.get_member_id() == "m1"
    assert session.version > at_amount
    assert recoveries("restored") == before + 1
    entry = manager.audit.read("m1")[-1]
    assert entry.event == "state.recovered"
    assert entry.detail["problem"]
    assert manager.open(PHONE).recovered is None  # healthy again


def test_without_a_valid_version_the_session_resets_keeping_identity(
    manager: StateManager, store: StateStore, raw: redis.Redis, at_amount: int
) -> None:
    before = recoveries("reset")
    raw.delete(hist_key(store, "member:m1"))
    raw.rpush(hist_key(store, "member:m1"), "garbage", '{"stage": "\\"NOWHERE\\""}')
    raw.hset(doc_key(store, "member:m1"), "flow_data.step", "{broken")
    session = manager.open(PHONE)
    assert session.recovered is not None
    assert session.recovered.outcome == "reset"
    assert session.recovered.message == RESET_MESSAGE
    state = session.state()
    assert state["member_id"] == "m1"
    assert state["channel"] == {"type": "whatsapp", "identifier": "263771234567"}
    assert state["stage"] == "INIT"
    assert state.get("jwt_token") is None
    assert "flow_data" not in state
    assert recoveries("reset") == before + 1
    assert manager.audit.read("m1")[-1].event == "state.reset"


def test_a_damaged_channel_session_resets_to_its_channel(
    manager: StateManager, store: StateStore, raw: redis.Redis
) -> None:
    manager.open(PHONE)
    raw.delete(doc_key(store, PHONE), hist_key(store, PHONE))
    raw.set(doc_key(store, PHONE), "garbage")
    raw.set(hist_key(store, PHONE), "garbage")
    session = manager.open(PHONE)
    assert session.recovered is not None
    assert session.recovered.outcome == "reset"
    assert session.state()["channel"] == {"type": "whatsapp", "identifier": "263771234567"}


def test_operators_can_recover_and_reset(
    manager: StateManager, store: StateStore, raw: redis.Redis, at_amount: int
) -> None:
    assert manager.recover("m1").outcome == "healthy"
    raw.hset(doc_key(store, "member:m1"), "authenticated", '"yes"')
    result = manager.recover(PHONE, reason="ticket 42")
    assert result.outcome == "restored"
    assert result.restored_from == at_amount
    assert "authenticated" in result.problem
    snap = manager.reset("m1", reason="member asked to start over")
    assert snap.doc["stage"] == "INIT"
    assert snap.doc["member_id"] == "m1"
    reasons = [(e.event, e.reason) for e in manager.audit.read("m1")[-2:]]
    assert reasons == [
        ("state.recovered", "ticket 42"),
        ("state.reset", "member asked to start over"),
    ]
