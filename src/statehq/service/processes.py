"""Inbox workers as processes of their own, started and watched by ``statehq serve``.

The webhook's one job is to acknowledge quickly: Meta redelivers whatever it did not
get a 200 for in time. Worker threads in the webhook's process would share its
interpreter lock, so a busy flow engine would hold acknowledgements back. ``statehq
serve`` therefore runs each worker as a child process:

* at a lower CPU priority (:data:`WORKER_NICENESS`), so that when processing falls
  behind, the backlog waits in the inbox and acknowledgements do not;
* killed by the kernel when the serving process dies (a SIGKILLed ``statehq serve``
  leaves no orphan still sending replies), and restarted by it when one dies alone;
* recording metrics into a shared directory that ``/metrics`` adds up
  (prometheus-client's multiprocess mode).

Run by hand (``python -m statehq.service.processes``), a worker reads its settings from
the environment like every other statehq command.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass

from ..channels.base import Delivery
from ..channels.registry import channels
from ..config import Settings
from ..flows import open_bot
from ..redact import get_logger
from ..store import StateStore
from .bots import open_engines
from .logs import configure_logging
from .worker import Worker, WorkerSettings

log = get_logger(__name__)

WORKER_NICENESS = 10
"""How much lower a worker process's CPU priority is than the webhook's (see above)."""
RESTART_PAUSE = 1.0  # seconds between restarts of one worker slot: no crash loop at full speed
STOP_GRACE = 10.0  # seconds workers get to finish their message on shutdown
PARENT_VARIABLE = "STATEHQ_SUPERVISOR_PID"
NAME_VARIABLE = "STATEHQ_WORKER_NAME"
METRICS_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


def open_worker(
    stack: contextlib.ExitStack, settings: Settings, url: str, stop: threading.Event, name: str
) -> Worker:
    """A worker with its own store connection, bot (``STATEHQ_BOT``, and each WhatsApp
    number's: :mod:`.bots`), engine, and a way out for each registered channel (its own
    HTTP connections)."""
    store = stack.enter_context(StateStore.open(url=url, settings=settings))
    bot = stack.enter_context(open_bot(settings))
    deliveries: dict[str, Delivery] = {
        channel.type: stack.enter_context(channel.delivery()) for channel in channels(settings)
    }
    pacing = WorkerSettings(
        lease_ttl=settings.lease_ttl,
        max_message_age=settings.max_message_age,
        max_attempts=settings.max_attempts,
    )
    engine = open_engines(stack, settings, store, bot)
    return Worker(store, engine, deliveries, pacing, stop, name=name)


@dataclass
class _Slot:
    name: str
    process: subprocess.Popen[bytes]
    started: float


class WorkerProcesses:
    """``settings.workers`` worker processes on the store at ``url``, kept running."""

    def __init__(self, settings: Settings, url: str) -> None:
        self.settings = settings
        self.url = url
        self.metrics_dir = tempfile.mkdtemp(prefix="statehq-metrics-")
        self._slots: list[_Slot] = []
        self._stopping = False

    def start(self) -> None:
        """Start every worker."""
        self._slots = [self._spawn(f"w{n}") for n in range(self.settings.workers)]
        log.info("started %d worker processes", len(self._slots))

    def _spawn(self, name: str) -> _Slot:
        env = {
            **os.environ,
            **self.settings.override(redis_url=self.url).to_env(),
            PARENT_VARIABLE: str(os.getpid()),
            NAME_VARIABLE: name,
            METRICS_VARIABLE: self.metrics_dir,
        }
        process = subprocess.Popen([sys.executable, "-m", __name__], env=env)
        return _Slot(name, process, time.monotonic())

    def check(self) -> list[str]:
        """Restart workers that died (at most one restart per slot per second); their names."""
        restarted = []
        for n, slot in enumerate(self._slots):
            code = slot.process.poll()
            if self._stopping or code is None:
                continue
            if time.monotonic() - slot.started < RESTART_PAUSE:
                continue
            log.warning("worker %s exited with code %s; starting another", slot.name, code)
            self._slots[n] = self._spawn(slot.name)
            restarted.append(slot.name)
        return restarted

    def pids(self) -> list[int]:
        """The worker processes' ids (for tests and operators)."""
        return [slot.process.pid for slot in self._slots]

    def stop(self) -> None:
        """SIGTERM every worker, wait for them to finish their message, kill stragglers."""
        self._stopping = True
        for slot in self._slots:
            if slot.process.poll() is None:
                slot.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE
        for slot in self._slots:
            try:
                slot.process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("worker %s did not stop in time; killing it", slot.name)
                slot.process.kill()
                slot.process.wait()
        shutil.rmtree(self.metrics_dir, ignore_errors=True)


def _die_with_parent() -> None:
    """Ask Linux to SIGKILL this process when the process that started it dies."""
    parent = os.environ.get(PARENT_VARIABLE)
    if parent is None or not sys.platform.startswith("linux"):
        return
    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
    if os.getppid() != int(parent):  # the parent died before the request was made
        os._exit(1)


def main() -> int:
    """A worker process: drain inboxes until SIGTERM or SIGINT."""
    _die_with_parent()
    configure_logging()
    settings = Settings.from_env()
    if settings.redis_url is None:
        print("a worker process needs STATEHQ_REDIS_URL (statehq serve sets it)", file=sys.stderr)
        return 2
    name = os.environ.get(NAME_VARIABLE, f"worker-{os.getpid()}")
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    with contextlib.suppress(OSError):
        os.nice(WORKER_NICENESS)
    with contextlib.ExitStack() as stack:
        open_worker(stack, settings, settings.redis_url, stop, name).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
