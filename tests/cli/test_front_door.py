"""What a stranger trying the command line ran into, each kept from coming back.

Every case here was found by trying the commands as a new operator would: a traceback,
an exit code outside the contract, a write that a refusal left behind, a help page
without an example.
"""

from __future__ import annotations

import argparse
import json
import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from statehq.cli.main import build_parser
from tests.cli.test_cli import statehq

PHONE = "whatsapp:263771234567"


def _parsers(parser: argparse.ArgumentParser, name: str = "statehq"):  # type: ignore[no-untyped-def]
    yield name, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub, child in action.choices.items():
                yield from _parsers(child, f"{name} {sub}")


def test_every_help_page_has_a_description_and_an_example() -> None:
    from statehq.config import Settings

    for name, parser in _parsers(build_parser(Settings())):
        shown = parser.format_help()
        assert parser.description, f"{name} has no description"
        assert "example" in shown.lower(), f"{name} --help has no example"
        assert "``" not in shown, f"{name} --help leaks markup"


def test_a_refused_transition_on_a_new_member_writes_nothing(data_dir: Path) -> None:
    statehq(data_dir, "state", "update", "web:first", "{}")  # a store exists here
    refused = statehq(data_dir, "state", "update", "whatsapp:263775555555", '{"stage": "MENU"}')
    assert refused.returncode == 1
    assert "cannot go from stage INIT to MENU" in refused.stderr
    shown = statehq(data_dir, "state", "show", "whatsapp:263775555555")
    assert shown.returncode == 1  # no session was started
    phone = statehq(data_dir, "state", "update", "263779999999", "{}")
    assert phone.returncode == 1  # which channel? not guessed
    assert "give it in full, e.g. whatsapp:263779999999" in phone.stderr


def test_json_errors_are_json_too(data_dir: Path) -> None:
    statehq(data_dir, "state", "update", PHONE, "{}")
    missing = statehq(data_dir, "--json", "state", "show", "263779999999")
    assert missing.returncode == 1
    assert json.loads(missing.stdout)["status"] == 1
    assert "no live session" in json.loads(missing.stdout)["error"]
    assert json.loads(statehq(data_dir, "health", "--json").stdout)["ok"] is True
    assert json.loads(statehq(data_dir, "--json", "dead", "list").stdout) == []


def test_exit_codes_follow_the_contract(data_dir: Path) -> None:
    statehq(data_dir, "state", "update", PHONE, "{}")
    for args, status in (
        (("identity", "unbind", "nonsense", "--reason", "x"), 2),
        (("identity", "unbind", PHONE, "--reason", "x"), 1),  # a channel, but not bound
        (("state", "update", PHONE, "{}", "--expect", "-1"), 2),
        (("state", "show", "member:"), 2),
        (("audit", "whatsapp:263770000009"), 1),  # never existed: nothing to show
        (("serve", "--port", "99999"), 2),
        (("serve", "--workers", "0"), 2),
        (("--url", "redis://127.0.0.1:99999/0", "stats"), 2),
    ):
        result = statehq(data_dir, *args)
        assert result.returncode == status, (args, result.stderr)
        assert "Traceback" not in result.stderr
    named = statehq(data_dir, "state", "show", "member:")
    assert "give the id after the colon, e.g. member:m-7" in named.stderr


def test_a_reader_that_stops_early_is_no_error(data_dir: Path) -> None:
    statehq(data_dir, "state", "update", PHONE, '{"profile": {"notes": "' + "x" * 200 + '"}}')
    env = {**os.environ, "STATEHQ_DATA_DIR": str(data_dir)}
    pipe = subprocess.run(
        f"{sys.executable} -m statehq.cli.main --json state show {PHONE} | head -c 10",
        shell=True,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "Traceback" not in pipe.stderr
    assert "BrokenPipe" not in pipe.stderr


def test_a_data_dir_that_is_a_file_is_one_line(tmp_path: Path) -> None:
    afile = tmp_path / "a-file"
    afile.write_text("not a directory")
    result = statehq(afile, "health")
    assert result.returncode == 1
    assert result.stderr.startswith("statehq: ")
    assert "Traceback" not in result.stderr


def test_serve_on_a_host_that_does_not_resolve_says_so(data_dir: Path) -> None:
    result = statehq(data_dir, "serve", "--host", "999.1.1.1", "--port", "18767")
    assert result.returncode == 1
    assert "cannot listen on '999.1.1.1'" in result.stderr
    assert "serving on" not in result.stdout


def test_ctrl_c_at_the_question_changes_nothing(data_dir: Path) -> None:
    statehq(data_dir, "state", "update", PHONE, '{"profile": {"name": "Ann"}}')
    leader, follower = pty.openpty()
    env = {**os.environ, "STATEHQ_DATA_DIR": str(data_dir)}
    process = subprocess.Popen(
        [sys.executable, "-m", "statehq.cli.main", "state", "reset", PHONE],
        stdin=follower,
        stdout=follower,
        stderr=follower,
        env=env,
        # a SIGINT ignored by whatever started the tests would be ignored here too
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    os.close(follower)
    output, deadline = b"", time.monotonic() + 120
    while b"Go ahead?" not in output and time.monotonic() < deadline:
        if select.select([leader], [], [], 0.5)[0]:
            output += os.read(leader, 4096)
    assert b"Go ahead?" in output, output
    time.sleep(0.3)  # the prompt is printed just before input() starts waiting
    process.send_signal(signal.SIGINT)  # Ctrl-C, as the terminal sends it
    status = process.wait(timeout=60)
    while select.select([leader], [], [], 0.2)[0]:
        try:
            output += os.read(leader, 4096)
        except OSError:
            break
    os.close(leader)
    assert status == 1
    assert b"nothing was changed" in output
    assert b"Traceback" not in output
    shown = json.loads(statehq(data_dir, "--json", "state", "show", PHONE).stdout)
    assert shown["document"]["profile"] == {"name": "Ann"}


def test_the_shell_stays_on_its_store(data_dir: Path) -> None:
    script = "stats --url redis://127.0.0.1:6390/0\nquit\n"
    result = statehq(data_dir, "shell", stdin=script)
    assert "this shell is on the embedded store" in result.stdout


def test_doctor_reports_a_bad_variable_and_runs_the_other_checks(data_dir: Path) -> None:
    env = {**os.environ, "STATEHQ_DATA_DIR": str(data_dir), "WHATSAPP_GRAPH_URL": "notaurl"}
    env.pop("STATEHQ_REDIS_URL", None)
    done = subprocess.run(
        [sys.executable, "-m", "statehq.cli.main", "doctor", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    checks = {check["name"]: check["status"] for check in json.loads(done.stdout)["checks"]}
    assert checks["configuration"] == "failed"
    assert checks["bot"] == "ok"  # the other checks still ran


@pytest.mark.timeout(120)
def test_a_handle_is_found_by_the_bot_after_its_session_was_reset(data_dir: Path) -> None:
    assert statehq(data_dir, "ledger", "seed").returncode == 0
    chatted = statehq(data_dir, "chat", "--as", "263772222222", stdin="hi\n")
    assert chatted.returncode == 0, chatted.stderr
    assert statehq(data_dir, "state", "reset", "@bob", "--yes").returncode == 0
    shown = statehq(data_dir, "--json", "state", "show", "@BOB")  # any case
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["found_by"] == "handle @bob"
