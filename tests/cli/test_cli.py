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
    env = {**os.environ, "STATEHQ_DATA_DIR": str(data_dir), "STATEHQ_OPERATOR": "tester"}
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


def test_update_show_history_rollback_audit(data_dir: Path) -> None:
    member = "whatsapp:263771234567"
    first = statehq(data_dir, "state", "update", member, '{"profile": {"name": "Ann"}}')
    assert first.returncode == 0, first.stderr
    assert "version 2" in first.stdout  # version 1 is the session's start
    out = statehq(data_dir, "state", "update", member, '{"stage": "AUTH"}').stdout
    assert "version 3" in out
    shown = statehq(data_dir, "state", "show", member)
    assert shown.returncode == 0
    assert "version 3, expires in" in shown.stdout
    doc = json.loads(shown.stdout.split("document:\n", 1)[1])
    assert doc["profile"] == {"name": "Ann"}
    assert doc["stage"] == "AUTH"
    history = statehq(data_dir, "state", "history", member).stdout.splitlines()
    assert [line.split()[0] for line in history[1:]] == ["v3", "v2", "v1"]
    assert history[1].endswith("changed: stage")  # what changed in that version
    assert history[2].endswith("changed: profile.name")
    rolled = statehq(data_dir, "state", "rollback", member, "2", "--reason", "wrong tap")
    assert "restored version 2" in rolled.stdout
    assert '"stage": "INIT"' in statehq(data_dir, "state", "show", member).stdout
    audit = statehq(data_dir, "audit", member).stdout.splitlines()
    assert [line.split()[3] for line in audit] == [
        "session.started",
        "state.updated",
        "state.updated",
        "state.rolled_back",
    ]
    assert audit[-1].endswith("(wrong tap (operator tester))")
    tail = statehq(data_dir, "audit", "--tail", "--limit", "2").stdout.splitlines()
    assert [line.split()[3] for line in tail] == ["state.updated", "state.rolled_back"]


def test_refusals_exit_1_with_the_reason_and_write_nothing(data_dir: Path) -> None:
    member = "web:abc"
    statehq(data_dir, "state", "update", member, '{"profile": {"a": 1}}')
    bad = statehq(data_dir, "state", "update", member, '{"_version": 9}')
    assert bad.returncode == 1
    assert "_version: is set by the store only" in bad.stderr
    invalid = statehq(data_dir, "state", "update", member, '{"colour": 1}')
    assert invalid.returncode == 1
    assert "colour: unknown field" in invalid.stderr
    jump = statehq(data_dir, "state", "update", member, '{"stage": "MENU"}')
    assert jump.returncode == 1
    assert "cannot go from stage INIT to MENU" in jump.stderr
    conflict = statehq(
        data_dir, "state", "update", member, '{"profile": {"a": 2}}', "--expect", "7"
    )
    assert conflict.returncode == 1
    assert "expected version 7, found 2" in conflict.stderr
    assert '"a": 1' in statehq(data_dir, "state", "show", member).stdout


def test_recover_reset_and_unbind(data_dir: Path) -> None:
    member = "whatsapp:263771234567"
    statehq(data_dir, "state", "update", member, '{"profile": {"name": "Ann"}}')
    healthy = statehq(data_dir, "state", "recover", member)
    assert "healthy at version 2" in healthy.stdout
    reset = statehq(data_dir, "state", "reset", member, "--reason", "member asked")
    assert "reset to stage INIT at version 3" in reset.stdout
    assert "profile" not in statehq(data_dir, "state", "show", member).stdout
    missing = statehq(data_dir, "state", "rollback", "member:typo", "3")
    assert missing.returncode == 1
    assert "no live session for member:typo" in missing.stderr
    assert "no live session" in statehq(data_dir, "state", "show", "member:typo").stderr
    unbound = statehq(data_dir, "identity", "unbind", member, "--reason", "recycled")
    assert unbound.returncode == 1
    assert "not bound to any member" in unbound.stderr


def test_malformed_command_line_exits_2(data_dir: Path) -> None:
    result = statehq(data_dir, "state", "update", "m", "{not json")
    assert result.returncode == 2
    assert "not valid JSON" in result.stderr


