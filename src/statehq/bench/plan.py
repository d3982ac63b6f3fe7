"""How long and how hard one ``statehq bench`` run measures: the full run and ``--quick``.

The full run is sized to finish in a few minutes on a 2-core machine while every figure
still rests on thousands of operations; ``--quick`` keeps every step (so it proves the
whole harness works end to end) with about a tenth of the work.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BenchPlan:
    """The sizes of every measurement in one run."""

    quick: bool
    writers: tuple[int, ...]
    """Writer processes per contention run, each on one member."""
    contention_s: float
    """Seconds each implementation writes at each writer count."""
    latency_iterations: int
    latency_warmup: int
    memory_sessions: int
    """Sessions written per layout for the memory comparison."""
    history_versions: int
    members: int
    """Distinct senders of the end-to-end messages."""
    messages: int
    """Messages per end-to-end throughput run (one per signed request)."""
    concurrency: int
    """Connections the throughput phase keeps busy."""
    rate: float
    """Requests/s of the paced (latency) phase."""
    paced_s: float
    processes: tuple[int, ...]
    """``statehq serve`` process counts of the scaling runs."""
    headline_processes: int
    """The configuration whose figures are the headline (and the peers' process count)."""
    workers: int
    """Worker processes per ``statehq serve`` process."""
    cold_starts: int
    """Cold starts timed per configuration."""

    @classmethod
    def for_run(cls, quick: bool) -> BenchPlan:
        """The full run, or the smoke run of ``--quick``."""
        if quick:
            return cls(
                quick=True,
                writers=(1, 8, 32),
                contention_s=0.5,
                latency_iterations=300,
                latency_warmup=100,
                memory_sessions=100,
                history_versions=10,
                members=100,
                messages=600,
                concurrency=16,
                rate=500.0,
                paced_s=2.0,
                processes=(1, 2, 4),
                headline_processes=2,
                workers=2,
                cold_starts=1,
            )
        return cls(
            quick=False,
            writers=(1, 8, 32),
            contention_s=3.0,
            latency_iterations=5000,
            latency_warmup=500,
            memory_sessions=1000,
            history_versions=10,
            members=500,
            messages=8000,
            concurrency=32,
            rate=500.0,
            paced_s=10.0,
            processes=(1, 2, 4),
            headline_processes=2,
            workers=2,
            cold_starts=3,
        )

    @property
    def paced_requests(self) -> int:
        """Requests in one paced phase."""
        return int(self.rate * self.paced_s)
