"""The built-in ledger's SQLite file: its tables and the one way to run a transaction.

Tables::

    members      id, phone (unique), names, default denomination
    accounts     id, member (NULL for the system reserve), handle (unique, lowercase), type
    credexes     one row per offer: issuer, receiver, amount in 1/10000 units, status;
                 settled_seq orders accepted credexes (the ledger), NULL until accepted
    idempotency  (scope, key) -> operation, request fingerprint, first response JSON

Balances are not stored: a balance is the sum of the accepted credexes in minus those
out, so it can never drift from the movements that explain it.

Concurrency. One connection per :class:`LedgerDatabase`, shared by threads under a lock;
WAL journal so readers in other processes never block. Every write runs in
``BEGIN IMMEDIATE``, which takes SQLite's write lock *before* the first read, so a
balance check and the insert that depends on it cannot interleave with another
process's::

    process A: BEGIN IMMEDIATE, reads available 50   process B: BEGIN IMMEDIATE waits
    process A: inserts the 50 offer, COMMIT           process B: reads available 0, refuses

With a plain ``BEGIN`` both would read 50 and both offers would be written.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .backend import BackendUnavailable

SCHEMA_VERSION = 1
BUSY_TIMEOUT_MS = 5_000
"""How long a write waits for another process's transaction before giving up."""

RESERVE_ACCOUNT_ID = "00000000-0000-0000-0000-000000000000"
"""The system account deposits and welcome grants come from; its balance goes negative."""
RESERVE_HANDLE = "credex_reserve"
SYSTEM_TYPE = "SYSTEM"

_DDL = """
CREATE TABLE IF NOT EXISTS members (
    id                   TEXT PRIMARY KEY,
    phone                TEXT NOT NULL UNIQUE,
    first_name           TEXT NOT NULL,
    last_name            TEXT NOT NULL,
    default_denomination TEXT NOT NULL,
    created_at           TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS accounts (
    seq                  INTEGER PRIMARY KEY AUTOINCREMENT,
    id                   TEXT NOT NULL UNIQUE,
    member_id            TEXT REFERENCES members(id),
    handle               TEXT NOT NULL UNIQUE,
    name                 TEXT NOT NULL,
    type                 TEXT NOT NULL,
    default_denomination TEXT NOT NULL,
    created_at           TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS accounts_member ON accounts(member_id);
CREATE TABLE IF NOT EXISTS credexes (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    id           TEXT NOT NULL UNIQUE,
    issuer_id    TEXT NOT NULL REFERENCES accounts(id),
    receiver_id  TEXT NOT NULL REFERENCES accounts(id),
    amount       INTEGER NOT NULL CHECK (amount > 0),
    denomination TEXT NOT NULL,
    status       TEXT NOT NULL
                 CHECK (status IN ('PENDING', 'ACCEPTED', 'DECLINED', 'CANCELLED')),
    description  TEXT NOT NULL DEFAULT '',
    created_at   TEXT NOT NULL,
    settled_seq  INTEGER UNIQUE,
    settled_at   TEXT,
    CHECK (issuer_id != receiver_id)
);
CREATE INDEX IF NOT EXISTS credexes_issuer ON credexes(issuer_id, status, denomination);
CREATE INDEX IF NOT EXISTS credexes_receiver ON credexes(receiver_id, status, denomination);
CREATE TABLE IF NOT EXISTS idempotency (
    scope       TEXT NOT NULL,
    key         TEXT NOT NULL,
    operation   TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    response    TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    PRIMARY KEY (scope, key)
);
"""

_RESERVE = """
INSERT OR IGNORE INTO accounts (id, member_id, handle, name, type, default_denomination,
                                created_at)
VALUES (?, NULL, ?, 'Credex reserve', ?, 'USD', '1970-01-01T00:00:00+00:00')
"""


class LedgerDatabase:
    """The ledger's SQLite connection, shared by threads, with read and write transactions."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        # isolation_level=None: no implicit transactions; BEGIN/COMMIT are ours alone.
        self._conn = sqlite3.connect(
            path, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_MS / 1000
        )
        self._conn.row_factory = sqlite3.Row
        with self._guard():
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=FULL")  # a ledger: durable on commit
            self._conn.execute("PRAGMA foreign_keys=ON")
        self._create_schema()

    def _create_schema(self) -> None:
        with self.write() as conn:
            for statement in _DDL.split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(_RESERVE, (RESERVE_ACCOUNT_ID, RESERVE_HANDLE, SYSTEM_TYPE))
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One ``BEGIN IMMEDIATE`` transaction: committed whole, or rolled back on error."""
        with self._guard():
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._rollback()
                raise
            self._conn.execute("COMMIT")

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """A read transaction: every query inside sees the same snapshot."""
        with self._guard():
            self._conn.execute("BEGIN")
            try:
                yield self._conn
            finally:
                self._rollback()

    def _rollback(self) -> None:
        # SQLite has already rolled back after some errors (disk full, I/O error).
        if self._conn.in_transaction:
            self._conn.execute("ROLLBACK")

    def close(self) -> None:
        """Close the connection; the file stays."""
        with self._lock:
            self._conn.close()

    @contextmanager
    def _guard(self) -> Iterator[None]:
        with self._lock:
            try:
                yield
            except sqlite3.OperationalError as exc:
                # "database is locked" after the busy timeout, disk full, file gone...
                raise BackendUnavailable(f"ledger database {self.path}: {exc}") from exc
