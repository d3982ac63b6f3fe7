"""The benchmarks' child processes: free ports, start-until-ready, and probes."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.request import urlopen

START_TIMEOUT = 60.0  # seconds a child gets to answer its readiness probe


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def answers(url: str) -> bool:
    """True when ``url`` answers 200 within a second."""
    try:
        with urlopen(url, timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def port_open(port: int) -> bool:
    """True when something accepts connections on loopback ``port``."""
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def stop(child: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL after 20 s; reaped either way."""
    child.terminate()
    try:
        child.wait(timeout=20)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


@contextmanager
def started(
    args: list[str], env: dict[str, str], log: Path, ready: Callable[[], bool]
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``args`` (output to ``log``) until the block ends, once ``ready()`` says so."""
    with log.open("ab") as out:
        child = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not ready():
            if child.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"{' '.join(args[2:4])} did not start:\n{log.read_text()[-2000:]}"
                )
            time.sleep(0.05)
        yield child
    finally:
        stop(child)
