"""The salon's diary: a stub backend the bot calls (SQLite, so every worker process shares it).

A real bot would call its booking system's API here. What matters for statehq is the
contract: every call that changes something takes an idempotency key, so a message
processed twice (a redelivery, a worker that died half way) books once.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from dataclasses import dataclass
from datetime import date
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS booking (
    ref TEXT PRIMARY KEY,
    phone TEXT NOT NULL,
    service TEXT NOT NULL,
    day TEXT NOT NULL,
    slot TEXT NOT NULL,
    name TEXT NOT NULL,
    cancelled INTEGER NOT NULL DEFAULT 0,
    idempotency_key TEXT UNIQUE
);
CREATE UNIQUE INDEX IF NOT EXISTS one_per_slot ON booking (day, slot) WHERE cancelled = 0;
"""


class SlotTaken(Exception):
    """Someone else booked that day and time first."""


@dataclass(frozen=True)
class Booking:
    """One appointment."""

    ref: str
    service: str
    day: date
    slot: str
    name: str


class Diary:
    """Bookings in one SQLite file, safe across threads and processes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.executescript(SCHEMA)
        self._lock = threading.Lock()

    def close(self) -> None:
        """Close the file."""
        self._db.close()

    def book(
        self, phone: str, service: str, day: date, slot: str, name: str, *, idempotency_key: str
    ) -> Booking:
        """Book a slot; the same key again returns the first booking. SlotTaken if taken."""
        with self._lock:
            found = self._by_key(idempotency_key)
            if found is not None:
                return found
            ref = "B" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:8].upper()
            try:
                self._db.execute(
                    "INSERT INTO booking (ref, phone, service, day, slot, name, idempotency_key) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (ref, phone, service, day.isoformat(), slot, name, idempotency_key),
                )
            except sqlite3.IntegrityError as clash:
                found = self._by_key(idempotency_key)  # another process, same key
                if found is not None:
                    return found
                raise SlotTaken(f"{day:%a %d %b} at {slot} is taken") from clash
            return Booking(ref, service, day, slot, name)

    def upcoming(self, phone: str) -> list[Booking]:
        """The member's bookings that are not cancelled, soonest first."""
        rows = self._db.execute(
            "SELECT ref, service, day, slot, name FROM booking "
            "WHERE phone = ? AND cancelled = 0 ORDER BY day, slot",
            (phone,),
        ).fetchall()
        return [Booking(r[0], r[1], date.fromisoformat(r[2]), r[3], r[4]) for r in rows]

    def cancel(self, phone: str, ref: str) -> bool:
        """Cancel one of the member's bookings (again: no change); False if not theirs."""
        with self._lock:
            cursor = self._db.execute(
                "UPDATE booking SET cancelled = 1 WHERE ref = ? AND phone = ?", (ref, phone)
            )
            return cursor.rowcount == 1

    def _by_key(self, key: str) -> Booking | None:
        row = self._db.execute(
            "SELECT ref, service, day, slot, name FROM booking WHERE idempotency_key = ?", (key,)
        ).fetchone()
        if row is None:
            return None
        return Booking(row[0], row[1], date.fromisoformat(row[2]), row[3], row[4])
