"""Turning settings into a Redis client, and Redis failures into statehq errors."""

from __future__ import annotations

import hashlib
from importlib import resources
from typing import Any

from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import ExponentialBackoff
from redis.exceptions import (
    AskError,
    ClusterDownError,
    OutOfMemoryError,
    ReadOnlyError,
    RedisClusterException,
    RedisError,
    ResponseError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

from ..errors import CorruptState, StateError, StoreFull, StoreRefused, StoreUnavailable

SCRIPT_NAMES = (
    "get",
    "update",
    "touch",
    "lease_acquire",
    "lease_renew",
    "lease_release",
    "audit_append",
    "bind",
    "unbind",
    "inbox_push",
    "inbox_next",
    "inbox_ack",
    "inbox_untake",
    "inbox_dead",
    "ready_claim",
    "ready_mark",
    "ready_done",
    "outbox_pop",
    "dead_replay",
    "dead_drop",
    "session_export",
    "session_restore",
)


def script_sources() -> dict[str, str]:
    """The text of every ``.lua`` script shipped in ``statehq/store/scripts``."""
    folder = resources.files("statehq.store") / "scripts"
    return {name: (folder / f"{name}.lua").read_text(encoding="utf-8") for name in SCRIPT_NAMES}


class ScriptBook:
    """Each script's source and SHA1: called by SHA, loaded again after NOSCRIPT.

    The server forgets its script cache on restart (and on SCRIPT FLUSH); the drivers
    then get NOSCRIPT, load the source once and retry the same call.
    """

    def __init__(self) -> None:
        self.sources = script_sources()
        self.shas = {
            name: hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()
            for name, text in self.sources.items()
        }


StoreFailure = (RedisError, RedisClusterException)
"""What a redis-py call raises when the server (or the cluster) failed it."""

_IN_TRANSITION = (ClusterDownError, TryAgainError, ReadOnlyError, RedisClusterException)
"""Cluster or failover states that pass: a slot not served yet, a master just demoted."""


def translate(
    exc: RedisError | RedisClusterException, where: str, member_id: str = "?"
) -> StateError:
    """The statehq error for a failed Redis call (on ``member_id``'s keys, when known)."""
    text = str(exc)
    if isinstance(exc, _IN_TRANSITION) or text.startswith(("CLUSTERDOWN", "LOADING", "MASTERDOWN")):
        return StoreUnavailable(
            f"{where}: the store is failing over or not ready ({text}); try again shortly"
        )
    if isinstance(exc, AskError):  # MovedError too
        return StoreRefused(
            f"{where}: the server is a Redis Cluster node and the key lives on another "
            f"({text}); connect with a redis+cluster://host:port,host:port URL"
        )
    if isinstance(exc, ResponseError) and "WRONGTYPE" in text:
        # Someone wrote a different kind of value under one of our keys by hand.
        return CorruptState(member_id, f"a key holds the wrong kind of value ({text})")
    if isinstance(exc, OutOfMemoryError) or (
        isinstance(exc, ResponseError) and "maxmemory" in text
    ):
        return StoreFull(
            f"{where}: the server reached its memory limit and refused the write ({text}); "
            f"nothing was evicted or written. Raise STATEHQ_MAXMEMORY (embedded) or the "
            f"server's maxmemory, or wait for idle sessions to expire"
        )
    if isinstance(exc, RedisConnectionError | RedisTimeoutError):
        return StoreUnavailable(f"{where}: cannot reach the Redis/Valkey server ({text})")
    if isinstance(exc, ResponseError):
        return StoreRefused(f"{where}: the server refused the command ({text})")
    return StoreUnavailable(f"{where}: the server failed the command ({text})")


def client_failure(exc: BaseException, where: str) -> StateError:
    """The statehq error for a redis-py client that failed with no Redis error of its own."""
    return StoreUnavailable(
        f"{where}: the store's client failed ({type(exc).__name__}: {exc}); try again shortly"
    )


def member_in(keys: list[str] | tuple[str, ...]) -> str:
    """The session key inside the first ``{...}``-tagged key, for error messages."""
    for key in keys:
        if isinstance(key, str) and "{" in key and "}" in key:
            return key[key.index("{") + 1 : key.index("}")]
    return "?"


def reconnect_once(*, asyncio: bool = False) -> dict[str, Any]:
    """Client options: after a dropped connection, reconnect and resend once.

    Only on ConnectionError (the server restarted, a socket went stale): the usual case
    is a command that never reached the server. Timeouts are not retried, because the
    server may have run the script; the caller gets StoreUnavailable instead and a
    message_id makes its own retry safe.
    """
    # redis-py's Retry retries timeouts too unless told otherwise: a hung server would
    # then cost two timeouts, and a script that ran but answered late would run twice.
    backoff = ExponentialBackoff(cap=0.5, base=0.05)
    only_reconnects = (RedisConnectionError,)
    retry = (
        AsyncRetry(backoff, retries=1, supported_errors=only_reconnects)
        if asyncio
        else Retry(backoff, retries=1, supported_errors=only_reconnects)
    )
    return {"retry": retry}


def redact_url(url: str) -> str:
    """The URL without its password, for messages and logs."""
    if "@" not in url:
        return url
    scheme, _, rest = url.partition("://")
    credentials, _, host = rest.rpartition("@")
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user + ':' if user else ''}***@{host}"
