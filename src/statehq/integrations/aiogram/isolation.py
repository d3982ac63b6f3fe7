"""aiogram's event isolation on statehq's per-session lease.

``Dispatcher(events_isolation=storage.create_isolation())`` makes aiogram run one
handler at a time per storage key. Here the lock is the session's statehq lease, the
one the statehq service's workers take per member, with a fencing token: while a
handler holds it, every write the storage makes for that key carries the token, so a
handler that lost its lease cannot overwrite its successor's work::

    handler A takes the lease (token 7), stalls past the lease's TTL
    handler B takes the lease (token 8), writes the state
    handler A wakes, writes with token 7 -> refused (LeaseLost), B's state stands

A handler that runs long keeps its lease: it is renewed every third of its TTL.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator
from contextvars import ContextVar
from typing import TYPE_CHECKING

from aiogram.fsm.storage.base import BaseEventIsolation, StorageKey

from ...errors import LeaseLost, StoreUnavailable
from ...redact import get_logger, mask_identity
from ...store import AsyncStateStore, Lease

if TYPE_CHECKING:
    from .storage import StatehqStorage

log = get_logger(__name__)

_HELD: ContextVar[dict[str, Lease] | None] = ContextVar("statehq_aiogram_leases", default=None)
"""The leases the running handler holds, by session key (a context variable: each
handler is its own asyncio task, so each sees only its own)."""


def held_lease(session_key: str) -> Lease | None:
    """The lease the current handler holds on ``session_key``, if any."""
    held = _HELD.get()
    return held.get(session_key) if held else None


class StatehqEventIsolation(BaseEventIsolation):
    """Handlers of one aiogram key run one at a time, under the session's statehq lease."""

    def __init__(self, storage: StatehqStorage, *, ttl: float = 60.0, wait: float = 60.0) -> None:
        self.storage = storage
        self.ttl = ttl
        self.wait = wait

    @contextlib.asynccontextmanager
    async def lock(self, key: StorageKey) -> AsyncGenerator[None, None]:
        """Hold ``key``'s session lease while the block (the handler) runs."""
        channel = self.storage.channel(key)
        store = (await self.storage.manager()).store
        lease = await store.lease(channel.key, self.ttl, wait=self.wait)
        renewing = asyncio.create_task(_keep(store, lease))
        token = _HELD.set({**(_HELD.get() or {}), channel.key: lease})
        try:
            yield None
        finally:
            _HELD.reset(token)
            renewing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewing
            await store.release_lease(lease)

    async def close(self) -> None:
        """Nothing to close: the storage owns the connection."""


async def _keep(store: AsyncStateStore, lease: Lease) -> None:
    """Renew ``lease`` every third of its TTL until cancelled or lost."""
    while True:
        await asyncio.sleep(lease.ttl / 3)
        try:
            await store.renew_lease(lease)
        except LeaseLost:
            log.warning("lease on %s lost while its handler ran", mask_identity(lease.member_id))
            return
        except StoreUnavailable:
            continue  # the store is away: try again; the fencing token guards the writes
