"""``statehq doctor`` as a real process, against the fake Graph API and real stores."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from statehq.channels.whatsapp.graph_errors import NETWORK_FIX, PHONE_NUMBER_ID_FIX, TOKEN_FIX
from statehq.testing.fake_graph import FakeGraph

TOKEN = "EAAG-doctor-token-never-printed"
NUMBER = "1122334455667"
SECRET = "doctor-app-secret"


@pytest.fixture(scope="module")
def graph() -> Iterator[FakeGraph]:
    """Meta's Graph API, knowing one number and one token."""
    with FakeGraph(access_token=TOKEN, phone_number_ids={NUMBER}) as fake:
        fake.display_phone_number = "+263 77 000 0199"
        fake.verified_name = "Doctor's Test Shop"
        yield fake


@pytest.fixture
def here(tmp_path: Path) -> Path:
    """An empty directory to run in, with no running service to be found from it."""
    (tmp_path / "run").mkdir()
    return tmp_path


def doctor(here: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """``statehq doctor ARGS`` in ``here/run`` with exactly these statehq variables."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("STATEHQ_", "WHATSAPP_"))}
    clean.update(XDG_STATE_HOME=str(here / "state"), STATEHQ_DATA_DIR=str(here / "data"), **env)
    return subprocess.run(
        [sys.executable, "-m", "statehq.cli.main", *(args or ("doctor",))],
        env=clean,
        cwd=here / "run",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def whatsapp(graph: FakeGraph, **changes: str) -> dict[str, str]:
    """The five WhatsApp variables, right unless changed."""
    return {
        "WHATSAPP_VERIFY_TOKEN": "doctor-verify",
        "WHATSAPP_APP_SECRET": SECRET,
        "WHATSAPP_ACCESS_TOKEN": TOKEN,
        "WHATSAPP_PHONE_NUMBER_ID": NUMBER,
        "WHATSAPP_GRAPH_URL": graph.url,
        **changes,
    }


def line_of(out: str, title: str) -> str:
    """The line of one check, and its fix line if it has one."""
    lines = out.splitlines()
    at = next(n for n, line in enumerate(lines) if line[9:].startswith(title))
    follows = lines[at + 1] if at + 1 < len(lines) and lines[at + 1].startswith(" ") else ""
    return f"{lines[at]}\n{follows}"


def assert_no_secret(done: subprocess.CompletedProcess[str]) -> None:
    for secret in (TOKEN, SECRET):
        assert secret not in done.stdout + done.stderr


def test_everything_right_passes_every_check(
    here: Path, graph: FakeGraph, server_url: str, prefix: str
) -> None:
    env = {**whatsapp(graph), "STATEHQ_REDIS_URL": server_url, "STATEHQ_KEY_PREFIX": prefix}
    done = doctor(here, env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert [line.split()[0] for line in done.stdout.splitlines()] == ["ok"] * 4
    assert "+263 77 000 0199 (Doctor's Test Shop), quality GREEN" in done.stdout
    assert "connection ok, scripts ok, lease ok, state ok" in line_of(done.stdout, "store")
    assert "statehq.credex.app:credex_bot" in line_of(done.stdout, "bot")
    assert done.stderr == ""
    assert_no_secret(done)


def test_a_bad_token_fails_saying_to_set_a_new_one(here: Path, graph: FakeGraph) -> None:
    done = doctor(here, whatsapp(graph, WHATSAPP_ACCESS_TOKEN="EAAG-expired"))
    assert done.returncode == 1
    checked = line_of(done.stdout, "WhatsApp Graph API")
    assert checked.startswith("FAILED   WhatsApp Graph API  Graph API error 190 (HTTP 401)")
    assert f"fix: {TOKEN_FIX}" in checked
    assert done.stderr == "statehq: 1 of 4 checks failed: WhatsApp Graph API\n"
    assert "EAAG-expired" not in done.stdout + done.stderr


def test_an_unknown_phone_number_id_fails_saying_where_to_copy_it(
    here: Path, graph: FakeGraph
) -> None:
    done = doctor(here, whatsapp(graph, WHATSAPP_PHONE_NUMBER_ID="999000111222"))
    assert done.returncode == 1
    checked = line_of(done.stdout, "WhatsApp Graph API")
    assert "Graph API error 100/33 (HTTP 400)" in checked
    assert "Object with ID '999000111222' does not exist" in checked
    assert f"fix: {PHONE_NUMBER_ID_FIX}" in checked


def test_missing_variables_fail_naming_each_and_where_meta_shows_it(
    here: Path, graph: FakeGraph
) -> None:
    env = whatsapp(graph)
    del env["WHATSAPP_APP_SECRET"], env["WHATSAPP_VERIFY_TOKEN"]
    done = doctor(here, env)
    assert done.returncode == 1
    checked = line_of(done.stdout, "WhatsApp variables")
    assert "WHATSAPP_VERIFY_TOKEN, WHATSAPP_APP_SECRET not set" in checked
    assert "WHATSAPP_APP_SECRET (App settings > Basic > App secret)" in checked
    assert line_of(done.stdout, "WhatsApp Graph API").startswith("ok")  # token and id work


def test_no_whatsapp_at_all_is_skipped_and_leaves_no_store_behind(here: Path) -> None:
    done = doctor(here, {})
    assert done.returncode == 0, done.stdout + done.stderr
    statuses = [line.split()[0] for line in done.stdout.splitlines() if not line[0].isspace()]
    assert statuses == ["skipped", "skipped", "skipped", "ok"]
    assert "no WHATSAPP_* variable is set" in line_of(done.stdout, "WhatsApp variables")
    assert f"no embedded store, data in {here / 'data'} yet" in line_of(done.stdout, "store")
    assert not (here / "data").exists()  # nor did the bot's check leave a data dir
    assert list((here / "run").iterdir()) == []


def test_a_bot_path_that_imports_nothing_fails_naming_the_module(
    here: Path, graph: FakeGraph
) -> None:
    done = doctor(here, {**whatsapp(graph), "STATEHQ_BOT": "nosuchbot.app:make"})
    assert done.returncode == 1
    checked = line_of(done.stdout, "bot")
    assert checked.startswith("FAILED")
    assert "there is no module 'nosuchbot'" in checked
    assert "fix: set STATEHQ_BOT to module:factory" in checked


def test_a_graph_url_that_does_not_answer_and_a_store_that_does_not_fail(
    here: Path,
) -> None:
    closed = _closed_port()
    env = {"WHATSAPP_GRAPH_URL": f"http://127.0.0.1:{closed}", "WHATSAPP_ACCESS_TOKEN": TOKEN}
    env["WHATSAPP_PHONE_NUMBER_ID"] = NUMBER
    done = doctor(here, env, "doctor", "--url", f"redis://127.0.0.1:{closed}")
    assert done.returncode == 1
    graph_line = line_of(done.stdout, "WhatsApp Graph API")
    assert f"the Graph API at http://127.0.0.1:{closed} did not answer (ConnectError" in graph_line
    assert f"fix: {NETWORK_FIX}" in graph_line
    store_line = line_of(done.stdout, "store")
    assert store_line.startswith("FAILED")
    assert f"127.0.0.1:{closed}" in store_line
    assert "3 of 4 checks failed" in done.stderr
    assert_no_secret(done)


def test_json_before_or_after_the_command_is_one_parsable_value(
    here: Path, graph: FakeGraph
) -> None:
    env = whatsapp(graph, WHATSAPP_ACCESS_TOKEN="EAAG-expired")
    for args in (("doctor", "--json"), ("--json", "doctor")):
        done = doctor(here, env, *args)
        assert done.returncode == 1
        report = json.loads(done.stdout)
        assert report["ok"] is False
        checks = {check["name"]: check for check in report["checks"]}
        assert [c["status"] for c in report["checks"]] == ["ok", "failed", "skipped", "ok"]
        assert checks["whatsapp_graph"]["fix"] == TOKEN_FIX
        assert checks["whatsapp_variables"]["facts"]["missing"] == []
        assert checks["bot"]["facts"]["flows"]


def test_help_has_an_example_and_a_stray_argument_is_a_usage_error(here: Path) -> None:
    helped = doctor(here, {}, "doctor", "--help")
    assert helped.returncode == 0
    assert "examples:" in helped.stdout
    assert "statehq doctor --json" in helped.stdout
    stray = doctor(here, {}, "doctor", "whatsapp")
    assert stray.returncode == 2
    assert "unrecognized arguments: whatsapp" in stray.stderr


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port
