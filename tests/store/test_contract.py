"""The store's contract, run against every server topology (see conftest.TOPOLOGIES)."""

from __future__ import annotations

import time
from typing import Any

import pytest
import redis

from statehq import (
    DEFAULT_PRESERVE,
    CorruptState,
    DocumentTooLarge,
    InvalidInput,
    InvalidMemberId,
    InvalidMessageId,
    InvalidPatch,
    LeaseBusy,
    LeaseLost,
    MutateTimeout,
    SessionStatus,
    StateStore,
    VersionConflict,
    VersionNotFound,
)


def raw(store: StateStore) -> redis.Redis:
    """A plain client on the same server, to look at what the store wrote."""
    return store._client


def member_keys(store: StateStore, member: str) -> list[bytes]:
    return sorted(raw(store).scan_iter(match=f"{store.settings.key_prefix}:{{{member}}}:*"))


# -- get / update ----------------------------------------------------------------------------


def test_get_of_unknown_member_is_none(store: StateStore, member: str) -> None:
    assert store.get(member) is None
    assert store.status(member) is SessionStatus.NONE


def test_first_update_creates_version_1(store: StateStore, member: str) -> None:
    snap = store.update(member, {"member_id": None, "authenticated": False})
    assert snap.version == 1
    assert snap.doc == {
        "authenticated": False,
        "_version": 1,
        "_last_updated": snap.last_updated,
    }
    assert snap.last_updated is not None
    assert snap.last_updated.endswith("Z")
    assert snap.ttl == pytest.approx(300, abs=1)


def test_get_returns_what_update_returned(store: StateStore, member: str) -> None:
    written = store.update(member, {"flow_data": {"id": "offer", "step": 2, "data": {}}})
    read = store.get(member)
    assert read is not None
    assert read.doc == written.doc
    assert read.version == written.version
    assert read.doc["flow_data"]["data"] == {}


def test_merge_patch_semantics(store: StateStore, member: str) -> None:
    store.update(member, {"a": {"b": 1, "c": {"d": 2}}, "e": [1, 2], "f": "x"})
    snap = store.update(member, {"a": {"b": None, "c": 5}, "e": {"g": 1}, "f": None, "h": {}})
    body = {k: v for k, v in snap.doc.items() if not k.startswith("_")}
    assert body == {"a": {"c": 5}, "e": {"g": 1}, "h": {}}


def test_each_write_bumps_version_by_one(store: StateStore, member: str) -> None:
    versions = [store.update(member, {"n": i}).version for i in range(5)]
    assert versions == [1, 2, 3, 4, 5]


def test_returned_doc_is_a_private_copy(store: StateStore, member: str) -> None:
    snap = store.update(member, {"profile": {"name": "Ann"}})
    snap.doc["profile"]["name"] = "changed behind the store's back"
    again = store.get(member)
    assert again is not None
    assert again.doc["profile"]["name"] == "Ann"


def test_compare_and_set_conflict_carries_both_versions(store: StateStore, member: str) -> None:
    store.update(member, {"n": 1})
    store.update(member, {"n": 2})
    with pytest.raises(VersionConflict) as caught:
        store.update(member, {"n": 3}, expected_version=1)
    assert (caught.value.expected_version, caught.value.actual_version) == (1, 2)
    assert "expected version 1, found 2" in str(caught.value)
    snap = store.get(member)
    assert snap is not None
    assert (snap.version, snap.doc["n"]) == (2, 2)


def test_compare_and_set_matching_version_applies(store: StateStore, member: str) -> None:
    store.update(member, {"n": 1})
    assert store.update(member, {"n": 2}, expected_version=1).version == 2


def test_expected_version_zero_means_create_only(store: StateStore, member: str) -> None:
    assert store.update(member, {"n": 1}, expected_version=0).version == 1
    with pytest.raises(VersionConflict):
        store.update(member, {"n": 2}, expected_version=0)


# -- bad input is refused, nothing is written ------------------------------------------------


@pytest.mark.parametrize(
    "patch",
    [
        ["not", "an", "object"],
        "text",
        None,
        {"_version": 7},
        {"_last_updated": "2020-01-01"},
        {"x": float("nan")},
        {"x": {1: "non-string key"}},
        {"x": object()},
        {"x": [float("inf")]},
    ],
)
def test_bad_patches_are_refused_and_change_nothing(
    store: StateStore, member: str, patch: Any
) -> None:
    before = store.update(member, {"keep": "me"})
    with pytest.raises(InvalidPatch):
        store.update(member, patch)
    after = store.get(member)
    assert after is not None
    assert after.doc == before.doc


