"""results.json: every goal judged on the run's own figures, every figure with its goal."""

from __future__ import annotations

import json
from typing import Any

import pytest

from statehq.bench.results import build
from tests.bench.sample import contention, header, latency, measured, memory, service

GOALS = [
    "end_to_end.processed",
    "end_to_end.ack_p99",
    "contention.update",
    "contention.aiogram",
    "contention.seed",
    "latency.get",
    "latency.update",
    "memory.session",
]


def _goals(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {g["id"]: g for g in results["goals"]}


def _figures(node: Any) -> list[dict[str, Any]]:
    """Every dict in a section that is a figure (has a ``met`` key)."""
    if isinstance(node, list):
        return [f for item in node for f in _figures(item)]
    if isinstance(node, dict):
        own = [node] if "met" in node else []
        return own + [f for key, v in node.items() if key != "breakdown" for f in _figures(v)]
    return []


def test_a_run_that_meets_every_goal_says_so_for_each() -> None:
    results = build(measured(), header())
    goals = _goals(results)
    assert list(goals) == GOALS
    assert all(g["met"] for g in goals.values()), goals
    assert goals["contention.aiogram"]["measured"] == 12.0  # 12,000 / 1,000 at 32 writers
    assert goals["contention.seed"]["measured"] == 30.0
    assert goals["latency.get"]["measured"] == 1.4
    assert goals["end_to_end.processed"]["measured"] == 1_100.0  # the best configuration
    assert "2 processes" in goals["end_to_end.processed"]["shown"]


@pytest.mark.parametrize(
    ("changes", "failing"),
    [
        (
            {"contention": contention(update_rate=9_000.0)},
            {"contention.update", "contention.aiogram"},
        ),
        ({"contention": contention(update_lost=1)}, {"contention.update"}),
        ({"latency": latency(get_us=151.0)}, {"latency.get"}),
        ({"latency": latency(update_us=201.0)}, {"latency.update"}),
        ({"memory": memory(statehq_bytes=4_097.0)}, {"memory.session"}),
        ({"service": service(rates=(700.0, 900.0, 999.0))}, {"end_to_end.processed"}),
        ({"service": service(p99=50.0)}, {"end_to_end.ack_p99"}),
    ],
)
def test_each_goal_fails_on_its_own_figure(changes: dict[str, Any], failing: set[str]) -> None:
    goals = _goals(build(measured(**changes), header()))
    assert {gid for gid, g in goals.items() if not g["met"]} == failing


def test_every_figure_carries_its_goal_and_whether_it_is_met() -> None:
    results = build(measured(), header())
    sections = ["contention", "latency", "end_to_end", "round_trips", "scaling", "memory"]
    for section in [*sections, "cold_start"]:
        figures = _figures(results[section])
        assert figures, section
        for figure in figures:
            assert set(figure) >= {"goal", "met"}
            assert (figure["goal"] is None) == (figure["met"] is None), figure
    judged = [f for s in sections for f in _figures(results[s]) if f["goal"] is not None]
    assert len(judged) >= len(GOALS)  # each goal shows up where its figure is


def test_ratios_compare_figures_of_the_same_run() -> None:
    results = build(measured(), header())
    ratios = {(r["versus"], r["writers"]): r for r in results["contention"]["ratios"]}
    assert ratios[("aiogram-isolation", 32)]["update_ratio"] == 12.0
    assert ratios[("aiogram-isolation", 32)]["met"] is True
    assert ratios[("aiogram", 32)]["goal"] is None  # no promise against aiogram unisolated
    memory_ratios = {r["versus"]: r["ratio"] for r in results["memory"]["ratios"]}
    assert memory_ratios == {"seed": 3.5, "aiogram": 3.68}
    scaling = {r["processes"]: r["versus_first"] for r in results["scaling"]}
    assert scaling == {1: 1.0, 2: 1.38, 4: 1.12}


def test_a_partial_run_leaves_the_parts_it_did_not_measure_null() -> None:
    results = build(measured(service=None, cold_starts=[]), header(suite="store"))
    assert results["end_to_end"] is None
    assert results["scaling"] is None
    assert results["cold_start"] is None
    assert [g["id"] for g in results["goals"]] == GOALS[2:]


def test_the_results_are_plain_json() -> None:
    results = build(measured(), header())
    assert json.loads(json.dumps(results)) == results


def test_each_configuration_is_judged_on_its_own_throughput() -> None:
    results = build(measured(service=service(rates=(800.0, 900.0, 1_100.0))), header())
    assert _goals(results)["end_to_end.processed"]["met"]  # 4 processes made it
    assert "4 processes" in _goals(results)["end_to_end.processed"]["shown"]
    scaling = {r["processes"]: r["met"] for r in results["scaling"]}
    assert scaling == {1: False, 2: False, 4: True}
    headline = next(p for p in results["end_to_end"]["phases"] if p["target"] == "statehq serve")
    assert headline["processes"] == 2
    assert headline["met"] is False  # the 2-process row says what 2 processes did
