"""Finding a member from what an operator types, and the report `state show` prints."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from statehq import StateStore
from statehq.errors import InvalidInput, NoLiveSession
from statehq.state import StateManager
from statehq.state.diffs import changes
from statehq.state.inspect import inspect
from statehq.state.lookup import AmbiguousMember, locate
from statehq.store.inbox import Inbox, Update

PHONE = "whatsapp:263771234567"
WEB = "web:263771234567"


def test_a_bare_phone_is_tried_on_every_channel(manager: StateManager) -> None:
    manager.open(PHONE)
    for typed in ("263771234567", "+263 77 123 4567", "+263-77-123-4567", PHONE):
        found = locate(manager, typed)
        assert found.key == PHONE
    assert locate(manager, "263771234567").via == "phone on whatsapp"
    tried = "tried member:263771230000, telegram:263771230000, terminal:"
    with pytest.raises(NoLiveSession, match=tried):
        locate(manager, "263771230000")


def test_a_bare_phone_finds_its_conversations_with_other_numbers(manager: StateManager) -> None:
    # A member who wrote to a number of the numbers file: whatsapp:<phone>@<number>.
    other = "whatsapp:263771234567@106540352242923"
    manager.open(other)
    found = locate(manager, "+263 77 123 4567")
    assert (found.key, found.via) == (other, "phone on whatsapp, number 106540352242923")
    manager.open(PHONE)  # and the default number's: which one is asked, never guessed
    with pytest.raises(AmbiguousMember) as ambiguous:
        locate(manager, "263771234567")
    assert ambiguous.value.candidates == [PHONE, other]
    with pytest.raises(NoLiveSession):
        locate(manager, "26377123456")  # a prefix of the phone is another phone


def test_the_same_identifier_on_two_channels_is_ambiguous(manager: StateManager) -> None:
    manager.open(PHONE)
    manager.open(WEB)
    with pytest.raises(AmbiguousMember) as ambiguous:
        locate(manager, "263771234567")
    assert ambiguous.value.candidates == [WEB, PHONE]
    assert locate(manager, WEB).key == WEB  # given in full, it is not


def test_a_bound_channel_leads_to_its_member(
    manager: StateManager, store: StateStore, token: Callable[..., str]
) -> None:
    session = manager.open(PHONE)
    session.transition("AUTH")
    session.authenticate("m1", token())
    found = locate(manager, "263771234567")
    assert (found.named, found.key) == (PHONE, "member:m1")
    assert locate(manager, "m1").key == "member:m1"
    report = inspect(manager, locate(manager, "member:m1"))
    assert report.bound_channels == [PHONE]
    assert [w.channel for w in report.waiting] == [PHONE]
    web = manager.open("web:abc")
    web.transition("AUTH")
    web.authenticate("m1", token())
    assert store.bound_channels("member:m1") == ["web:abc", PHONE]
    manager.unbind(PHONE, reason="number changed hands")
    assert store.bound_channels("member:m1") == ["web:abc"]


def test_handles_go_through_the_bots_resolver(manager: StateManager) -> None:
    manager.open("member:m9")
    known = {"tendai": "m9"}
    assert locate(manager, "@tendai", handles=known.get).key == "member:m9"
    with pytest.raises(NoLiveSession, match="no live session's current account has that"):
        locate(manager, "@nobody", handles=known.get)  # unknown to the bot: the sessions
    assert locate(manager, "@TENDAI", handles=known.get).key == "member:m9"  # any case
    with pytest.raises(InvalidInput, match="not a channel type"):
        locate(manager, "fax:123")


def test_the_report_shows_what_waits_around_the_member(manager: StateManager) -> None:
    session = manager.open(PHONE)
    session.transition("AUTH")
    inbox = Inbox(manager.store.settings)
    updates = [
        Update(id=f"wamid.{n}", channel=PHONE, kind="text", timestamp=n, text="hi")
        for n in range(3)
    ]
    manager.store.execute(inbox.push(updates))
    report = inspect(manager, locate(manager, PHONE))
    assert (report.status, report.version, report.stage) == ("active", 2, "AUTH")
    assert report.ttl is not None
    assert report.ttl > 0
    waiting = report.waiting[0]
    assert (waiting.backlog, waiting.pending, waiting.dead, waiting.lease) == (3, 0, 0, None)
    assert report.as_dict()["channels"][0]["backlog"] == 3


def test_changes_name_every_leaf_added_removed_or_changed() -> None:
    before = {"stage": "MENU", "profile": {"name": "Ann", "city": "Harare"}, "_version": 3}
    after = {"stage": "AUTH", "profile": {"name": "Ann"}, "jwt_token": "a.b.c", "_version": 4}
    found = {c.path: c.kind for c in changes(before, after)}
    assert found == {"jwt_token": "added", "profile.city": "removed", "stage": "changed"}
    secret = next(c for c in changes(before, after) if c.path == "jwt_token")
    assert secret.as_dict()["after"] != "a.b.c"  # redacted
    assert changes(after, after) == []
    assert [c.kind for c in changes({"a": 1}, {"a": True})] == ["changed"]  # 1 == True


def test_without_a_resolver_a_handle_is_found_in_the_sessions(manager: StateManager) -> None:
    account = {"id": "a1", "handle": "tendai_moyo", "name": "Tendai", "type": "PERSONAL"}
    manager.store.update("member:m7", {"stage": "MENU", "current_account": account})
    for n in range(30):  # others, so the scan pages through the store
        manager.store.update(f"member:x{n}", {"stage": "MENU"})
    found = locate(manager, "@tendai_moyo")
    assert (found.key, found.via) == ("member:m7", "handle @tendai_moyo (current account)")
    with pytest.raises(NoLiveSession, match="no live session's current account"):
        locate(manager, "@nobody")
    twin = {**account, "id": "a2"}
    manager.store.update("member:m8", {"stage": "MENU", "current_account": twin})
    with pytest.raises(AmbiguousMember, match="member:m7, member:m8"):
        locate(manager, "@tendai_moyo")
    with pytest.raises(InvalidInput, match="a handle follows the @"):
        locate(manager, "@")
