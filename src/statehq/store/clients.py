"""Redis URLs of every topology, and the redis-py clients (blocking and asyncio) they make.

=====================================================  ======================================
``redis://[user:pass@]host:port[/db]``                 one server (``rediss://`` over TLS)
``unix:///path/to/socket``                             one server on a Unix socket
``redis+cluster://[user:pass@]h:p,h:p,...``            Redis/Valkey Cluster (seed nodes)
``redis+sentinel://[user:pass@]h:p,h:p,.../service``   the master Sentinel names ``service``
=====================================================  ======================================

``valkey`` may stand for ``redis`` in every scheme (``valkeys://``,
``valkey+cluster://``), and an ``s`` after either asks for TLS (``rediss+cluster://``).
``STATEHQ_REDIS_CA_FILE`` names the CA that signed the servers' certificates. With
Sentinel, the user and password are the data servers'; the sentinels are asked without.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

import redis
import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode as AsyncClusterNode
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.asyncio.sentinel import Sentinel as AsyncSentinel
from redis.cluster import ClusterNode, RedisCluster
from redis.sentinel import Sentinel

from ..config import StoreSettings
from ..errors import ConfigError

VARIABLE = "STATEHQ_REDIS_URL"
SINGLE, CLUSTER, SENTINEL = "single", "cluster", "sentinel"
_SCHEME = re.compile(r"^(redis|valkey)(s?)(?:\+(cluster|sentinel))?$")

SyncClient = redis.Redis | RedisCluster
AsyncClient = aioredis.Redis | AsyncRedisCluster


@dataclass(frozen=True)
class Target:
    """Where the store lives, parsed from a URL (see the module's table)."""

    topology: str
    url: str  # for a single server: the URL redis-py reads (valkey:// made redis://)
    nodes: tuple[tuple[str, int], ...] = ()  # cluster seeds or sentinels
    service: str = ""
    db: int = 0
    tls: bool = False
    username: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)

    @property
    def is_cluster(self) -> bool:
        """True when keys are spread over the slots of a Redis Cluster."""
        return self.topology == CLUSTER


