"""The state manager: accessors that copy, validated writes, flows, stages, expiry, tokens."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from statehq import StateStore
from statehq.errors import InvalidInput, StateValidationError, TransitionRefused
from statehq.state import ChannelId, StateManager
from tests.state.stages import make_jwt, make_stages

PHONE = "whatsapp:263771234567"


def logged_in(manager: StateManager, token: str, phone: str = PHONE, member: str = "m1"):  # type: ignore[no-untyped-def]
    session = manager.open(phone)
    session.transition("AUTH")
    session.authenticate(member, token, profile={"name": "Ann"}, current_account={"id": "a1"})
    session.transition("MENU")
    return session


def test_a_first_message_starts_a_session_keyed_by_the_channel(manager: StateManager) -> None:
    session = manager.open(PHONE)
    assert session.key == PHONE
    assert session.get_channel() == ChannelId("whatsapp", "263771234567")
    assert session.get_member_id() is None
    assert session.get_stage() == "INIT"
    assert not session.is_authenticated()
    assert session.get_jwt() is None
    assert session.version == 1
    assert not session.expired
    assert [e.event for e in manager.audit.read(PHONE)] == ["session.started"]


def test_reads_are_copies_that_cannot_change_stored_state(
    manager: StateManager, token: Callable[..., str]
) -> None:
    session = logged_in(manager, token())
    session.start_flow("offer", "amount", {"amount": 5})
    session.get_flow()["data"]["amount"] = 999  # type: ignore[index]
    session.get_profile()["name"] = "Mallory"  # type: ignore[index]
    session.state()["authenticated"] = False
    session.reload()
    assert session.get_flow()["data"] == {"amount": 5}  # type: ignore[index]
    assert session.get_profile() == {"name": "Ann"}
    assert session.is_authenticated()


def test_update_state_validates_the_whole_result_and_writes_nothing_when_refused(
    manager: StateManager, store: StateStore
) -> None:
    session = manager.open(PHONE)
    before = store.get(PHONE)
    with pytest.raises(StateValidationError) as caught:
        session.update_state({"authenticated": True, "favourite": "blue"})
    assert {v.path for v in caught.value.violations} == {"authenticated", "favourite"}
    after = store.get(PHONE)
    assert after is not None
    assert before is not None
    assert (after.doc, after.version) == (before.doc, before.version)
    refused = manager.audit.read(PHONE)[-1]
    assert refused.event == "state.refused"
    assert refused.version_after == before.version
    assert any("favourite" in v for v in refused.detail["violations"])


def test_update_state_cannot_touch_identity_or_store_fields(manager: StateManager) -> None:
    session = manager.open(PHONE)
    for patch in ({"member_id": "m9"}, {"channel": {"identifier": "263770000000"}}):
        with pytest.raises(StateValidationError, match="identity operations"):
            session.update_state(patch)
    with pytest.raises(InvalidInput, match="set by the store only"):
        session.update_state({"_version": 99})


def test_flow_helpers_track_steps_data_and_validation(
    manager: StateManager, token: Callable[..., str]
) -> None:
    session = logged_in(manager, token())
    session.start_flow("offer", "amount")
    assert session.record_validation(False, "amount must be greater than 0") == 1
    assert session.record_validation(False, "amount must be greater than 0") == 2
    flow = session.get_flow()
    assert flow is not None
    assert flow["_validation"]["in_progress"] is True
    assert flow["_validation"]["last_attempt"]["error"] == "amount must be greater than 0"
    assert session.record_validation(True) == 3
    session.advance("recipient", {"amount": "9.50", "denomination": "USD"})
    session.advance("confirm", {"recipient": "bob", "denomination": None})
    flow = session.get_flow()
    assert flow == {
        "id": "offer",
        "step": "confirm",
        "data": {"amount": "9.50", "recipient": "bob"},
        "_validation": {"in_progress": False, "attempts": 0, "last_attempt": None},
    }
    events = [e.event for e in manager.audit.read("m1")]
    assert events[-6:] == [
        "flow.started",
        "validation.failed",
        "validation.failed",
        "validation.passed",
        "flow.step",
        "flow.step",
    ]


@pytest.mark.parametrize("finish", ["end_flow", "cancel_flow"])
def test_leaving_a_flow_keeps_only_the_preserved_fields(
    manager: StateManager, token: Callable[..., str], finish: str
) -> None:
    jwt = token()
    session = logged_in(manager, jwt)
    session.start_flow("offer", "amount", {"amount": 5})
    getattr(session, finish)()
    state = session.state()
    assert state["stage"] == "MENU"
    assert "flow_data" not in state
    kept = {k: state[k] for k in ("member_id", "channel", "jwt_token", "authenticated")}
    assert kept == {
        "member_id": "m1",
        "channel": {"type": "whatsapp", "identifier": "263771234567"},
        "jwt_token": jwt,
        "authenticated": True,
    }
    assert state["profile"] == {"name": "Ann"}
    assert state["current_account"] == {"id": "a1"}
    event = "flow.ended" if finish == "end_flow" else "flow.cancelled"
    assert manager.audit.read("m1")[-1].event == event


def test_cancel_without_a_flow_writes_nothing(manager: StateManager) -> None:
    session = manager.open(PHONE)
    version = session.version
    session.cancel_flow()
    assert session.version == version
    with pytest.raises(InvalidInput, match="no active flow"):
        session.end_flow()
    with pytest.raises(InvalidInput, match="no active flow"):
        session.advance("next")


def test_undeclared_transitions_are_refused_and_audited(
    manager: StateManager, store: StateStore
) -> None:
    session = manager.open(PHONE)
    with pytest.raises(TransitionRefused, match="from INIT the declared stages are: AUTH"):
        session.transition("MENU")
    with pytest.raises(TransitionRefused):
        session.start_flow("offer")  # flows start from MENU
    with pytest.raises(TransitionRefused):
        session.update_state({"stage": "MENU"})  # the rule holds for every write
    session.transition("AUTH")
    session.start_flow("register", "first_name")  # declared before login
    assert store.get(PHONE).doc["stage"] == "register"  # type: ignore[union-attr]
    refused = [e for e in manager.audit.read(PHONE) if e.event == "transition.refused"]
    assert len(refused) == 3
    assert refused[0].detail == {"attempted": "stage.changed", "source": "INIT", "target": "MENU"}


def test_an_expired_session_restarts_at_login_with_identity_kept(
    server_url: str, prefix: str, token: Callable[..., str]
) -> None:
    with StateStore.open(url=server_url, key_prefix=prefix, session_ttl=0.4) as store:
        manager = StateManager(store, stages=make_stages())
        session = logged_in(manager, token())
        session.start_flow("offer", "amount")
        time.sleep(0.6)
        again = manager.open(PHONE)
        assert again.expired
        assert again.key == "member:m1"
        assert again.get_member_id() == "m1"
        assert again.get_stage() == "INIT"
        assert again.get_flow() is None
        assert not again.is_authenticated()
        assert again.version > session.version  # versions continue after expiry
        events = [e.event for e in manager.audit.read("m1")]
        assert events[-2:] == ["session.expired", "session.started"]
        assert not manager.open(PHONE).expired


def test_sessions_slide_on_use(server_url: str, prefix: str) -> None:
    with StateStore.open(url=server_url, key_prefix=prefix, session_ttl=0.6) as store:
        manager = StateManager(store, stages=make_stages())
        manager.open(PHONE)
        for _ in range(4):
            time.sleep(0.3)
            assert not manager.open(PHONE).expired


class FakeClock:
    """An injectable clock for token expiry."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def test_a_token_about_to_expire_is_refreshed_and_an_expired_one_never_sent(
    store: StateStore,
) -> None:
    clock = FakeClock()
    issued: list[str] = []

    def refresher(member_id: str, old: str) -> str:
        assert member_id == "m1"
        fresh = make_jwt((clock.now + timedelta(minutes=5)).timestamp(), secret_tag="new")
        issued.append(fresh)
        return fresh

    manager = StateManager(store, stages=make_stages(), refresher=refresher, clock=clock)
    first = make_jwt((clock.now + timedelta(minutes=5)).timestamp())
    session = logged_in(manager, first)
    assert session.get_jwt() == first
    assert not issued
    clock.now += timedelta(minutes=4, seconds=30)  # inside the 60 s refresh margin
    assert session.get_jwt() == issued[0]
    assert manager.open(PHONE).get_jwt() == issued[0]  # stored, not just returned
    assert manager.audit.read("m1")[-1].event == "token.refreshed"

    manager.refresher = None
    clock.now += timedelta(minutes=6)  # past exp, nobody to refresh it
    assert session.get_jwt() is None
    assert not session.is_authenticated()
    assert manager.open(PHONE).state()["jwt_token"] is None
    assert manager.audit.read("m1")[-1].event == "token.expired"


