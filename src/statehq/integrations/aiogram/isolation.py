"""aiogram's event isolation on statehq's per-session lease.

``Dispatcher(events_isolation=storage.create_isolation())`` makes aiogram run one
handler at a time per storage key. Here the lock is the session's statehq lease, the
one the statehq service's workers take per member, with a fencing token: while a
handler holds it, every write the storage makes for that key carries the token, so a
handler that lost its lease cannot overwrite its successor's work::

    handler A takes the lease (token 7), stalls past the lease's TTL
    handler B takes the lease (token 8), writes the state
    handler A wakes, writes with token 7 -> refused (LeaseLost), B's state stands

A handler that runs long keeps its lease: it is renewed every third of its TTL. A
handler cancelled while the store grants it the lease (aiogram's webhook handler when
Telegram drops the request, a timeout around ``feed_update``) gives the lease back: it
would otherwise hold the user's next update for the lease's whole TTL.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import AsyncGenerator
from contextvars import ContextVar
from typing import TYPE_CHECKING

from aiogram.fsm.storage.base import BaseEventIsolation, StorageKey

from ...errors import InvalidInput, LeaseBusy, LeaseLost, StoreUnavailable
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
        # Refused here, where the Dispatcher is made, not at every update's lock.
        self.ttl = _seconds("ttl", ttl, zero=False)
        self.wait = _seconds("wait", wait, zero=True)

    @contextlib.asynccontextmanager
    async def lock(self, key: StorageKey) -> AsyncGenerator[None, None]:
        """Hold ``key``'s session lease while the block (the handler) runs."""
        channel = self.storage.channel(key)
        store = (await self.storage.manager()).store
        lease = await _take(store, channel.key, self.ttl, self.wait)
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


async def _take(store: AsyncStateStore, key: str, ttl: float, wait: float) -> Lease:
    """``store.lease(key, ttl, wait=wait)``, safe to cancel.

    A cancel that lands while the store runs the grant leaves the lease granted on the
    server with nobody knowing its token. So each attempt is one round trip of its own,
    shielded from the caller's cancel; a cancelled caller lets it finish and gives back
    what it took. Between attempts (a busy lease) nothing is in flight: a cancel there
    is only a cancel.
    """
    loop = asyncio.get_running_loop()
    give_up = loop.time() + wait
    while True:
        attempt = asyncio.ensure_future(store.lease(key, ttl))
        try:
            return await asyncio.shield(attempt)
        except asyncio.CancelledError:
            giving_back = asyncio.ensure_future(_give_back(store, attempt))
            _GIVING_BACK.add(giving_back)
            giving_back.add_done_callback(_GIVING_BACK.discard)
            with contextlib.suppress(asyncio.CancelledError):  # cancelled again: it goes on
                await asyncio.shield(giving_back)
            raise
        except LeaseBusy as busy:
            left = give_up - loop.time()
            if left <= 0:
                raise
            await asyncio.sleep(min(max(busy.retry_after, 0.001), 0.05, left))


_GIVING_BACK: set[asyncio.Future[None]] = set()
"""Leases being given back for cancelled handlers (referenced, so none is collected)."""


async def _give_back(store: AsyncStateStore, attempt: asyncio.Future[Lease]) -> None:
    """Release the lease ``attempt`` took, if it took one."""
    try:
        lease = await attempt
    except Exception:  # busy, or the store away: nothing was taken
        return
    try:
        await store.release_lease(lease)
    except StoreUnavailable:
        log.warning("lease on %s left to expire", mask_identity(lease.member_id))


def _seconds(name: str, value: float, *, zero: bool) -> float:
    """``value`` if it is a finite number of seconds above 0 (or 0 itself, with ``zero``)."""
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if not (number and math.isfinite(value) and (value > 0 or (zero and value == 0))):
        least = ">= 0" if zero else "> 0"
        raise InvalidInput(
            f"the isolation's {name} must be a number of seconds {least}, got {value!r}"
        )
    return value


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
