"""The end-to-end harness, tiny: a peer's phases, a statehq serve run, a cold start.

Real processes throughout (the bare ASGI endpoint, ``statehq serve`` with its workers, the
fake Graph API) on a private Valkey; pywa is the ``bench`` extra's and is measured by
``statehq bench`` itself, not here.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from statehq import Settings
from statehq.bench.coldstart import run_cold_starts
from statehq.bench.load import signed_requests
from statehq.bench.plan import BenchPlan
from statehq.bench.service import APP_SECRET, BARE, run_peer, run_statehq
from statehq.store.embedded import EmbeddedValkey

TINY = replace(
    BenchPlan.for_run(quick=True), members=10, messages=40, concurrency=4, paced_s=0.2, workers=1
)


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A private Valkey, so the traffic counted is this test's alone."""
    server = EmbeddedValkey(Settings(data_dir=tmp_path_factory.mktemp("bench-service")))
    server.acquire()
    yield server.url
    server.release()


def _requests() -> tuple[list[bytes], list[bytes]]:
    return (
        signed_requests(TINY.members, TINY.messages, 11, APP_SECRET),
        signed_requests(TINY.members, TINY.paced_requests, 12, APP_SECRET),
    )


@pytest.mark.slow
def test_a_peer_acknowledges_every_request_in_both_phases(tmp_path: Path) -> None:
    requests, paced = _requests()
    throughput, latency = run_peer(
        BARE, ["statehq.bench.bare"], TINY, requests, paced, tmp_path, lambda _: None
    )
    assert (throughput.requests, throughput.errors, throughput.processes) == (40, 0, 2)
    assert latency.phase == "paced 500/s"
    assert latency.requests == TINY.paced_requests
    assert 0 < latency.ack_p50_ms <= latency.ack_p99_ms <= latency.ack_max_ms


@pytest.mark.slow
def test_statehq_serve_processes_every_message_once_and_counts_its_traffic(
    url: str, tmp_path: Path
) -> None:
    requests, paced = _requests()
    run = run_statehq(url, TINY, 1, requests, paced, None, tmp_path, lambda _: None)
    t = run.throughput
    assert (t.errors, t.lost, t.duplicated) == (0, 0, 0)
    assert t.processed_per_second
    assert t.processed_per_second > 0
    assert t.cpu_ms_per_message
    assert t.cpu_ms_per_message["total"] > 0
    assert run.traffic.messages == 40
    assert 2 <= run.traffic.round_trips < 40  # a few per message, not hundreds
    assert run.traffic.script_calls >= 1
    assert run.traffic.commands > run.traffic.round_trips
    assert run.paced is not None
    assert (run.paced.lost, run.paced.errors) == (0, 0)


@pytest.mark.slow
def test_cold_start_is_timed_to_readiness_for_both_stores(url: str, tmp_path: Path) -> None:
    starts = run_cold_starts(url, 1, tmp_path, lambda _: None)
    assert [s.store for s in starts] == ["running store", "embedded store (started by serve)"]
    assert all(0 < s.median_s == s.worst_s < 60 for s in starts)