def test_a_failing_refresh_keeps_a_still_valid_token(store: StateStore) -> None:
    clock = FakeClock()

    def refresher(member_id: str, old: str) -> str:
        raise ConnectionError("backend down")

    manager = StateManager(store, stages=make_stages(), refresher=refresher, clock=clock)
    jwt = make_jwt((clock.now + timedelta(seconds=30)).timestamp())
    session = logged_in(manager, jwt)
    assert session.get_jwt() == jwt
    clock.now += timedelta(seconds=31)
    assert session.get_jwt() is None


def test_set_jwt_needs_a_readable_expiry(manager: StateManager, token: Callable[..., str]) -> None:
    session = logged_in(manager, token())
    with pytest.raises(InvalidInput, match="exp claim"):
        session.set_jwt("not-a-jwt")
    fresh = token(600)
    session.set_jwt(fresh)
    assert session.get_jwt() == fresh


def test_rollback_through_the_manager_is_validated_and_audited(
    manager: StateManager, token: Callable[..., str]
) -> None:
    session = logged_in(manager, token())
    session.start_flow("offer", "amount")
    at_amount = session.version
    session.advance("recipient", {"amount": 5})
    session.rollback(at_amount)
    assert session.get_flow()["step"] == "amount"  # type: ignore[index]
    entry = manager.audit.read("m1")[-1]
    assert entry.event == "state.rolled_back"
    assert entry.detail == {"to_version": at_amount}
    assert "flow_data.data.amount" in entry.removed


