"""README.md from results.json: the headline table first, every section, the README markers."""

from __future__ import annotations

import json
from pathlib import Path

from statehq.bench.render import (
    HEADLINE_END,
    HEADLINE_START,
    headline_table,
    to_markdown,
    update_readme,
)
from statehq.bench.results import build
from tests.bench.sample import header, measured, memory

SECTIONS = [
    "## Goals",
    "## Contention",
    "## Single-operation latency",
    "## End to end",
    "## Store round trips and bytes per processed message",
    "## Scaling",
    "## Memory per session",
    "## Cold start",
]


def test_the_report_has_every_section_in_order_with_the_goals_first() -> None:
    markdown = to_markdown(build(measured(), header()))
    positions = [markdown.index(heading) for heading in SECTIONS]
    assert positions == sorted(positions)
    goals = markdown.split("## Goals", 1)[1].split("\n## ", 1)[0]
    assert goals.count("| met |") == 8
    assert "![successful updates/s by writers](contention.png)" in markdown
    assert "Versions: statehq 0.1.0, aiogram 3.31.0" in markdown


def test_a_missed_goal_stands_out() -> None:
    markdown = to_markdown(build(measured(memory=memory(5_000.0)), header()))
    assert "| 5,000 bytes | **not met** |" in markdown


def test_quick_and_partial_runs_say_so() -> None:
    results = build(measured(service=None, cold_starts=[]), header(suite="store", quick=True))
    markdown = to_markdown(results)
    assert "smoke run" in markdown
    assert "`--suite store`" in markdown
    assert "## End to end" not in markdown
    assert "## Cold start" not in markdown


def test_the_readme_gets_the_headline_table_between_its_markers(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    before, after = "# Project\n\n## Benchmarks\n\n", "\n\nMore words.\n"
    readme.write_text(f"{before}{HEADLINE_START}\nold table\n{HEADLINE_END}{after}")
    results = build(measured(), header())
    assert update_readme(readme, results, "docs/benchmarks/README.md")
    text = readme.read_text()
    assert text.startswith(before)
    assert text.endswith(after)
    assert "old table" not in text
    assert "| figure | goal | measured | status |" in text
    assert "(full report: [docs/benchmarks/README.md](docs/benchmarks/README.md))" in text
    assert update_readme(readme, results, "docs/benchmarks/README.md")  # again: same result
    assert readme.read_text() == text


def test_a_readme_without_markers_is_left_alone(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("# Project\n")
    assert not update_readme(readme, build(measured(), header()), "report.md")
    assert readme.read_text() == "# Project\n"


def test_the_committed_report_and_readme_come_from_the_committed_results() -> None:
    root = Path(__file__).parents[2]
    results = json.loads((root / "docs/benchmarks/results.json").read_text(encoding="utf-8"))
    report = (root / "docs/benchmarks/README.md").read_text(encoding="utf-8")
    assert report == to_markdown(results)
    readme = (root / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Benchmarks\n", 1)[1].split("\n## ", 1)[0]
    headline = section.split(HEADLINE_START, 1)[1].split(HEADLINE_END, 1)[0]
    assert "\n".join(headline_table(results)) in headline
    assert [g["id"] for g in results["goals"]] == [
        "end_to_end.processed",
        "end_to_end.ack_p99",
        "contention.update",
        "contention.aiogram",
        "contention.seed",
        "latency.get",
        "latency.update",
        "memory.session",
    ]