@pytest.mark.parametrize(
    ("member_id", "reason"),
    [
        ("", "non-empty"),
        (" padded", "spaces"),
        ("x" * 201, "limit is 200"),
        ("a{b}", "'{' or '}'"),
        ("line\nbreak", "control"),
        (12345, "must be a string"),
    ],
)
def test_bad_member_ids_are_refused(store: StateStore, member_id: Any, reason: str) -> None:
    keys_before = raw(store).dbsize()
    with pytest.raises(InvalidMemberId, match=reason):
        store.update(member_id, {"a": 1})
    assert raw(store).dbsize() == keys_before


@pytest.mark.parametrize("message_id", ["", "x" * 257, "a\tb", 7])
def test_bad_message_ids_are_refused(store: StateStore, member: str, message_id: Any) -> None:
    with pytest.raises(InvalidMessageId):
        store.update(member, {"a": 1}, message_id=message_id)
    assert store.get(member) is None


def test_oversized_document_is_refused_whole(server_url: str, prefix: str, member: str) -> None:
    with StateStore.open(url=server_url, key_prefix=prefix, max_document_bytes=2000) as store:
        store.update(member, {"small": "x" * 100})
        with pytest.raises(DocumentTooLarge) as caught:
            store.update(member, {"big": "y" * 3000, "small": None})
        assert caught.value.limit == 2000
        assert caught.value.size > 3000
        snap = store.get(member)
        assert snap is not None
        assert (snap.version, snap.doc["small"]) == (1, "x" * 100)
        assert len(store.history(member)) == 1


# -- dedup -----------------------------------------------------------------------------------


def test_same_message_id_applies_once(store: StateStore, member: str) -> None:
    first = store.update(member, {"offers": 1}, message_id="wamid.ABC")
    again = store.update(member, {"offers": 2}, message_id="wamid.ABC")
    assert not first.duplicate
    assert again.duplicate
    assert again.version == first.version
    assert again.doc["offers"] == 1
    assert store.update(member, {"offers": 3}, message_id="wamid.DEF").version == 2


def test_dedup_mark_outlives_the_session(server_url: str, prefix: str, member: str) -> None:
    with StateStore.open(url=server_url, key_prefix=prefix, session_ttl=0.3) as store:
        store.update(member, {"n": 1}, message_id="wamid.1")
        time.sleep(0.5)
        assert store.get(member) is None
        assert store.update(member, {"n": 2}, message_id="wamid.1").duplicate
        assert store.get(member) is None
        ttl = raw(store).pttl(store._ops.keys.member(member).message("wamid.1"))
        assert ttl > 6 * 86_400_000


def test_refused_write_leaves_no_dedup_mark(store: StateStore, member: str) -> None:
    store.update(member, {"n": 1})
    with pytest.raises(VersionConflict):
        store.update(member, {"n": 2}, expected_version=5, message_id="wamid.X")
    assert not store.update(member, {"n": 3}, message_id="wamid.X").duplicate


# -- mutate ----------------------------------------------------------------------------------


def test_mutate_returning_a_new_document(store: StateStore, member: str) -> None:
    store.update(member, {"count": 1, "drop": True})
    snap = store.mutate(member, lambda d: {"count": d["count"] + 1})
    assert {k: v for k, v in snap.doc.items() if not k.startswith("_")} == {"count": 2}


def test_mutate_changing_in_place(store: StateStore, member: str) -> None:
    snap = store.mutate(member, lambda d: d.setdefault("items", []).append("a"))
    assert snap.doc["items"] == ["a"]
    assert snap.version == 1


def test_mutate_can_store_null_values(store: StateStore, member: str) -> None:
    snap = store.mutate(member, lambda d: {"member_id": None, "flow_data": None})
    assert snap.doc["member_id"] is None
    assert "flow_data" in snap.doc


def test_mutate_refuses_changing_the_version(store: StateStore, member: str) -> None:
    store.update(member, {"a": 1})
    with pytest.raises(InvalidPatch, match="set by the store"):
        store.mutate(member, lambda d: {**d, "_version": 99})


def test_mutate_gives_up_at_its_deadline_with_a_clear_error(store: StateStore, member: str) -> None:
    store.update(member, {"n": 0})

    def always_loses(doc: dict[str, Any]) -> dict[str, Any]:
        store.update(member, {"other": doc.get("n")})  # another writer wins every race
        return {**doc, "n": doc["n"] + 1}

    started = time.monotonic()
    with pytest.raises(MutateTimeout) as caught:
        store.mutate(member, always_loses, deadline=0.2)
    assert caught.value.attempts > 1
    assert "gave up" in str(caught.value)
    assert time.monotonic() - started < 2
    snap = store.get(member)
    assert snap is not None
    assert snap.doc["n"] == 0


