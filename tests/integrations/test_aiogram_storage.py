"""statehq as aiogram's FSM storage, against a real server of every topology.

The first class runs aiogram's own storage cases (its tests/test_fsm/storage suite,
written again against the ``BaseStorage`` interface); the rest show what statehq adds:
no lost ``update_data`` under contention where aiogram's ``RedisStorage`` loses, isolated
handlers, and versioned, audited, rollback-able state under a readable session key.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator

import pytest
from aiogram.fsm.state import State, StatesGroup
from aiogram.fsm.storage.base import BaseStorage, DefaultKeyBuilder, StorageKey
from aiogram.fsm.storage.redis import RedisStorage

from statehq import (
    AsyncStateManager,
    AsyncStateStore,
    LeaseBusy,
    LeaseLost,
    StateValidationError,
)
from statehq.errors import ConfigError, InvalidInput
from statehq.integrations.aiogram import KeyMapper, StatehqStorage
from statehq.integrations.aiogram.isolation import held_lease
from statehq.store.embedded import EmbeddedValkey

WRITERS = 32


class Form(StatesGroup):
    name = State()
    age = State()


@pytest.fixture
def manager(astore: AsyncStateStore) -> AsyncStateManager:
    return AsyncStateManager(astore)


@pytest.fixture
async def storage(manager: AsyncStateManager) -> AsyncIterator[StatehqStorage]:
    opened = StatehqStorage(manager)
    yield opened
    await opened.close()


@pytest.fixture
def storage_key() -> StorageKey:
    return StorageKey(bot_id=42, chat_id=-42, user_id=42)


class TestAiogramStorageCases:
    """aiogram's storage suite: the behaviour every ``BaseStorage`` promises."""

    async def test_set_state(self, storage: BaseStorage, storage_key: StorageKey) -> None:
        assert await storage.get_state(key=storage_key) is None
        await storage.set_state(key=storage_key, state="state")
        assert await storage.get_state(key=storage_key) == "state"
        await storage.set_state(key=storage_key, state=None)
        assert await storage.get_state(key=storage_key) is None

    async def test_set_data(self, storage: BaseStorage, storage_key: StorageKey) -> None:
        assert await storage.get_data(key=storage_key) == {}
        await storage.set_data(key=storage_key, data={"foo": "bar"})
        assert await storage.get_data(key=storage_key) == {"foo": "bar"}
        await storage.set_data(key=storage_key, data={})
        assert await storage.get_data(key=storage_key) == {}

    async def test_update_data(self, storage: BaseStorage, storage_key: StorageKey) -> None:
        assert await storage.get_data(key=storage_key) == {}
        assert await storage.update_data(key=storage_key, data={"foo": "bar"}) == {"foo": "bar"}
        assert await storage.update_data(key=storage_key, data={}) == {"foo": "bar"}
        assert await storage.get_data(key=storage_key) == {"foo": "bar"}
        both = {"foo": "bar", "baz": "spam"}
        assert await storage.update_data(key=storage_key, data={"baz": "spam"}) == both
        assert await storage.get_data(key=storage_key) == both
        changed = {"foo": "bar", "baz": "test"}
        assert await storage.update_data(key=storage_key, data={"baz": "test"}) == changed
        assert await storage.get_data(key=storage_key) == changed

    async def test_get_value(self, storage: BaseStorage, storage_key: StorageKey) -> None:
        await storage.set_data(key=storage_key, data={"hello": "world"})
        assert await storage.get_value(storage_key, "hello") == "world"
        assert await storage.get_value(storage_key, "missing") is None
        assert await storage.get_value(storage_key, "missing", "fallback") == "fallback"


async def test_states_and_data_are_independent(
    storage: StatehqStorage, storage_key: StorageKey
) -> None:
    await storage.set_state(storage_key, Form.name)
    await storage.update_data(storage_key, {"name": "Ann"})
    await storage.set_state(storage_key, Form.age)
    assert await storage.get_state(storage_key) == Form.age.state
    assert await storage.get_data(storage_key) == {"name": "Ann"}
    await storage.set_state(storage_key, None)  # aiogram keeps the data
    assert await storage.get_data(storage_key) == {"name": "Ann"}


