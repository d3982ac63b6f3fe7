"""The ``statehq`` command, run as a real process against the embedded server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def statehq(
    data_dir: Path, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "STATEHQ_DATA_DIR": str(data_dir)}
    env.pop("STATEHQ_REDIS_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "statehq.cli.main", *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_update_show_history_rollback(data_dir: Path) -> None:
    member = "whatsapp:263771234567"
    assert (
        statehq(data_dir, "state", "update", member, '{"flow_data": {"step": 1}}').returncode == 0
    )
    out = statehq(data_dir, "state", "update", member, '{"flow_data": {"step": 2}}').stdout
    assert "version 2" in out
    shown = statehq(data_dir, "state", "show", member)
    assert shown.returncode == 0
    assert "version 2" in shown.stdout
    assert json.loads(shown.stdout.split("\n", 1)[1])["flow_data"] == {"step": 2}
    history = statehq(data_dir, "state", "history", member).stdout.splitlines()
    assert [line.split()[0] for line in history] == ["v2", "v1"]
    rolled = statehq(data_dir, "state", "rollback", member, "1")
    assert "restored version 1" in rolled.stdout
    assert '"step": 1' in statehq(data_dir, "state", "show", member).stdout


def test_refusals_exit_1_with_the_reason_and_write_nothing(data_dir: Path) -> None:
    member = "web:abc"
    statehq(data_dir, "state", "update", member, '{"a": 1}')
    bad = statehq(data_dir, "state", "update", member, '{"_version": 9}')
    assert bad.returncode == 1
    assert "_version is set by the store only" in bad.stderr
    conflict = statehq(data_dir, "state", "update", member, '{"a": 2}', "--expect", "7")
    assert conflict.returncode == 1
    assert "expected version 7, found 1" in conflict.stderr
    assert '"a": 1' in statehq(data_dir, "state", "show", member).stdout


def test_malformed_command_line_exits_2(data_dir: Path) -> None:
    result = statehq(data_dir, "state", "update", "m", "{not json")
    assert result.returncode == 2
    assert "not valid JSON" in result.stderr


def test_show_missing_member(data_dir: Path) -> None:
    result = statehq(data_dir, "state", "show", "nobody")
    assert result.returncode == 1
    assert "no live session for nobody (none)" in result.stdout


def test_health(data_dir: Path) -> None:
    result = statehq(data_dir, "health")
    assert result.returncode == 0, result.stderr
    assert [line.split()[0] for line in result.stdout.splitlines()] == [
        "connection",
        "state",
        "lease",
    ]


def test_shell_reads_commands_from_stdin(data_dir: Path) -> None:
    script = "update m1 '{\"x\": [1, 2]}'\nshow m1\nrollback m1 9\nbogus\nquit\n"
    result = statehq(data_dir, "shell", stdin=script)
    assert result.returncode == 0
    assert "m1 is now at version 1" in result.stdout
    assert '"x": [' in result.stdout
    assert "no version 9 in its history" in result.stdout
    assert "embedded Valkey at" in result.stdout


@pytest.mark.parametrize("url", ["http://nope", "unix:///nonexistent/x.sock"])
def test_bad_url_is_a_clear_error(data_dir: Path, url: str) -> None:
    result = statehq(data_dir, "--url", url, "state", "show", "m")
    assert result.returncode == 1
    assert "statehq:" in result.stderr
    assert "Traceback" not in result.stderr