# -- history, rollback, cleanup --------------------------------------------------------------


def test_history_keeps_the_last_n_versions_newest_first(
    server_url: str, prefix: str, member: str
) -> None:
    with StateStore.open(url=server_url, key_prefix=prefix, history_length=3) as store:
        for i in range(5):
            store.update(member, {"step": i})
        entries = store.history(member)
        assert [e.version for e in entries] == [5, 4, 3]
        assert [e.doc["step"] for e in entries] == [4, 3, 2]


def test_rollback_restores_a_version_as_a_new_version(store: StateStore, member: str) -> None:
    store.update(member, {"flow_data": {"id": "offer", "step": "amount"}, "profile": {"n": 1}})
    store.update(member, {"flow_data": {"step": "confirm", "amount": 9}, "extra": [1]})
    snap = store.rollback(member, 1)
    assert snap.version == 3
    assert snap.doc["flow_data"] == {"id": "offer", "step": "amount"}
    assert "extra" not in snap.doc
    assert store.history(member)[0].version == 3


def test_rollback_to_a_version_not_in_history(store: StateStore, member: str) -> None:
    store.update(member, {"a": 1})
    with pytest.raises(VersionNotFound, match="held: 1"):
        store.rollback(member, 42)


def test_cleanup_keeps_preserved_fields_only(store: StateStore, member: str) -> None:
    doc = {
        "member_id": "m-1",
        "channel": {"type": "whatsapp", "identifier": "263771234567"},
        "jwt_token": "t",
        "authenticated": True,
        "profile": {"name": "Ann"},
        "current_account": {"handle": "ann"},
        "flow_data": {"id": "offer", "data": {"amount": 9}},
        "scratch": [1, 2],
    }
    store.update(member, doc)
    snap = store.cleanup(member)
    assert snap is not None
    body = {k: v for k, v in snap.doc.items() if not k.startswith("_")}
    assert body == {k: doc[k] for k in DEFAULT_PRESERVE}
    assert snap.version == 2


def test_cleanup_with_custom_preserve(store: StateStore, member: str) -> None:
    store.update(member, {"a.b": 1, "a": {"x": 1}, "c": 2})
    snap = store.cleanup(member, preserve=("a.b",))
    assert snap is not None
    assert {k for k in snap.doc if not k.startswith("_")} == {"a.b"}


def test_cleanup_of_missing_session_writes_nothing(store: StateStore, member: str) -> None:
    assert store.cleanup(member) is None
    assert member_keys(store, member) == []


# -- TTL and expiry --------------------------------------------------------------------------


def test_every_session_key_expires_together(server_url: str, prefix: str, member: str) -> None:
    with StateStore.open(url=server_url, key_prefix=prefix, session_ttl=0.4) as store:
        store.update(member, {"a": 1})
        keys = store._ops.keys.member(member)
        ttls = [raw(store).pttl(k) for k in (keys.doc, keys.hist)]
        assert all(300 <= t <= 400 for t in ttls)
        time.sleep(0.6)
        assert store.get(member) is None
        assert store.history(member) == []
        assert store.status(member) is SessionStatus.EXPIRED


def test_touch_and_writes_slide_the_ttl(server_url: str, prefix: str, member: str) -> None:
    with StateStore.open(url=server_url, key_prefix=prefix, session_ttl=0.6) as store:
        store.update(member, {"a": 1})
        for _ in range(4):
            time.sleep(0.3)
            assert store.touch(member) == pytest.approx(0.6)
        assert store.get(member) is not None  # 1.2 s after the write, kept alive by touch
        time.sleep(0.8)
        assert store.touch(member) is None
        assert store.status(member) is SessionStatus.EXPIRED


def test_versions_continue_after_expiry(server_url: str, prefix: str, member: str) -> None:
    with StateStore.open(url=server_url, key_prefix=prefix, session_ttl=0.3) as store:
        store.update(member, {"a": 1})
        store.update(member, {"a": 2})
        time.sleep(0.5)
        # A new session never reuses a version number, so a stale expected_version
        # from the old session cannot match by accident.
        assert store.update(member, {"a": 3}).version == 3


def test_expired_is_forgotten_after_expired_memory(
    server_url: str, prefix: str, member: str
) -> None:
    with StateStore.open(
        url=server_url, key_prefix=prefix, session_ttl=0.2, expired_memory=0.3
    ) as store:
        store.update(member, {"a": 1})
        time.sleep(0.3)
        assert store.status(member) is SessionStatus.EXPIRED
        time.sleep(0.4)
        assert store.status(member) is SessionStatus.NONE


