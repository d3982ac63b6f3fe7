"""``/livez``, ``/readyz``, ``/healthz`` and ``/metrics``: what probes and Prometheus read.

``/livez`` asks nothing of the store (the process is up); ``/readyz`` writes no key (the
store answers, with every script loaded); ``/healthz`` goes deep (connection, scripts,
a lease and a state round trip on one fixed probe key). Each answers within
``STATEHQ_STORE_TIMEOUT``-ish seconds whatever the store does, and ``/metrics`` is
never held up by the store at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections.abc import Iterable
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .. import metrics
from ..errors import LeaseBusy, StateError
from ..redact import redact_text
from ..store import AsyncStateStore, Lease
from ..store.connection import ScriptBook
from ..store.keys import KeySpace
from ..store.requests import Command, Operation
from .inbox import Inbox

STAGE_SAMPLE = 5000
STAGE_CACHE_SECONDS = 15.0
METRICS_WAIT = 0.25  # seconds /metrics waits for fresh store gauges before answering


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
        return dict(await store.execute(_load_scripts()))

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
            await store.execute(_load_scripts())
    except StateError as error:
        return False, redact_text(str(error))
    except TimeoutError:
        return False, f"the store did not answer within {timeout:g} s"
    return True, "ready"


def _load_scripts() -> Operation:
    """Make sure every script is in the server's cache; how many there are."""
    book = ScriptBook()
    names = list(book.shas)
    present = yield Command(("SCRIPT", "EXISTS", *(book.shas[n] for n in names)))
    missing = [n for n, there in zip(names, present, strict=True) if not there]
    for name in missing:
        yield Command(("SCRIPT", "LOAD", book.sources[name]))
    return {"loaded": len(names), "reloaded": len(missing)}


def _stages(keys: KeySpace) -> Operation:
    """Live sessions by stage, over at most STAGE_SAMPLE sessions."""
    counts: dict[str, int] = {}
    cursor, seen = "0", 0
    while True:
        cursor_raw, found = yield Command(
            ("SCAN", cursor, "MATCH", keys.doc_pattern(), "COUNT", "1000")
        )
        cursor = cursor_raw.decode() if isinstance(cursor_raw, bytes) else str(cursor_raw)
        for key in found:
            raw = yield Command(("HGET", key.decode(), "stage"))
            stage = json.loads(raw) if raw else "INIT"
            label = stage if isinstance(stage, str) else "INIT"
            counts[label] = counts.get(label, 0) + 1
            seen += 1
        if cursor == "0" or seen >= STAGE_SAMPLE:
            return counts


class MetricsView:
    """Fills the store-derived gauges, then renders every metric as Prometheus text."""

    def __init__(self, store: AsyncStateStore) -> None:
        self.store = store
        self.inbox = Inbox(store.settings)
        self.keys = KeySpace(store.settings.key_prefix)
        self._stages_at = 0.0
        self._task: asyncio.Task[None] | None = None

    async def refresh_soon(self, wait: float) -> None:
        """Start a refresh unless one is running; wait for it at most ``wait`` s."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._refresh_quietly())
        await asyncio.wait({self._task}, timeout=wait)

    async def _refresh_quietly(self) -> None:
        with contextlib.suppress(StateError):
            await self.refresh()

    async def refresh(self) -> None:
        """Read queue depth and age now, and sessions by stage at most every 15 s."""
        senders, depth, oldest = await self.store.execute(self.inbox.depth())
        metrics.QUEUE_SENDERS.set(senders)
        metrics.QUEUE_DEPTH.set(depth)
        now_ms = time.time() * 1000
        metrics.QUEUE_AGE.set(max(0.0, (now_ms - oldest) / 1000) if oldest is not None else 0.0)
        if time.monotonic() - self._stages_at > STAGE_CACHE_SECONDS:
            counts = await self.store.execute(_stages(self.keys))
            metrics.SESSIONS_BY_STAGE.clear()
            for stage, count in counts.items():
                metrics.SESSIONS_BY_STAGE.labels(stage).set(count)
            self._stages_at = time.monotonic()


class _WithWorkers(Collector):
    """This process's metrics plus the worker processes' counters and histograms, added up.

    Worker processes write their values to ``metrics_dir`` (prometheus-client's
    multiprocess mode); a family both sides record (store operations, for one) comes out
    once, its samples summed by name and labels. The workers' gauges are left out: the
    gauges are filled here, from the store, when /metrics is read.
    """

    def __init__(self, metrics_dir: str) -> None:
        self.workers = MultiProcessCollector(None, path=metrics_dir)  # type: ignore[no-untyped-call]

    def collect(self) -> Iterable[Metric]:
        families = {family.name: family for family in REGISTRY.collect()}
        for theirs in self.workers.collect():  # type: ignore[no-untyped-call]
            if theirs.type == "gauge":
                continue
            ours = families.setdefault(theirs.name, theirs)
            if ours is theirs:
                continue
            samples = {(s.name, tuple(sorted(s.labels.items()))): s for s in ours.samples}
            for sample in theirs.samples:
                key = (sample.name, tuple(sorted(sample.labels.items())))
                mine = samples.get(key)
                if mine is None:
                    samples[key] = sample
                elif not sample.name.endswith("_created"):
                    samples[key] = mine._replace(value=mine.value + sample.value)
            ours.samples = list(samples.values())
        return families.values()


def metrics_registry(metrics_dir: str | None) -> CollectorRegistry:
    """What /metrics renders: this process's registry, plus worker processes' if any."""
    if metrics_dir is None:
        return REGISTRY
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_WithWorkers(metrics_dir))
    return registry


def health_routes(
    store: AsyncStateStore, *, metrics_dir: str | None = None, timeout: float = 2.0
) -> list[Route]:
    """``/livez``, ``/readyz``, ``/healthz`` (200 or 503 with every check) and ``/metrics``.

    ``metrics_dir``: where worker processes write their metrics (``statehq serve``).
    ``timeout``: how long a probe waits on the store (``STATEHQ_STORE_TIMEOUT``).
    """
    view = MetricsView(store)
    registry = metrics_registry(metrics_dir)
    probing = asyncio.Lock()

    async def livez(_request: Request) -> Response:
        return JSONResponse({"status": "ok"})  # the process answers; the store is not asked

    async def readyz(_request: Request) -> Response:
        ready, why = await check_ready(store, timeout=timeout)
        return JSONResponse({"status": "ready" if ready else why}, 200 if ready else 503)

    async def healthz(_request: Request) -> Response:
        ok, checks = await check_health(store, timeout=timeout, lock=probing)
        return JSONResponse(
            {"status": "ok" if ok else "failing", "checks": checks}, 200 if ok else 503
        )

    async def metrics_text(_request: Request) -> Response:
        # Never held up by the store: the gauges it feeds are refreshed in the background,
        # and a slow or hung store leaves them as last read. /healthz says why.
        await view.refresh_soon(wait=METRICS_WAIT)
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return [
        Route("/livez", livez),
        Route("/readyz", readyz),
        Route("/healthz", healthz),
        Route("/metrics", metrics_text),
    ]
