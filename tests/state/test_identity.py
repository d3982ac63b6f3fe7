"""Identity across channels: binding keeps everything, readers never see a gap."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from statehq import StateStore
from statehq.errors import IdentityError
from statehq.state import StateManager

PHONE = "whatsapp:263771234567"
WEB = "web:3f2c9a"


def test_login_moves_the_session_to_the_member_with_nothing_lost(
    manager: StateManager, store: StateStore, token: Callable[..., str]
) -> None:
    session = manager.open(PHONE)
    session.transition("AUTH")
    session.start_flow("register", "last_name", {"first_name": "Ann"})
    jwt = token()
    session.authenticate("m1", jwt, profile={"name": "Ann Moyo"})
    assert session.key == "member:m1"
    assert store.route(PHONE) == "member:m1"
    again = manager.open(PHONE)
    assert again.key == "member:m1"
    assert again.get_member_id() == "m1"
    assert again.get_jwt() == jwt
    assert again.get_flow()["data"] == {"first_name": "Ann"}  # type: ignore[index]
    assert again.get_stage() == "register"
    assert again.get_profile() == {"name": "Ann Moyo"}
    assert store.get("member:m1") is not None
    channel_events = [e.event for e in manager.audit.read(PHONE)]
    assert channel_events[-1] == "identity.bound"
    member_events = [e.event for e in manager.audit.read("m1")]
    assert member_events[:2] == ["identity.bound", "auth.login"]


def test_a_second_channel_shares_the_members_state(
    manager: StateManager, token: Callable[..., str]
) -> None:
    phone = manager.open(PHONE)
    phone.transition("AUTH")
    phone.authenticate("m1", token())
    phone.transition("MENU")
    web = manager.open(WEB)
    web.transition("AUTH")
    web.authenticate("m1", token())
    web.transition("MENU")  # the channel that logged in last carries its conversation
    phone.reload()
    phone.start_flow("offer", "amount")
    web.reload()
    assert web.key == phone.key == "member:m1"
    assert web.get_flow()["id"] == "offer"  # type: ignore[index]
    assert web.get_channel().key == WEB  # type: ignore[union-attr]
    assert phone.get_channel().key == PHONE  # type: ignore[union-attr]


def test_two_channels_writing_at_once_lose_nothing(
    server_url: str, prefix: str, token: Callable[..., str]
) -> None:
    stores = [StateStore.open(url=server_url, key_prefix=prefix) for _ in range(2)]
    try:
        from tests.state.stages import make_stages

        managers = [StateManager(s, stages=make_stages()) for s in stores]
        for manager, channel in zip(managers, (PHONE, WEB), strict=True):
            session = manager.open(channel)
            session.transition("AUTH")
            session.authenticate("m1", token())
        session.transition("MENU")
        session.start_flow("offer", "amount")
        writes = 40

        def write(manager: StateManager, channel: str) -> None:
            mine = manager.open(channel)
            for i in range(writes):
                mine.advance("amount", {f"{channel}-{i}": i})

        threads = [
            threading.Thread(target=write, args=(m, c))
            for m, c in zip(managers, (PHONE, WEB), strict=True)
        ]
        before = managers[0].open(PHONE).version
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        final = managers[0].open(PHONE)
        data = final.get_flow()["data"]  # type: ignore[index]
        assert len(data) == 2 * writes
        assert final.version == before + 2 * writes
    finally:
        for store in stores:
            store.close()


def test_readers_never_see_a_gap_while_a_channel_is_bound(
    manager: StateManager, server_url: str, prefix: str, token: Callable[..., str]
) -> None:
    """A reader polling the channel sees the flow before, during and after the bind."""
    from tests.state.stages import make_stages

    session = manager.open(PHONE)
    session.transition("AUTH")
    session.start_flow("register", "last_name", {"first_name": "Ann"})
    seen: list[tuple[str, str | None]] = []
    stop = threading.Event()

    def read() -> None:
        with StateStore.open(url=server_url, key_prefix=prefix) as own:
            reader = StateManager(own, stages=make_stages())
            while not stop.is_set():
                view = reader.open(PHONE)
                flow = view.get_flow()
                seen.append((view.key, flow["data"].get("first_name") if flow else None))

    thread = threading.Thread(target=read)
    thread.start()
    try:
        while len(seen) < 20:
            time.sleep(0.001)
        session.authenticate("m1", token())
        mark = len(seen)
        while len(seen) < mark + 20:
            time.sleep(0.001)
    finally:
        stop.set()
        thread.join()
    assert {name for _, name in seen} == {"Ann"}  # never a fresh, empty session
    assert {key for key, _ in seen} == {PHONE, "member:m1"}


def test_unbinding_a_number_that_changed_hands(
    manager: StateManager, token: Callable[..., str]
) -> None:
    old = manager.open(PHONE)
    old.transition("AUTH")
    old.authenticate("m1", token())
    stale = manager.open(PHONE)
    stale.key = PHONE  # a handle from before the bind
    with pytest.raises(IdentityError, match="unbind it first"):
        stale.authenticate("m2", token())
    assert manager.unbind(PHONE, reason="number recycled") == "member:m1"
    member = manager.open("member:m1").state()
    assert member["channel"] is None
    assert member["jwt_token"] is None
    assert member["authenticated"] is False
    newcomer = manager.open(PHONE)
    assert newcomer.key == PHONE
    assert newcomer.get_member_id() is None
    newcomer.transition("AUTH")
    newcomer.authenticate("m2", token())
    assert newcomer.key == "member:m2"
    unbound = [e for e in manager.audit.read(PHONE) if e.event.startswith("identity.")]
    assert [e.event for e in unbound] == ["identity.bound", "identity.unbound", "identity.bound"]
    assert unbound[1].reason == "number recycled"
    assert manager.audit.read("m1")[-1].event == "identity.unbound"
    with pytest.raises(IdentityError, match="not bound"):
        manager.unbind("whatsapp:263770000000")


def test_a_member_session_refuses_another_members_login(
    manager: StateManager, token: Callable[..., str]
) -> None:
    session = manager.open(PHONE)
    session.transition("AUTH")
    session.authenticate("m1", token())
    with pytest.raises(IdentityError, match="belongs to member 'm1'"):
        session.authenticate("m2", token())


def test_logging_in_on_a_second_channel_while_mid_flow_on_the_first(
    manager: StateManager, token: Callable[..., str]
) -> None:
    web = manager.open(WEB)
    web.transition("AUTH")
    web.authenticate("m1", token())
    web.transition("MENU")
    web.start_flow("offer", "amount")
    phone = manager.open(PHONE)
    phone.transition("AUTH")
    phone.authenticate("m1", token())  # the phone's conversation (AUTH, no flow) wins
    assert phone.get_stage() == "AUTH"
    assert phone.get_flow() is None


def test_the_next_holder_of_an_unbound_number_starts_afresh(
    manager: StateManager, token: Callable[..., str]
) -> None:
    old = manager.open(PHONE)
    old.transition("AUTH")
    old.authenticate("m1", token())
    manager.unbind(PHONE, reason="recycled")
    newcomer = manager.open(PHONE)
    assert not newcomer.expired
    assert newcomer.version == 1
