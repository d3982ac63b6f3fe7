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
import time
from collections.abc import Iterable

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .. import metrics
from ..errors import StateError
from ..store import AsyncStateStore
from ..store.health import check_health, check_ready
from ..store.inbox import Inbox

STAGE_SAMPLE = 5000
STAGE_CACHE_SECONDS = 15.0
METRICS_WAIT = 0.25  # seconds /metrics waits for fresh store gauges before answering


class MetricsView:
    """Fills the store-derived gauges, then renders every metric as Prometheus text."""

    def __init__(self, store: AsyncStateStore) -> None:
        self.store = store
        self.inbox = Inbox(store.settings)
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
            counts = await self.store.stage_counts(STAGE_SAMPLE)
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
