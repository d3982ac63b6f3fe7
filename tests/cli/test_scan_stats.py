"""``statehq scan`` and ``statehq stats``, run as real processes against every topology."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from statehq import StateStore
from statehq.cli.survey import ProgressLine, time_left
from statehq.store.embedded import EmbeddedValkey

SESSIONS = 1200


class Cli:
    """Runs ``statehq`` on one server and key prefix."""

    def __init__(self, url: str, prefix: str, data_dir: Path) -> None:
        self.env = {
            **os.environ,
            "STATEHQ_REDIS_URL": url,
            "STATEHQ_KEY_PREFIX": prefix,
            "STATEHQ_DATA_DIR": str(data_dir),
        }

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "statehq.cli.main", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def json(self, *args: str) -> Any:
        done = self(*args, "--json")
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)


@pytest.fixture
def cli(server_url: str, prefix: str, data_dir: Path) -> Cli:
    return Cli(server_url, prefix, data_dir)


def _members(n: int, tag: str) -> list[str]:
    run = uuid.uuid4().hex[:6]
    return [f"whatsapp:{tag}{run}{i:05d}" for i in range(n)]


def test_scan_pages_through_every_session_exactly_once_with_json(
    cli: Cli, store: StateStore
) -> None:
    members = _members(SESSIONS, "p")
    for member in members:
        store.update(member, {"stage": "AUTH"})
    found: list[str] = []
    cursor = "0"
    while True:
        page = cli.json("scan", "--limit", "500", "--cursor", cursor)
        assert set(page) == {"sessions", "cursor", "examined", "complete"}
        found += [session["key"] for session in page["sessions"]]
        if page["complete"]:
            assert page["cursor"] == "0"
            break
        assert len(page["sessions"]) == 500
        cursor = page["cursor"]
    assert len(found) == len(set(found)) == SESSIONS
    assert set(found) == set(members)
    first = page["sessions"][0]
    assert set(first) == {"key", "stage", "flow", "step", "version", "ttl", "handle"}
    assert (first["stage"], first["flow"], first["version"]) == ("AUTH", None, 1)


def test_scan_filters_and_prints_one_line_per_session(
    cli: Cli, store: StateStore, server_url: str, prefix: str
) -> None:
    menu, offer = _members(3, "m"), _members(2, "o")
    for member in menu:
        store.update(member, {"stage": "MENU"})
    for member in offer:
        store.update(member, {"stage": "offer", "flow_data": {"id": "offer", "step": "amount"}})
    with StateStore.open(url=server_url, key_prefix=prefix, session_ttl=30) as brief:
        (hurried,) = _members(1, "h")
        brief.update(hurried, {"stage": "MENU"})

    shown = cli("scan", "--flow", "offer")
    assert shown.returncode == 0, shown.stderr
    lines = [line.split() for line in shown.stdout.splitlines()]
    assert sorted(line[0] for line in lines) == sorted(offer)
    assert {tuple(line[1:4]) for line in lines} == {("offer", "offer/amount", "v1")}
    assert all(line[4].endswith("s") for line in lines)  # time left, e.g. 4m59s
    assert "2 session(s), " in shown.stderr
    assert "the scan is complete" in shown.stderr

    keys = [line.split()[0] for line in cli("scan", "--stage", "MENU").stdout.splitlines()]
    assert sorted(keys) == sorted([*menu, hurried])
    soon = cli.json("scan", "--expiring-within", "1m")
    assert [session["key"] for session in soon["sessions"]] == [hurried]
    assert soon["sessions"][0]["ttl"] <= 30
    both = cli.json("scan", "--stage", "MENU", "--expiring-within", "45")
    assert [session["key"] for session in both["sessions"]] == [hurried]


def test_human_scan_says_the_command_that_continues_it(cli: Cli, store: StateStore) -> None:
    members = _members(5, "c")
    for member in members:
        store.update(member, {"stage": "AUTH"})
    seen: list[str] = []
    args = ["scan", "--stage", "AUTH", "--limit", "2"]
    while True:
        done = cli(*args)
        assert done.returncode == 0, done.stderr
        seen += [line.split()[0] for line in done.stdout.splitlines()]
        if "the scan is complete" in done.stderr:
            break
        # statehq: 2 session(s), 2 examined; more: statehq scan --stage AUTH --limit 2 --cursor C
        more = done.stderr.strip().split("more: statehq ", 1)[1]
        args = more.split()
        assert args[:5] == ["scan", "--stage", "AUTH", "--limit", "2"]
    assert sorted(seen) == sorted(members)


def test_a_scan_that_finds_nothing_exits_1_and_still_prints_json(
    cli: Cli, store: StateStore
) -> None:
    (member,) = _members(1, "n")
    store.update(member, {"stage": "AUTH"})
    nothing = cli("scan", "--stage", "MENU")
    assert nothing.returncode == 1
    assert nothing.stdout == ""
    assert "no session matches --stage MENU (1 examined)" in nothing.stderr
    as_json = cli("--json", "scan", "--flow", "offer")  # --json before the command works too
    assert as_json.returncode == 1
    assert json.loads(as_json.stdout) == {
        "sessions": [],
        "cursor": "0",
        "examined": 1,
        "complete": True,
    }


def test_stats_counts_the_store_in_words_and_json(cli: Cli, store: StateStore) -> None:
    for index, member in enumerate(_members(30, "s")):
        flow = {"flow_data": {"id": "offer", "step": "amount"}} if index < 10 else {}
        store.update(member, {"stage": "offer" if index < 10 else "MENU", **flow})
    (held,) = _members(1, "l")
    store.update(held, {"stage": "AUTH"})
    lease = store.lease(held, ttl=60)
    try:
        stats = cli.json("stats")
        human = cli("stats")
    finally:
        store.release_lease(lease)
    assert stats["sessions"] == 31
    assert stats["by_stage"] == {"MENU": 20, "offer": 10, "AUTH": 1}
    assert stats["by_flow"] == {"offer": 10}
    assert stats["ttl"]["<10m"] == 31
    assert sum(stats["ttl"].values()) == 31
    assert stats["leases"] == 1
    assert (stats["updates_queued"], stats["dead_letters"], stats["routes"]) == (0, 0, 0)
    assert stats["store"].startswith("store ")
    assert human.returncode == 0, human.stderr
    lines = human.stdout.splitlines()
    assert lines[0] == stats["store"]
    assert "sessions        31" in lines
    assert "  by stage      MENU 20, offer 10, AUTH 1" in lines
    assert "  by flow       (no flow) 21, offer 10" in lines
    assert "leases held     1" in lines
    assert human.stderr == ""  # no progress line when stderr is not a terminal


# -- the command line itself (one server is enough) ------------------------------------------


@pytest.fixture
def embedded_cli(embedded_server: EmbeddedValkey, prefix: str, data_dir: Path) -> Cli:
    return Cli(embedded_server.url, prefix, data_dir)


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--limit", "-5"], "argument --limit: must be a whole number of sessions, 1 or more"),
        (["--limit", "0"], "argument --limit: must be a whole number of sessions, 1 or more"),
        (["--limit", "ten"], "got 'ten'"),
        (["--limit", "²"], "got '²'"),
        (["--expiring-within", "abc"], "argument --expiring-within: not a duration: 'abc'"),
        (["--expiring-within", "-5"], "a time left cannot be negative"),
        (["--cursor", "zz"], "argument --cursor: not a scan cursor: 'zz'"),
        (["--stage", ""], "argument --stage: must not be empty"),
        (["--stage", "MNEU"], "--stage 'MNEU' is not a stage of the bot; its stages: AUTH, INIT"),
        (["--flow", "ofer"], "--flow 'ofer' is not a flow of the bot; its flows: "),
        (["--bogus"], "unrecognized arguments: --bogus"),
    ],
)
def test_bad_arguments_exit_2_with_a_precise_message(
    embedded_cli: Cli, args: list[str], said: str
) -> None:
    done = embedded_cli("scan", *args)
    assert done.returncode == 2
    assert said in done.stderr
    assert done.stdout == ""


def test_help_describes_each_command_with_an_example(embedded_cli: Cli) -> None:
    for command, example in (("scan", "statehq scan --stage MENU"), ("stats", "statehq stats")):
        done = embedded_cli(command, "--help")
        assert done.returncode == 0
        assert example in done.stdout
        assert "exit status:" in done.stdout


def test_the_progress_line_shows_only_on_a_terminal_after_a_while() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    now = [0.0]
    screen = Terminal()
    progress = ProgressLine(screen, after=1.0, clock=lambda: now[0])
    progress(1000, 300)  # quick so far: nothing
    now[0] = 1.5
    progress(5000, 1600)
    now[0] = 1.6
    progress(6000, 1900)  # too soon to redraw
    now[0] = 2.0
    progress(9000, 3000)
    progress.clear()
    assert screen.getvalue() == (
        "\rsurveying: 5,000 keys, 1,600 sessions so far"
        "\rsurveying: 9,000 keys, 3,000 sessions so far"
        "\r\x1b[K"
    )
    piped = io.StringIO()
    quiet = ProgressLine(piped, after=0.0, clock=lambda: now[0])
    quiet(1, 1)
    quiet.clear()
    assert piped.getvalue() == ""


def test_time_left_reads_like_a_person_writes_it() -> None:
    shown = [time_left(t) for t in (None, 0.4, 42, 247, 11_100, 183_600)]
    assert shown == ["no expiry", "0s", "42s", "4m07s", "3h05m", "2d03h"]


def test_scan_by_handle_finds_the_current_accounts_session(cli: Cli, store: StateStore) -> None:
    account = {"id": "a1", "handle": "chipo", "name": "Chipo", "type": "PERSONAL"}
    store.update("member:c1", {"stage": "MENU", "current_account": account})
    store.update("member:c2", {"stage": "MENU"})
    found = cli.json("scan", "--handle", "@chipo")
    assert [(s["key"], s["handle"]) for s in found["sessions"]] == [("member:c1", "chipo")]
    shown = cli("state", "show", "@chipo", "--json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["key"] == "member:c1"
    bad = cli("scan", "--handle", "@")
    assert bad.returncode == 2
    assert "a handle is @ and a name" in bad.stderr
