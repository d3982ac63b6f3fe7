"""The asyncio store: :class:`AsyncStateStore`, the twin of :class:`StateStore`."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any

from redis.asyncio.cluster import RedisCluster
from redis.exceptions import NoScriptError

from ..config import Settings, StoreSettings, store_settings_of
from ..errors import StateError, StoreUnavailable
from ..metrics import STORE_OPERATIONS
from . import audit as trail
from . import clients, maintenance, pipelining, routes
from . import requests as ops
from . import survey as store_survey
from .audit import AuditEntry, AuditEvent, TailEntry
from .connection import (
    ScriptBook,
    StoreFailure,
    client_failure,
    member_in,
    reconnect_once,
    redact_url,
    translate,
)
from .embedded import EmbeddedValkey
from .models import DEFAULT_PRESERVE, HistoryEntry, Lease, SessionStatus, Snapshot
from .operations import Clock, Operations, ping, utc_now
from .survey import Progress, ScanPage, SessionFilter, StoreSurvey

Patch = dict[str, Any]
Mutation = Callable[[dict[str, Any]], dict[str, Any] | None]


MAX_CONNECTIONS = 64
"""Connections one AsyncStateStore opens at most; more concurrent calls wait their turn."""


class AsyncStateStore:
    """The asyncio twin of :class:`~statehq.StateStore`: same methods, awaited.

    Open it with ``await AsyncStateStore.open()``; semantics are identical.
    """

    def __init__(
        self,
        client: clients.AsyncClient,
        settings: StoreSettings,
        *,
        clock: Clock = utc_now,
        server: EmbeddedValkey | None = None,
    ) -> None:
        self.settings = settings
        self._client = client
        self._server = server
        self._ops = Operations(settings, clock)
        self._scripts = ScriptBook()
        # Cluster and Sentinel clients fail a call at once when a pool is full; calls
        # beyond the pool's size wait their turn here instead (up to the store timeout).
        self._turns = asyncio.Semaphore(MAX_CONNECTIONS)
        self._wait = float(settings.store_timeout) if settings.store_timeout else 5.0

    @classmethod
    async def open(
        cls,
        url: str | None = None,
        *,
        settings: Settings | StoreSettings | None = None,
        clock: Clock = utc_now,
        timeout: float | None = None,
        **overrides: Any,
    ) -> AsyncStateStore:
        """Connect to ``url`` (or ``STATEHQ_REDIS_URL``), else start/attach the embedded server.

        ``timeout``: seconds to wait for a connection or a reply before raising
        :class:`StoreUnavailable` (default 5 to connect, 10 to reply; a request path
        passes ``settings.store_timeout``). ``overrides`` replace individual settings,
        e.g. ``session_ttl=60``.
        """
        base = store_settings_of(settings)
        if url is not None:
            overrides["redis_url"] = url
        resolved = base.override(**overrides)
        server = None
        target = resolved.redis_url
        if target is None:
            server = EmbeddedValkey(resolved)
            await asyncio.to_thread(server.acquire)
            target = server.url
        where = clients.parse(target)
        resolved = clients.with_shards(resolved, where)
        client = clients.async_client(
            where,
            timeout=timeout,
            ca_file=resolved.redis_ca_file,
            retry=reconnect_once(asyncio=True),
            max_connections=MAX_CONNECTIONS,
        )
        store = cls(client, resolved, clock=clock, server=server)
        try:
            await store.ping()
        except BaseException:
            await store.close()
            raise
        return store

    # -- driving the operations ----------------------------------------------------------

    async def _run(self, operation: ops.Operation) -> Any:
        try:
            request = next(operation)
            while True:
                request = operation.send(await self._perform(request))
        except StopIteration as done:
            return done.value

    async def _perform(self, request: ops.Request) -> Any:
        started = time.perf_counter()
        try:
            return await self._perform_timed(request)
        finally:
            if not isinstance(request, ops.Sleep):
                elapsed = time.perf_counter() - started
                for name in ops.names_of(request):
                    STORE_OPERATIONS.labels(name).observe(elapsed)

    async def _perform_timed(self, request: ops.Request) -> Any:
        if isinstance(request, ops.Sleep):
            await asyncio.sleep(request.seconds)
            return None
        try:
            async with asyncio.timeout(self._wait):
                await self._turns.acquire()
        except TimeoutError:
            raise StoreUnavailable(
                f"{self._where()}: every connection stayed busy for {self._wait:g} s"
            ) from None
        try:
            return await self._call(request)
        finally:
            self._turns.release()

    async def _call(
        self, request: ops.Script | ops.Command | ops.Scan | ops.Batch | ops.Pipeline
    ) -> Any:
        try:
            if isinstance(request, ops.Script):
                return await self._evalsha(request)
            if isinstance(request, ops.Scan):
                return await self._scan(request)
            if isinstance(request, ops.Batch):
                return await self._batch(request)
            if isinstance(request, ops.Pipeline):
                return await self._pipeline(request)
            if request.args[0] == "SCRIPT":  # every master of a Cluster keeps its own cache
                return await self._script(*request.args[1:])
            return await self._client.execute_command(*request.args)
        except StoreFailure as exc:
            raise translate(exc, self._where(), member_in(ops.keys_of(request))) from exc
        except (RuntimeError, AttributeError, OSError) as exc:
            # redis-py's Cluster client, mid-failover, has raised these from a connection
            # it closed under the call ("the handler is closed", a None transport).
            raise client_failure(exc, self._where()) from exc

    async def _script(self, verb: str, *args: str) -> Any:
        if verb == "LOAD":
            return await self._client.script_load(args[0])
        return await self._client.script_exists(*args)

    async def _batch(self, request: ops.Batch) -> list[Any]:
        if not request.commands:
            return []
        pipe = self._client.pipeline(transaction=False)
        for command in request.commands:
            pipe.execute_command(*command.args)
        return ops.batch_replies(await pipe.execute(raise_on_error=False))

    async def _pipeline(self, request: ops.Pipeline) -> list[Any]:
        """See :class:`~statehq.store.requests.Pipeline`; the twin of the blocking driver's."""
        if len(request.requests) == 1:
            try:
                return [await self._call(request.requests[0])]
            except StateError as error:
                return pipelining.in_place(error)
        replies: list[Any] = []
        for group in pipelining.groups(request.requests, isinstance(self._client, RedisCluster)):
            raw = await self._send(group)
            start = pipelining.first_forgotten(raw)
            if start is not None:  # the server restarted or its scripts were flushed
                # Every script, not only these: a server left with some scripts and not
                # others would run part of a later pipeline before refusing the rest.
                for source in self._scripts.sources.values():
                    await self._client.script_load(source)
                raw = raw[:start] + await self._send(group[start:])
            replies.extend(pipelining.outcomes(group, raw, self._where()))
        return replies

    async def _send(self, group: list[pipelining.Piece]) -> list[Any]:
        pipe = self._client.pipeline(transaction=False)
        for request in group:
            pipe.execute_command(*pipelining.command_of(request, self._scripts))
        replies: list[Any] = await pipe.execute(raise_on_error=False)
        return replies

    async def _scan(self, request: ops.Scan) -> tuple[str, list[bytes]]:
        if not isinstance(self._client, RedisCluster):
            cursor, keys = await self._client.execute_command(*request.command(request.cursor))  # type: ignore[no-untyped-call]
            return str(int(cursor)), keys
        if not self._client.get_primaries():
            await self._client.initialize()
        nodes = sorted(self._client.get_primaries(), key=lambda node: node.name)
        index, cursor = clients.split_cursor(request.cursor, len(nodes))
        replies = await self._client.execute_command(
            *request.command(cursor), target_nodes=nodes[index]
        )
        node_cursor, keys = _single_node_reply(replies)
        return clients.next_cursor(index, node_cursor, len(nodes)), keys

    async def _evalsha(self, request: ops.Script) -> Any:
        sha = self._scripts.shas[request.name]
        call = ("EVALSHA", sha, len(request.keys), *request.keys, *request.args)
        try:
            return await self._client.execute_command(*call)
        except NoScriptError:
            source = self._scripts.sources[request.name]
            await self._client.script_load(source)
            return await self._client.execute_command(*call)

    def _where(self) -> str:
        url = self._server.url if self._server else self.settings.redis_url or "?"
        return f"statehq store at {redact_url(url)}"

    # -- public API ----------------------------------------------------------------------

    async def execute(self, operation: ops.Operation) -> Any:
        """Run an operation generator (see :mod:`statehq.store.requests`) on this store.

        For components built on the store's scripts and keys, such as the inbox.
        """
        return await self._run(operation)

    async def get(self, member_id: str) -> Snapshot | None:
        """The member's live document, version and TTL; None if there is no live session."""
        result: Snapshot | None = await self._run(self._ops.get(member_id))
        return result

    async def status(self, member_id: str) -> SessionStatus:
        """ACTIVE, EXPIRED (within ``expired_memory`` of expiry) or NONE."""
        result: SessionStatus = await self._run(self._ops.status(member_id))
        return result

    async def update(
        self,
        member_id: str,
        patch: Patch,
        expected_version: int | None = None,
        message_id: str | None = None,
        *,
        lease: Lease | None = None,
        audit: Sequence[AuditEvent] = (),
    ) -> Snapshot:
        """Apply an RFC 7386 merge patch atomically (null deletes); creates the session.

        With ``expected_version`` it is a compare-and-set raising :class:`VersionConflict`.
        With ``message_id`` a repeat of the same message writes nothing and returns a
        snapshot with ``duplicate=True``. With ``lease`` it is refused once the lease is lost.
        ``audit`` events are appended to the session's audit trail by the same script.
        """
        result: Snapshot = await self._run(
            self._ops.update(
                member_id,
                patch,
                expected_version=expected_version,
                message_id=message_id,
                lease=lease,
                audit=tuple(audit),
            )
        )
        return result

    async def mutate(
        self,
        member_id: str,
        fn: Mutation,
        *,
        deadline: float | None = None,
        message_id: str | None = None,
        lease: Lease | None = None,
        audit: Sequence[AuditEvent] = (),
    ) -> Snapshot:
        """Read, call ``fn(doc)``, write only if nobody wrote meanwhile; retry until deadline.

        ``fn`` gets a private copy; it returns the new document or changes it in place and
        returns None. Raises :class:`MutateTimeout` after ``deadline`` seconds of conflicts.
        """
        result: Snapshot = await self._run(
            self._ops.mutate(
                member_id,
                fn,
                deadline=deadline,
                message_id=message_id,
                lease=lease,
                audit=tuple(audit),
            )
        )
        return result

    async def history(self, member_id: str, *, skip_corrupt: bool = False) -> list[HistoryEntry]:
        """The last ``history_length`` versions, newest first.

        Raises :class:`CorruptState` for an undecodable entry, unless ``skip_corrupt``.
        """
        result: list[HistoryEntry] = await self._run(
            self._ops.history(member_id, skip_corrupt=skip_corrupt)
        )
        return result

    async def rollback(
        self, member_id: str, version: int, *, lease: Lease | None = None
    ) -> Snapshot:
        """Restore ``version``'s document from history as a new version."""
        result: Snapshot = await self._run(self._ops.rollback(member_id, version, lease=lease))
        return result

    async def cleanup(
        self,
        member_id: str,
        preserve: Iterable[str] = DEFAULT_PRESERVE,
        *,
        message_id: str | None = None,
        lease: Lease | None = None,
    ) -> Snapshot | None:
        """Drop every top-level field except ``preserve``; None when there is no session."""
        result: Snapshot | None = await self._run(
            self._ops.cleanup(member_id, tuple(preserve), message_id=message_id, lease=lease)
        )
        return result

    async def touch(self, member_id: str) -> float | None:
        """Slide the session TTL; the new TTL in seconds, or None if there is no session."""
        result: float | None = await self._run(self._ops.touch(member_id))
        return result

    async def delete(self, member_id: str) -> bool:
        """Forget the member's session, history and expiry marker."""
        result: bool = await self._run(self._ops.delete(member_id))
        return result

    async def lease(
        self, member_id: str, ttl: float = 30.0, *, holder: str | None = None, wait: float = 0.0
    ) -> Lease:
        """Take the member's lease (waiting up to ``wait`` s) or raise :class:`LeaseBusy`."""
        lease: Lease = await self._run(self._ops.lease(member_id, ttl, holder=holder, wait=wait))
        lease._release = self.release_lease
        return lease

    async def renew_lease(self, lease: Lease) -> Lease:
        """Extend ``lease`` by its TTL; raises :class:`LeaseLost` if it is no longer held."""
        result: Lease = await self._run(self._ops.renew(lease))
        return result

    async def release_lease(self, lease: Lease) -> bool:
        """Give ``lease`` up; False if it had already been lost."""
        result: bool = await self._run(self._ops.release(lease))
        return result

    async def replace(
        self,
        member_id: str,
        doc: dict[str, Any],
        *,
        expected_version: int | None = None,
        audit: Sequence[AuditEvent] = (),
    ) -> Snapshot:
        """Write ``doc`` as the whole document without reading the stored one (recovery).

        Every stored field, readable or not, is replaced; versions continue.
        """
        result: Snapshot = await self._run(
            self._ops.replace(member_id, doc, expected_version=expected_version, audit=tuple(audit))
        )
        return result

    async def discard(self, member_id: str) -> None:
        """Remove an unreadable document and history, keeping the version counter (recovery)."""
        await self._run(self._ops.discard(member_id))

    async def audit_append(self, session: str, event: AuditEvent) -> str:
        """Record an event that changes no state; returns its entry id."""
        result: str = await self._run(trail.append(self._ops, session, event))
        return result

    async def audit_read(
        self, session: str, since: datetime | str | None = None, limit: int = 100
    ) -> list[AuditEntry]:
        """A session's audit entries, oldest first (the newest ``limit``, or after ``since``)."""
        result: list[AuditEntry] = await self._run(trail.read(self._ops, session, since, limit))
        return result

    async def audit_follow(
        self, session: str, after: str = "$", wait_ms: int = 0
    ) -> list[AuditEntry]:
        """Audit entries after the id ``after``, waiting up to ``wait_ms`` for the first."""
        return list(await self._run(trail.follow(self._ops, session, after, wait_ms)))

    async def audit_tail(
        self, since: datetime | str | None = None, limit: int = 100
    ) -> list[TailEntry]:
        """The operators' global tail of audit summaries, oldest first."""
        result: list[TailEntry] = await self._run(trail.tail(self._ops, since, limit))
        return result

    async def route(self, session: str) -> str | None:
        """The session key ``session`` is bound to, or None."""
        result: str | None = await self._run(routes.route(self._ops, session))
        return result

    async def resolve(self, session: str) -> str:
        """The key ``session``'s conversation lives under now: its member's once bound."""
        result: str = await self._run(routes.resolve(self._ops, session))
        return result

    async def bind(self, session: str, copied_version: int, target: str, event: AuditEvent) -> str:
        """Route ``session`` to ``target`` if still at ``copied_version``; see :mod:`.routes`."""
        result: str = await self._run(
            routes.bind(self._ops, session, copied_version, target, event)
        )
        return result

    async def unbind(self, session: str, event: AuditEvent) -> str:
        """Remove ``session``'s route; returns the key it was bound to."""
        result: str = await self._run(routes.unbind(self._ops, session, event))
        return result

    async def load_scripts(self) -> dict[str, int]:
        """Load any script the server forgot; how many there are and how many were loaded."""
        result: dict[str, int] = await self._run(maintenance.load_scripts())
        return result

    async def stage_counts(self, sample: int = 5000) -> dict[str, int]:
        """Live sessions by stage, counted over at most ``sample`` of them."""
        result: dict[str, int] = await self._run(maintenance.stage_counts(self._ops.keys, sample))
        return result

    async def scan_sessions(
        self,
        *,
        stage: str | None = None,
        flow: str | None = None,
        expiring_within: float | None = None,
        handle: str | None = None,
        limit: int = 100,
        cursor: str = "0",
    ) -> ScanPage:
        """Up to ``limit`` live sessions matching every filter given, from ``cursor`` on.

        ``stage``, ``flow`` (a flow id) and ``handle`` match exactly; ``expiring_within``
        keeps the sessions with at most that many seconds to live. Pass the returned page's
        ``cursor`` back to continue; it is ``"0"`` once the whole store was scanned.
        SCAN, never KEYS (every master of a Cluster), one pipelined read per page.
        """
        where = SessionFilter(
            stage=stage, flow=flow, expiring_within=expiring_within, handle=handle
        )
        operation = store_survey.scan_sessions(self._ops.keys, where, limit=limit, cursor=cursor)
        result: ScanPage = await self._run(operation)
        return result

    async def survey(self, progress: Progress | None = None) -> StoreSurvey:
        """Count the whole store: sessions by stage, flow and TTL, leases, queues, dead
        letters, audit volume, bound channels. ``progress`` hears after each SCAN page."""
        result: StoreSurvey = await self._run(store_survey.survey(self._ops.keys, progress))
        return result

    async def ping(self) -> None:
        """Raise :class:`StoreUnavailable` unless the server answers."""
        await self._run(ping())

    async def close(self) -> None:
        """Close the connection; stop the embedded server if this was its last user."""
        await clients.aclose(self._client)
        if self._server is not None:
            await asyncio.to_thread(self._server.release)
            self._server = None

    async def __aenter__(self) -> AsyncStateStore:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


def _single_node_reply(reply: Any) -> tuple[int, list[bytes]]:
    """A SCAN reply sent to one node: redis-py's cluster client may key it by node."""
    if isinstance(reply, dict):
        reply = next(iter(reply.values()))
    cursor, keys = reply
    if isinstance(cursor, dict):
        cursor = next(iter(cursor.values()))
    return int(cursor), list(keys)
