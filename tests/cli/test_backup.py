"""``statehq backup`` and ``statehq restore``, run as real processes on the embedded server.

The test holds the data dir's embedded server open for its whole run (the commands
attach to the same one), so it can write sessions directly and wipe the server with a
real FLUSHALL between backup and restore.
"""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from statehq import Settings, StateStore
from statehq.store import AuditEvent
from statehq.store.requests import Command, Operation

TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"
PHONE = "whatsapp:263771110001"


def statehq(
    data_dir: Path, *args: str, stdin: bytes | None = None, stderr: int | None = None
) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "STATEHQ_DATA_DIR": str(data_dir), "STATEHQ_OPERATOR": "tester"}
    env.pop("STATEHQ_REDIS_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "statehq.cli.main", *args],
        env=env,
        input=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE if stderr is None else stderr,
        timeout=120,
        check=False,
    )


def text(result: subprocess.CompletedProcess[bytes]) -> tuple[str, str]:
    return result.stdout.decode(), (result.stderr or b"").decode()


@pytest.fixture
def held(data_dir: Path) -> Iterator[StateStore]:
    """The data dir's embedded store, open for the test (the commands share its server)."""
    with StateStore.open(settings=Settings(data_dir=data_dir)) as store:
        yield store


def flushall(store: StateStore) -> None:
    def flush() -> Operation:
        yield Command(("FLUSHALL",))

    store.execute(flush())


def seed(store: StateStore, data_dir: Path) -> None:
    """Three members with history and audit; one with a bound phone, one with a long TTL."""
    channel = {"type": "whatsapp", "identifier": PHONE.split(":")[1]}
    store.update(PHONE, {"channel": channel, "stage": "INIT", "authenticated": False})
    for n in (1, 2):
        key = f"member:{n}"
        for step in range(3):
            doc = {"member_id": str(n), "channel": None, "stage": "INIT", "profile": {"step": step}}
            store.update(key, doc, audit=[AuditEvent("state.updated", reason=f"step {step}")])
    store.update("member:1", {"channel": channel, "authenticated": True, "jwt_token": TOKEN})
    store.bind(PHONE, 1, "member:1", AuditEvent("identity.bound"))
    with StateStore.open(settings=Settings(data_dir=data_dir), session_ttl=3600) as longer:
        longer.update("member:3", {"member_id": "3", "channel": None, "profile": {"big": 2**70}})


def state_of(store: StateStore, key: str) -> dict[str, Any]:
    snap = store.get(key)
    assert snap is not None
    events = [entry.event for entry in store.audit_read(key)]
    return {"doc": snap.doc, "ttl": snap.ttl, "history": store.history(key), "audit": events}