def parse(url: str) -> Target:
    """The :class:`Target` a URL names; ConfigError saying what is wrong with it."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ConfigError(f"{VARIABLE} must be a URL such as redis://host:6379, got {url[:60]!r}")
    if scheme == "unix":
        return Target(SINGLE, url)
    matched = _SCHEME.match(scheme.lower())
    if matched is None:
        raise ConfigError(
            f"{VARIABLE}: unknown scheme {scheme[:20]!r}; use redis://, rediss://, unix://, "
            f"redis+cluster://, redis+sentinel:// (or valkey in place of redis)"
        )
    _, secure, topology = matched.groups()
    tls = bool(secure)
    if topology is None:
        _check_single(url, rest)
        return Target(SINGLE, f"{'rediss' if tls else 'redis'}://{rest}", tls=tls)
    parts = urlsplit(f"x://{rest}")
    netloc = parts.netloc
    credentials, _, hosts = netloc.rpartition("@")
    username, password = _credentials(credentials)
    nodes = tuple(_node(item) for item in hosts.split(",") if item)
    if not nodes:
        raise ConfigError(f"{VARIABLE}: {scheme}:// needs at least one host:port")
    path = [p for p in parts.path.split("/") if p]
    if topology == CLUSTER:
        if path:
            raise ConfigError(f"{VARIABLE}: a Cluster has one database; drop /{'/'.join(path)}")
        return Target(CLUSTER, url, nodes, tls=tls, username=username, password=password)
    if not path:
        raise ConfigError(
            f"{VARIABLE}: {scheme}:// needs the master's service name, as in "
            f"{scheme}://h:26379,h:26380/mymaster"
        )
    db = _db(path[1]) if len(path) > 1 else 0
    return Target(
        SENTINEL,
        url,
        nodes,
        service=unquote(path[0]),
        db=db,
        tls=tls,
        username=username,
        password=password,
    )


def _check_single(url: str, rest: str) -> None:
    """What redis-py would misread or crash on: a port out of range, a database that is
    not a number (it would silently use database 0)."""
    parts = urlsplit(f"x://{rest}")
    try:
        port = parts.port
    except ValueError:
        raise ConfigError(f"{VARIABLE}: the port must be a number from 1 to 65535") from None
    if port == 0:
        raise ConfigError(f"{VARIABLE}: the port must be a number from 1 to 65535")
    if not parts.hostname:
        raise ConfigError(f"{VARIABLE}: {redact_host(url)} names no host")
    path = parts.path.strip("/")
    if path:
        _db(path)


def redact_host(url: str) -> str:
    """``url`` without its password, for a message."""
    scheme, _, rest = url.partition("://")
    _, at, host = rest.rpartition("@")
    return f"{scheme}://{'***@' if at else ''}{host}"


def _credentials(raw: str) -> tuple[str | None, str | None]:
    if not raw:
        return None, None
    user, _, password = raw.partition(":")
    return (unquote(user) or None), (unquote(password) or None)


def _node(item: str) -> tuple[str, int]:
    host, sep, port = item.strip().rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"{VARIABLE}: {item!r} is not host:port")
    return host.strip("[]"), int(port)


def _db(raw: str) -> int:
    if not raw.isdigit():
        raise ConfigError(f"{VARIABLE}: the database must be a number, got {raw!r}")
    return int(raw)


def _tls(target: Target, ca_file: str | None) -> dict[str, Any]:
    if not target.tls:
        return {}
    options: dict[str, Any] = {"ssl": True}
    if ca_file:
        options["ssl_ca_certs"] = ca_file
    return options


def _auth(target: Target) -> dict[str, Any]:
    return {"username": target.username, "password": target.password}


_SENTINELS: dict[int, list[Any]] = {}
"""The sentinel clients behind each master client, closed with it (see :func:`close`)."""


def close(client: SyncClient) -> None:
    """Close a blocking client and, for Sentinel, the clients of the sentinels."""
    client.close()
    for sentinel in _SENTINELS.pop(id(client), []):
        sentinel.close()


async def aclose(client: AsyncClient) -> None:
    """Close an asyncio client and, for Sentinel, the clients of the sentinels."""
    await client.aclose()
    for sentinel in _SENTINELS.pop(id(client), []):
        await sentinel.aclose()


def sync_client(
    target: Target, *, timeout: float | None, ca_file: str | None, retry: dict[str, Any]
) -> SyncClient:
    """A blocking client for ``target``: one connection for a single server or Sentinel's
    master (threads share it one call at a time), a connection per node for a Cluster."""
    timeouts: dict[str, Any] = {
        "socket_timeout": timeout or 10,
        "socket_connect_timeout": timeout or 5,
    }
    if target.topology == CLUSTER:
        return RedisCluster(
            startup_nodes=[ClusterNode(h, p) for h, p in target.nodes],  # type: ignore[no-untyped-call]
            **timeouts,
            **_auth(target),
            **_tls(target, ca_file),
            **retry,
        )
    if target.topology == SENTINEL:
        sentinel = Sentinel(list(target.nodes), **timeouts, **_tls(target, ca_file))  # type: ignore[no-untyped-call]
        master: redis.Redis = sentinel.master_for(  # type: ignore[no-untyped-call]
            target.service, db=target.db, **timeouts, **_auth(target), **_tls(target, ca_file)
        )
        _SENTINELS[id(master)] = list(sentinel.sentinels)
        return master
    options: dict[str, Any] = {"ssl_ca_certs": ca_file} if target.tls and ca_file else {}
    return redis.Redis.from_url(
        target.url, single_connection_client=True, **timeouts, **options, **retry
    )


def async_client(
    target: Target,
    *,
    timeout: float | None,
    ca_file: str | None,
    retry: dict[str, Any],
    max_connections: int,
) -> AsyncClient:
    """An asyncio client for ``target``, its pool bounded by ``max_connections``.

    A single server's pool waits for a free connection (up to the timeout) instead of
    failing at once: under a burst the 101st request must queue, not answer "store
    unavailable" while the store is fine.
    """
    timeouts: dict[str, Any] = {
        "socket_timeout": timeout or 10,
        "socket_connect_timeout": timeout or 5,
    }
    if target.topology == CLUSTER:
        return AsyncRedisCluster(
            startup_nodes=[AsyncClusterNode(host, port) for host, port in target.nodes],
            max_connections=max_connections,
            **timeouts,
            **_auth(target),
            **_tls(target, ca_file),
            **retry,
        )
    if target.topology == SENTINEL:
        sentinel = AsyncSentinel(list(target.nodes), **timeouts, **_tls(target, ca_file))  # type: ignore[no-untyped-call]
        master: aioredis.Redis = sentinel.master_for(
            target.service,
            db=target.db,
            max_connections=max_connections,
            **timeouts,
            **_auth(target),
            **_tls(target, ca_file),
        )
        _SENTINELS[id(master)] = list(sentinel.sentinels)
        return master
    options: dict[str, Any] = {"ssl_ca_certs": ca_file} if target.tls and ca_file else {}
    pool = aioredis.BlockingConnectionPool.from_url(
        target.url,
        max_connections=max_connections,
        timeout=timeout or 5,
        **timeouts,
        **options,
        **retry,
    )
    return aioredis.Redis.from_pool(pool)


def with_shards(settings: StoreSettings, target: Target) -> StoreSettings:
    """``settings`` with its shard count chosen for the topology when it was 0 (auto)."""
    if settings.shards:
        return settings
    return settings.override(shards=CLUSTER_SHARDS if target.is_cluster else 1)


CLUSTER_SHARDS = 16
"""Pieces of each shared key on a Cluster: enough to spread them over any few masters."""


def split_cursor(cursor: str, nodes: int) -> tuple[int, int]:
    """A SCAN over every master: ``"<node index>:<node cursor>"`` (``"0"`` starts)."""
    index, _, node_cursor = cursor.partition(":")
    if not node_cursor:
        return 0, 0
    return min(int(index), nodes - 1), int(node_cursor)


def next_cursor(index: int, node_cursor: int, nodes: int) -> str:
    """The cursor after one node's step: that node's next page, the next node, or done."""
    if int(node_cursor):
        return f"{index}:{int(node_cursor)}"
    if index + 1 < nodes:
        return f"{index + 1}:0"
    return "0"
