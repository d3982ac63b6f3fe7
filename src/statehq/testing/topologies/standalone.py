"""One server on a TCP port (:func:`start_standalone`)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .processes import (
    HOST,
    START_TIMEOUT,
    _answers,
    _base_config,
    _kill,
    _start_node,
    _Topology,
    _wait,
    free_ports,
    valkey_binary,
)


@dataclass(frozen=True)
class Standalone(_Topology):
    """One server on a loopback TCP port (AOF on, no RDB, 256 MB, ``noeviction``)."""

    port: int
    directory: Path
    process: subprocess.Popen[bytes] = field(repr=False)
    binary: Path
    started_in: float  # seconds from start_standalone() to the first PONG

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT``."""
        return f"redis://{HOST}:{self.port}"

    @property
    def log_path(self) -> Path:
        """The server's log."""
        return self.directory / "server.log"

    def stop(self) -> None:
        """SIGKILL the server and reap it."""
        _kill([self.process])


def start_standalone(
    directory: Path,
    binary: Path | None = None,
    *,
    extra: Sequence[str] = (),
    timeout: float = START_TIMEOUT,
) -> Standalone:
    """Start one server in ``directory`` (default binary: :func:`valkey_binary`).

    ``extra`` are command-line options after the config file, e.g.
    ``["--appendfsync", "always"]``; they override the config.
    """
    began = time.monotonic()
    binary = binary or valkey_binary()
    directory = directory.resolve()
    (port,) = free_ports(1)
    node = _start_node(binary, directory, port, _base_config(port, directory), args=extra)
    try:
        _wait(
            f"the server on {node.address}",
            lambda: _answers(port),
            deadline=began + timeout,
            watch=[node],
        )
    except BaseException:
        node.kill()
        raise
    return Standalone(port, directory, node.process, binary, time.monotonic() - began)
