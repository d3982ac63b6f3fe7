"""Which store a command uses, said out loud, and the running service's store found.

Without ``STATEHQ_REDIS_URL`` (or ``--url``) the store is the embedded server of the data
dir, ``./.statehq`` relative to where the command runs. Run from another directory, a
command would silently start a new, empty store there. Instead:

- ``statehq serve`` on the embedded store leaves a note of itself (pid, data dir, address)
  under ``$XDG_STATE_HOME/statehq/services`` (``~/.local/state/...``) while it runs;
- a command that reads existing state, with no data dir here and none named, uses the
  one running service's data dir and says so; with several running it names them and
  asks for ``STATEHQ_DATA_DIR``; with none it refuses and says where it looked.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..config import Settings
from ..store.connection import redact_url

READS_EXISTING = frozenset({"state", "audit", "identity", "dead", "scan", "stats", "backup"})
"""Commands about state that must already exist: in a fresh data dir they find nothing."""


@dataclass(frozen=True)
class RunningService:
    """A ``statehq serve`` on the embedded store, as it noted itself."""

    pid: int
    data_dir: Path
    address: str


def services_dir() -> Path:
    """Where running services leave their notes."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "statehq" / "services"


@contextlib.contextmanager
def noted_while_running(settings: Settings, address: str) -> Iterator[None]:
    """Leave a note of this service for as long as it runs (embedded store only)."""
    if settings.redis_url:
        yield
        return
    note = services_dir() / f"{os.getpid()}.json"
    data_dir = str(settings.data_dir.expanduser().resolve())
    try:
        note.parent.mkdir(parents=True, exist_ok=True)
        note.write_text(json.dumps({"pid": os.getpid(), "data_dir": data_dir, "address": address}))
    except OSError:  # a read-only home: the service runs; commands just cannot find it
        yield
        return
    # uvicorn re-raises the SIGTERM it stopped on once it has shut down; the default
    # action would end the process before the note is removed.
    previous = signal.signal(signal.SIGTERM, _exit_quietly)
    try:
        yield
    finally:
        note.unlink(missing_ok=True)
        signal.signal(signal.SIGTERM, previous)


def _exit_quietly(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def running_services() -> list[RunningService]:
    """The services whose notes name a live process (stale notes are removed)."""
    found = []
    for note in sorted(services_dir().glob("*.json")):
        try:
            data = json.loads(note.read_text())
            service = RunningService(int(data["pid"]), Path(data["data_dir"]), str(data["address"]))
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if _alive(service.pid):
            found.append(service)
        else:
            note.unlink(missing_ok=True)
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


STARTS_A_STORE = frozenset({"chat", "shell", "health", "migrate", "restore"})
"""Commands that may work on a new, empty store (``state update`` too): with no data dir
here they still prefer a running service's store, and say which they use."""


def choose_store(settings: Settings, args: argparse.Namespace) -> tuple[Settings, str | None]:
    """The settings to open the store with, and a refusal when there is no store to read.

    A data dir named by ``STATEHQ_DATA_DIR``, or ``./.statehq`` when it exists, is used as
    it is. Otherwise the running service's store is used (said on stderr); with none
    running, a command that reads existing state refuses, and one that may start a store
    says that it starts one here.
    """
    starts = args.command in STARTS_A_STORE or (
        args.command == "state" and getattr(args, "action", None) == "update"
    )
    if args.url or settings.redis_url or not (starts or args.command in READS_EXISTING):
        return settings, None
    data_dir = settings.data_dir.expanduser().resolve()
    if data_dir.exists() or os.environ.get("STATEHQ_DATA_DIR"):
        if not data_dir.exists() and not starts:
            return settings, f"there is no statehq data in {data_dir} (STATEHQ_DATA_DIR)"
        return settings, None
    services = [s for s in running_services() if s.data_dir.exists()]
    if len(services) == 1:
        service = services[0]
        print(
            f"statehq: no data dir here; using the store of the service running on "
            f"{service.address} (pid {service.pid}, data in {service.data_dir})",
            file=sys.stderr,
        )
        return settings.override(data_dir=service.data_dir), None
    if len(services) > 1:
        listed = "; ".join(f"{s.address} (data in {s.data_dir})" for s in services)
        return settings, (
            f"there is no statehq data in {data_dir}, and {len(services)} services are "
            f"running: {listed}. Choose one with STATEHQ_DATA_DIR"
        )
    if starts:
        print(f"statehq: starting a new embedded store in {data_dir}", file=sys.stderr)
        return settings, None
    return settings, (
        f"there is no statehq data in {data_dir} (the embedded store lives in "
        f"STATEHQ_DATA_DIR, ./.statehq by default) and no statehq service is running on "
        f"the embedded store. Run this where you ran `make run` or `statehq serve`, or set "
        f"STATEHQ_DATA_DIR or STATEHQ_REDIS_URL"
    )


def store_in_use(settings: Settings, url: str | None) -> str:
    """The store a command uses, in words (credentials masked)."""
    if url or settings.redis_url:
        return f"store {redact_url(url or settings.redis_url or '')}"
    return f"embedded store, data in {settings.data_dir.expanduser().resolve()}"
