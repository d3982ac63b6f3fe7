"""The README is the front door: its promises are checked like code."""

import re
from pathlib import Path

from statehq.config import VARIABLES

README = (Path(__file__).parent.parent / "README.md").read_text()


def test_quick_start_has_exactly_two_commands() -> None:
    section = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block is not None
    commands = [line.split("#")[0].strip() for line in block.group(1).splitlines()]
    assert [c for c in commands if c] == ["make run", "make test"]


def test_configuration_table_lists_every_variable() -> None:
    for var in VARIABLES:
        assert f"| `{var.name}` | `{var.default}` |" in README, var.name


def test_the_own_bot_section_runs_what_the_example_tests_run() -> None:
    from tests.examples.test_appointments import BOT

    section = README.split("## Build your own bot in 5 minutes", 1)[1].split("\n## ", 1)[0]
    assert f"STATEHQ_BOT={BOT} .venv/bin/statehq chat" in section
    assert f"STATEHQ_BOT={BOT} .venv/bin/statehq serve" in section


def test_the_own_bot_example_runs_as_written(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    section = README.split("## Build your own bot in 5 minutes", 1)[1].split("\n## ", 1)[0]
    code = re.search(r"```python\n# mybot.py\n(.*?)```", section, re.S)
    assert code is not None
    (tmp_path / "mybot.py").write_text(code.group(1))
    env = {k: v for k, v in os.environ.items() if not k.startswith("STATEHQ_")}
    env |= {"STATEHQ_BOT": "mybot:create_bot", "STATEHQ_DATA_DIR": str(tmp_path / "data")}
    chat = subprocess.run(
        [sys.executable, "-m", "statehq.cli.main", "chat", "--as", "263771234567"],
        input="hi\n1\nmedium\nlarge\n1\n",
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert chat.returncode == 0, chat.stderr
    assert "Hi! What can I get you?" in chat.stdout
    assert "Small or large?" in chat.stdout  # asked, and asked again after "medium"
    assert "One large coffee?" in chat.stdout
    assert "Coming up!" in chat.stdout


def test_the_aiogram_example_runs_as_written(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    section = README.split("## aiogram: statehq as your FSM storage", 1)[1].split("\n## ", 1)[0]
    code = re.search(r"```python\n(import asyncio\n.*?)```", section, re.S)
    assert code is not None
    (tmp_path / "try_aiogram.py").write_text(code.group(1))
    env = {k: v for k, v in os.environ.items() if not k.startswith("STATEHQ_")}
    env |= {"STATEHQ_DATA_DIR": str(tmp_path / "data")}
    run = subprocess.run(
        [sys.executable, "try_aiogram.py"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    versions = [int(v) for v in re.findall(r"\d+", run.stdout)]
    assert len(versions) == 10  # the last 10 of the 33 writes, newest first
    assert versions == sorted(versions, reverse=True)
