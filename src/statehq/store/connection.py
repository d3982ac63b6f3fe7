"""Turning settings into a Redis client, and Redis failures into statehq errors."""

from __future__ import annotations

from importlib import resources

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import OutOfMemoryError, RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ..errors import StateError, StoreFull, StoreUnavailable

SCRIPT_NAMES = ("get", "update", "touch", "lease_acquire", "lease_renew", "lease_release")


def script_sources() -> dict[str, str]:
    """The text of every ``.lua`` script shipped in ``statehq/store/scripts``."""
    folder = resources.files("statehq.store") / "scripts"
    return {name: (folder / f"{name}.lua").read_text(encoding="utf-8") for name in SCRIPT_NAMES}


def translate(exc: RedisError, where: str) -> StateError:
    """The statehq error for a failed Redis call."""
    text = str(exc)
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
    return StoreUnavailable(f"{where}: the server refused the command ({text})")


def redact_url(url: str) -> str:
    """The URL without its password, for messages and logs."""
    if "@" not in url:
        return url
    scheme, _, rest = url.partition("://")
    credentials, _, host = rest.rpartition("@")
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user + ':' if user else ''}***@{host}"
