"""``/healthz`` and ``/metrics``: what an operator's probes and Prometheus read."""

from __future__ import annotations

import contextlib
import json
import os
import time
import uuid
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
from ..errors import StateError
from ..redact import redact_text
from ..store import AsyncStateStore
from ..store.connection import ScriptBook
from ..store.keys import KeySpace
from ..store.requests import Command, Operation
from .inbox import Inbox

STAGE_SAMPLE = 5000
STAGE_CACHE_SECONDS = 15.0


async def check_health(store: AsyncStateStore) -> tuple[bool, dict[str, Any]]:
    """Run every check; (all passed, {check: {"ok": bool, ...}})."""
    checks: dict[str, Any] = {}
    probe = f"healthz-probe:{os.getpid()}-{uuid.uuid4().hex[:8]}"

    async def run(name: str, check: Any) -> None:
        started = time.perf_counter()
        try:
            detail = await check()
        except StateError as error:
            checks[name] = {"ok": False, "error": redact_text(str(error))}
            return
        checks[name] = {"ok": True, "ms": round((time.perf_counter() - started) * 1000, 2)}
        if detail:
            checks[name].update(detail)

    async def connection() -> None:
        await store.ping()

    async def scripts() -> dict[str, Any]:
        return dict(await store.execute(_load_scripts()))

    async def lease() -> dict[str, Any]:
        held = await store.lease(probe, ttl=5)
        await store.release_lease(held)
        return {"token": held.token}

    async def state() -> dict[str, Any]:
        written = await store.update(probe, {"probe": True})
        read = await store.get(probe)
        await store.delete(probe)
        if read is None or read.version != written.version:
            raise StateError("the probe document did not read back as written")
        return {"version": written.version}

    await run("connection", connection)
    for name, check in (("scripts", scripts), ("lease", lease), ("state", state)):
        if checks["connection"]["ok"]:
            await run(name, check)
        else:
            checks[name] = {"ok": False, "error": "skipped: no connection"}
    return all(c["ok"] for c in checks.values()), checks


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


def health_routes(store: AsyncStateStore, *, metrics_dir: str | None = None) -> list[Route]:
    """``GET /healthz`` (200 or 503 with every check) and ``GET /metrics``.

    ``metrics_dir``: where worker processes write their metrics (``statehq serve``).
    """
    view = MetricsView(store)
    registry = metrics_registry(metrics_dir)

    async def healthz(_request: Request) -> Response:
        ok, checks = await check_health(store)
        return JSONResponse(
            {"status": "ok" if ok else "failing", "checks": checks}, 200 if ok else 503
        )

    async def metrics_text(_request: Request) -> Response:
        # The counters still tell a story when the store is down; /healthz says why.
        with contextlib.suppress(StateError):
            await view.refresh()
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return [Route("/healthz", healthz), Route("/metrics", metrics_text)]
