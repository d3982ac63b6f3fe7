"""The reliability benchmark's hostile bodies: reproducible, signed, and truly hostile."""

from __future__ import annotations

import hashlib
import hmac
import json

from statehq.bench.hostile import hostile_bodies


def test_the_same_seed_gives_the_same_bodies_and_each_is_signed() -> None:
    first = list(hostile_bodies(60, "s3cret", seed=7, now=1_760_000_000))
    assert first == list(hostile_bodies(60, "s3cret", seed=7, now=1_760_000_000))
    assert first != list(hostile_bodies(60, "s3cret", seed=8, now=1_760_000_000))
    for raw, headers in first:
        expected = hmac.new(b"s3cret", raw, hashlib.sha256).hexdigest()
        assert headers["X-Hub-Signature-256"] == f"sha256={expected}"


def test_the_bodies_include_what_parsers_choke_on() -> None:
    bodies = [raw for raw, _ in hostile_bodies(60, "s", seed=1)]
    assert any(raw.startswith(b"[" * 900) for raw in bodies)  # nested deep
    assert any(b"\xed\xa0\x80" in raw for raw in bodies)  # UTF-8 of a lone surrogate
    assert any(b'"timestamp": 9999' in raw for raw in bodies)  # thousands of digits
    readable = []
    for raw in bodies:
        try:
            readable.append(json.loads(raw))
        except (ValueError, RecursionError):
            continue
    assert len(readable) >= 40  # the rest are real-shaped updates with fields mutated
    assert all(isinstance(body, dict | list) for body in readable)
