"""Contention: many writer processes hammering one member at the same time.

Five implementations run one after another on the same server, each on a fresh member:

- ``update``: statehq's merge patch, applied server side in one script call;
- ``mutate``: statehq's read / compare-and-set loop, incrementing a counter;
- ``seed``: the seed design, redis-py ``WATCH``/``GET``/``MULTI``/``SET``/``EXEC`` on one
  JSON string, retried a few times on ``WatchError`` and then given up;
- ``aiogram`` and ``aiogram-isolation``: aiogram's ``RedisStorage`` as a handler uses it
  (``get_data``, then ``update_data`` with the counter plus one), without and with
  ``RedisEventIsolation`` around each handler (:mod:`statehq.bench.peers`);
- ``aiogram-statehq``: the same handler on statehq's aiogram storage, under its event
  isolation (the session's fenced lease).

Each writer is its own process with its own connection, so the server sees real
concurrency rather than one interpreter's lock taking turns. Lost updates are counted
the same way for every implementation: successes the writers were told about, less the
writes the server holds (versions gained, or counter increments).
"""

from __future__ import annotations

import json
import multiprocessing
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from typing import Any, cast

import redis
from redis.exceptions import WatchError

from ..config import Settings
from ..errors import MutateTimeout, StateError
from ..store import StateStore

SEED_RETRIES = 3
"""Retries after the first try on ``WatchError`` before the seed design gives up."""

IMPLEMENTATIONS: dict[str, str] = {
    "update": "statehq update (merge patch, one script call)",
    "mutate": "statehq mutate (read + compare-and-set, 2 s deadline)",
    "seed": f"seed: WATCH/GET/MULTI/SET/EXEC, {SEED_RETRIES} retries",
    "aiogram": "aiogram RedisStorage (get_data + update_data)",
    "aiogram-isolation": "aiogram RedisStorage + RedisEventIsolation",
    "aiogram-statehq": "aiogram on statehq's storage + its lease isolation",
}
PEERS = ("aiogram", "aiogram-isolation", "aiogram-statehq")
"""The implementations that need the ``bench`` extra (imported only when they run)."""

_START_TIMEOUT = 60.0  # seconds for every writer to connect and reach the start line


@dataclass
class Tally:
    """What one writer did: counted by the writer itself, checked against the server later."""

    successes: int = 0
    failed: int = 0
    tries: int = 0  # round trips that tried to write (compare-and-set rounds included)
    last: int | None = None  # the last value this writer wrote successfully
    start: float = 0.0
    end: float = 0.0


@dataclass
class ContentionResult:
    """The figures for one implementation."""

    name: str
    label: str
    writers: int
    duration_s: float
    window_s: float
    successes: int
    failed: int
    attempts: int
    tries: int
    lost: int
    checks: dict[str, Any] = field(default_factory=dict)

    @property
    def per_second(self) -> float:
        """Successful updates per second of wall time."""
        return self.successes / self.window_s if self.window_s > 0 else 0.0

    @property
    def failed_pct(self) -> float:
        """Failed operations as a percentage of operations attempted."""
        return 100.0 * self.failed / self.attempts if self.attempts else 0.0


def store_settings(url: str) -> Settings:
    """Explicit settings, so a user's ``STATEHQ_*`` environment cannot skew the figures."""
    return Settings(redis_url=url, key_prefix="statehq-bench")


def load_json(raw: object) -> Any:
    """Decode a JSON string read with redis-py; a missing key is a benchmark bug."""
    if not isinstance(raw, bytes | str):
        raise RuntimeError(f"expected a JSON string from the server, got {raw!r}")
    return json.loads(raw)


# -- one write of each implementation ---------------------------------------------------------


def _update_loop(store: StateStore, target: str, writer: int, stop_at: float, tally: Tally) -> None:
    while time.monotonic() < stop_at:
        value = tally.successes + 1
        tally.tries += 1
        try:
            store.update(target, {"writers": {str(writer): value}})
        except StateError:
            tally.failed += 1
            continue
        tally.successes, tally.last = value, value


def _mutate_loop(store: StateStore, target: str, writer: int, stop_at: float, tally: Tally) -> None:
    def increment(doc: dict[str, Any]) -> None:
        tally.tries += 1  # one call per compare-and-set round
        doc["counter"] = doc.get("counter", 0) + 1

    while time.monotonic() < stop_at:
        try:
            store.mutate(target, increment)
        except MutateTimeout:
            tally.failed += 1
            continue
        tally.successes += 1


def _seed_increment(client: redis.Redis, key: str, tally: Tally) -> bool:
    with client.pipeline() as pipe:
        for _ in range(1 + SEED_RETRIES):
            tally.tries += 1
            try:
                pipe.watch(key)  # type: ignore[no-untyped-call]
                doc = load_json(pipe.get(key))
                doc["counter"] += 1
                pipe.multi()
                pipe.set(key, json.dumps(doc))
                pipe.execute()
                return True
            except WatchError:
                continue
    return False


def _seed_loop(store: StateStore, target: str, writer: int, stop_at: float, tally: Tally) -> None:
    while time.monotonic() < stop_at:
        if _seed_increment(cast(redis.Redis, store._client), target, tally):
            tally.successes += 1
        else:
            tally.failed += 1


Loop = Callable[[StateStore, str, int, float, Tally], None]
_LOOPS: dict[str, Loop] = {"update": _update_loop, "mutate": _mutate_loop, "seed": _seed_loop}


# -- the writer processes ------------------------------------------------------------------


