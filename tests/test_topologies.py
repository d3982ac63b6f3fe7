"""The server topologies of ``statehq.testing.topologies`` start, serve redis-py, fail over.

Each topology starts once per module. Redis 7 (standalone and TLS) comes from Debian's
``redis-server``; when it is missing these tests fail rather than skip, so a CI box
without it cannot pass silently.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from redis.backoff import NoBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.retry import Retry
from redis.sentinel import Sentinel

from statehq.testing.topologies import (
    HOST,
    Cluster,
    SentinelSet,
    acl_line,
    free_ports,
    redis7_binary,
    start_cluster,
    start_sentinel,
    start_standalone,
    start_tls,
    valkey_binary,
)

pytestmark = pytest.mark.slow


def _redis7() -> Path:
    binary = redis7_binary()
    if binary is None:
        pytest.fail(
            "Debian's Redis 7 server (built with TLS) is missing at /usr/bin/redis-server: "
            "install it with `sudo apt-get install redis-server` (`make test` installs it)",
            pytrace=False,
        )
    return binary


def _alive(process_ids: list[int]) -> list[int]:
    alive = []
    for pid in process_ids:
        try:
            status = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
        except OSError:
            continue
        if status != "Z":
            alive.append(pid)
    return alive


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with start_cluster(tmp_path_factory.mktemp("cluster")) as started:
        yield started


@pytest.fixture(scope="module")
def sentinel_set(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentinelSet]:
    with start_sentinel(tmp_path_factory.mktemp("sentinel")) as started:
        yield started


def test_free_ports_are_distinct() -> None:
    ports = free_ports(8)
    assert len(set(ports)) == 8
    assert all(0 < port < 65536 for port in ports)


@pytest.mark.parametrize("server", ["valkey", "redis7"])
def test_standalone_serves_set_get(server: str, tmp_path: Path) -> None:
    binary = valkey_binary() if server == "valkey" else _redis7()
    with start_standalone(tmp_path, binary, extra=["--appendfsync", "always"]) as standalone:
        assert standalone.url == f"redis://{HOST}:{standalone.port}"
        with redis.Redis.from_url(standalone.url) as client:
            assert client.set("statehq:k", "v")
            assert client.get("statehq:k") == b"v"
            assert client.config_get("appendfsync") == {"appendfsync": "always"}
            assert client.config_get("maxmemory-policy") == {"maxmemory-policy": "noeviction"}
    assert standalone.process.poll() is not None


def test_cluster_serves_set_get(cluster: Cluster) -> None:
    assert len(cluster.nodes) == 6
    assert sorted(node.role() for node in cluster.nodes) == ["master"] * 3 + ["replica"] * 3
    masters = cluster.masters()
    assert cluster.url == "redis+cluster://" + ",".join(f"{HOST}:{p}" for p in masters)
    client = RedisCluster(startup_nodes=[ClusterNode(HOST, port) for port in masters])
    try:
        for i in range(20):  # keys spread over every master
            assert client.set(f"statehq:{{m{i}}}:doc", i)
        assert [client.get(f"statehq:{{m{i}}}:doc") for i in range(20)] == [
            str(i).encode() for i in range(20)
        ]
    finally:
        client.close()


def test_cluster_fails_over_a_killed_master(cluster: Cluster) -> None:
    client = RedisCluster(startup_nodes=[ClusterNode(HOST, port) for port in cluster.masters()])
    try:
        key = "statehq:{failover}:doc"
        victim = client.get_node_from_key(key).port
        # Written on the victim and acknowledged by its replica before the kill.
        with redis.Redis(host=HOST, port=victim) as direct:
            direct.set(key, "before")
            assert direct.wait(1, 5000) == 1

        assert cluster.kill_master(victim) == victim
        promoted = cluster.wait_for_failover(victim)

        assert promoted != victim
        assert victim not in cluster.masters()
        assert promoted in cluster.masters()
        assert cluster.node(promoted).role() == "master"
        assert client.get(key) == b"before"
        assert client.set(key, "after")
        assert client.get(key) == b"after"
        assert client.get_node_from_key(key).port == promoted
    finally:
        client.close()


def test_sentinel_serves_set_get(sentinel_set: SentinelSet) -> None:
    ports = ",".join(node.address for node in sentinel_set.sentinels)
    assert sentinel_set.url == f"redis+sentinel://{ports}/statehq"
    assert sentinel_set.master_port() == sentinel_set.servers[0].port
    assert sentinel_set.servers[1].role() == "replica"
    sentinel = Sentinel(sentinel_set.sentinel_addresses, socket_timeout=2)
    master = sentinel.master_for("statehq", socket_timeout=2)
    try:
        assert master.set("statehq:k", "v")
        assert master.get("statehq:k") == b"v"
    finally:
        master.close()
        for client in sentinel.sentinels:
            client.close()


def test_sentinel_fails_over_a_killed_master(sentinel_set: SentinelSet) -> None:
    sentinel = Sentinel(sentinel_set.sentinel_addresses, socket_timeout=2)
    master = sentinel.master_for("statehq", socket_timeout=2)
    try:
        master.set("statehq:failover", "before")
        assert master.wait(1, 5000) == 1

        old = sentinel_set.kill_master()
        new = sentinel_set.wait_for_failover(old)

        assert new != old
        assert sentinel_set.master_port() == new
        assert sentinel.discover_master("statehq") == (HOST, new)
        assert master.get("statehq:failover") == b"before"
        assert master.set("statehq:failover", "after")
        assert master.get("statehq:failover") == b"after"
    finally:
        master.close()
        for client in sentinel.sentinels:
            client.close()


def test_tls_server_with_least_privilege_user(tmp_path: Path) -> None:
    binary = _redis7()
    with start_tls(tmp_path, binary) as server:
        assert server.url == f"rediss://statehq:{server.password}@{HOST}:{server.port}"
        assert (
            acl_line("statehq", server.password, "statehq")
            in (tmp_path / "server.conf").read_text()
        )
        with redis.Redis.from_url(server.url, ssl_ca_certs=str(server.ca_file)) as client:
            assert client.ping()
            assert client.set("statehq:k", "v")
            assert client.get("statehq:k") == b"v"
            sha = client.script_load("return redis.call('SET', KEYS[1], ARGV[1])")
            assert client.evalsha(sha, 1, "statehq:{m}:doc", "x") == b"OK"
            assert client.xadd("statehq:stream", {"a": "1"})
            assert client.zadd("statehq:zset", {"a": 1.0}) == 1
            assert b"statehq:k" in client.scan(0, match="statehq:*", count=1000)[1]
            assert client.info("server")["redis_version"].startswith("7.")
            for refused in (
                client.flushall,
                lambda: client.config_set("maxmemory", "1mb"),
                lambda: client.set("other:k", "v"),
                lambda: client.evalsha(sha, 1, "other:k", "x"),
            ):
                with pytest.raises(redis.exceptions.NoPermissionError):
                    refused()
        # The default user is off (no retries: redis-py backs off on a refused login).
        anonymous = redis.Redis(
            host=HOST,
            port=server.port,
            ssl=True,
            ssl_ca_certs=str(server.ca_file),
            retry=Retry(NoBackoff(), 0),
        )
        with anonymous, pytest.raises(redis.exceptions.AuthenticationError):
            anonymous.ping()
    assert server.process.poll() is not None


def test_stop_leaves_no_process(tmp_path: Path) -> None:
    with start_standalone(tmp_path / "a") as first, start_standalone(tmp_path / "b") as second:
        pids = [first.process.pid, second.process.pid]
        assert _alive(pids) == pids
    assert _alive(pids) == []
