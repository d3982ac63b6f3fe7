"""The blocking store: :class:`StateStore`."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any

from redis.cluster import RedisCluster
from redis.exceptions import NoScriptError

from ..config import Settings, StoreSettings, store_settings_of
from ..errors import StateError
from ..metrics import STORE_OPERATIONS
from . import audit as trail
from . import backup, clients, codec, maintenance, pipelining, routes
from . import requests as ops
from . import survey as store_survey
from .audit import AuditEntry, AuditEvent, TailEntry
from .backup import RestoreOutcome
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
from .operations import Clock, Operations, Outbox, ping, utc_now
from .records import SessionRecord
from .survey import Progress, ScanPage, SessionFilter, StoreSurvey

Patch = dict[str, Any]
Mutation = Callable[[dict[str, Any]], dict[str, Any] | None]


class StateStore:
    """Atomic, versioned, member-centric session state on Redis/Valkey.

    Open it with :meth:`open`; every method is one atomic server-side operation (or, for
    :meth:`mutate` and :meth:`rollback`, a compare-and-set retried until a deadline).
    """

    def __init__(
        self,
        client: clients.SyncClient,
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

    @classmethod
    def open(
        cls,
        url: str | None = None,
        *,
        settings: Settings | StoreSettings | None = None,
        clock: Clock = utc_now,
        timeout: float | None = None,
        **overrides: Any,
    ) -> StateStore:
        """Connect to ``url`` (or ``STATEHQ_REDIS_URL``), else start/attach the embedded server.

        ``timeout``: seconds to wait for a connection or a reply before raising
        :class:`StoreUnavailable` (default 5 to connect, 10 to reply). ``overrides``
        replace individual settings, e.g. ``session_ttl=60``.
        """
        base = store_settings_of(settings)
        if url is not None:
            overrides["redis_url"] = url
        resolved = base.override(**overrides)
        server = None
        target = resolved.redis_url
        if target is None:
            server = EmbeddedValkey(resolved)
            server.acquire()
            target = server.url
        where = clients.parse(target)
        resolved = clients.with_shards(resolved, where)
        # One connection, guarded by redis-py's lock: checking a connection out of a pool
        # and back costs ~40 us per call, more than the script itself. Threads share it
        # safely (one call at a time); for parallel I/O use AsyncStateStore or a store
        # per thread. A Cluster client holds one pool per node.
        try:
            client = clients.sync_client(
                where, timeout=timeout, ca_file=resolved.redis_ca_file, retry=reconnect_once()
            )
        except StoreFailure as exc:
            if server is not None:
                server.release()
            raise translate(exc, f"statehq store at {redact_url(target)}") from exc
        store = cls(client, resolved, clock=clock, server=server)
        try:
            store.ping()
        except BaseException:
            store.close()
            raise
        return store

    # -- driving the operations ----------------------------------------------------------

    def _run(self, operation: ops.Operation) -> Any:
        try:
            request = next(operation)
            while True:
                request = operation.send(self._perform(request))
        except StopIteration as done:
            return done.value

    def _perform(self, request: ops.Request) -> Any:
        started = time.perf_counter()
        try:
            return self._perform_timed(request)
        finally:
            if not isinstance(request, ops.Sleep):
                elapsed = time.perf_counter() - started
                for name in ops.names_of(request):
                    STORE_OPERATIONS.labels(name).observe(elapsed)

    def _perform_timed(self, request: ops.Request) -> Any:
        if isinstance(request, ops.Sleep):
            time.sleep(request.seconds)
            return None
        try:
            if isinstance(request, ops.Script):
                return self._evalsha(request)
            if isinstance(request, ops.Scan):
                return self._scan(request)
            if isinstance(request, ops.Batch):
                return self._batch(request)
            if isinstance(request, ops.Pipeline):
                return self._pipeline(request)
            if request.args[0] == "SCRIPT":  # every master of a Cluster keeps its own cache
                return self._script(*request.args[1:])
            return self._client.execute_command(*request.args)  # type: ignore[no-untyped-call]
        except StoreFailure as exc:
            raise translate(exc, self._where(), member_in(ops.keys_of(request))) from exc
        except (RuntimeError, AttributeError, OSError) as exc:
            # redis-py's Cluster client, mid-failover, has raised these from a connection
            # it closed under the call ("the handler is closed", a None transport).
            raise client_failure(exc, self._where()) from exc

    def _evalsha(self, request: ops.Script) -> Any:
        sha = self._scripts.shas[request.name]
        call = ("EVALSHA", sha, len(request.keys), *request.keys, *request.args)
        try:
            return self._client.execute_command(*call)  # type: ignore[no-untyped-call]
        except NoScriptError:
            source = self._scripts.sources[request.name]
            self._client.script_load(source)
            return self._client.execute_command(*call)  # type: ignore[no-untyped-call]

    def _script(self, verb: str, *args: str) -> Any:
        if verb == "LOAD":
            return self._client.script_load(args[0])
        return self._client.script_exists(*args)

    def _batch(self, request: ops.Batch) -> list[Any]:
        if not request.commands:
            return []
        pipe = self._client.pipeline(transaction=False)
        for command in request.commands:
            pipe.execute_command(*command.args)
        return ops.batch_replies(pipe.execute(raise_on_error=False))

    def _pipeline(self, request: ops.Pipeline) -> list[Any]:
        """See :class:`~statehq.store.requests.Pipeline`: in order, errors in their place."""
        if len(request.requests) == 1:
            try:
                return [self._perform_timed(request.requests[0])]
            except StateError as error:
                return pipelining.in_place(error)
        replies: list[Any] = []
        for group in pipelining.groups(request.requests, isinstance(self._client, RedisCluster)):
            raw = self._send(group)
            start = pipelining.first_forgotten(raw)
            if start is not None:  # the server restarted or its scripts were flushed
                # Every script, not only these: a server left with some scripts and not
                # others would run part of a later pipeline before refusing the rest.
                for source in self._scripts.sources.values():
                    self._client.script_load(source)
                raw = raw[:start] + self._send(group[start:])
            replies.extend(pipelining.outcomes(group, raw, self._where()))
        return replies

    def _send(self, group: list[pipelining.Piece]) -> list[Any]:
        pipe = self._client.pipeline(transaction=False)
        route: dict[str, Any] = {}
        slot = pipelining.slot_of(group[0])
        if isinstance(self._client, RedisCluster) and slot is not None:
            # The group is one slot: name its node. Left to find a script's keys itself,
            # redis-py's ClusterPipeline asks COMMAND GETKEYS of the node it started
            # from, and after a failover that node stays dead: no pipeline would run
            # again (a redirect is still followed, and a dead node refreshes the map).
            route["target_nodes"] = self._client.nodes_manager.get_node_from_slot(slot)
        for request in group:
            pipe.execute_command(*pipelining.command_of(request, self._scripts), **route)
        replies: list[Any] = pipe.execute(raise_on_error=False)
        return replies

    def _scan(self, request: ops.Scan) -> tuple[str, list[bytes]]:
        if not isinstance(self._client, RedisCluster):
            cursor, keys = self._client.execute_command(*request.command(request.cursor))  # type: ignore[no-untyped-call]
            return str(int(cursor)), keys
        nodes = sorted(self._client.get_primaries(), key=lambda node: node.name)  # type: ignore[no-untyped-call]
        index, cursor = clients.split_cursor(request.cursor, len(nodes))
        cursors, keys = self._client.execute_command(  # type: ignore[no-untyped-call]
            *request.command(cursor), target_nodes=nodes[index]
        )
        return clients.next_cursor(index, next(iter(cursors.values())), len(nodes)), keys

    @property
    def url(self) -> str:
        """Where this store is connected: the embedded server's socket, or the Redis URL."""
        return self._server.url if self._server else self.settings.redis_url or "?"

    def _where(self) -> str:
        return f"statehq store at {redact_url(self.url)}"

    # -- public API ----------------------------------------------------------------------

    def execute(self, operation: ops.Operation) -> Any:
        """Run an operation generator (see :mod:`statehq.store.requests`) on this store.

        For components built on the store's scripts and keys, such as the inbox.
        """
        return self._run(operation)

    def get(self, member_id: str) -> Snapshot | None:
        """The member's live document, version and TTL; None if there is no live session."""
        result: Snapshot | None = self._run(self._ops.get(member_id))
        return result

    def status(self, member_id: str) -> SessionStatus:
        """ACTIVE, EXPIRED (within ``expired_memory`` of expiry) or NONE."""
        result: SessionStatus = self._run(self._ops.status(member_id))
        return result

    def update(
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
        result: Snapshot = self._run(
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

    def mutate(
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
        result: Snapshot = self._run(
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

    def commit(
        self,
        member_id: str,
        old: dict[str, Any],
        new: dict[str, Any],
        *,
        expected_version: int,
        message_id: str | None,
        lease: Lease | None = None,
        audit: Sequence[AuditEvent] = (),
        outbox: Outbox | None = None,
    ) -> Snapshot:
        """Write a whole turn at once: ``old`` becomes ``new`` if still at ``expected_version``.

        The change, the message's dedup mark, its audit entries and its replies (``outbox``)
        are written by one script call. A turn that changed nothing keeps the version
        (``quiet``). Raises :class:`VersionConflict` when someone wrote meanwhile; returns a
        ``duplicate`` snapshot, writing nothing, when the message was already applied.
        """
        result: Snapshot = self._run(
            self._ops.write(
                member_id,
                codec.replace_ops(old, new),
                expected_version=expected_version,
                message_id=message_id,
                lease=lease,
                audit=tuple(audit),
                outbox=outbox,
                quiet=True,
            )
        )
        return result

    def history(self, member_id: str, *, skip_corrupt: bool = False) -> list[HistoryEntry]:
        """The last ``history_length`` versions, newest first.

        Raises :class:`CorruptState` for an undecodable entry, unless ``skip_corrupt``.
        """
        result: list[HistoryEntry] = self._run(
            self._ops.history(member_id, skip_corrupt=skip_corrupt)
        )
        return result

    def rollback(self, member_id: str, version: int, *, lease: Lease | None = None) -> Snapshot:
        """Restore ``version``'s document from history as a new version."""
        result: Snapshot = self._run(self._ops.rollback(member_id, version, lease=lease))
        return result

    def cleanup(
        self,
        member_id: str,
        preserve: Iterable[str] = DEFAULT_PRESERVE,
        *,
        message_id: str | None = None,
        lease: Lease | None = None,
    ) -> Snapshot | None:
        """Drop every top-level field except ``preserve``; None when there is no session."""
        result: Snapshot | None = self._run(
            self._ops.cleanup(member_id, tuple(preserve), message_id=message_id, lease=lease)
        )
        return result

    def touch(self, member_id: str) -> float | None:
        """Slide the session TTL; the new TTL in seconds, or None if there is no session."""
        result: float | None = self._run(self._ops.touch(member_id))
        return result

    def delete(self, member_id: str) -> bool:
        """Forget the member's session, history and expiry marker."""
        result: bool = self._run(self._ops.delete(member_id))
        return result

    def lease(
        self, member_id: str, ttl: float = 30.0, *, holder: str | None = None, wait: float = 0.0
    ) -> Lease:
        """Take the member's lease (waiting up to ``wait`` s) or raise :class:`LeaseBusy`."""
        lease: Lease = self._run(self._ops.lease(member_id, ttl, holder=holder, wait=wait))
        lease._release = self.release_lease
        return lease

    def renew_lease(self, lease: Lease) -> Lease:
        """Extend ``lease`` by its TTL; raises :class:`LeaseLost` if it is no longer held."""
        result: Lease = self._run(self._ops.renew(lease))
        return result

    def release_lease(self, lease: Lease) -> bool:
        """Give ``lease`` up; False if it had already been lost."""
        result: bool = self._run(self._ops.release(lease))
        return result

    def replace(
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
        result: Snapshot = self._run(
            self._ops.replace(member_id, doc, expected_version=expected_version, audit=tuple(audit))
        )
        return result

    def discard(self, member_id: str) -> None:
        """Remove an unreadable document and history, keeping the version counter (recovery)."""
        self._run(self._ops.discard(member_id))

    # -- audit trail ---------------------------------------------------------------------

    def audit_append(self, session: str, event: AuditEvent) -> str:
        """Record an event that changes no state; returns its entry id."""
        result: str = self._run(trail.append(self._ops, session, event))
        return result

    def audit_read(
        self, session: str, since: datetime | str | None = None, limit: int = 100
    ) -> list[AuditEntry]:
        """A session's audit entries, oldest first (the newest ``limit``, or after ``since``)."""
        result: list[AuditEntry] = self._run(trail.read(self._ops, session, since, limit))
        return result

    def audit_tail(self, since: datetime | str | None = None, limit: int = 100) -> list[TailEntry]:
        """The operators' global tail of audit summaries, oldest first."""
        result: list[TailEntry] = self._run(trail.tail(self._ops, since, limit))
        return result

    def audit_follow(self, session: str, after: str = "$", wait_ms: int = 0) -> list[AuditEntry]:
        """A session's audit entries after the id ``after``, waiting up to ``wait_ms``."""
        return list(self._run(trail.follow(self._ops, session, after, wait_ms)))

    def audit_follow_tail(
        self, after: dict[str, str], wait_ms: int = 0
    ) -> tuple[list[TailEntry], dict[str, str]]:
        """Global tail lines after the positions ``after`` (``{}`` at first: from now).

        Returns the lines and the positions to pass next time.
        """
        lines, positions = self._run(trail.follow_tail(self._ops, after, wait_ms))
        return lines, positions

    # -- identity routes -----------------------------------------------------------------

    def route(self, session: str) -> str | None:
        """The session key ``session`` is bound to, or None."""
        result: str | None = self._run(routes.route(self._ops, session))
        return result

    def resolve(self, session: str) -> str:
        """The key ``session``'s conversation lives under now: its member's once bound."""
        result: str = self._run(routes.resolve(self._ops, session))
        return result

    def bound_channels(self, session: str, hint: str | None = None) -> list[str]:
        """The channel keys bound to ``session`` (checked against their routes)."""
        result: list[str] = self._run(routes.bound_channels(self._ops, session, hint))
        return result

    def load_scripts(self) -> dict[str, int]:
        """Load any script the server forgot; how many there are and how many were loaded."""
        result: dict[str, int] = self._run(maintenance.load_scripts())
        return result

    def stage_counts(self, sample: int = 5000) -> dict[str, int]:
        """Live sessions by stage, counted over at most ``sample`` of them."""
        result: dict[str, int] = self._run(maintenance.stage_counts(self._ops.keys, sample))
        return result

    def scan_sessions(
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

        ``stage``, ``flow`` (a flow id) and ``handle`` (the current account's, without
        ``@``) match exactly; ``expiring_within`` keeps the sessions with at most that
        many seconds to live. Pass the returned page's
        ``cursor`` back to continue; it is ``"0"`` once the whole store was scanned.
        SCAN, never KEYS (every master of a Cluster), one pipelined read per page.
        """
        where = SessionFilter(
            stage=stage, flow=flow, expiring_within=expiring_within, handle=handle
        )
        operation = store_survey.scan_sessions(self._ops.keys, where, limit=limit, cursor=cursor)
        result: ScanPage = self._run(operation)
        return result

    def survey(self, progress: Progress | None = None) -> StoreSurvey:
        """Count the whole store: sessions by stage, flow and TTL, leases, queues, dead
        letters, audit volume, bound channels. ``progress`` hears after each SCAN page."""
        result: StoreSurvey = self._run(store_survey.survey(self._ops.keys, progress))
        return result

    def bind(self, session: str, copied_version: int, target: str, event: AuditEvent) -> str:
        """Route ``session`` to ``target`` if still at ``copied_version``; see :mod:`.routes`."""
        result: str = self._run(routes.bind(self._ops, session, copied_version, target, event))
        return result

    def unbind(self, session: str, event: AuditEvent) -> str:
        """Remove ``session``'s route; returns the key it was bound to."""
        result: str = self._run(routes.unbind(self._ops, session, event))
        return result

    # -- backups and migrations ----------------------------------------------------------

    def session_keys(self) -> Iterator[str]:
        """Every session key with a live document, each once (SCAN on every master)."""
        seen: set[str] = set()
        cursor = "0"
        while True:
            cursor, keys = self._run(backup.session_page(self._ops, cursor))
            for key in keys:
                if key not in seen:
                    seen.add(key)
                    yield key
            if cursor == "0":
                return

    def route_map(self) -> dict[str, list[str]]:
        """Every identity route: ``{session key: [channel keys bound to it]}``."""
        result: dict[str, list[str]] = self._run(backup.route_map(self._ops))
        return result

    def export_session(
        self, key: str, *, with_audit: bool = False, bindings: list[str] | None = None
    ) -> SessionRecord | None:
        """``key``'s live session as a :class:`SessionRecord` (one consistent read); None
        when it has none. ``bindings``: its bound channels if known (else looked up)."""
        result: SessionRecord | None = self._run(
            backup.export(self._ops, key, with_audit=with_audit, bindings=bindings)
        )
        return result

    def restore_session(
        self, record: SessionRecord, *, event: AuditEvent, force: bool = False
    ) -> RestoreOutcome:
        """Put ``record`` back in one script call, audited with ``event``.

        Never replaces a newer (or different) live session unless ``force``; writes
        nothing when the live session already is the record. See :mod:`.backup`.
        """
        result: RestoreOutcome = self._run(
            backup.restore(self._ops, record, force=force, event=event)
        )
        return result

    def ping(self) -> None:
        """Raise :class:`StoreUnavailable` unless the server answers."""
        self._run(ping())

    def close(self) -> None:
        """Close the connection; stop the embedded server if this was its last user."""
        clients.close(self._client)
        if self._server is not None:
            self._server.release()
            self._server = None

    def __enter__(self) -> StateStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
