"""The legacy database: found by SCAN, read key by key with each key's remaining TTL.

This is a foreign database (the seed project's), not statehq's store, so reading its
raw keys is the point; statehq's store is written only through its own API. The source
may be the very server statehq uses: its keys carry ``{...}`` hash tags, which no
legacy key has, so they are never taken for legacy sessions.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from redis.exceptions import ResponseError

from ..errors import ConfigError, StoreRefused, StoreUnavailable
from ..store import clients
from ..store.connection import StoreFailure, redact_url
from .layouts import LegacyKey, classify

SCAN_COUNT = 1000

DELETE_IF_UNCHANGED = """
-- KEYS[1]: a legacy key; ARGV[1]: the value that was migrated.
-- Deletes the key only while it still holds that value; returns 1 if deleted, else 0.
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
"""Run on the legacy server: a value the old bot rewrote after it was read is kept."""


@dataclass(frozen=True)
class LegacyPart:
    """One source key as read: its value (None once gone) and remaining TTL."""

    key: LegacyKey
    raw: bytes | None
    ttl: float | None
    """Seconds left; None when the key has no expiry."""
    problem: str | None = None
    """Why the value could not be read (a key of another type), else None."""


@dataclass(frozen=True)
class LegacySession:
    """Every part of one legacy session, keyed by part name (see :mod:`.layouts`)."""

    layout: str
    identifier: str
    cache_prefix: str
    parts: dict[str, LegacyPart]

    @property
    def name(self) -> str:
        """The key that names the session in reports: its main key, else the first."""
        main = self.parts.get("document") or self.parts.get("state")
        return (main or self.parts[sorted(self.parts)[0]]).key.key

    @property
    def keys(self) -> list[str]:
        """Every source key of the session, sorted."""
        return sorted(part.key.key for part in self.parts.values())

    @property
    def ttl(self) -> float | None:
        """Time left: that of the most recently written part (the longest), None if none
        of them expires."""
        ttls = [part.ttl for part in self.parts.values() if part.raw is not None]
        if not ttls or None in ttls:
            return None
        return max(ttl for ttl in ttls if ttl is not None)


def check_url(url: str) -> clients.Target:
    """The target of a ``--from`` URL; :class:`ConfigError` naming what is wrong."""
    try:
        return clients.parse(url)
    except ConfigError as bad:
        # The parser speaks of the store's variable; here the URL came from --from.
        raise ConfigError(str(bad).replace(clients.VARIABLE, "--from")) from None


class LegacySource:
    """A read-mostly connection to the legacy database (any URL :mod:`.clients` takes)."""

    def __init__(self, url: str, *, timeout: float = 5.0, ca_file: str | None = None) -> None:
        self.url = url
        target = check_url(url)
        self._client: clients.SyncClient = self._call(
            "connecting",
            lambda: clients.sync_client(target, timeout=timeout, ca_file=ca_file, retry={}),
        )

    def _call(self, what: str, command: Callable[[], Any]) -> Any:
        try:
            return command()
        except StoreFailure as failed:
            where = redact_url(self.url)
            if isinstance(failed, ResponseError):
                raise StoreRefused(
                    f"the legacy server at {where} refused {what}: {failed}"
                ) from None
            raise StoreUnavailable(
                f"cannot reach the legacy server at {where} while {what} ({failed})"
            ) from None

    def scan(self, match: str = "*") -> Iterator[LegacyKey]:
        """Every key of a legacy layout matching ``match``, by SCAN (every master of a
        Cluster), never KEYS."""
        found = self._call("scanning", lambda: self._client.scan_iter(match, count=SCAN_COUNT))
        while True:
            key = self._call("scanning", lambda: next(found, None))
            if key is None:
                return
            text = key.decode("utf-8", "replace") if isinstance(key, bytes) else str(key)
            legacy = classify(text)
            if legacy is not None:
                yield legacy

    def read(self, key: LegacyKey) -> LegacyPart:
        """One key's value and remaining TTL, read together."""

        def both() -> list[Any]:
            pipe = self._client.pipeline(transaction=False)
            pipe.get(key.key)
            pipe.pttl(key.key)
            return pipe.execute(raise_on_error=False)

        raw, pttl = self._call(f"reading {key.key}", both)
        if isinstance(raw, Exception):
            return LegacyPart(key, None, None, f"cannot be read as a string ({raw})")
        ttl = pttl / 1000 if isinstance(pttl, int) and pttl >= 0 else None
        return LegacyPart(key, raw, ttl)

    def sessions(self, match: str = "*") -> list[LegacySession]:
        """Every legacy session whose keys match ``match``, parts read, in key order."""
        grouped: dict[tuple[str, str, str], list[LegacyKey]] = {}
        for key in self.scan(match):
            grouped.setdefault(key.session, []).append(key)
        sessions = []
        for (layout, cache, identifier), keys in sorted(grouped.items()):
            parts = {key.part: self.read(key) for key in sorted(keys, key=lambda k: k.key)}
            sessions.append(LegacySession(layout, identifier, cache, parts))
        return sessions

    def delete_if_unchanged(self, part: LegacyPart) -> bool:
        """Delete a migrated key unless it changed since it was read; True if deleted."""
        raw, key = part.raw, part.key.key
        if raw is None:
            return False
        deleted = self._call(
            f"deleting {key}", lambda: self._client.eval(DELETE_IF_UNCHANGED, 1, key, raw)
        )
        return bool(deleted)

    def close(self) -> None:
        """Close the connection."""
        clients.close(self._client)

    def __enter__(self) -> LegacySource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
