"""The asyncio state manager follows the blocking one's rules, from the same code.

Each test mirrors a blocking one (test_manager, test_identity, test_recovery): a refused
write writes nothing and is audited, every write has its audit entry, stages move only
as declared, a login binds the channel to the member, damaged state is recovered.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from conftest import make_stages
from statehq import AsyncStateManager, AsyncStateStore, StateValidationError, TransitionRefused
from statehq.errors import IdentityError, InvalidInput, LeaseLost, NoLiveSession
from statehq.state import StateManager

PHONE = "whatsapp:263771234567"
WEB = "web:3f2c9a"


@pytest.fixture
def amanager(astore: AsyncStateStore) -> AsyncStateManager:
    return AsyncStateManager(astore, stages=make_stages())


async def events(manager: AsyncStateManager, who: str) -> list[str]:
    return [entry.event for entry in await manager.audit.read(who)]


async def test_a_first_message_starts_a_session_keyed_by_the_channel(
    amanager: AsyncStateManager,
) -> None:
    session = await amanager.open(PHONE)
    assert (session.key, session.version, session.get_stage()) == (PHONE, 1, "INIT")
    assert str(session.get_channel()) == PHONE
    assert session.get_member_id() is None
    assert not session.expired
    assert await events(amanager, PHONE) == ["session.started"]
    assert (await amanager.open(PHONE)).version == 1  # resumed, not started again
    assert await amanager.find("whatsapp:263770000000") is None  # find never starts one


async def test_a_refused_write_writes_nothing_and_is_audited(
    amanager: AsyncStateManager,
) -> None:
    session = await amanager.open(PHONE)
    with pytest.raises(StateValidationError) as refused:
        await session.update_state({"colour": "blue", "authenticated": "yes"})
    assert {v.path for v in refused.value.violations} == {"colour", "authenticated"}
    with pytest.raises(StateValidationError):
        await session.update_state({"member_id": "m-9"})  # identity changes only by login
    with pytest.raises(TransitionRefused, match="from INIT the declared stages are: AUTH"):
        await session.transition("MENU")
    _, snap = await amanager.show(PHONE)
    assert snap.version == 1
    assert await events(amanager, PHONE) == [
        "session.started",
        "state.refused",
        "state.refused",
        "transition.refused",
    ]


async def test_update_on_a_member_without_a_session_refuses_before_starting_one(
    amanager: AsyncStateManager,
) -> None:
    with pytest.raises(StateValidationError):
        await amanager.update(PHONE, {"colour": "blue"})
    with pytest.raises(NoLiveSession):
        await amanager.show(PHONE)
    key, snap = await amanager.update(PHONE, {"profile": {"name": "Ann"}})
    assert (key, snap.version, snap.doc["profile"]) == (PHONE, 2, {"name": "Ann"})


async def test_flow_helpers_write_validated_audited_versions(
    amanager: AsyncStateManager,
) -> None:
    session = await amanager.open(PHONE)
    await session.transition("AUTH")
    await session.start_flow("register", "first_name")
    assert await session.record_validation(False, "too short") == 1
    await session.advance("last_name", {"first_name": "Ann"})
    flow = session.get_flow()
    assert flow is not None
    assert (flow["step"], flow["data"], flow["_validation"]["attempts"]) == (
        "last_name",
        {"first_name": "Ann"},
        0,
    )
    await session.end_flow()
    assert (session.get_stage(), session.get_flow(), session.version) == ("AUTH", None, 6)
    assert await session.cancel_flow() is session.snapshot  # nothing to cancel: no write
    assert (await events(amanager, PHONE))[1:] == [
        "stage.changed",
        "flow.started",
        "validation.failed",
        "flow.step",
        "flow.ended",
    ]


async def test_login_binds_the_channel_and_a_second_channel_shares_the_state(
    amanager: AsyncStateManager, astore: AsyncStateStore, token: Callable[..., str]
) -> None:
    session = await amanager.open(PHONE)
    await session.transition("AUTH")
    await session.start_flow("register", "last_name", {"first_name": "Ann"})
    jwt = token()
    await session.authenticate("m1", jwt, profile={"name": "Ann Moyo"})
    assert session.key == "member:m1"
    assert await astore.route(PHONE) == "member:m1"
    again = await amanager.open(PHONE)
    assert (again.key, again.get_member_id(), await again.get_jwt()) == ("member:m1", "m1", jwt)
    assert again.get_flow()["data"] == {"first_name": "Ann"}  # type: ignore[index]
    assert (await events(amanager, PHONE))[-1] == "identity.bound"
    assert (await events(amanager, "m1"))[:2] == ["identity.bound", "auth.login"]
    web = await amanager.open(WEB)
    await web.authenticate("m1", token())
    assert web.key == "member:m1"
    assert web.get_stage() == "INIT"  # the conversation moves whole: web's, not the phone's
    with pytest.raises(IdentityError):
        await (await amanager.open(WEB)).authenticate("m2", token())
    assert await amanager.unbind(PHONE, reason="number changed hands") == "member:m1"
    assert await astore.route(PHONE) is None
    assert (await amanager.open(PHONE)).key == PHONE


async def test_a_token_about_to_expire_is_refreshed_by_an_async_refresher(
    astore: AsyncStateStore, token: Callable[..., str]
) -> None:
    fresh = token(300)

    async def refresher(member_id: str, old: str) -> str:
        await asyncio.sleep(0)
        return fresh

    manager = AsyncStateManager(astore, stages=make_stages(), refresher=refresher)
    session = await manager.open(PHONE)
    await session.transition("AUTH")
    await session.authenticate("m1", token(30))  # inside the 60 s refresh margin
    assert await session.get_jwt() == fresh
    assert "token.refreshed" in await events(manager, "m1")
    with pytest.raises(InvalidInput):
        await session.set_jwt("not a token")


async def test_damaged_state_is_recovered_and_rollback_is_audited(
    amanager: AsyncStateManager, astore: AsyncStateStore
) -> None:
    session = await amanager.open(PHONE)
    await session.transition("AUTH")
    await astore.update(PHONE, {"stage": "nowhere"})  # a hand edit the rules refuse
    opened = await amanager.open(PHONE)
    assert opened.recovered is not None
    assert opened.recovered.outcome == "restored"
    assert opened.get_stage() == "AUTH"
    assert (await events(amanager, PHONE))[-1] == "state.recovered"
    await amanager.rollback(PHONE, 1, reason="start over")
    _, snap = await amanager.show(PHONE)
    assert snap.doc["stage"] == "INIT"
    assert (await events(amanager, PHONE))[-1] == "state.rolled_back"
    assert (await amanager.reset(PHONE)).doc["stage"] == "INIT"


async def test_a_lease_fences_the_sessions_writes(
    amanager: AsyncStateManager, astore: AsyncStateStore
) -> None:
    lease = await astore.lease(PHONE, 30)
    session = await amanager.open(PHONE, lease=lease)
    await session.transition("AUTH")
    await astore.release_lease(lease)
    await astore.lease(PHONE, 30)  # another worker took over
    with pytest.raises(LeaseLost):
        await session.transition("MENU")


async def test_merge_on_server_loses_nothing_and_refuses_what_the_rules_refuse(
    amanager: AsyncStateManager,
) -> None:
    session = await amanager.open(PHONE)
    await session.transition("AUTH")
    await session.start_flow("register", "name")
    handles = [await amanager.open(PHONE) for _ in range(20)]
    await asyncio.gather(
        *(
            handle.merge_on_server({"flow_data": {"data": {f"k{n}": n}}})
            for n, handle in enumerate(handles)
        )
    )
    _, snap = await amanager.show(PHONE)
    assert snap.doc["flow_data"]["data"] == {f"k{n}": n for n in range(20)}
    assert snap.version == session.version + 20
    with pytest.raises(StateValidationError):
        await session.merge_on_server({"flow_data": {"data": {"member_id": "m1"}}})
    assert (await amanager.show(PHONE))[1].version == snap.version
    assert (await events(amanager, PHONE))[-1] == "state.refused"


async def test_apply_runs_a_custom_change_under_the_same_rules(
    amanager: AsyncStateManager, manager: StateManager
) -> None:
    def rename(doc: dict[str, Any]) -> None:
        doc["profile"] = {"name": "Ann"}  # replaces the whole object: no merge patch can

    def smuggle(doc: dict[str, Any]) -> None:
        doc["colour"] = "blue"

    asession, session = await amanager.open(PHONE), manager.open(WEB)
    assert (await asession.apply(rename)).doc["profile"] == {"name": "Ann"}
    assert session.apply(rename, reason="typed").doc["profile"] == {"name": "Ann"}
    with pytest.raises(StateValidationError):
        await asession.apply(smuggle)
    with pytest.raises(StateValidationError):
        session.apply(smuggle)
    assert (await events(amanager, PHONE))[-2:] == ["state.updated", "state.refused"]
    assert [e.event for e in manager.audit.read(WEB)][-2:] == ["state.updated", "state.refused"]