async def test_update_data_keeps_dict_update_meaning(
    storage: StatehqStorage, storage_key: StorageKey
) -> None:
    await storage.set_data(storage_key, {"address": {"city": "Harare", "zip": "0000"}, "n": 1})
    # an object replaces the object (no deep merge), None is kept as a value
    after = await storage.update_data(storage_key, {"address": {"city": "Bulawayo"}, "n": None})
    assert after == {"address": {"city": "Bulawayo"}, "n": None}
    assert await storage.get_data(storage_key) == after
    # lists, big integers and unicode round-trip exactly
    value = {"items": [], "big": 2**70, "text": "ndatenda 🙏"}
    assert (await storage.update_data(storage_key, value))["big"] == 2**70
    assert {k: v for k, v in (await storage.get_data(storage_key)).items() if k in value} == value


async def test_keys_map_to_sessions(manager: AsyncStateManager) -> None:
    storage = StatehqStorage(manager)
    private = StorageKey(bot_id=1, chat_id=42, user_id=42)
    group = StorageKey(bot_id=1, chat_id=-100123, user_id=42)
    topic = StorageKey(bot_id=1, chat_id=-100123, user_id=42, thread_id=7)
    business = StorageKey(bot_id=1, chat_id=42, user_id=42, business_connection_id="AbC")
    destiny = StorageKey(bot_id=1, chat_id=42, user_id=42, destiny="poll")
    assert str(storage.channel(private)) == "telegram:42"
    assert str(storage.channel(group)) == "telegram:42@-100123"
    assert str(storage.channel(topic)) == "telegram:42@-100123:thread=7"
    assert str(storage.channel(business)) == "telegram:42:business=AbC"
    assert str(storage.channel(destiny)) == "telegram:42:destiny=poll"
    other_bot = StorageKey(bot_id=2, chat_id=42, user_id=42)
    assert KeyMapper(with_bot_id=True).channel(other_bot).identifier == "42:bot=2"
    for key in (private, group, topic, business, destiny):
        await storage.set_state(key, str(storage.channel(key)))
    for key in (private, group, topic, business, destiny):
        assert await storage.get_state(key) == str(storage.channel(key))


async def test_keys_naming_separators_or_spaces_get_sessions_of_their_own(
    manager: AsyncStateManager,
) -> None:
    """aiogram takes any text as a destiny or business connection id: none is refused for
    its characters, and none reaches another key's session by spelling its separators."""
    storage = StatehqStorage(manager)

    def key(**parts: str) -> StorageKey:
        return StorageKey(bot_id=1, chat_id=42, user_id=42, **parts)  # type: ignore[arg-type]

    keys = [
        key(business_connection_id="A:destiny=poll"),
        key(business_connection_id="A", destiny="poll"),
        key(destiny="poll:bot=5"),
        key(destiny="my poll"),
        key(destiny="{tag}"),
        key(destiny="x@y"),
        key(destiny="50%"),
        key(destiny="50%25"),
    ]
    channels = [storage.channel(k) for k in keys]
    assert len({str(c) for c in channels}) == len(keys)
    assert str(storage.channel(key(destiny="my poll"))) == "telegram:42:destiny=my%20poll"
    assert str(storage.channel(key(destiny="poll"))) == "telegram:42:destiny=poll"
    assert all(c.via is None for c in channels)  # an "@" is the group chat's, only
    bot5 = StorageKey(bot_id=5, chat_id=42, user_id=42, destiny="poll")
    assert KeyMapper(with_bot_id=True).channel(bot5) != storage.channel(key(destiny="poll:bot=5"))
    for k in keys:
        await storage.set_state(k, k.destiny + (k.business_connection_id or ""))
    for k in keys:
        assert await storage.get_state(k) == k.destiny + (k.business_connection_id or "")
    with pytest.raises(InvalidInput, match=r"aiogram key .* cannot be a statehq session"):
        await storage.set_state(key(destiny="d" * 200), "x")


