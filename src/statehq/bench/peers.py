"""aiogram's Redis FSM storage, driven the way an aiogram bot drives it, for the comparisons.

aiogram (``pip install -e '.[bench]'``) is imported inside each function, never at module
level, so the rest of the benchmark (and the test suite) runs without it.

- :func:`aiogram_writer`: one contention writer. An aiogram handler that counts reads the
  data and writes it back with ``update_data`` (aiogram has no atomic increment and no
  version); with ``RedisEventIsolation`` the whole handler runs under aiogram's Redis lock,
  as the dispatcher runs it when the bot is built with ``events_isolation=``.
- :func:`statehq_aiogram_writer`: the same counting handler on statehq's aiogram storage
  (:mod:`statehq.integrations.aiogram`), under its event isolation (the session's lease).
- :func:`aiogram_sessions`: sessions as aiogram keeps them, for the memory comparison: the
  FSM state under ``fsm:<chat>:<user>:state`` and the data under ``...:data``, with the
  same TTL as statehq's sessions.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from multiprocessing.synchronize import Barrier
from typing import TYPE_CHECKING, Any

from .contention import Tally

if TYPE_CHECKING:
    from aiogram.fsm.storage.base import BaseStorage, StorageKey
    from aiogram.fsm.storage.redis import RedisStorage

    from ..integrations.aiogram import StatehqStorage

BOT_ID = 42
SESSION_TTL = 300  # seconds, statehq's default
_START_TIMEOUT = 60.0


def storage_key(chat: int) -> StorageKey:
    """The key of a private chat (chat id = user id), as aiogram builds it for a message."""
    from aiogram.fsm.storage.base import StorageKey

    return StorageKey(bot_id=BOT_ID, chat_id=chat, user_id=chat)


def _storage(url: str, **kwargs: Any) -> RedisStorage:
    from aiogram.fsm.storage.redis import RedisStorage

    return RedisStorage.from_url(url, **kwargs)


async def _increment(storage: BaseStorage, key: StorageKey) -> None:
    """A counting handler: ``data = await state.get_data()``; ``update_data(counter + 1)``."""
    data = await storage.get_data(key)
    await storage.update_data(key, {"counter": data["counter"] + 1})


def aiogram_writer(
    url: str, target: str, duration: float, barrier: Barrier, *, isolated: bool
) -> Tally:
    """Count on chat ``target`` for ``duration`` s after every writer reached ``barrier``."""

    async def run() -> Tally:
        storage = _storage(url)
        isolation = storage.create_isolation() if isolated else None
        key = storage_key(int(target))
        try:
            await storage.redis.ping()  # connected before the measured window
            barrier.wait(_START_TIMEOUT)  # nothing else runs on this loop yet
            tally = Tally(start=time.monotonic())
            stop_at = tally.start + duration
            while time.monotonic() < stop_at:
                tally.tries += 1
                if isolation is None:
                    await _increment(storage, key)
                else:
                    async with isolation.lock(key):
                        await _increment(storage, key)
                tally.successes += 1
            tally.end = time.monotonic()
            return tally
        finally:
            await storage.close()

    return asyncio.run(run())


def _statehq_storage(url: str) -> StatehqStorage:
    """statehq's aiogram storage with the bench's explicit settings (see ``store_settings``)."""
    from ..integrations.aiogram import StatehqStorage
    from .contention import store_settings

    return StatehqStorage.from_url(url, settings=store_settings(url))


def statehq_aiogram_writer(url: str, target: str, duration: float, barrier: Barrier) -> Tally:
    """:func:`aiogram_writer` on statehq's aiogram storage, each handler under its isolation."""

    async def run() -> Tally:
        storage = _statehq_storage(url)
        isolation = storage.create_isolation()
        key = storage_key(int(target))
        try:
            await (await storage.manager()).store.ping()  # connected before the window
            barrier.wait(_START_TIMEOUT)
            tally = Tally(start=time.monotonic())
            stop_at = tally.start + duration
            while time.monotonic() < stop_at:
                tally.tries += 1
                async with isolation.lock(key):
                    await _increment(storage, key)
                tally.successes += 1
            tally.end = time.monotonic()
            return tally
        finally:
            await storage.close()

    return asyncio.run(run())


def aiogram_seed(url: str, target: str, *, statehq: bool = False) -> None:
    """Start chat ``target``'s counter at 0."""

    async def run() -> None:
        storage = _statehq_storage(url) if statehq else _storage(url)
        try:
            await storage.set_data(storage_key(int(target)), {"counter": 0})
        finally:
            await storage.close()

    asyncio.run(run())


def aiogram_counter(url: str, target: str, *, statehq: bool = False) -> int:
    """Chat ``target``'s counter as the server holds it."""

    async def run() -> int:
        storage = _statehq_storage(url) if statehq else _storage(url)
        try:
            return int((await storage.get_data(storage_key(int(target))))["counter"])
        finally:
            await storage.close()

    return asyncio.run(run())


def aiogram_sessions(url: str, sessions: Iterable[tuple[int, str, dict[str, Any]]]) -> list[str]:
    """Store each ``(chat, state, data)`` as aiogram does; the keys written."""

    async def run() -> list[str]:
        storage = _storage(url, state_ttl=SESSION_TTL, data_ttl=SESSION_TTL)
        keys: list[str] = []
        try:
            for chat, state, data in sessions:
                key = storage_key(chat)
                await storage.set_state(key, state)
                await storage.set_data(key, data)
                keys += [storage.key_builder.build(key, part) for part in ("state", "data")]
        finally:
            await storage.close()
        return keys

    return asyncio.run(run())


def versions() -> dict[str, str]:
    """The installed versions of the peers and the plotting library."""
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for package in ("aiogram", "pywa", "fastapi", "matplotlib"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = "not installed"
    return found
