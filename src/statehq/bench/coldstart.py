"""Cold start: from exec of ``statehq serve`` to the first ``/readyz`` that answers 200.

Timed from just before the interpreter is started (imports, settings, the bot, the
store's scripts, uvicorn) to the first 200 from ``/readyz`` (store reachable, scripts
loaded), polled every 10 ms. Two configurations:

- ``running store``: ``STATEHQ_REDIS_URL`` pointing at the bench's server, as in production;
- ``embedded store``: no URL, so ``statehq serve`` starts its own Valkey in a fresh data
  folder first, as ``make run`` does on a new clone.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from . import procs
from .service import clean_env

POLL = 0.01
TIMEOUT = 60.0


@dataclass(frozen=True)
class ColdStart:
    """Seconds to ready, one per start."""

    store: str
    seconds: list[float]

    @property
    def median_s(self) -> float:
        """The middle start."""
        return round(statistics.median(self.seconds), 3)

    @property
    def worst_s(self) -> float:
        """The slowest start."""
        return round(max(self.seconds), 3)


def time_to_ready(env: dict[str, str], log: Path) -> float:
    """Seconds from exec of ``statehq serve`` to ``/readyz`` 200, then stop it."""
    port = procs.free_port()
    args = [sys.executable, "-m", "statehq.cli.main", "serve", "--port", str(port)]
    ready = f"http://127.0.0.1:{port}/readyz"
    with log.open("ab") as out:
        began = time.monotonic()
        child = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        while not procs.answers(ready):
            if child.poll() is not None or time.monotonic() - began > TIMEOUT:
                raise RuntimeError(f"statehq serve did not get ready:\n{log.read_text()[-2000:]}")
            time.sleep(POLL)
        return round(time.monotonic() - began, 3)
    finally:
        procs.stop(child)


def run_cold_starts(
    url: str, count: int, work: Path, progress: Callable[[str], None]
) -> list[ColdStart]:
    """``count`` cold starts on the running store, then ``count`` with an embedded one."""
    progress(f"cold start: statehq serve exec to /readyz 200, {count} x 2 configurations ...")
    base = {**clean_env(), "STATEHQ_KEY_PREFIX": "bench-cold"}
    running = {**base, "STATEHQ_REDIS_URL": url, "STATEHQ_DATA_DIR": str(work / "cold")}
    results = [
        ColdStart(
            "running store", [time_to_ready(running, work / "cold.log") for _ in range(count)]
        )
    ]
    embedded = []
    for _ in range(count):
        with tempfile.TemporaryDirectory(prefix="statehq-bench-cold-") as data:
            env = {**base, "STATEHQ_DATA_DIR": data}
            embedded.append(time_to_ready(env, work / "cold-embedded.log"))
    results.append(ColdStart("embedded store (started by serve)", embedded))
    for r in results:
        progress(f"  {r.store}: median {r.median_s:.2f} s, worst {r.worst_s:.2f} s")
    return results
