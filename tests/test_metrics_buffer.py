"""Buffered metric values in multiprocess mode: every change written, within the interval.

Multiprocess mode is chosen when prometheus-client is first imported, so each case runs
in a fresh interpreter with ``PROMETHEUS_MULTIPROC_DIR`` set, and the files it leaves
are read back the way ``/metrics`` reads them (:class:`MultiProcessCollector`).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector

from statehq import metrics_buffer


def run_worker(directory: Path, code: str) -> str:
    """Run ``code`` in a new Python in multiprocess mode; its standard output."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory)}
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def read(directory: Path, name: str, **labels: str) -> float:
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(directory))  # type: ignore[no-untyped-call]
    return registry.get_sample_value(name, labels) or 0.0


def test_every_change_reaches_the_files_by_the_time_the_process_exits(tmp_path: Path) -> None:
    run_worker(
        tmp_path,
        """
        from statehq import metrics, metrics_buffer
        assert metrics_buffer.buffer_multiprocess_values()
        for n in range(10_000):
            metrics.STORE_OPERATIONS.labels("get").observe(0.0003 if n % 2 else 0.003)
            metrics.MESSAGES_OUT.labels("text").inc()
        metrics.DEDUP_HITS.labels("applied").inc(2.5)
        """,
    )
    count = "statehq_store_operation_seconds_count"
    assert read(tmp_path, count, operation="get") == 10_000
    assert read(tmp_path, "statehq_store_operation_seconds_sum", operation="get") == (
        pytest.approx(5_000 * 0.0033)
    )
    bucket = "statehq_store_operation_seconds_bucket"
    assert read(tmp_path, bucket, operation="get", le="0.0005") == 5_000
    assert read(tmp_path, bucket, operation="get", le="+Inf") == 10_000
    assert read(tmp_path, "statehq_messages_out_total", type="text") == 10_000
    assert read(tmp_path, "statehq_dedup_hits_total", where="applied") == 2.5


def test_changes_are_written_within_the_interval_while_the_process_runs(tmp_path: Path) -> None:
    # The worker goes on running (it waits on its stdin): only the thread can write.
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    code = """
        import sys
        from statehq import metrics
        metrics.MESSAGES_OUT.labels("text").inc(3)
        assert metrics.MESSAGES_OUT.labels("text")._value.get() == 3  # pending counts
        print("counted", flush=True)
        sys.stdin.read()
    """
    with subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as worker:
        assert worker.stdout is not None
        assert worker.stdin is not None
        assert worker.stdout.readline() == "counted\n"
        waited = 0.0
        while read(tmp_path, "statehq_messages_out_total", type="text") != 3:
            assert waited < 5 * metrics_buffer.FLUSH_INTERVAL, "never written"
            waited += 0.05
            time.sleep(0.05)
        worker.stdin.close()
        assert worker.wait(timeout=10) == 0


def test_a_forked_child_does_not_write_its_parents_pending_changes(tmp_path: Path) -> None:
    run_worker(
        tmp_path,
        """
        import os
        from statehq import metrics
        metrics.MESSAGES_OUT.labels("text").inc(5)  # pending in the parent
        child = os.fork()
        if child == 0:  # exits normally: its own changes are written at exit
            metrics.MESSAGES_OUT.labels("text").inc(1)
            metrics.MESSAGES_OUT.labels("read").inc(1)
        else:
            os.waitpid(child, 0)
        """,
    )
    assert read(tmp_path, "statehq_messages_out_total", type="text") == 6
    assert read(tmp_path, "statehq_messages_out_total", type="read") == 1


def test_a_gauge_set_replaces_pending_increments(tmp_path: Path) -> None:
    run_worker(
        tmp_path,
        """
        from prometheus_client import Gauge
        from statehq import metrics  # buffers the values made after it
        gauge = Gauge("statehq_test_level", "a level", multiprocess_mode="livesum")
        gauge.inc(4)
        gauge.set(10)
        gauge.inc(1)
        assert gauge._value.get() == 11
        """,
    )
    assert read(tmp_path, "statehq_test_level") == 11


def test_outside_multiprocess_mode_nothing_is_buffered() -> None:
    assert "PROMETHEUS_MULTIPROC_DIR" not in os.environ
    assert metrics_buffer.buffer_multiprocess_values() is False
    metrics_buffer.flush()  # a no-op, not an error
