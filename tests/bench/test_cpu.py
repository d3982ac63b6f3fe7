"""The benchmark's CPU meter reads real processes' CPU time, children included."""

from __future__ import annotations

import subprocess
import sys

from statehq.bench.cpu import CpuMeter, children, own_seconds

BURN = "import time\nend = time.process_time() + {0}\nwhile time.process_time() < end: pass\n"
PARENT = (
    "import subprocess, sys\n"
    "child = subprocess.Popen([sys.executable, '-c', {0!r}])\n"
    "print(child.pid, flush=True)\n"
    "sys.stdin.readline()\n"  # burn in the child only, then wait to be told to go
    "child.wait()\n"
)


def test_a_part_and_its_children_are_measured_apart() -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT.format(BURN.format(0.4))],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert parent.stdout is not None
        assert parent.stdin is not None
        kid = int(parent.stdout.readline())
        assert kid in children(parent.pid)
        meter = CpuMeter({"server": [parent.pid]}, with_children=("server",))
        meter.start()
        while own_seconds(kid) < 0.35 and kid in children(parent.pid):
            pass
        used = meter.stop()
        assert used["server children"] >= 0.2  # the child's busy loop
        assert used["server"] < used["server children"]  # the parent only waited
        assert used["load generator"] > 0  # this process polled meanwhile
    finally:
        parent.communicate("\n", timeout=10)


def test_a_gone_process_counts_as_zero() -> None:
    done = subprocess.Popen([sys.executable, "-c", "pass"])
    done.wait()
    assert own_seconds(done.pid) == 0.0
