"""What only a Cluster or Sentinel can show: shared keys spread over slots, a plain URL
pointed at a Cluster node, and the store carrying on after a master is killed."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from statehq import StateStore, StoreRefused, StoreUnavailable
from statehq.store.inbox import Inbox, Update
from statehq.testing import topologies


def _member() -> str:
    return f"whatsapp:2637{uuid.uuid4().int % 10**8:08d}"


def _masters_serving(cluster: topologies.Cluster, keys: list[str]) -> set[int]:
    """The ports of the masters whose slots hold ``keys``."""
    node = cluster.live_nodes()[0]
    ranges = node.command("CLUSTER", "SLOTS")
    owners = set()
    for key in keys:
        slot = int(node.command("CLUSTER", "KEYSLOT", key))
        owners.update(int(r[2][1]) for r in ranges if int(r[0]) <= slot <= int(r[1]))
    return owners


def test_the_shared_keys_are_spread_over_every_master(cluster: topologies.Cluster) -> None:
    with StateStore.open(cluster.url, key_prefix=f"t{uuid.uuid4().hex[:8]}") as store:
        keys = Inbox(store.settings).keys.inbox_readies()
        assert store.settings.shards == 16
        assert len(set(keys)) == 16
        assert _masters_serving(cluster, keys) == set(cluster.masters())
        senders = [_member() for _ in range(64)]
        now = int(time.time())
        inbox = Inbox(store.settings)
        updates = [Update(f"wamid.{uuid.uuid4().hex}", s, "text", now, "hi") for s in senders]
        store.execute(inbox.push(updates))
        total, queued, _ = store.execute(inbox.depth())
        assert (total, queued) == (64, 64)
        used = {inbox.keys.ready_of(sender) for sender in senders}
        assert len(used) > 8  # the senders' marks are spread, not on one key


def test_a_plain_url_at_a_cluster_node_says_to_use_the_cluster_scheme(
    cluster: topologies.Cluster,
) -> None:
    refused: list[str] = []
    for port in cluster.masters():
        with StateStore.open(f"redis://127.0.0.1:{port}", key_prefix="tplain") as store:
            for _ in range(20):
                try:
                    store.update(_member(), {"a": 1})
                except StoreRefused as error:
                    refused.append(str(error))
    assert refused  # most members live on another master
    assert all("connect with a redis+cluster://" in said for said in refused)


@pytest.fixture
def own_cluster(tmp_path: Path) -> Iterator[topologies.Cluster]:
    """A cluster of this test's own, since it kills one of its masters."""
    with topologies.start_cluster(tmp_path / "cluster") as started:
        yield started


def test_the_store_carries_on_after_a_cluster_master_is_killed(
    own_cluster: topologies.Cluster,
) -> None:
    members = [_member() for _ in range(30)]
    with StateStore.open(own_cluster.url, key_prefix="tfail", timeout=2) as store:
        for member in members:
            store.update(member, {"n": 1})
        killed = own_cluster.kill_master()
        promoted = own_cluster.wait_for_failover(killed)
        assert promoted != killed
        _retry_until_it_works(lambda: [store.update(m, {"n": 2}) for m in members])
        assert all(store.get(m).doc["n"] == 2 for m in members)  # type: ignore[union-attr]


@pytest.fixture
def own_sentinel(tmp_path: Path) -> Iterator[topologies.SentinelSet]:
    with topologies.start_sentinel(tmp_path / "sentinel") as started:
        yield started


def test_the_store_follows_a_sentinel_failover(own_sentinel: topologies.SentinelSet) -> None:
    member = _member()
    with StateStore.open(own_sentinel.url, key_prefix="tfail", timeout=2) as store:
        store.update(member, {"n": 1})
        old = own_sentinel.kill_master()
        assert own_sentinel.wait_for_failover(old) != old
        _retry_until_it_works(lambda: store.update(member, {"n": 2}))
        snapshot = store.get(member)
        assert snapshot is not None
        assert snapshot.doc["n"] == 2


def _retry_until_it_works(action: object, timeout: float = 30.0) -> None:
    """Failover errors are StoreUnavailable (never anything else) until the store is back."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            action()  # type: ignore[operator]
            return
        except StoreUnavailable:
            assert time.monotonic() < deadline, "the store did not come back"
            time.sleep(0.2)
