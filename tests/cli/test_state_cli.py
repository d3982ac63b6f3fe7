"""`statehq state` and `statehq audit` as an operator uses them: real processes, a real store."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.cli.test_cli import statehq

PHONE = "whatsapp:263771234567"


def _env(data_dir: Path | None, **extra: str) -> dict[str, str]:
    env = {**os.environ, "STATEHQ_OPERATOR": "tester", **extra}
    env.pop("STATEHQ_REDIS_URL", None)
    env.pop("STATEHQ_DATA_DIR", None)
    if data_dir is not None:
        env["STATEHQ_DATA_DIR"] = str(data_dir)
    return env


def _three_versions(data_dir: Path) -> None:
    for patch in ('{"profile": {"name": "Ann"}}', '{"stage": "AUTH"}'):
        assert statehq(data_dir, "state", "update", PHONE, patch).returncode == 0


def test_json_is_accepted_before_or_after_the_command(data_dir: Path) -> None:
    _three_versions(data_dir)
    before = statehq(data_dir, "--json", "state", "show", "263771234567")
    after = statehq(data_dir, "state", "show", "+263 77 123 4567", "--json")
    assert before.returncode == after.returncode == 0
    first, second = json.loads(before.stdout), json.loads(after.stdout)
    assert first["key"] == second["key"] == PHONE
    assert first["found_by"] == "phone on whatsapp"
    assert (first["version"], first["stage"], first["document"]["profile"]) == (
        3,
        "AUTH",
        {"name": "Ann"},
    )
    assert first["channels"] == [
        {"channel": PHONE, "backlog": 0, "pending": 0, "dead": 0, "lease": None}
    ]


def test_exit_codes_are_the_same_in_every_command(data_dir: Path) -> None:
    _three_versions(data_dir)
    assert statehq(data_dir, "state", "update", "web:263771234567", "{}").returncode == 0
    ambiguous = statehq(data_dir, "state", "show", "263771234567")
    assert ambiguous.returncode == 2
    assert f"web:263771234567, {PHONE}; give one of them in full" in ambiguous.stderr
    missing = statehq(data_dir, "state", "history", "263770000000")
    assert missing.returncode == 1
    assert "no live session for 263770000000" in missing.stderr
    for bad in (
        ("state", "diff", PHONE, "one", "2"),
        ("state", "rollback", PHONE, "0"),
        ("audit", PHONE, "--limit", "5000"),
        ("state", "show", "fax:1"),
        ("audit",),
    ):
        result = statehq(data_dir, *bad)
        assert result.returncode == 2, bad
        assert "Traceback" not in result.stderr
    assert statehq(data_dir, "state", "diff", PHONE, "1", "9").returncode == 1


def test_history_and_diff_say_what_changed(data_dir: Path) -> None:
    _three_versions(data_dir)
    history = json.loads(statehq(data_dir, "state", "history", PHONE, "--json").stdout)
    rows = {row["version"]: row for row in history["versions"]}
    assert sorted(rows) == [1, 2, 3]
    assert rows[3]["stage"] == "AUTH"
    assert rows[3]["changes"] == [
        {"path": "stage", "kind": "changed", "before": "INIT", "after": "AUTH"}
    ]
    assert rows[2]["changes"] == [{"path": "profile.name", "kind": "added", "after": "Ann"}]
    assert rows[1]["changes"] is None  # the oldest kept: nothing to compare with
    diff = statehq(data_dir, "state", "diff", PHONE, "1", "3")
    assert diff.returncode == 0
    assert diff.stdout.splitlines()[1:] == [
        '  + profile.name = "Ann"',
        '  ~ stage: "INIT" -> "AUTH"',
    ]


def _on_a_terminal(data_dir: Path, answer: str, *args: str) -> tuple[int, str]:
    """Run statehq with a pseudo-terminal as stdin/stdout and type ``answer``."""
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "statehq.cli.main", *args],
        stdin=follower,
        stdout=follower,
        stderr=follower,
        env=_env(data_dir),
    )
    os.close(follower)
    output = b""
    deadline = time.monotonic() + 30
    answered = False
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(leader, 4096)
            except OSError:
                break
            if not chunk:
                break
            output += chunk
        if not answered and b"Go ahead? [y/N]" in output:
            os.write(leader, answer.encode() + b"\n")
            answered = True
        if process.poll() is not None and not ready:
            break
    os.close(leader)
    return process.wait(timeout=10), output.decode(errors="replace")


def test_repairs_ask_on_a_terminal_and_are_audited_with_the_operator(data_dir: Path) -> None:
    _three_versions(data_dir)
    status, said = _on_a_terminal(data_dir, "n", "state", "rollback", PHONE, "2")
    assert "This will roll whatsapp:263771234567 back from version 3" in said
    assert '~ stage: "AUTH" -> "INIT"' in said  # what the rollback would change
    assert status == 1
    assert "nothing was changed" in said
    assert json.loads(statehq(data_dir, "--json", "state", "show", PHONE).stdout)["version"] == 3
    status, said = _on_a_terminal(data_dir, "y", "state", "rollback", PHONE, "2", "--reason", "x")
    assert status == 0, said
    assert "restored version 2 of whatsapp:263771234567 as version 4" in said
    status, said = _on_a_terminal(data_dir, "", "state", "reset", PHONE, "--yes")
    assert status == 0, said
    assert "Go ahead?" not in said  # --yes does not ask
    trail = json.loads(statehq(data_dir, "audit", PHONE, "--json").stdout)
    reasons = [entry["reason"] for entry in trail]
    assert reasons[-2:] == ["x (operator tester)", "cli (operator tester)"]


def _follow(data_dir: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "statehq.cli.main", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(data_dir),
    )


def _lines_until(process: subprocess.Popen[str], count: int) -> list[dict[str, object]]:
    assert process.stdout is not None
    lines: list[dict[str, object]] = []
    deadline = time.monotonic() + 30
    while len(lines) < count and time.monotonic() < deadline:
        ready, _, _ = select.select([process.stdout], [], [], 0.5)
        if ready:
            lines.append(json.loads(process.stdout.readline()))
    return lines


@pytest.mark.parametrize("everyone", [False, True], ids=["member", "all"])
def test_audit_follow_prints_new_entries_as_they_happen(data_dir: Path, everyone: bool) -> None:
    _three_versions(data_dir)
    args = ("audit", "--all") if everyone else ("audit", PHONE)
    follower = _follow(data_dir, *args, "--follow", "--json", "--limit", "1")
    try:
        assert len(_lines_until(follower, 1)) == 1  # the newest entry, then it waits
        time.sleep(0.5)
        statehq(data_dir, "state", "update", PHONE, '{"profile": {"name": "Bo"}}')
        fresh = _lines_until(follower, 1)
        assert [line["event"] for line in fresh] == ["state.updated"]
    finally:
        follower.terminate()
        follower.communicate(timeout=10)


def test_a_command_elsewhere_finds_the_running_service(tmp_path: Path) -> None:
    home, elsewhere = tmp_path / "service", tmp_path / "elsewhere"
    home.mkdir()
    elsewhere.mkdir()
    state_home = str(tmp_path / "xdg")
    env = _env(None, XDG_STATE_HOME=state_home, STATEHQ_PORT="0")
    service = subprocess.Popen(
        [sys.executable, "-m", "statehq.cli.main", "serve"],
        cwd=home,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        notes = Path(state_home) / "statehq" / "services"
        deadline = time.monotonic() + 30
        while not list(notes.glob("*.json")) and time.monotonic() < deadline:
            time.sleep(0.2)
        run = {"env": env, "capture_output": True, "text": True, "timeout": 60}
        update = subprocess.run(
            [sys.executable, "-m", "statehq.cli.main", "state", "update", PHONE, "{}"],
            cwd=home,
            check=False,
            **run,  # type: ignore[arg-type]
        )
        assert update.returncode == 0, update.stderr
        shown = subprocess.run(
            [sys.executable, "-m", "statehq.cli.main", "state", "show", PHONE],
            cwd=elsewhere,
            check=False,
            **run,  # type: ignore[arg-type]
        )
        assert shown.returncode == 0, shown.stderr
        assert "using the store of the service running on" in shown.stderr
        assert f"data in {home / '.statehq'}" in shown.stderr
        assert not (elsewhere / ".statehq").exists()
    finally:
        service.terminate()
        service.communicate(timeout=20)
    assert not list(notes.glob("*.json"))  # the note goes with the service
    gone = subprocess.run(
        [sys.executable, "-m", "statehq.cli.main", "state", "show", PHONE],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert gone.returncode == 1
    assert "no statehq service is running" in gone.stderr
