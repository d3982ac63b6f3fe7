"""`statehq chat` and `statehq ledger seed` as a person uses them: real processes, scripted stdin.

This is the README tour: a newcomer registers and offers a credex to a demo member,
who accepts it from their own terminal; a third process checks the state trail.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

NEWCOMER = "263770000009"
BOB = "263772222222"


def statehq(data_dir: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "STATEHQ_DATA_DIR": str(data_dir)}
    for name in ("STATEHQ_REDIS_URL", "STATEHQ_BACKEND_URL", "STATEHQ_WELCOME_GRANT"):
        env.pop(name, None)
    return subprocess.run(
        [sys.executable, "-m", "statehq.cli.main", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=90,
        check=False,
    )


@pytest.mark.slow
def test_the_tour_register_offer_and_accept_from_the_other_side(data_dir: Path) -> None:
    seeded = statehq(data_dir, "ledger", "seed")
    assert seeded.returncode == 0, seeded.stderr
    assert "@bob" in seeded.stdout

    script = "hi\n1\nTendai\nMoyo\n1\n25\n@bob\n1\n"
    newcomer = statehq(data_dir, "chat", "--as", NEWCOMER, stdin=script)
    assert newcomer.returncode == 0, newcomer.stderr
    out = newcomer.stdout
    assert "you> hi" in out
    assert "Welcome to credex!" in out
    assert "  1. Join credex" in out  # buttons as numbered options
    assert "Welcome to credex, Tendai! Your account @tendai_moyo is ready" in out
    assert "Offer *25.00 USD* to Bob Dube (@bob)" in out
    assert "Offer sent: 25.00 USD to Bob Dube (@bob)" in out

    bob = statehq(data_dir, "chat", "--as", BOB, stdin="hi\n")
    menu = bob.stdout
    assert "*Bob Dube* (@bob)" in menu
    numbers = [
        line.split(".")[0].strip() for line in menu.splitlines() if "Incoming offers" in line
    ]
    accept = f"hi\n{numbers[0]}\n1\n1\n"  # incoming offers, Tendai's offer, Accept
    bob = statehq(data_dir, "chat", "--as", BOB, stdin=accept)
    assert "Accepted: 25.00 USD from Tendai Moyo (@tendai_moyo)." in bob.stdout, bob.stdout

    trail = statehq(data_dir, "audit", f"terminal:{NEWCOMER}")
    assert "flow.ended" in trail.stdout
    assert "identity.bound" in trail.stdout


def test_chat_refuses_a_bad_phone_number(data_dir: Path) -> None:
    result = statehq(data_dir, "chat", "--as", "bob")
    assert result.returncode == 2
    assert "--as takes a phone number of 8-15 digits, got 'bob'" in result.stderr