async def test_state_is_versioned_audited_and_rolls_back(
    storage: StatehqStorage, manager: AsyncStateManager
) -> None:
    key = StorageKey(bot_id=1, chat_id=77, user_id=77)
    await storage.set_state(key, Form.name)
    await storage.update_data(key, {"name": "Ann"})
    await storage.set_state(key, Form.age)
    session_key, snap = await manager.show("telegram:77")
    assert session_key == "telegram:77"
    assert snap.doc["stage"] == "aiogram"
    assert snap.doc["channel"] == {"type": "telegram", "identifier": "77"}
    _, history = await manager.history("telegram:77")
    states = {
        e.version: (e.doc.get("flow_data") or {}).get("data", {}).get("state") for e in history
    }
    assert states[snap.version] == "Form:age"
    named = next(v for v, s in sorted(states.items()) if s == "Form:name")
    events = [entry.event for entry in await manager.audit.read("telegram:77")]
    assert events[0] == "session.started"
    assert events.count("state.updated") == 3
    await manager.rollback("telegram:77", named, reason="back to the name question")
    assert await storage.get_state(key) == "Form:name"
    assert await storage.get_data(key) == {}


async def test_a_refused_write_writes_nothing(
    storage: StatehqStorage, manager: AsyncStateManager, storage_key: StorageKey
) -> None:
    await storage.update_data(storage_key, {"ok": 1})
    _, before = await manager.show("telegram:42@-42")
    token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJlLXNpZ25hdHVyZQ"
    with pytest.raises(StateValidationError):
        await storage.update_data(storage_key, {"token": token})
    with pytest.raises(StateValidationError):
        await storage.set_data(storage_key, {"nested": {"member_id": "m-1"}})
    _, after = await manager.show("telegram:42@-42")
    assert after.version == before.version
    assert await storage.get_data(storage_key) == {"ok": 1}
    refused = [e for e in await manager.audit.read("telegram:42@-42") if e.event == "state.refused"]
    assert len(refused) == 2
    assert token not in str([e.detail for e in refused])


@pytest.mark.slow
async def test_concurrent_update_data_loses_nothing(
    storage: StatehqStorage, manager: AsyncStateManager
) -> None:
    """32 handlers each record their own field at once: every field is kept."""
    key = StorageKey(bot_id=1, chat_id=5, user_id=5)
    await storage.set_data(key, {})
    _, start = await manager.show("telegram:5")
    await asyncio.gather(*(storage.update_data(key, {f"w{n}": n}) for n in range(WRITERS)))
    data = await storage.get_data(key)
    assert data == {f"w{n}": n for n in range(WRITERS)}  # 0 lost
    _, end = await manager.show("telegram:5")
    assert end.version == start.version + WRITERS  # one version per update, none merged away


@pytest.mark.slow
async def test_aiogram_redis_storage_loses_the_same_updates(
    embedded_server: EmbeddedValkey,
) -> None:
    """The same 32 concurrent update_data calls on aiogram's RedisStorage: some are lost."""
    builder = DefaultKeyBuilder(prefix=f"fsm-{uuid.uuid4().hex[:8]}")
    storage = RedisStorage.from_url(embedded_server.url, key_builder=builder)
    key = StorageKey(bot_id=1, chat_id=5, user_id=5)
    lost = 0
    try:
        for _ in range(5):  # a race: the first round usually loses most of them already
            await storage.set_data(key, {})
            await asyncio.gather(*(storage.update_data(key, {f"w{n}": n}) for n in range(WRITERS)))
            lost = WRITERS - len(await storage.get_data(key))
            if lost:
                break
        assert lost > 0
    finally:
        await storage.set_data(key, {})
        await storage.close()


