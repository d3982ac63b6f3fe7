"""The README's 5-minute tour, played against a real statehq and compared line by line.

If the product's output changes, this fails until the README says what a newcomer
will really see (see tests/tour.py for how transcripts are read).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.tour import Tour, blocks, matches

ROOT = Path(__file__).parent.parent
README = (ROOT / "README.md").read_text()
TOUR = README.split("## A 5-minute tour", 1)[1].split("\n## ", 1)[0]
OPERATING = README.split("## Operating statehq", 1)[1].split("\n## ", 1)[0]


def test_the_tour_has_its_transcripts() -> None:
    found = blocks(TOUR)
    commands = [" ".join(b.command[1:3]) for b in found if b.command]
    assert commands[:2] == ["chat --as", "chat --as"]
    for expected in ("state show", "state history", "state diff", "state rollback", "shell"):
        assert any(c.startswith(expected) for c in commands), expected
    assert any(b.continues == "263770000001" for b in found)  # the stale tap


@pytest.mark.parametrize(
    ("expected", "actual", "ok"),
    [
        (["a ... c"], ["a b c"], True),
        (["a", "...", "d"], ["a", "b", "c", "d"], True),
        (["a", "...", "d"], ["a", "d"], True),
        (["a", "d"], ["a", "b", "d"], False),
        (["a ... c"], ["a b d"], False),
        (["a"], ["a", "extra"], False),
        (["a", "b"], ["a", "", "   ", "b"], True),
    ],
)
def test_the_transcript_matcher(expected: list[str], actual: list[str], ok: bool) -> None:
    assert matches(expected, actual) is ok


@pytest.mark.timeout(600)
def test_the_tour_runs_as_written(tmp_path: Path) -> None:
    tour = Tour(tmp_path / ".statehq", ROOT)
    assert tour.command([".venv/bin/statehq", "ledger", "seed"])[-1].startswith("demo members")
    try:
        for block in blocks(TOUR) + blocks(OPERATING):
            for expected, actual in tour.play(block):
                shown = "\n".join(actual)
                assert matches(expected, actual), f"{block.command}\n--- printed:\n{shown}"
    finally:
        tour.close()
