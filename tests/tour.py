"""Playing the README's tour against a real statehq, and comparing what it prints.

The tour's ``text`` blocks are transcripts. A block whose first line is ``$ <command>``
runs that command; under it, the lines it prints. In a chat (``statehq chat --as N``),
``you> ...`` lines are typed into the chat and the rest is what the bot answers. A
block that starts with ``you>`` and follows ``<!-- tour: continue N -->`` types into the
chat of ``N`` opened earlier and still running, as a person's terminal would be.

Expected lines are compared with what was printed: ``...`` inside a line stands for
any text, a line that is only ``...`` for any number of lines; trailing spaces and blank
lines do not count.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

STATEHQ = ".venv/bin/statehq"
SHELL = "statehq> "
CONTINUE = re.compile(r"<!-- tour: continue (\d+) -->\s*$")


@dataclass
class Block:
    """One transcript: the command (None to continue a chat), and its lines."""

    command: list[str] | None
    lines: list[str]
    continues: str | None = None


def blocks(section: str) -> list[Block]:
    """The transcripts of a README section, in order."""
    found: list[Block] = []
    for match in re.finditer(
        r"(<!-- tour: continue \d+ -->\s*\n)?```text\n(.*?)```", section, re.S
    ):
        lines = match.group(2).rstrip("\n").split("\n")
        head = match.group(1)
        if head:
            phone = CONTINUE.search(head.strip())
            found.append(Block(None, lines, phone.group(1) if phone else None))
        elif lines[0].startswith("$ "):
            found += _commands(lines)
    return found


def _commands(lines: list[str]) -> list[Block]:
    """A block of several ``$`` commands, split into one per command."""
    found: list[Block] = []
    for line in lines:
        if line.startswith("$ "):
            found.append(Block(shlex.split(line[2:]), []))
        else:
            found[-1].lines.append(line)
    return found


def matches(expected: list[str], actual: list[str]) -> bool:
    """True when ``actual`` is what ``expected`` describes (with ``...`` wildcards)."""
    patterns = [_pattern(line) for line in expected if line.strip()]
    return _match(patterns, [line.rstrip() for line in actual if line.strip()], 0, 0)


def _pattern(line: str) -> re.Pattern[str] | None:
    line = line.rstrip()
    if line.strip() == "...":
        return None
    parts = [re.escape(part) for part in line.split("...")]
    return re.compile(".*?".join(parts) + r"\Z", re.S)


def _match(patterns: list[re.Pattern[str] | None], actual: list[str], p: int, a: int) -> bool:
    while p < len(patterns):
        pattern = patterns[p]
        if pattern is None:  # any number of lines
            return any(_match(patterns, actual, p + 1, skip) for skip in range(a, len(actual) + 1))
        if a >= len(actual) or not pattern.match(actual[a]):
            return False
        p, a = p + 1, a + 1
    return a == len(actual)


@dataclass
class Chat:
    """A ``statehq chat`` process kept open, its output collected as it comes."""

    process: subprocess.Popen[str]
    output: list[str] = field(default_factory=list)
    reader: threading.Thread | None = None

    def start_reading(self) -> None:
        def read() -> None:
            assert self.process.stdout is not None
            for line in self.process.stdout:
                self.output.append(line.rstrip("\n"))

        self.reader = threading.Thread(target=read, daemon=True)
        self.reader.start()

    def close(self) -> None:
        """End the chat as Ctrl-D would, and release its pipes."""
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait(timeout=30)
        if self.reader is not None:
            self.reader.join(timeout=10)
        if self.process.stdout is not None:
            self.process.stdout.close()

    def type(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()


class Tour:
    """Runs blocks in one data dir; each returns (expected, actual) for comparison."""

    def __init__(self, data_dir: Path, cwd: Path) -> None:
        self.cwd = cwd
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("STATEHQ_")}
        self.env |= {
            "STATEHQ_DATA_DIR": str(data_dir),
            "PYTHONUNBUFFERED": "1",
            "STATEHQ_OPERATOR": "ops",
        }
        self.chats: dict[str, Chat] = {}

    def command(self, words: list[str], typed: str | None = None) -> list[str]:
        """Run a statehq command; its stdout (then stderr) lines."""
        done = subprocess.run(
            [sys.executable, "-m", "statehq.cli.main", *words[1:]],
            cwd=self.cwd,
            env=self.env,
            input=typed,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        return (done.stdout + done.stderr).rstrip("\n").split("\n")

    def open_chat(self, phone: str) -> Chat:
        process = subprocess.Popen(
            [sys.executable, "-m", "statehq.cli.main", "chat", "--as", phone],
            cwd=self.cwd,
            env=self.env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        chat = Chat(process)
        chat.start_reading()
        self.chats[phone] = chat
        return chat

    def converse(self, chat: Chat, lines: list[str], timeout: float = 20) -> list[str]:
        """Type each ``you>`` line once the answer before it has been printed.

        Returns what the chat printed during this block.
        """
        start = len(chat.output)
        turns = [n for n, line in enumerate(lines) if line.startswith("you> ")]
        for turn in turns:
            self._wait(chat, lines[:turn], start, timeout)
            chat.type(lines[turn][len("you> ") :])
        self._wait(chat, lines, start, timeout)
        return chat.output[start:]

    @staticmethod
    def _wait(chat: Chat, expected: list[str], start: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if matches(expected, chat.output[start:]):
                time.sleep(0.1)  # a last line may still be on its way
                return
            time.sleep(0.05)

    def play(self, block: Block) -> Iterator[tuple[list[str], list[str]]]:
        """Run one block; yields what was expected and what was printed."""
        if block.command is None:
            assert block.continues in self.chats, f"no open chat for {block.continues}"
            yield block.lines, self.converse(self.chats[block.continues], block.lines)
            return
        words = block.command
        assert words[0] == STATEHQ, f"the tour runs {STATEHQ}, not {words[0]}"
        if words[1] == "chat":
            yield block.lines, self.converse(self.open_chat(words[3]), block.lines)
            return
        if words[1] == "shell":  # typed at the prompt, echoed as a terminal shows them
            typed = [line[len(SHELL) :] for line in block.lines if line.startswith(SHELL)]
            yield block.lines, self.command(words, "\n".join([*typed, "quit"]) + "\n")
            return
        yield block.lines, self.command(words)

    def close(self) -> None:
        for chat in self.chats.values():
            chat.close()
