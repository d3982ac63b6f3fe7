"""Hostile but signed webhook bodies, from a seed: what a broken or malicious sender with
the app secret could post.

Each body is a real-shaped update (messages of every kind, statuses) with one to three
fields replaced or removed at random, or one of the shapes a JSON parser chokes on:
nesting thousands deep, integers of thousands of digits, UTF-8 of a lone surrogate.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import random
import time
from collections.abc import Iterator
from typing import Any

from ..testing import webhooks as wh

GARBAGE: tuple[Any, ...] = (
    None,
    True,
    False,
    0,
    -1,
    1.5,
    2**70,
    "",
    " ",
    "\ud800",
    "a\udc00b",
    "\x00",
    "x" * 300,
    "9" * 400,
    "<nobody>",
    "263{77}",
    "whatsapp:263",
    [],
    {},
    [1, [2, [3]]],
    {"a": {"b": {"c": None}}},
    ["wamid.x"],
)


def hostile_bodies(
    count: int, app_secret: str, *, seed: int, now: int | None = None
) -> Iterator[tuple[bytes, dict[str, str]]]:
    """``count`` signed bodies, each with its headers, the same for the same ``seed`` and
    ``now`` (the timestamp the updates carry; default the current time)."""
    rng = random.Random(seed)
    stamp = int(time.time()) if now is None else now
    for n in range(count):
        raw = _raw(rng, n, stamp)
        signature = hmac.new(app_secret.encode(), raw, hashlib.sha256).hexdigest()
        yield (
            raw,
            {"Content-Type": "application/json", "X-Hub-Signature-256": f"sha256={signature}"},
        )


def _raw(rng: random.Random, n: int, now: int) -> bytes:
    shape = n % 20
    if shape == 0:
        depth = rng.randrange(900, 20_000)
        return b"[" * depth + b"]" * depth
    if shape == 1:
        body = json.dumps(wh.payload([wh.text(_phone(rng), "SURROGATE", **_ids(rng, now))]))
        return body.encode().replace(b"SURROGATE", b"a\xed\xa0\x80b")
    if shape == 2:
        body = json.dumps(wh.payload([wh.text(_phone(rng), "hi", **_ids(rng, now))]))
        digits = "9" * rng.randrange(400, 6000)
        return body.replace('"timestamp": "', f'"timestamp": {digits}, "x": "').encode()
    payload = _valid(rng, now)
    for _ in range(rng.randrange(1, 4)):
        _mutate(rng, payload)
    return json.dumps(payload, ensure_ascii=True).encode()


def _phone(rng: random.Random) -> str:
    return f"2637{rng.randrange(10**8):08d}"


def _ids(rng: random.Random, now: int) -> dict[str, Any]:
    return {"id": f"wamid.HBgM{rng.randrange(16**20):020x}", "ts": now}


def _valid(rng: random.Random, now: int) -> dict[str, Any]:
    phone = _phone(rng)
    messages = [
        wh.text(phone, "hi", **_ids(rng, now)),
        wh.button(phone, "menu", "Menu", **_ids(rng, now)),
        wh.list_reply(phone, "row", "Row", **_ids(rng, now)),
        wh.other(phone, "image", {"id": "1", "mime_type": "image/jpeg"}, **_ids(rng, now)),
        wh.other(phone, "interactive", {"type": "call_permission_reply"}, **_ids(rng, now)),
    ]
    status = wh.status(phone, "wamid.out", rng.choice(["sent", "read", "failed"]), code=131047)
    statuses = [{**status, "timestamp": str(now)}]
    return wh.payload(rng.sample(messages, rng.randrange(1, 4)), statuses[: rng.randrange(2)])


def _mutate(rng: random.Random, node: Any) -> None:
    """Replace or remove one field somewhere inside ``node``."""
    path: list[tuple[Any, Any]] = []
    while isinstance(node, dict | list) and node and (not path or rng.random() < 0.75):
        key = rng.choice(list(node)) if isinstance(node, dict) else rng.randrange(len(node))
        path.append((node, key))
        node = node[key]
    if not path:
        return
    parent, key = path[-1]
    if isinstance(parent, dict) and rng.random() < 0.2:
        del parent[key]
    else:
        parent[key] = copy.deepcopy(rng.choice(GARBAGE))