def _statehq_writer(
    kind: str, url: str, target: str, writer: int, duration: float, barrier: Barrier
) -> Tally:
    """One statehq (or seed design) writer: connect, wait for the others, write."""
    with StateStore.open(url, settings=store_settings(url)) as store:
        store.ping()  # connect now, so connecting is not part of the measured window
        barrier.wait(_START_TIMEOUT)
        tally = Tally(start=time.monotonic())
        _LOOPS[kind](store, target, writer, tally.start + duration, tally)
        tally.end = time.monotonic()
    return tally


def _writer(
    kind: str,
    url: str,
    target: str,
    writer: int,
    duration: float,
    barrier: Barrier,
    results: Queue[tuple[int, Tally | str]],
) -> None:
    """One writer process: its tally, or its traceback, goes back on ``results``."""
    try:
        if kind == "aiogram-statehq":
            from .peers import statehq_aiogram_writer

            tally = statehq_aiogram_writer(url, target, duration, barrier)
        elif kind in PEERS:
            from .peers import aiogram_writer

            tally = aiogram_writer(
                url, target, duration, barrier, isolated=kind == "aiogram-isolation"
            )
        else:
            tally = _statehq_writer(kind, url, target, writer, duration, barrier)
        results.put((writer, tally))
    except BaseException:
        barrier.abort()  # release the others rather than leave them waiting for us
        results.put((writer, traceback.format_exc()))


def _run_writers(kind: str, url: str, target: str, writers: int, duration: float) -> list[Tally]:
    """Start ``writers`` processes together; their tallies, in writer order."""
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(writers + 1)
    results: Queue[tuple[int, Tally | str]] = ctx.Queue()
    procs = [
        ctx.Process(target=_writer, args=(kind, url, target, n, duration, barrier, results))
        for n in range(writers)
    ]
    try:
        for proc in procs:
            proc.start()
        try:
            barrier.wait(_START_TIMEOUT)
        except threading.BrokenBarrierError:
            # a writer aborted the start: its traceback says why
            _, outcome = results.get(timeout=_START_TIMEOUT)
            raise RuntimeError(f"a {kind} writer could not start:\n{outcome}") from None
        tallies: dict[int, Tally] = {}
        for _ in procs:
            # mutate may overrun the window by its 2 s deadline; allow generously more
            writer, outcome = results.get(timeout=duration + 60)
            if isinstance(outcome, str):
                raise RuntimeError(f"{kind} writer {writer} failed:\n{outcome}")
            tallies[writer] = outcome
        return [tallies[n] for n in range(writers)]
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.join(5)
            if proc.is_alive():
                proc.terminate()
                proc.join()


# -- seeding and checking each implementation's target -----------------------------------------


def _seed(kind: str, store: StateStore, target: str) -> int:
    """Create the target; the starting version (statehq) or counter (seed, aiogram)."""
    if kind in PEERS:
        from .peers import aiogram_seed

        aiogram_seed(store.url, target, statehq=kind == "aiogram-statehq")
        return 0
    if kind == "update":
        return store.update(target, {"writers": {}}).version
    if kind == "mutate":
        store.update(target, {"counter": 0})
        return 0
    store._client.set(target, json.dumps({"counter": 0}))
    return 0


def _written(kind: str, store: StateStore, target: str, start: int) -> tuple[int, dict[str, Any]]:
    """How many writes the server holds since ``start``, with kind-specific checks."""
    if kind in PEERS:
        from .peers import aiogram_counter

        counter = aiogram_counter(store.url, target, statehq=kind == "aiogram-statehq")
        return counter - start, {}
    if kind == "seed":
        return int(load_json(store._client.get(target))["counter"]) - start, {}
    snap = store.get(target)
    if snap is None:
        raise RuntimeError(f"the {kind} benchmark member {target!r} vanished")
    if kind == "mutate":
        counter = int(snap.doc["counter"]) - start
        # the member is fresh, so the seeding write was version 1; every success adds one
        return counter, {"versions_written": snap.version - 1}
    return snap.version - start, {}


def _missing_writers(store: StateStore, target: str, tallies: list[Tally]) -> list[int]:
    """Writers whose last successful value is not what the final document holds."""
    snap = store.get(target)
    final = snap.doc.get("writers", {}) if snap else {}
    return [n for n, t in enumerate(tallies) if t.last is not None and final.get(str(n)) != t.last]


def run_contention(
    kind: str, url: str, writers: int, duration: float, control: StateStore
) -> ContentionResult:
    """Run one implementation with ``writers`` processes on a fresh member for ``duration`` s."""
    target = f"contention-{kind}-{uuid.uuid4().hex[:8]}"
    if kind == "seed":
        target = f"statehq-bench:seed:{target}"  # the seed design keeps one JSON string
    elif kind in PEERS:
        target = str(uuid.uuid4().int % 10**12)  # aiogram keys a chat by its number
    start = _seed(kind, control, target)
    tallies = _run_writers(kind, url, target, writers, duration)
    written, checks = _written(kind, control, target, start)
    successes = sum(t.successes for t in tallies)
    failed = sum(t.failed for t in tallies)
    if kind == "update":
        missing = _missing_writers(control, target, tallies)
        checks = {"writers_last_value_present": not missing, "writers_missing": missing}
    return ContentionResult(
        name=kind,
        label=IMPLEMENTATIONS[kind],
        writers=writers,
        duration_s=duration,
        window_s=max(t.end for t in tallies) - min(t.start for t in tallies),
        successes=successes,
        failed=failed,
        attempts=successes + failed,
        tries=sum(t.tries for t in tallies),
        lost=successes - written,
        checks=checks,
    )