def test_backup_wipe_restore_gives_identical_state(
    held: StateStore, data_dir: Path, tmp_path: Path
) -> None:
    seed(held, data_dir)
    before = {key: state_of(held, key) for key in ("member:1", "member:2", "member:3")}
    file = tmp_path / "sessions.jsonl"
    result = statehq(data_dir, "backup", str(file), "--with-audit")
    out, err = text(result)
    assert result.returncode == 0, err
    assert out.startswith("backed up 3 sessions (1 bound channel, 6 audit entries) from ")
    assert err == ""  # no progress bar when stderr is not a terminal
    assert file.stat().st_mode & 0o777 == 0o600  # it holds backend tokens
    flushall(held)
    assert list(held.session_keys()) == []
    result = statehq(data_dir, "restore", str(file), "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["restored"] == 3
    assert (summary["bindings_restored"], summary["audit_added"]) == (1, 6)
    assert summary["problems"] == []
    for key, was in before.items():
        now = state_of(held, key)
        assert now["doc"] == was["doc"]  # versions and write times included
        assert now["history"] == was["history"]
        assert abs(now["ttl"] - was["ttl"]) < 2
        assert now["audit"] == [*was["audit"], "session.restored"]
    assert before["member:3"]["ttl"] > 3000  # the longer TTL was kept, not the default
    assert held.route(PHONE) == "member:1"
    restored = held.audit_read("member:2")[-1]
    assert restored.reason == "statehq restore sessions.jsonl (operator tester)"
    assert held.get("member:1").doc["jwt_token"] == TOKEN  # type: ignore[union-attr]
    again = statehq(data_dir, "restore", str(file))
    out, err = text(again)
    assert again.returncode == 0, err
    assert out.startswith("restored 0 sessions, 3 unchanged, 0 refused, 0 lines skipped; ")


def test_restore_over_newer_state_refuses_unless_forced(
    held: StateStore, data_dir: Path, tmp_path: Path
) -> None:
    seed(held, data_dir)
    file = tmp_path / "sessions.jsonl"
    assert statehq(data_dir, "backup", str(file)).returncode == 0
    held.update("member:2", {"profile": {"step": "after the backup"}})
    refused = statehq(data_dir, "restore", str(file))
    out, err = text(refused)
    assert refused.returncode == 1
    assert "1 refused" in out
    assert "member:2 is at version 4 in the store, newer than the backup's 3" in err
    assert "--force replaces them" in err
    assert held.get("member:2").version == 4  # type: ignore[union-attr]
    forced = statehq(data_dir, "restore", str(file), "--force")
    assert forced.returncode == 0, forced.stderr
    snap = held.get("member:2")
    assert snap is not None
    assert (snap.version, snap.doc["profile"]["step"]) == (5, 2)  # the backup's, as v4 + 1


def test_stdout_and_stdin_carry_the_backup(held: StateStore, data_dir: Path) -> None:
    seed(held, data_dir)
    backup = statehq(data_dir, "backup", "-")
    assert backup.returncode == 0
    lines = backup.stdout.splitlines()
    assert json.loads(lines[0])["statehq_backup"] == 1
    assert len(lines) == 5  # the header, 3 sessions, the end line
    assert json.loads(lines[-1]) == {"statehq_backup_end": {"sessions": 3}}
    assert b"backed up 3 sessions" in backup.stderr  # the summary stays out of the data
    flushall(held)
    restore = statehq(data_dir, "restore", "-", stdin=backup.stdout)
    assert restore.returncode == 0, restore.stderr
    assert sorted(held.session_keys()) == ["member:1", "member:2", "member:3"]


def test_a_corrupt_line_is_reported_and_the_rest_restored(
    held: StateStore, data_dir: Path, tmp_path: Path
) -> None:
    seed(held, data_dir)
    backup = statehq(data_dir, "backup", "-").stdout.splitlines()
    file = tmp_path / "damaged.jsonl"
    file.write_bytes(b"\n".join([backup[0], backup[1], backup[2][:40], *backup[3:]]) + b"\n")
    flushall(held)
    result = statehq(data_dir, "restore", str(file), "--json")
    assert result.returncode == 1
    summary = json.loads(result.stdout)
    assert (summary["restored"], summary["invalid"]) == (2, 1)
    assert summary["problems"][0].startswith("line 3: not JSON")
    assert "statehq: line 3: not JSON" in result.stderr.decode()


@pytest.mark.parametrize(
    ("args", "status", "message"),
    [
        (("backup",), 2, "the following arguments are required: FILE"),
        (("restore", "x", "--with-audit"), 2, "unrecognized arguments: --with-audit"),
        (("backup", ""), 2, "FILE must not be empty"),
        (("backup", "-", "--json"), 2, "--json prints the summary on stdout"),
        (("backup", "{tmp}"), 2, "is a directory; name the file"),
        (("backup", "{tmp}/exists.jsonl"), 1, "exists.jsonl exists; choose another name"),
        (("backup", "{tmp}/no/such/dir.jsonl"), 1, "the directory"),
        (("restore", "{tmp}/missing.jsonl"), 1, "missing.jsonl: no such file"),
        (("restore", "{tmp}"), 1, "is a directory, not a statehq backup"),
        (("restore", "{tmp}/exists.jsonl"), 1, "is not a statehq backup"),
        (("restore", "{tmp}/empty.jsonl"), 1, "is empty, not a statehq backup"),
    ],
)
def test_bad_arguments_and_files_say_why(
    held: StateStore,
    data_dir: Path,
    tmp_path: Path,
    args: tuple[str, ...],
    status: int,
    message: str,
) -> None:
    (tmp_path / "exists.jsonl").write_text("just some text\n")
    (tmp_path / "empty.jsonl").write_text("")
    result = statehq(data_dir, *(arg.replace("{tmp}", str(tmp_path)) for arg in args))
    assert result.returncode == status
    assert message in result.stderr.decode()
    assert (tmp_path / "exists.jsonl").read_text() == "just some text\n"  # never overwritten


def test_a_long_backup_draws_a_progress_bar_on_a_terminal(
    held: StateStore, data_dir: Path, tmp_path: Path
) -> None:
    sessions = 3000
    for n in range(sessions):
        held.update(f"member:p{n}", {"member_id": f"p{n}", "channel": None})
    terminal, child_side = pty.openpty()
    drawn: list[bytes] = []

    def read_terminal() -> None:
        while True:
            try:
                chunk = os.read(terminal, 4096)
            except OSError:  # the child closed its side
                return
            if not chunk:
                return
            drawn.append(chunk)

    reader = threading.Thread(target=read_terminal)
    reader.start()
    try:
        result = statehq(data_dir, "backup", str(tmp_path / "big.jsonl"), stderr=child_side)
    finally:
        os.close(child_side)
        reader.join(timeout=30)
        os.close(terminal)
    assert result.returncode == 0
    assert result.stdout.decode().startswith("backed up 3,000 sessions")
    bar = b"".join(drawn).decode()
    assert "backing up  3,000/3,000 [" in bar
    assert "100%" in bar
    flushall(held)
    restored = statehq(data_dir, "restore", str(tmp_path / "big.jsonl"), "--json")
    assert json.loads(restored.stdout)["restored"] == sessions
