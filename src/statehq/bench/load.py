"""The service benchmark's load generator: HTTP/1.1 over raw asyncio streams.

Hand-written so that the generator, not the system under test, is never the
bottleneck (httpx tops out near 1,200 requests/s on the 2-core VM; this does >18,000).
The senders return an ``Outcome``: (latencies in seconds, non-200 answers, elapsed seconds).
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

from ..testing import webhooks as wh

Outcome = tuple[list[float], int, float]


def user_id(phone: str) -> str:
    """The business-scoped user id Meta sends beside ``wa_id`` (``US.`` and 20 digits)."""
    return f"US.{int(phone) * 7919 % 10**20:020d}"


def text_payload(phone: str) -> dict[str, Any]:
    """A webhook body with one text message from ``phone``, shaped as Meta sends it now.

    Meta's contacts carry a ``user_id`` beside ``wa_id`` (the shared fixtures have it);
    pywa's parser requires it, so every target gets it.
    """
    body = wh.payload([wh.text(phone, "hi")])
    for change in body["entry"][0]["changes"]:
        for contact in change["value"]["contacts"]:
            contact["user_id"] = user_id(contact["wa_id"])
    return body


def signed_requests(members: int, count: int, seed: int, app_secret: str) -> list[bytes]:
    """``count`` signed single-message requests from ``members`` members."""
    rng = random.Random(seed)
    phones = [f"2637{seed:02d}{n:06d}" for n in range(members)]
    out = []
    for _ in range(count):
        raw, headers = wh.signed(text_payload(rng.choice(phones)), app_secret)
        head = (
            f"POST /webhooks/whatsapp HTTP/1.1\r\nHost: bench\r\n"
            f"Content-Type: application/json\r\n"
            f"X-Hub-Signature-256: {headers['X-Hub-Signature-256']}\r\n"
            f"Content-Length: {len(raw)}\r\n\r\n"
        )
        out.append(head.encode() + raw)
    return out


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> int:
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    if length:
        await reader.readexactly(length)
    return status


async def blast(port: int, requests: list[bytes], concurrency: int) -> Outcome:
    """Send every request as fast as ``concurrency`` connections allow."""
    queue = list(reversed(requests))
    latencies: list[float] = []
    errors = 0

    async def connection() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while queue:
                request = queue.pop()
                started = time.perf_counter()
                status = await _exchange(reader, writer, request)
                latencies.append(time.perf_counter() - started)
                errors += status != 200
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(concurrency)))
    return latencies, errors, time.perf_counter() - started


async def paced(port: int, requests: list[bytes], rate: float) -> Outcome:
    """Send request i at start + i/rate; latency counts from when it was due."""
    pool: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
    for _ in range(64):
        pool.put_nowait(await asyncio.open_connection("127.0.0.1", port))
    latencies: list[float] = []
    errors = 0
    start = time.perf_counter() + 0.05

    async def one(i: int, request: bytes) -> None:
        nonlocal errors
        due = start + i / rate
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        reader, writer = await pool.get()
        try:
            status = await _exchange(reader, writer, request)
        finally:
            pool.put_nowait((reader, writer))
        latencies.append(time.perf_counter() - due)
        errors += status != 200

    await asyncio.gather(*(one(i, r) for i, r in enumerate(requests)))
    elapsed = time.perf_counter() - start
    while not pool.empty():
        pool.get_nowait()[1].close()
    return latencies, errors, elapsed


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile of latencies in seconds, in milliseconds (0 for none)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else 0.0


async def spread(ports: list[int], requests: list[bytes], concurrency: int) -> Outcome:
    """Split the requests over the processes (like a load balancer), all at once."""
    shares = [requests[n :: len(ports)] for n in range(len(ports))]
    started = time.perf_counter()
    parts = await asyncio.gather(
        *(
            blast(p, s, max(1, concurrency // len(ports)))
            for p, s in zip(ports, shares, strict=True)
        )
    )
    return (
        [x for part in parts for x in part[0]],
        sum(p[1] for p in parts),
        time.perf_counter() - started,
    )


async def paced_spread(ports: list[int], requests: list[bytes], rate: float) -> Outcome:
    shares = [requests[n :: len(ports)] for n in range(len(ports))]
    parts = await asyncio.gather(
        *(paced(p, s, rate / len(ports)) for p, s in zip(ports, shares, strict=True))
    )
    return (
        [x for part in parts for x in part[0]],
        sum(p[1] for p in parts),
        max(p[2] for p in parts),
    )
