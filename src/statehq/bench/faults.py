"""The reliability benchmark: hostile input and a failing store, with nothing lost.

``statehq bench --suite faults`` runs ``statehq serve`` as a child process on its own
embedded Valkey (``appendfsync always``) with the fake Graph API, and a load generator
that behaves like Meta: every request not answered 200 is sent again until it is.
Then, one scenario after another:

1. hostile input: signed webhook bodies mutated at random (wrong types, lone
   surrogates, huge numbers, deep nesting, ids and senders the store cannot key);
   counted: answers by status (5xx must be 0) and worker restarts;
2. ``kill -9`` of the store under load: the service restarts it from its AOF;
3. ``SIGSTOP`` of the store for a few seconds: how fast each endpoint answers;
4. the store's memory full, then raised.

For each: messages acknowledged (200), lost (acknowledged, never answered), replies
duplicated (one ``<message id>#<n>`` delivered twice), time to the first 503 and time
to recover (the first 200 after the fault ended).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import redis

from ..config import Settings
from ..store.embedded import EmbeddedValkey
from ..testing import webhooks as wh
from ..testing.fake_graph import FakeGraph
from . import procs
from .cpu import children
from .hostile import hostile_bodies

APP_SECRET = "faults-app-secret"
ACCESS_TOKEN = "faults-access-token"
Progress = Callable[[str], None]


@dataclass(frozen=True)
class FaultPlan:
    """How much of each scenario."""

    hostile: int
    members: int
    rate: float
    before: float
    after: float
    stall: float

    @classmethod
    def for_run(cls, quick: bool) -> FaultPlan:
        """Short runs for a smoke test, longer ones for figures worth keeping."""
        if quick:
            return cls(hostile=300, members=20, rate=50.0, before=1.5, after=2.0, stall=3.0)
        return cls(hostile=3000, members=50, rate=100.0, before=3.0, after=4.0, stall=5.0)


@dataclass
class Scenario:
    """What one scenario measured."""

    name: str
    inputs: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    server_errors: int = 0  # 5xx other than the 503 that means "store unavailable"
    worker_restarts: int = 0
    acknowledged: int = 0
    lost: int | None = None
    duplicated: int | None = None
    first_503_s: float | None = None
    recover_s: float | None = None
    notes: dict[str, Any] = field(default_factory=dict)


class Meta:
    """Sends messages the way Meta does: each one again until it is answered 200."""

    def __init__(self, base: str, members: int) -> None:
        self.base = base
        self.phones = [f"2637{random.randrange(10**8):08d}" for _ in range(members)]
        self.acknowledged: list[str] = []
        self.statuses: dict[str, int] = {}
        self.first_503: float | None = None
        self.last_non_200: float | None = None

    async def send(self, client: httpx.AsyncClient, body: dict[str, Any], give_up: float) -> None:
        """POST ``body`` until it is answered 200 (or ``give_up``, a monotonic time, passes)."""
        raw, headers = wh.signed(body, APP_SECRET)
        while time.monotonic() < give_up:
            try:
                status = await client.post("/webhooks/whatsapp", content=raw, headers=headers)
                code = str(status.status_code)
            except httpx.TransportError:
                code = "no answer"
            self.statuses[code] = self.statuses.get(code, 0) + 1
            if code == "200":
                self.acknowledged.extend(m["id"] for m in _messages(body))
                return
            now = time.monotonic()
            if code == "503" and self.first_503 is None:
                self.first_503 = now
            self.last_non_200 = now
            await asyncio.sleep(0.2)

    async def load(self, seconds: float, rate: float, give_up: float) -> None:
        """``rate`` messages/s for ``seconds``, each from one of the members."""
        async with httpx.AsyncClient(base_url=self.base, timeout=5.0) as client:
            tasks = []
            start = time.monotonic()
            for n in range(int(seconds * rate)):
                await asyncio.sleep(max(0.0, start + n / rate - time.monotonic()))
                body = wh.payload([wh.text(random.choice(self.phones), "hi")])
                tasks.append(asyncio.create_task(self.send(client, body, give_up)))
            await asyncio.gather(*tasks)


def _messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    value = body["entry"][0]["changes"][0]["value"]
    messages: list[dict[str, Any]] = value.get("messages", [])
    return messages


def _delivered(graph: FakeGraph, ids: set[str], wait: float) -> tuple[int, int]:
    """(lost, duplicated) among ``ids`` once they are answered or ``wait`` s passed."""
    deadline = time.monotonic() + wait
    while True:
        replies = [
            r.body.get("biz_opaque_callback_data")
            for r in graph.received()
            if r.ok and not r.is_read
        ]
        answered = {str(c).split("#")[0] for c in replies if c}
        if ids <= answered or time.monotonic() > deadline:
            mine = [c for c in replies if c and str(c).split("#")[0] in ids]
            return len(ids - answered), len(mine) - len(set(mine))
        time.sleep(0.25)


@dataclass(frozen=True)
class Served:
    """The ``statehq serve`` under test: its URL, its process, its embedded store."""

    base: str
    pid: int
    server: EmbeddedValkey

    def workers(self) -> set[int]:
        """The worker processes it runs now."""
        return set(children(self.pid))


def run_faults(plan: FaultPlan, progress: Progress) -> list[Scenario]:
    """Run every scenario against one fresh ``statehq serve``; their figures."""
    data_dir = Path(tempfile.mkdtemp(prefix="statehq-faults-"))
    try:
        with FakeGraph(access_token=ACCESS_TOKEN) as graph, _serve(data_dir, graph.url) as serve:
            results = []
            for scenario in (_hostile, _killed, _stalled, _full):
                before = serve.workers()
                result = scenario(serve, graph, plan, progress)
                result.worker_restarts = len(serve.workers() - before)
                results.append(result)
            return results
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


@contextmanager
def _serve(data_dir: Path, graph_url: str) -> Iterator[Served]:
    port = procs.free_port()
    settings = Settings(
        data_dir=data_dir / "store",
        appendfsync="always",
        workers=2,
        port=port,
        whatsapp_app_secret=APP_SECRET,
        whatsapp_verify_token="faults",
        whatsapp_access_token=ACCESS_TOKEN,
        whatsapp_phone_number_id=wh.PHONE_NUMBER_ID,
        whatsapp_graph_url=graph_url,
        reconcile_interval=2.0,
    )
    env = {**os.environ, **settings.to_env()}
    env.pop("STATEHQ_REDIS_URL", None)
    base = f"http://127.0.0.1:{port}"
    args = [sys.executable, "-m", "statehq.cli.main", "serve"]
    with procs.started(
        args, env, data_dir / "serve.log", lambda: procs.answers(f"{base}/readyz")
    ) as child:
        yield Served(base, child.pid, EmbeddedValkey(settings))


def _hostile(serve: Served, graph: FakeGraph, plan: FaultPlan, progress: Progress) -> Scenario:
    base = serve.base
    progress(f"faults: {plan.hostile:,} hostile signed webhook bodies ...")
    result = Scenario("hostile input")
    with httpx.Client(base_url=base, timeout=10.0) as client:
        for raw in hostile_bodies(plan.hostile, APP_SECRET, seed=12):
            body, headers = raw
            try:
                code = str(
                    client.post("/webhooks/whatsapp", content=body, headers=headers).status_code
                )
            except httpx.TransportError:
                code = "no answer"
            result.statuses[code] = result.statuses.get(code, 0) + 1
            result.inputs += 1
    result.server_errors = sum(n for code, n in result.statuses.items() if code.startswith("5"))
    time.sleep(2.0)  # let the workers take whatever was queued
    # Then fresh members write: every one must be answered, once.
    meta = Meta(base, plan.members)
    asyncio.run(meta.load(1.0, plan.rate, time.monotonic() + 30))
    result.acknowledged = len(meta.acknowledged)
    result.lost, result.duplicated = _delivered(graph, set(meta.acknowledged), 30)
    result.notes["afterwards"] = "fresh messages, sent after the hostile bodies"
    progress(f"  {result.statuses}; then {_said(result)}")
    return result


def _killed(serve: Served, graph: FakeGraph, plan: FaultPlan, progress: Progress) -> Scenario:
    base, server = serve.base, serve.server
    progress(f"faults: kill -9 of the store under {plan.rate:g} messages/s ...")
    result = Scenario("kill -9 of the store")
    meta = Meta(base, plan.members)

    async def kill() -> None:
        pid = server.pid()
        if pid is not None:
            os.kill(pid, signal.SIGKILL)

    killed_at, _ = _load_with_fault(meta, plan, kill, after=0.0)
    _settle_meta(result, meta, graph, killed_at, killed_at)
    result.notes["restarted"] = server.is_running()
    progress(f"  {_said(result)}")
    return result


def _stalled(serve: Served, graph: FakeGraph, plan: FaultPlan, progress: Progress) -> Scenario:
    base, server = serve.base, serve.server
    progress(f"faults: SIGSTOP of the store for {plan.stall:g} s ...")
    result = Scenario("store hung (SIGSTOP)")
    pid = server.pid()
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)
    stopped_at = time.monotonic()
    try:
        with httpx.Client(base_url=base, timeout=10.0) as client:
            for path in ("/webhooks/whatsapp", "/healthz", "/readyz", "/metrics", "/livez"):
                started = time.monotonic()
                if path == "/webhooks/whatsapp":
                    raw, headers = wh.signed(
                        wh.payload([wh.text("263770000000", "hi")]), APP_SECRET
                    )
                    code = client.post(path, content=raw, headers=headers).status_code
                else:
                    code = client.get(path).status_code
                result.notes[path] = {
                    "status": code,
                    "seconds": round(time.monotonic() - started, 3),
                }
        time.sleep(max(0.0, plan.stall - (time.monotonic() - stopped_at)))
    finally:
        os.kill(pid, signal.SIGCONT)
    resumed_at = time.monotonic()
    meta = Meta(base, plan.members)
    asyncio.run(meta.load(1.0, plan.rate, time.monotonic() + 60))
    _settle_meta(result, meta, graph, stopped_at, resumed_at)
    result.first_503_s = result.notes["/webhooks/whatsapp"]["seconds"]
    progress(f"  {_said(result)}; {result.notes}")
    return result


def _full(serve: Served, graph: FakeGraph, plan: FaultPlan, progress: Progress) -> Scenario:
    base, server = serve.base, serve.server
    progress("faults: the store's memory full, then raised ...")
    result = Scenario("store full (maxmemory)")
    client = redis.Redis(unix_socket_path=str(server.socket_path))
    meta = Meta(base, plan.members)

    async def fill() -> None:
        used = int(client.info("memory")["used_memory"])
        client.config_set("maxmemory", str(used // 2))

    async def raise_limit() -> None:
        client.config_set("maxmemory", "0")

    try:
        filled_at, raised_at = _load_with_fault(meta, plan, fill, raise_limit, plan.after / 2)
    finally:
        client.config_set("maxmemory", "0")
        client.close()
    _settle_meta(result, meta, graph, filled_at, raised_at)
    progress(f"  {_said(result)}")
    return result


def _load_with_fault(
    meta: Meta,
    plan: FaultPlan,
    fault: Callable[[], Awaitable[None]],
    end: Callable[[], Awaitable[None]] | None = None,
    after: float = 0.0,
) -> tuple[float, float]:
    """Meta-like load for ``before + after`` s of the plan; ``fault`` once ``before`` s have
    passed and ``end`` ``after`` s later. When the fault began, and when it ended."""
    began = ended = 0.0

    async def run() -> None:
        nonlocal began, ended
        load = asyncio.create_task(
            meta.load(plan.before + plan.after, plan.rate, time.monotonic() + 120)
        )
        await asyncio.sleep(plan.before)
        await fault()
        began = ended = time.monotonic()
        if end is not None:
            await asyncio.sleep(after)
            await end()
            ended = time.monotonic()
        await load

    asyncio.run(run())
    return began, ended


def _settle_meta(
    result: Scenario, meta: Meta, graph: FakeGraph, fault_at: float, fault_end: float
) -> None:
    result.statuses = meta.statuses
    result.inputs = sum(meta.statuses.values())
    result.server_errors = sum(
        n for code, n in meta.statuses.items() if code.startswith("5") and code != "503"
    )
    result.acknowledged = len(meta.acknowledged)
    result.lost, result.duplicated = _delivered(graph, set(meta.acknowledged), 90)
    if meta.first_503 is not None and result.first_503_s is None:
        result.first_503_s = round(max(0.0, meta.first_503 - fault_at), 3)
    if meta.last_non_200 is not None:
        result.recover_s = round(max(0.0, meta.last_non_200 - fault_end), 3)
    else:
        result.recover_s = 0.0


def _said(result: Scenario) -> str:
    return (
        f"{result.acknowledged} acknowledged, {result.lost} lost, {result.duplicated} duplicated, "
        f"statuses {result.statuses}, first 503 after {result.first_503_s} s, "
        f"recovered {result.recover_s} s after the fault ended"
    )


def write_report(
    results: list[Scenario], plan: FaultPlan, machine: dict[str, Any], output: Path
) -> str:
    """Write ``reliability.json`` and ``reliability.md`` under ``output``; the markdown."""
    output.mkdir(parents=True, exist_ok=True)
    data = {"machine": machine, "plan": asdict(plan), "scenarios": [asdict(r) for r in results]}
    (output / "reliability.json").write_text(json.dumps(data, indent=2) + "\n")
    lines = [
        "# statehq reliability: hostile input and a failing store",
        "",
        f"{machine.get('date', '')}, {machine.get('cpu_count')} CPUs, Valkey "
        f"{machine.get('valkey')}, `statehq bench --suite faults`; the service with 2 worker "
        "processes on its embedded Valkey (`appendfsync always`); every request not answered "
        "200 is sent again, as Meta does.",
        "",
        "| scenario | requests | unexpected 5xx | worker restarts | acknowledged | lost "
        "| duplicated | first 503 | recovered |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.name} | {r.inputs:,} | {r.server_errors} | {r.worker_restarts} "
            f"| {r.acknowledged:,} | {r.lost} | {r.duplicated} "
            f"| {_seconds(r.first_503_s)} | {_seconds(r.recover_s)} |"
        )
    lines += [
        "",
        "Unexpected 5xx: any 5xx while the store is up, any but 503 (store unavailable) "
        "while it fails. Acknowledged: messages answered 200 (after the hostile bodies: "
        "fresh messages, proving the workers alive). Lost: acknowledged, never answered. "
        "Duplicated: a reply (`<message id>#<n>`) delivered twice. First 503: after the "
        "fault began. Recovered: the last non-200 answer, after the fault ended (kill -9: "
        "after the kill, as the service restarts the store itself).",
        "",
        "Answers by status:",
        "",
    ]
    for r in results:
        lines.append(
            f"- {r.name}: {', '.join(f'{k}: {v:,}' for k, v in sorted(r.statuses.items()))}"
        )
    stalled = next((r for r in results if r.name.startswith("store hung")), None)
    if stalled is not None:
        lines += ["", "While the store was hung, each endpoint answered:", ""]
        for path, seen in stalled.notes.items():
            lines.append(f"- `{path}`: {seen['status']} in {seen['seconds']} s")
    lines.append("")
    markdown = "\n".join(lines)
    (output / "reliability.md").write_text(markdown)
    return markdown


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"
