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