def test_a_stale_handle_cannot_write_into_a_flow_started_since(
    manager: StateManager, token: Callable[..., str]
) -> None:
    stale = logged_in(manager, token())
    stale.start_flow("offer", "amount")
    fresh = manager.open(PHONE)
    fresh.cancel_flow()
    fresh.start_flow("ledger", "page")
    with pytest.raises(InvalidInput, match="now in flow 'ledger', not 'offer'"):
        stale.advance("recipient", {"amount": 5})
    with pytest.raises(InvalidInput, match="now in flow 'ledger'"):
        stale.record_validation(False, "bad")
    assert manager.open(PHONE).get_flow()["data"] == {}  # type: ignore[index]


def test_an_expiring_stale_token_does_not_clear_a_newer_one(store: StateStore) -> None:
    clock = FakeClock()
    manager = StateManager(store, stages=make_stages(), clock=clock)
    old = make_jwt((clock.now + timedelta(seconds=30)).timestamp())
    stale = logged_in(manager, old)
    newer = make_jwt((clock.now + timedelta(minutes=10)).timestamp())
    manager.open(PHONE).set_jwt(newer)
    clock.now += timedelta(seconds=31)
    assert stale.get_jwt() is None  # its own copy expired ...
    assert manager.open(PHONE).get_jwt() == newer  # ... but the stored newer token stays


def test_authenticate_needs_a_token_with_an_expiry(manager: StateManager) -> None:
    session = manager.open(PHONE)
    session.transition("AUTH")
    with pytest.raises(InvalidInput, match="exp claim"):
        session.authenticate("m1", "opaque")
    assert manager.open(PHONE).key == PHONE
