"""aiogram's FSM storage on statehq: atomic, versioned, audited, rollback-able.

    from statehq.integrations.aiogram import StatehqStorage

    storage = StatehqStorage.from_url("redis://localhost:6379/0")   # was RedisStorage.from_url
    dp = Dispatcher(storage=storage, events_isolation=storage.create_isolation())

Every aiogram key is a statehq session (:mod:`.keys` says which), every write a
validated statehq write with its audit entry and history version, so ``statehq state
show|history|diff|rollback telegram:42`` work on an aiogram bot's users.

``update_data`` is one server-side merge: aiogram's own storages read the data, update
it in Python and write it all back, so two handlers updating one user at once lose one
update (the timeline below); here neither is lost::

    handler A: get_data -> {}            handler B: get_data -> {}
    handler A: set_data {"photo": 1}
                                         handler B: set_data {"name": "Ann"}   <- photo lost

Values that are objects or ``None`` keep aiogram's ``dict.update`` meaning (replace the
object, keep the ``None``), which a merge patch cannot say: those updates are a
read-and-compare-and-set instead, retried until the store's deadline - still nothing
lost, only slower under contention.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

from aiogram.fsm.state import State
from aiogram.fsm.storage.base import BaseStorage, StateType, StorageKey

from ...config import Settings, StoreSettings, store_settings_of
from ...errors import InvalidInput
from ...state import AsyncMemberSession, AsyncStateManager, ChannelId, Stages
from ...store import AsyncStateStore
from . import layout
from .isolation import StatehqEventIsolation, held_lease
from .keys import KeyMapper


class StatehqStorage(BaseStorage):
    """An aiogram 3 ``BaseStorage`` keeping each key's FSM state and data in statehq.

    Build it on a manager you own (``StatehqStorage(manager)``), or let it open and own
    its store with :meth:`from_url`. Every write slides the session's TTL; with
    ``touch_on_read`` a read slides it too once less than half of it is left (aiogram
    bots read the state on every update, and a conversation that only reads must not
    expire mid-form; sliding it on every read would double the round trips of a read).
    """

    def __init__(
        self,
        manager: AsyncStateManager | None = None,
        *,
        keys: KeyMapper | None = None,
        touch_on_read: bool = True,
    ) -> None:
        self.keys = keys or KeyMapper()
        self.touch_on_read = touch_on_read
        self._manager = manager
        if manager is not None:
            layout.declare(manager.stages)
        self._opener: StoreSettings | None = None  # from_url's settings: opened on first use
        self._owned: AsyncStateStore | None = None
        self._opening = asyncio.Lock()

    @classmethod
    def from_url(
        cls,
        url: str | None = None,
        *,
        settings: Settings | StoreSettings | None = None,
        keys: KeyMapper | None = None,
        **overrides: Any,
    ) -> StatehqStorage:
        """A storage that connects on first use: to ``url`` (any statehq URL: Redis,
        Valkey, Cluster, Sentinel), else ``STATEHQ_REDIS_URL``, else the embedded server.

        ``overrides`` are store settings, e.g. ``session_ttl=3600`` (the default is
        ``STATEHQ_SESSION_TTL``, 300 s after the last use). They are checked here, with
        the ``STATEHQ_*`` variables, and a bad one raises :class:`~statehq.ConfigError`
        naming it: this line runs when the bot starts, the first use at a user's message.
        """
        if url is not None:
            overrides["redis_url"] = url
        resolved = store_settings_of(settings).override(**overrides)
        storage = cls(keys=keys)
        storage._opener = resolved
        return storage

    async def manager(self) -> AsyncStateManager:
        """The state manager underneath, the store opened first if this storage owns it."""
        if self._manager is not None:
            return self._manager
        async with self._opening:
            if self._manager is None:
                if self._opener is None:
                    raise InvalidInput("this storage is closed")
                self._owned = await AsyncStateStore.open(settings=self._opener)
                self._manager = AsyncStateManager(self._owned, stages=layout.declare(Stages()))
        return self._manager

    def create_isolation(self, *, ttl: float = 60.0, wait: float = 60.0) -> StatehqEventIsolation:
        """Handlers of one key run one at a time, under that session's statehq lease.

        Writes made inside the handler carry the lease's fencing token: once the lease
        is lost (a handler outran ``ttl`` without the renewals landing) the store
        refuses them. ``wait``: seconds to queue for the lease before ``LeaseBusy``.
        """
        return StatehqEventIsolation(self, ttl=ttl, wait=wait)

    def channel(self, key: StorageKey) -> ChannelId:
        """The statehq channel identity of ``key`` (``telegram:<user_id>`` for a private chat)."""
        return self.keys.channel(key)

    # -- aiogram's BaseStorage -------------------------------------------------------------

    async def set_state(self, key: StorageKey, state: StateType = None) -> None:
        """Set (or with None clear) ``key``'s FSM state: one validated, audited write."""
        name = state.state if isinstance(state, State) else state
        if name is not None and not isinstance(name, str):
            raise InvalidInput(f"an aiogram state is a string, a State or None, got {name!r}")
        session = await self._open(key)
        patch = layout.skeleton(self._restated(session), {"state": name})
        await session.merge_on_server(patch, reason="aiogram set_state")

    async def get_state(self, key: StorageKey) -> str | None:
        """``key``'s FSM state, or None (also when the session expired)."""
        session = await self._find(key)
        return layout.state_of(session.snapshot.doc) if session else None

    async def set_data(self, key: StorageKey, data: Mapping[str, Any]) -> None:
        """Replace ``key``'s FSM data."""
        if not isinstance(data, Mapping):
            raise InvalidInput(f"aiogram data must be a mapping, got {type(data).__name__}")
        new = dict(data)

        def replace(doc: dict[str, Any]) -> None:
            layout.entered(doc)["data"] = new

        session = await self._open(key)
        await session.apply(replace, reason="aiogram set_data")

    async def get_data(self, key: StorageKey) -> dict[str, Any]:
        """A copy of ``key``'s FSM data (``{}`` when there is none)."""
        session = await self._find(key)
        return layout.data_of(session.snapshot.doc) if session else {}

    async def update_data(self, key: StorageKey, data: Mapping[str, Any]) -> dict[str, Any]:
        """``dict.update`` on ``key``'s FSM data, atomically; returns the data after it."""
        if not isinstance(data, Mapping):
            raise InvalidInput(f"aiogram data must be a mapping, got {type(data).__name__}")
        changes = dict(data)
        if not changes:
            return await self.get_data(key)
        session = await self._open(key)
        if any(value is None or isinstance(value, Mapping) for value in changes.values()):
            snap = await session.apply(_shallow_update(changes), reason="aiogram update_data")
        else:  # a merge patch means exactly dict.update here: one server-side script call
            patch = layout.skeleton(self._restated(session), {"data": changes})
            snap = await session.merge_on_server(patch, reason="aiogram update_data")
        return layout.data_of(snap.doc)

    async def close(self) -> None:
        """Close the store if this storage opened it (a manager handed in stays open).

        A storage made by :meth:`from_url` is closed for good, used or not: one closed
        before its first use must not open a store afterwards that nobody closes.
        """
        async with self._opening:  # not while the store is being opened: after it
            owned, self._owned = self._owned, None
            if self._opener is not None:
                self._manager, self._opener = None, None
        if owned is not None:
            await owned.close()

    # -- internals -----------------------------------------------------------------------

    async def _open(self, key: StorageKey) -> AsyncMemberSession:
        channel = self.channel(key)
        manager = await self.manager()
        # No separate touch: the write that follows slides the TTL anyway.
        return await manager.open(channel, lease=held_lease(channel.key), touch=False)

    async def _find(self, key: StorageKey) -> AsyncMemberSession | None:
        channel = self.channel(key)
        manager = await self.manager()
        session = await manager.find(channel)
        if session is not None and self.touch_on_read:
            ttl, full = session.ttl, manager.store.settings.session_ttl
            if ttl is not None and ttl < full / 2:
                await session.touch()
        return session

    @staticmethod
    def _restated(session: AsyncMemberSession) -> ChannelId | None:
        """The channel to restate in a blind merge: only on the channel's own session."""
        channel = session.channel
        return channel if channel is not None and session.key == channel.key else None


def _shallow_update(changes: dict[str, Any]) -> Callable[[dict[str, Any]], None]:
    """``dict.update`` of the FSM data, as a change to the whole document."""

    def update(doc: dict[str, Any]) -> None:
        records = layout.entered(doc)
        data = records.get("data")
        records["data"] = {**(data if isinstance(data, dict) else {}), **changes}

    return update