def test_show_missing_member(data_dir: Path) -> None:
    assert statehq(data_dir, "health").returncode == 0  # a store exists here
    result = statehq(data_dir, "state", "show", "nobody")
    assert result.returncode == 1
    assert "no live session for nobody (none); tried member:nobody, " in result.stderr


def test_health(data_dir: Path) -> None:
    result = statehq(data_dir, "health")
    assert result.returncode == 0, result.stderr
    lines = [line.split()[:2] for line in result.stdout.splitlines()]
    assert lines == [["connection", "ok"], ["scripts", "ok"], ["lease", "ok"], ["state", "ok"]]


def test_shell_reads_commands_from_stdin(data_dir: Path) -> None:
    script = (
        'update m1 \'{"profile": {"x": [1, 2]}}\'\nshow m1\nrollback m1 9\nbogus\n'
        "state history m1 --json\nhelp\nhelp diff\nserve\nquit\n"
    )
    result = statehq(data_dir, "shell", stdin=script)
    assert result.returncode == 0
    assert "member:m1 is now at version 2" in result.stdout
    assert '"x": [' in result.stdout
    # at the prompt, messages come in order with the output
    assert "no version 9 in its history (held: 1, 2)" in result.stdout
    assert "invalid choice: 'bogus'" in result.stdout
    assert f"statehq shell on the embedded store, data in {data_dir}" in result.stdout
    assert '"versions": [' in result.stdout  # the CLI's own options work at the prompt
    listed = result.stdout.split("Commands (help COMMAND for its options):")[1]
    assert "  scan " in listed
    assert "  audit " in listed
    assert "  serve " not in listed
    assert "Show what changed between two versions." in result.stdout  # help diff
    assert "run `statehq serve` from the command line" in result.stdout


@pytest.mark.parametrize(
    ("url", "status"),
    [
        ("http://nope", 2),  # not a Redis URL: a malformed command line
        ("redis://127.0.0.1:99999/0", 2),
        ("redis://127.0.0.1:6379/abc", 2),
        ("unix:///nonexistent/x.sock", 1),  # a URL, but nothing answers there
    ],
)
def test_bad_url_is_a_clear_error(data_dir: Path, url: str, status: int) -> None:
    result = statehq(data_dir, "--url", url, "state", "show", "m")
    assert result.returncode == status
    assert "statehq:" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_refused_update_on_an_unknown_member_writes_nothing(data_dir: Path) -> None:
    member = "whatsapp:263771230000"
    refused = statehq(data_dir, "state", "update", member, '{"stage": 5}')
    assert refused.returncode == 1
    assert "nothing was written" in refused.stderr
    assert statehq(data_dir, "state", "show", member).returncode == 1  # no session left
    trail = statehq(data_dir, "audit", member)
    assert trail.returncode == 1
    assert "no audit entries" in trail.stderr
    accepted = statehq(data_dir, "state", "update", member, '{"profile": {"name": "Ann"}}')
    assert accepted.returncode == 0, accepted.stderr
    assert f"{member} is now at version 2" in accepted.stdout  # started, then patched


def test_the_top_level_help_says_what_statehq_is_without_markup(data_dir: Path) -> None:
    result = statehq(data_dir, "--help")
    assert result.returncode == 0
    assert "conversation state for messaging bots" in result.stdout
    assert "``" not in result.stdout
    assert "Exit status: 0 on success" in result.stdout


def test_a_read_in_a_directory_with_no_store_says_so_instead_of_starting_one(
    tmp_path: Path,
) -> None:
    empty = tmp_path / "elsewhere" / ".statehq"
    for command in (
        ("state", "show", "whatsapp:263771234567"),
        ("audit", "--tail"),
        ("dead", "list"),
    ):
        result = statehq(empty, *command)
        assert result.returncode == 1
        assert f"there is no statehq data in {empty}" in result.stderr
    assert not empty.exists()  # nothing was started there


def test_serve_on_a_port_in_use_says_so_before_claiming_to_serve(data_dir: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = statehq(data_dir, "serve", "--port", str(port))
    assert result.returncode == 1
    assert f"127.0.0.1:{port} is already in use" in result.stderr
    assert "serving on" not in result.stdout
