"""Backup files: written consistently while the bot writes, restored line by line."""

from __future__ import annotations

import io
import json
import threading
from typing import Any

import pytest

from statehq import StateStore
from statehq.errors import InvalidInput
from statehq.state import StateManager
from statehq.state.backup import BackupHeader, read_backup, restore_backup, write_backup
from statehq.store import AuditEvent, SessionRecord


def member_doc(member_id: str, n: int) -> dict[str, Any]:
    return {"member_id": member_id, "channel": None, "stage": "INIT", "profile": {"n": n}}


def backup_of(store: StateStore, **options: Any) -> bytes:
    stream = io.BytesIO()
    write_backup(store, stream, **options)
    return stream.getvalue()


def test_a_backup_restores_into_an_empty_store(
    manager: StateManager, store: StateStore, server_url: str
) -> None:
    for n in range(5):
        store.update(f"member:m{n}", member_doc(f"m{n}", n))
        store.update(f"member:m{n}", {"profile": {"n": n + 100}})
    calls: list[tuple[int, int | None]] = []
    stream = io.BytesIO()
    summary = write_backup(store, stream, progress=lambda done, total: calls.append((done, total)))
    assert summary.sessions == 5
    assert calls[-1] == (5, 5)
    header, lines = read_backup(io.BytesIO(stream.getvalue()))
    assert (header.sessions, header.with_audit) == (5, False)
    assert [number for number, _ in lines] == [2, 3, 4, 5, 6]
    with StateStore.open(url=server_url, key_prefix=f"{store.settings.key_prefix}x") as empty:
        restored = restore_backup(
            StateManager(empty, stages=manager.stages), io.BytesIO(stream.getvalue())
        )
        assert restored.counts["restored"] == 5
        assert restored.complete
        for n in range(5):
            before, after = store.get(f"member:m{n}"), empty.get(f"member:m{n}")
            assert before is not None
            assert after is not None
            assert (after.doc, after.version) == (before.doc, before.version)


def test_every_record_is_consistent_while_writes_continue(store: StateStore) -> None:
    """Each write puts its own version number in the document; a record whose document
    and version came from different moments would show two different numbers."""
    members = [f"member:c{n}" for n in range(20)]
    for key in members:
        store.update(key, {"stage": "INIT", "profile": {"at": 1}})
    stop = threading.Event()
    written = threading.Semaphore(0)

    def keep_writing() -> None:
        while not stop.is_set():
            for key in members:
                store.mutate(key, lambda doc: {**doc, "profile": {"at": doc["_version"] + 1}})
                written.release()

    def after_each_session(done: int, total: int | None) -> None:
        # At least one write lands between any two reads of the backup.
        assert written.acquire(timeout=30)

    writer = threading.Thread(target=keep_writing)
    writer.start()
    try:
        backups = [backup_of(store, progress=after_each_session) for _ in range(3)]
    finally:
        stop.set()
        writer.join()
    final = {key: store.get(key).version for key in members}  # type: ignore[union-attr]
    assert sum(final.values()) >= len(members) + 3 * len(members)  # the writer kept writing
    for backup in backups:
        records = [SessionRecord.from_json(line) for line in backup.splitlines()[1:-1]]
        assert len(records) == len(members)
        for record in records:
            assert record.doc["profile"]["at"] == record.version
            for entry in record.history:
                assert entry.doc["profile"]["at"] == entry.version


def test_a_bad_line_is_skipped_with_its_number_and_the_rest_restored(
    manager: StateManager, store: StateStore
) -> None:
    store.update("member:ok", member_doc("ok", 1))
    good = backup_of(store).splitlines()
    store.delete("member:ok")
    invalid_doc = SessionRecord("member:bad", 1, 60.0, {"colour": "red", "stage": "INIT"})
    lines = [
        good[0],
        b"{not json",
        b"",
        json.dumps({"key": "member:x", "version": "7"}).encode(),
        invalid_doc.to_json().encode(),
        SessionRecord("sms:123", 1, 60.0, {"stage": "INIT"}).to_json().encode(),
        good[1],
        b'{"statehq_backup_end": {"sessions": 5}}',
    ]
    summary = restore_backup(manager, io.BytesIO(b"\n".join(lines)))
    assert summary.counts["restored"] == 1
    assert not summary.complete
    assert [problem.split(":")[0] for problem in summary.invalid] == [
        "line 2",
        "line 4",
        "line 5",
        "line 6",
    ]
    assert "not JSON" in summary.invalid[0]
    assert "version must be a whole number" in summary.invalid[1]
    assert "colour: unknown field" in summary.invalid[2]
    assert "unknown channel type 'sms'" in summary.invalid[3]
    assert store.get("member:ok") is not None
    assert store.get("member:bad") is None  # nothing of a skipped line is written


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is empty"),
        (b"\n\n", "is empty"),
        (b"hello\n", "is not a statehq backup"),
        (b'{"key": "member:1"}\n', "is not a statehq backup"),
        (b"\xff\xfe\n", "is not a statehq backup"),
        (b'{"statehq_backup": 2}\n', "format 2; this statehq"),
    ],
)
def test_a_file_that_is_not_a_backup_is_refused(
    manager: StateManager, content: bytes, message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        restore_backup(manager, io.BytesIO(content))


def test_restoring_audits_each_session_with_where_it_came_from(
    manager: StateManager, store: StateStore
) -> None:
    store.update("member:a", member_doc("a", 1), audit=[AuditEvent("state.updated")])
    backup = backup_of(store, with_audit=True)
    created = BackupHeader.parse(backup.splitlines()[0]).created
    store.delete("member:a")
    summary = restore_backup(manager, io.BytesIO(backup), reason="drill")
    assert summary.counts["restored"] == 1
    last = store.audit_read("member:a")[-1]
    assert (last.event, last.reason, last.detail) == (
        "session.restored",
        "drill",
        {"backup": created},
    )


def test_a_file_cut_short_is_reported_and_what_it_holds_restored(
    manager: StateManager, store: StateStore
) -> None:
    for n in range(3):
        store.update(f"member:c{n}", member_doc(f"c{n}", 1))
    whole = backup_of(store).splitlines()
    assert json.loads(whole[-1]) == {"statehq_backup_end": {"sessions": 3}}
    for n in range(3):
        store.delete(f"member:c{n}")
    cut = restore_backup(manager, io.BytesIO(b"\n".join(whole[:3])))
    assert cut.counts["restored"] == 2
    assert not cut.complete
    assert cut.invalid == [
        "the file ends without its last line after 2 sessions: it was cut "
        "short (a full disk, a partial copy?)"
    ]
    header_only = restore_backup(manager, io.BytesIO(whole[0]))
    assert not header_only.complete
    assert restore_backup(manager, io.BytesIO(b"\n".join(whole))).complete