async def test_isolation_serialises_handlers(storage: StatehqStorage) -> None:
    """A read-modify-write handler under the isolation: no increment lost."""
    isolation = storage.create_isolation(ttl=10, wait=30)
    key = StorageKey(bot_id=1, chat_id=9, user_id=9)
    await storage.set_data(key, {"counter": 0})
    inside = 0

    async def handler() -> None:
        nonlocal inside
        async with isolation.lock(key):
            inside += 1
            assert inside == 1  # nobody else is in a handler of this key
            data = await storage.get_data(key)
            await asyncio.sleep(0)
            await storage.update_data(key, {"counter": data["counter"] + 1})
            inside -= 1

    await asyncio.gather(*(handler() for _ in range(16)))
    assert (await storage.get_data(key))["counter"] == 16
    await isolation.close()


async def test_isolation_fences_a_handler_that_lost_its_lease(
    storage: StatehqStorage, manager: AsyncStateManager
) -> None:
    isolation = storage.create_isolation(ttl=5, wait=0)
    key = StorageKey(bot_id=1, chat_id=11, user_id=11)
    await storage.set_state(key, "start")
    async with isolation.lock(key):
        with pytest.raises(LeaseBusy):  # a second handler of the same key must wait
            async with isolation.lock(key):
                pass
        # The lease is lost behind this handler's back (as after a long stall) and taken
        # by another handler: this one's writes are refused, not trusted to notice.
        mine = held_lease("telegram:11")
        assert mine is not None
        await manager.store.release_lease(mine)
        successor = await manager.store.lease("telegram:11", 30)
        with pytest.raises(LeaseLost):
            await storage.set_state(key, "stale")
        with pytest.raises(LeaseLost):
            await storage.update_data(key, {"stale": True})
    await manager.store.release_lease(successor)
    assert await storage.get_state(key) == "start"
    assert await storage.get_data(key) == {}


async def test_a_handler_cancelled_while_it_holds_the_lease_releases_it(
    storage: StatehqStorage,
) -> None:
    """aiogram cancels handlers (shutdown, a timeout around them): the next update of the
    key must not wait out the cancelled handler's lease, however often it is cancelled."""
    isolation = storage.create_isolation(ttl=30, wait=0)
    key = StorageKey(bot_id=1, chat_id=13, user_id=13)
    for second_cancel_after in (None, 0, 1, 2, 5, 10, 20):
        inside = asyncio.Event()

        async def handler(inside: asyncio.Event = inside) -> None:
            async with isolation.lock(key):
                inside.set()
                await asyncio.sleep(60)

        task = asyncio.create_task(handler())
        await inside.wait()
        task.cancel()
        if second_cancel_after is not None:  # cancelled again while it cleans up
            for _ in range(second_cancel_after):
                await asyncio.sleep(0)
            task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        async with isolation.lock(key):  # wait=0: LeaseBusy if the lease was kept
            assert held_lease("telegram:13") is not None
        assert held_lease("telegram:13") is None


async def test_a_handler_cancelled_while_it_takes_the_lease_leaves_none_behind(
    storage: StatehqStorage,
) -> None:
    """Cancelled while the store grants its lease (a webhook request dropped, a timeout
    around feed_update), a handler never learns the lease's token: the lease must still
    be given back, not left to block the user's next update for its whole TTL."""
    isolation = storage.create_isolation(ttl=30, wait=0)
    key = StorageKey(bot_id=1, chat_id=14, user_id=14)
    await storage.set_state(key, "start")
    for turns in range(40):  # cancelled after 0, 1, 2, ... turns of the event loop

        async def handler() -> None:
            async with isolation.lock(key):
                await asyncio.sleep(0)

        task = asyncio.create_task(handler())
        for _ in range(turns):
            await asyncio.sleep(0)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        async with isolation.lock(key):  # wait=0: LeaseBusy if a lease was left behind
            pass


