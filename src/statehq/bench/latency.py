"""Latency: one process, one connection, a realistic session document.

After a warm-up, each of ``iterations`` rounds times one call of every operation, one
at a time, so the figures are per-call round trips including the client-side encoding
and decoding each approach needs (``json.dumps``/``json.loads`` for the raw baseline,
patch encoding and snapshot decoding for statehq).
"""

from __future__ import annotations

import gc
import hashlib
import json
import math
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..store import StateStore
from .contention import load_json

Op = Callable[[int], object]


@dataclass
class LatencyResult:
    """Per-call latency of one operation, in microseconds."""

    operation: str
    iterations: int
    p50_us: float
    p99_us: float
    mean_us: float
    ops_per_s: float


def session_document(member_id: str) -> dict[str, Any]:
    """A bot session as the seed stored it: about 1 KB of JSON."""
    # a 300-character token shaped like a JWT, deterministic so runs compare
    signature = hashlib.sha256(member_id.encode()).hexdigest() * 5
    jwt = ("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIyNjM3NzEyMzQ1NjcifQ." + signature)[:300]
    return {
        "member_id": member_id,
        "channel": {"type": "whatsapp", "identifier": "263771234567"},
        "jwt_token": jwt,
        "authenticated": True,
        "profile": {
            "first_name": "Tendai",
            "last_name": "Moyo",
            "language": "en",
            "msisdn": "+263771234567",
            "email": "tendai.moyo@example.com",
            "registered_at": "2024-03-18T09:41:07Z",
            "kyc_level": 2,
            "accounts": [
                {"number": "4410023311", "currency": "USD", "type": "wallet", "balance": 125.5},
                {"number": "4410023312", "currency": "ZWG", "type": "savings", "balance": 980.0},
            ],
        },
        "flow_data": {
            "id": "send_money",
            "step": 0,
            "data": {"amount": 0, "denomination": "USD", "handle": "@rudo"},
            "_validation": {"amount": {"min": 1, "max": 5000}, "attempts": 0},
        },
    }


def _percentile(ordered: list[int], fraction: float) -> int:
    """Nearest-rank percentile of sorted samples."""
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def summarise(name: str, samples: list[int]) -> LatencyResult:
    """Percentiles, mean and rate of one operation's samples (nanoseconds)."""
    ordered = sorted(samples)
    total = sum(samples)
    return LatencyResult(
        operation=name,
        iterations=len(samples),
        p50_us=_percentile(ordered, 0.50) / 1000,
        p99_us=_percentile(ordered, 0.99) / 1000,
        mean_us=total / len(samples) / 1000,
        ops_per_s=len(samples) * 1e9 / total if total else 0.0,
    )


def measure(ops: dict[str, Op], iterations: int, warmup: int) -> list[LatencyResult]:
    """Time ``iterations`` rounds of one call of each op, after ``warmup`` untimed rounds.

    The operations are interleaved rather than run one block after another: on a shared
    or throttled machine the speed drifts over seconds, and interleaving makes every
    operation see the same drift, so the ratios between them stay honest.
    """
    for i in range(warmup):
        for op in ops.values():
            op(i)
    samples = {name: [0] * iterations for name in ops}
    clock = time.perf_counter_ns
    # start from a clean heap, but leave the collector on: the garbage each approach makes
    # (and the pauses it causes) is part of its real cost
    gc.collect()
    for i in range(iterations):
        for name, op in ops.items():
            began = clock()
            op(warmup + i)
            samples[name][i] = clock() - began
    return [summarise(name, taken) for name, taken in samples.items()]


def operations(store: StateStore) -> tuple[dict[str, Op], int]:
    """The four timed operations on fresh keys, and the document's size in bytes."""
    member = f"latency-{uuid.uuid4().hex[:8]}"
    raw_key = f"statehq-bench:seed:{member}"
    doc = session_document(member)
    client = store._client
    client.set(raw_key, json.dumps(doc))
    store.update(member, doc)

    def raw_get(_i: int) -> object:
        return load_json(client.get(raw_key))

    def raw_set(_i: int) -> object:
        return client.set(raw_key, json.dumps(doc))

    def state_get(_i: int) -> object:
        return store.get(member)

    def state_update(i: int) -> object:
        return store.update(member, {"flow_data": {"step": i, "data": {"amount": i}}})

    ops: dict[str, Op] = {
        "raw GET + json.loads": raw_get,
        "raw SET + json.dumps": raw_set,
        "statehq get": state_get,
        "statehq update": state_update,
    }
    return ops, len(json.dumps(doc).encode())


def run_latency(
    store: StateStore, iterations: int, warmup: int, progress: Callable[[str], None]
) -> tuple[list[LatencyResult], int]:
    """Measure every operation, interleaved; the results and the document size in bytes."""
    ops, size = operations(store)
    progress(
        f"latency: {', '.join(ops)} interleaved, {size}-byte document, "
        f"{warmup} warm-up + {iterations} timed calls each ..."
    )
    results = measure(ops, iterations, warmup)
    for r in results:
        progress(
            f"  {r.operation}: p50 {r.p50_us:.1f} us, p99 {r.p99_us:.1f} us, "
            f"mean {r.mean_us:.1f} us, {r.ops_per_s:,.0f} ops/s"
        )
    return results, size


def ratios(results: list[LatencyResult]) -> dict[str, dict[str, float]]:
    """statehq against the raw baseline: update/SET and get/GET, on p50 and on mean."""
    by_name = {r.operation: r for r in results}
    pairs = {
        "update/SET": (by_name["statehq update"], by_name["raw SET + json.dumps"]),
        "get/GET": (by_name["statehq get"], by_name["raw GET + json.loads"]),
    }
    return {
        label: {"p50": ours.p50_us / raw.p50_us, "mean": ours.mean_us / raw.mean_us}
        for label, (ours, raw) in pairs.items()
    }
