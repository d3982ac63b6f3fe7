"""The asyncio twin keeps the same contract."""

from __future__ import annotations

import asyncio

import pytest

from statehq import (
    AsyncStateStore,
    LeaseBusy,
    LeaseLost,
    SessionStatus,
    StoreUnavailable,
    VersionConflict,
)


async def test_update_get_and_conflict(astore: AsyncStateStore, member: str) -> None:
    assert await astore.get(member) is None
    snap = await astore.update(member, {"flow_data": {"id": "offer", "data": {}}})
    assert snap.version == 1
    read = await astore.get(member)
    assert read is not None
    assert read.doc == snap.doc
    with pytest.raises(VersionConflict):
        await astore.update(member, {"a": 1}, expected_version=0)


async def test_concurrent_tasks_lose_nothing(astore: AsyncStateStore, member: str) -> None:
    async def writer(n: int) -> None:
        for i in range(20):
            await astore.update(member, {"w": {f"{n}-{i}": i}})

    async def incrementer() -> None:
        for _ in range(10):
            await astore.mutate(member, lambda d: d.update(c=d.get("c", 0) + 1))

    await asyncio.gather(*(writer(n) for n in range(10)), *(incrementer() for _ in range(5)))
    snap = await astore.get(member)
    assert snap is not None
    assert len(snap.doc["w"]) == 200
    assert snap.doc["c"] == 50
    assert snap.version == 250


async def test_dedup_history_rollback_cleanup(astore: AsyncStateStore, member: str) -> None:
    await astore.update(member, {"member_id": "m1", "flow_data": {"id": "x"}}, message_id="w1")
    assert (await astore.update(member, {"x": 1}, message_id="w1")).duplicate
    await astore.update(member, {"flow_data": {"step": 2}})
    assert [e.version for e in await astore.history(member)] == [2, 1]
    assert (await astore.rollback(member, 1)).doc["flow_data"] == {"id": "x"}
    cleaned = await astore.cleanup(member)
    assert cleaned is not None
    assert "flow_data" not in cleaned.doc
    assert await astore.touch(member) == pytest.approx(300)
    assert await astore.status(member) is SessionStatus.ACTIVE


async def test_leases(astore: AsyncStateStore, member: str) -> None:
    async with await astore.lease(member, ttl=0.2) as lease:
        with pytest.raises(LeaseBusy):
            await astore.lease(member, ttl=1)
        await asyncio.sleep(0.3)
        successor = await astore.lease(member, ttl=5)
        with pytest.raises(LeaseLost):
            await astore.update(member, {"a": 1}, lease=lease)
        assert (await astore.update(member, {"a": 2}, lease=successor)).version == 1


async def test_more_concurrent_calls_than_connections_wait_their_turn(
    astore: AsyncStateStore,
) -> None:
    # A burst bigger than the pool queues for a connection; none is refused.
    results = await asyncio.gather(*(astore.ping() for _ in range(300)), return_exceptions=True)
    assert [r for r in results if isinstance(r, BaseException)] == []


async def test_a_client_failing_outside_redis_errors_is_store_unavailable(
    astore: AsyncStateStore, member: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """redis-py's Cluster client mid-failover has raised RuntimeError and AttributeError
    from a closed connection; callers see StoreUnavailable like any store outage."""
    import redis.asyncio.client
    import redis.asyncio.cluster

    def closed(*_args: object, **_kwargs: object) -> object:
        raise RuntimeError("unable to perform operation on <TCPTransport closed=True>")

    for client in (redis.asyncio.client.Redis, redis.asyncio.cluster.RedisCluster):
        monkeypatch.setattr(client, "execute_command", closed)
    with pytest.raises(StoreUnavailable, match="the store's client failed"):
        await astore.update(member, {"a": 1})
    monkeypatch.undo()
    assert (await astore.update(member, {"a": 1})).version == 1
