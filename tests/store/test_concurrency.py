"""Many writers racing on one member: nothing fails, nothing is lost."""

from __future__ import annotations

import multiprocessing
from multiprocessing.synchronize import Barrier

import pytest

from statehq import StateStore

WRITERS = 32
UPDATES_EACH = 25
MUTATES_EACH = 10


def _update_writer(url: str, prefix: str, member: str, writer: int, start: Barrier) -> int:
    with StateStore.open(url=url, key_prefix=prefix) as store:
        start.wait()
        for i in range(UPDATES_EACH):
            store.update(member, {"writes": {f"{writer}-{i}": True}})
    return UPDATES_EACH


def _mutate_writer(url: str, prefix: str, member: str, start: Barrier) -> int:
    def increment(doc: dict[str, int]) -> None:
        doc["counter"] = doc.get("counter", 0) + 1

    with StateStore.open(url=url, key_prefix=prefix) as store:
        start.wait()
        for _ in range(MUTATES_EACH):
            store.mutate(member, increment)
    return MUTATES_EACH


def _run_all(target: object, argsets: list[tuple[object, ...]]) -> list[int]:
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(len(argsets)) as pool:
        return pool.starmap(target, argsets)  # type: ignore[arg-type]


@pytest.mark.slow
def test_32_processes_updating_one_member_lose_nothing(
    store: StateStore, server_url: str, prefix: str, member: str
) -> None:
    start = multiprocessing.get_context("fork").Manager().Barrier(WRITERS)
    done = _run_all(
        _update_writer, [(server_url, prefix, member, w, start) for w in range(WRITERS)]
    )
    snap = store.get(member)
    assert snap is not None
    assert sum(done) == WRITERS * UPDATES_EACH
    assert snap.version == WRITERS * UPDATES_EACH
    expected = {f"{w}-{i}" for w in range(WRITERS) for i in range(UPDATES_EACH)}
    assert set(snap.doc["writes"]) == expected


@pytest.mark.slow
def test_32_processes_mutating_a_counter_lose_nothing(
    store: StateStore, server_url: str, prefix: str, member: str
) -> None:
    start = multiprocessing.get_context("fork").Manager().Barrier(WRITERS)
    done = _run_all(_mutate_writer, [(server_url, prefix, member, start)] * WRITERS)
    snap = store.get(member)
    assert snap is not None
    assert sum(done) == WRITERS * MUTATES_EACH
    assert snap.doc["counter"] == WRITERS * MUTATES_EACH
    assert snap.version == WRITERS * MUTATES_EACH
