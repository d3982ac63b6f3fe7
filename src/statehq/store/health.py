"""The store checked end to end, for ``/healthz``, ``/readyz`` and ``statehq health``.

One implementation for the service's probes and the operator's command: a connection,
the scripts, a lease and a state round trip, each bounded in time, on one fixed probe
key (reused, so health never grows the store).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from typing import Any

from ..errors import LeaseBusy, StateError
from ..redact import redact_text
from .aio import AsyncStateStore
from .models import Lease

PROBE = "healthz-probe"
"""The one session key /healthz writes (and deletes): health never grows the store."""
LEASE_PATIENCE = 0.5  # seconds /healthz waits for another process's probe to finish


async def check_health(
    store: AsyncStateStore, *, timeout: float = 2.0, lock: asyncio.Lock | None = None
) -> tuple[bool, dict[str, Any]]:
    """Run every check within ``timeout`` s; (all passed, {check: {"ok": bool, ...}}).

    The checks write only the fixed :data:`PROBE` session (reused, never a new key), under
    its lease so probes of several processes never disturb each other. ``lock``
    serialises this process's probes.
    """
    checks: dict[str, Any] = {}
    give_up = time.monotonic() + timeout

    async def run(name: str, check: Any) -> None:
        started = time.perf_counter()
        left = give_up - time.monotonic()
        try:
            if left <= 0:
                raise TimeoutError
            detail = await asyncio.wait_for(check(), left)
        except StateError as error:
            checks[name] = {"ok": False, "error": redact_text(str(error))}
            return
        except TimeoutError:
            checks[name] = {"ok": False, "error": f"no answer within {timeout:g} s"}
            return
        checks[name] = {"ok": True, "ms": round((time.perf_counter() - started) * 1000, 2)}
        if detail:
            checks[name].update(detail)

    async def connection() -> None:
        await store.ping()

    async def scripts() -> dict[str, Any]:
        return dict(await store.load_scripts())

    held: list[Lease] = []

    async def lease() -> dict[str, Any]:
        got = await _probe_lease(store)
        if got is None:
            return {"busy": "another process was probing; its round trip stands for ours"}
        held.append(got)
        return {"token": got.token}

    async def state() -> dict[str, Any]:
        if not held:
            return {"skipped": "the probe's lease was busy"}
        written = await store.update(PROBE, {"probe": True}, lease=held[0])
        read = await store.get(PROBE)
        await store.delete(PROBE)
        if read is None or read.version != written.version:
            raise StateError("the probe document did not read back as written")
        return {"version": written.version}

    async with lock or contextlib.nullcontext():
        await run("connection", connection)
        for name, check in (("scripts", scripts), ("lease", lease), ("state", state)):
            if checks["connection"]["ok"]:
                await run(name, check)
            else:
                checks[name] = {"ok": False, "error": "skipped: no connection"}
        for got in held:
            with contextlib.suppress(StateError, TimeoutError):
                await asyncio.wait_for(
                    store.release_lease(got), max(give_up - time.monotonic(), 0.1)
                )
    return all(c["ok"] for c in checks.values()), checks


async def _probe_lease(store: AsyncStateStore) -> Lease | None:
    """The probe's lease, waiting briefly for another process's probe; None if still busy."""
    give_up = time.monotonic() + LEASE_PATIENCE
    while True:
        try:
            return await store.lease(PROBE, ttl=5, holder=f"healthz-{os.getpid()}")
        except LeaseBusy:
            if time.monotonic() > give_up:
                return None
            await asyncio.sleep(0.02)


async def check_ready(store: AsyncStateStore, *, timeout: float = 2.0) -> tuple[bool, str]:
    """Does the store answer, with every script loaded (loading any it forgot)? (ready, why)

    Writes no key: a restarted server forgets its scripts, and loading them back is
    what makes it ready again.
    """
    try:
        async with asyncio.timeout(timeout):
            await store.load_scripts()
    except StateError as error:
        return False, redact_text(str(error))
    except TimeoutError:
        return False, f"the store did not answer within {timeout:g} s"
    return True, "ready"
