"""Pipelines and gather: several requests in one round trip, each with its own reply.

Run on every topology: on a Cluster the requests of one pipeline live in many slots, and
the order the inbox relies on (a mark after its push, a release after the drops) must
hold there too.
"""

from __future__ import annotations

import uuid

from statehq import AsyncStateStore, StateStore
from statehq.errors import StateError
from statehq.store.requests import Command, Operation, Pipeline, Script, gather


def _keys(store: StateStore | AsyncStateStore, count: int) -> list[str]:
    """Keys under the test's prefix, each in a slot of its own (hash tags differ)."""
    return [f"{store.settings.key_prefix}:{{{uuid.uuid4().hex}}}:k" for _ in range(count)]


def _ordered(keys: list[str]) -> Pipeline:
    """Writes and reads that only give these replies when run in this order."""
    a, b, c = keys
    return Pipeline(
        (
            Command(("SET", a, "1")),
            Command(("INCR", a)),
            Command(("SET", b, "x")),
            Command(("INCR", b)),  # an error reply: b holds no number
            Command(("GET", a)),
            Command(("RPUSH", c, "p")),
            Command(("LRANGE", c, "0", "-1")),
        )
    )


def _check(replies: list[object]) -> None:
    assert replies[:3] == [True, 2, True]
    assert isinstance(replies[3], StateError)  # in its place; the others still answered
    assert replies[4:] == [b"2", 1, [b"p"]]


def test_a_pipeline_runs_in_order_across_slots_with_errors_in_place(store: StateStore) -> None:
    _check(store.execute(_one(_ordered(_keys(store, 3)))))


async def test_the_async_twin_runs_a_pipeline_the_same_way(astore: AsyncStateStore) -> None:
    _check(await astore.execute(_one(_ordered(_keys(astore, 3)))))


def test_scripts_the_server_forgot_are_loaded_and_the_pipeline_completes(
    store: StateStore,
) -> None:
    (lease,) = _keys(store, 1)
    session = store._ops.keys.member(f"whatsapp:{uuid.uuid4().int % 10**9}")
    store._client.script_flush()
    replies = store.execute(
        _one(
            Pipeline(
                (
                    Command(("SET", lease, "7:holder")),
                    Script("lease_renew", [lease], ["7", "5000"]),
                    Script("get", [session.doc, session.seen, session.route], []),
                )
            )
        )
    )
    assert replies == [True, 1, [0]]


def test_gather_runs_operations_side_by_side_and_keeps_their_failures_apart(
    store: StateStore,
) -> None:
    a, b = _keys(store, 2)

    def counter(key: str, times: int) -> Operation:
        total = 0
        for _ in range(times):
            total = yield Command(("INCR", key))
        return total

    def failing() -> Operation:
        yield Command(("SET", b, "x"))
        yield Command(("INCR", b))  # refused: its error is thrown into this operation
        return "never"

    def paired() -> Operation:  # a pipeline of its own joins the round's
        replies = yield Pipeline((Command(("INCR", a)), Command(("GET", a))))
        return replies

    calls: list[object] = []
    real = store._perform

    def counting(request: object) -> object:
        calls.append(request)
        return real(request)  # type: ignore[arg-type]

    store._perform = counting  # type: ignore[method-assign]
    first, second, third = store.execute(gather(counter(a, 3), failing(), paired()))
    assert len(calls) == 3  # three rounds, each one round trip for every operation
    assert all(isinstance(call, Pipeline) for call in calls[:2])
    assert first.result() == 4  # the paired INCR ran in the first round
    assert isinstance(second.error, StateError)
    assert third.result() == [2, b"2"]


def _one(pipeline: Pipeline) -> Operation:
    return (yield pipeline)