async def test_from_url_opens_and_closes_its_own_store(server_url: str, prefix: str) -> None:
    storage = StatehqStorage.from_url(server_url, key_prefix=prefix)
    key = StorageKey(bot_id=1, chat_id=3, user_id=3)
    await storage.set_state(key, "x")
    assert await storage.get_state(key) == "x"
    await storage.close()
    await storage.close()  # twice is once
    with pytest.raises(InvalidInput, match="this storage is closed"):
        await storage.get_state(key)
    # Closed before its first use (the bot stopped before any update came): closed too,
    # never a store opened afterwards that nobody closes.
    unused = StatehqStorage.from_url(server_url, key_prefix=prefix)
    await unused.close()
    with pytest.raises(InvalidInput, match="this storage is closed"):
        await unused.set_state(key, "y")
    with pytest.raises(InvalidInput, match="this storage is closed"):
        async with unused.create_isolation().lock(key):
            pass


def test_from_url_refuses_bad_settings_when_made_not_at_the_first_update() -> None:
    """The storage is made at import, the store opened at the first update: a typo must
    stop the bot from starting, not fail every user's first message."""
    with pytest.raises(ConfigError, match=r"unknown setting.*session_tll"):
        StatehqStorage.from_url("redis://127.0.0.1:1", session_tll=86400)
    with pytest.raises(ConfigError, match="STATEHQ_REDIS_URL: unknown scheme 'foo'"):
        StatehqStorage.from_url("foo://localhost")
    with pytest.raises(ConfigError, match="STATEHQ_SESSION_TTL must be greater than 0"):
        StatehqStorage.from_url("redis://127.0.0.1:1", session_ttl=-1)
    storage = StatehqStorage.from_url("redis://127.0.0.1:1", session_ttl=60)  # not connected
    for bad in ({"ttl": 0}, {"ttl": -5}, {"wait": -1}, {"ttl": float("nan")}):
        with pytest.raises(InvalidInput, match=r"isolation's (ttl|wait) must be"):
            storage.create_isolation(**bad)


async def test_a_dispatcher_runs_a_form_on_statehq(
    storage: StatehqStorage, manager: AsyncStateManager
) -> None:
    """aiogram's own machinery (FSM middleware, state filters) on the storage, end to end."""
    from aiogram import Bot, Dispatcher, F, Router
    from aiogram.filters import CommandStart
    from aiogram.fsm.context import FSMContext
    from aiogram.types import Message, Update

    router = Router()
    seen: list[str] = []

    @router.message(CommandStart())
    async def start(message: Message, state: FSMContext) -> None:
        await state.set_state(Form.name)

    @router.message(Form.name, F.text)
    async def name(message: Message, state: FSMContext) -> None:
        await state.update_data(name=message.text)
        await state.set_state(Form.age)

    @router.message(Form.age, F.text)
    async def age(message: Message, state: FSMContext) -> None:
        data = await state.update_data(age=int(message.text or 0))
        seen.append(f"{data['name']} is {data['age']}")
        await state.clear()

    dp = Dispatcher(storage=storage, events_isolation=storage.create_isolation())
    dp.include_router(router)
    bot = Bot("42:TEST")  # the handlers never call the Bot API

    def update(n: int, text: str) -> Update:
        user = {"id": 263, "is_bot": False, "first_name": "Ann"}
        message = {
            "message_id": n,
            "date": 1_700_000_000 + n,
            "chat": {"id": 263, "type": "private"},
            "from": user,
            "text": text,
        }
        if text.startswith("/"):
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text)}]
        return Update.model_validate({"update_id": n, "message": message}, context={"bot": bot})

    try:
        for n, text in enumerate(("/start", "Ann", "42"), start=1):
            await dp.feed_update(bot, update(n, text))
    finally:
        await bot.session.close()
    assert seen == ["Ann is 42"]
    _, snap = await manager.show("telegram:263")
    assert snap.doc["flow_data"]["data"] == {"data": {}}  # clear(): no state, no data
    _, history = await manager.history("telegram:263")
    states = [(e.doc.get("flow_data") or {}).get("data", {}).get("state") for e in history]
    assert "Form:age" in states
    assert "Form:name" in states