def test_delete_forgets_everything(store: StateStore, member: str) -> None:
    store.update(member, {"a": 1})
    assert store.delete(member)
    assert store.status(member) is SessionStatus.NONE
    assert not store.delete(member)


# -- leases and fencing ----------------------------------------------------------------------


def test_one_lease_holder_at_a_time(store: StateStore, member: str) -> None:
    first = store.lease(member, ttl=5)
    with pytest.raises(LeaseBusy) as caught:
        store.lease(member, ttl=5)
    assert 0 < caught.value.retry_after <= 5
    assert store.release_lease(first)
    second = store.lease(member, ttl=5)
    assert second.token > first.token


def test_lease_waits_for_the_holder(store: StateStore, member: str) -> None:
    store.lease(member, ttl=0.2)
    started = time.monotonic()
    lease = store.lease(member, ttl=5, wait=2)
    assert 0.1 < time.monotonic() - started < 1.5
    assert lease.token > 0


def test_paused_holders_late_write_is_refused(store: StateStore, member: str) -> None:
    paused = store.lease(member, ttl=0.2)
    store.update(member, {"by": "paused"}, lease=paused)
    time.sleep(0.3)  # the holder stalls (GC pause, slow backend) past its lease
    successor = store.lease(member, ttl=5)
    store.update(member, {"by": "successor"}, lease=successor)
    with pytest.raises(LeaseLost) as caught:
        store.update(member, {"by": "paused, late"}, lease=paused)
    assert caught.value.current == successor.token
    snap = store.get(member)
    assert snap is not None
    assert (snap.doc["by"], snap.version) == ("successor", 2)


def test_write_after_lease_expired_is_refused(store: StateStore, member: str) -> None:
    lease = store.lease(member, ttl=0.1)
    time.sleep(0.2)
    with pytest.raises(LeaseLost, match="no lease is held"):
        store.update(member, {"a": 1}, lease=lease)
    with pytest.raises(LeaseLost):
        store.renew_lease(lease)
    assert store.get(member) is None


def test_renew_keeps_the_lease(store: StateStore, member: str) -> None:
    lease = store.lease(member, ttl=0.3)
    for _ in range(3):
        time.sleep(0.15)
        store.renew_lease(lease)
    assert store.update(member, {"a": 1}, lease=lease).version == 1


def test_lease_context_manager_releases(store: StateStore, member: str) -> None:
    with store.lease(member, ttl=30):
        pass
    store.lease(member, ttl=30)  # would raise LeaseBusy if not released


def test_lease_for_another_member_is_refused(store: StateStore, member: str) -> None:
    lease = store.lease(member, ttl=5)
    with pytest.raises(InvalidInput, match="lease is for member"):
        store.update(f"{member}-b", {"a": 1}, lease=lease)


# -- scripts ---------------------------------------------------------------------------------


def test_scripts_reload_after_script_flush(store: StateStore, member: str) -> None:
    store.update(member, {"a": 1})
    raw(store).script_flush()
    assert store.update(member, {"a": 2}).version == 2
    assert store.get(member) is not None


def test_all_member_keys_share_one_hash_tag(store: StateStore, member: str) -> None:
    store.update(member, {"a": 1}, message_id="wamid.1")
    store.lease(member, ttl=5)
    keys = member_keys(store, member)
    assert len(keys) == 6  # doc, hist, seen, msg, lease, fence
    # Redis Cluster hashes only the text between the first "{" and the next "}".
    tags = {k[k.index(b"{") + 1 : k.index(b"}", k.index(b"{"))] for k in keys}
    assert tags == {member.encode()}


# -- corruption is detected, never returned as data ------------------------------------------


@pytest.mark.parametrize(
    "garbage",
    [
        {"a.b": "1", "_version": "1"},  # a child whose parent object is missing
        {"a": "not json", "_version": "1"},  # a leaf that is not JSON
        {"a": "[1,", "_version": "1"},  # a truncated leaf
        {"a": "1,2", "b": "3", "_version": "1"},  # two values in one leaf: all would shift
        {"a": "", "_version": "1"},  # an empty leaf
        {"a": "1", "a.b": "2", "_version": "1"},  # a child under a leaf
        {"x": "1", "x.\\u002e.y": "2", "_version": "1"},  # a child of a missing escaped key
        {b"\xff": "1", "_version": "1"},  # a field name that is not UTF-8
    ],
)
def test_corrupt_document_raises_corrupt_state(
    store: StateStore, member: str, garbage: dict[str | bytes, str]
) -> None:
    raw(store).hset(store._ops.keys.member(member).doc, mapping=garbage)
    with pytest.raises(CorruptState, match=member):
        store.get(member)
