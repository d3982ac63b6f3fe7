"""Legacy sessions of the seed project mapped to statehq documents (no server needed).

Each test builds a legacy session as the source reader would hand it over and checks
the document, its key, its bindings and what was reported as not mapped. Every mapped
document must pass the state validator.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import pickle
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from statehq.migrate.importer import one_per_session_key
from statehq.migrate.layouts import CACHE_FIELDS, CHANNEL_DOCUMENT, USER_STATE, classify
from statehq.migrate.mapping import Mapped, map_session
from statehq.migrate.pieces import BotOutline
from statehq.migrate.source import LegacyPart, LegacySession
from statehq.migrate.values import Unreadable, read_document, read_scalar
from statehq.state.validator import StateValidator
from tests.state.stages import make_jwt, make_stages

OUTLINE = BotOutline(
    make_stages(),
    {
        "offer": ("amount", "recipient", "confirm"),
        "ledger": ("page",),
        "register": ("first_name", "last_name"),
    },
)
TOKEN = make_jwt(time.time() + 300, subject="m-1")
ACCOUNTS = [
    {"accountID": "acc-1", "accountHandle": "ann", "accountName": "Ann"},
    {"accountID": "acc-2", "accountHandle": "ann-shop", "accountName": "Ann's shop"},
]
MIGRATED = [  # the same accounts under the names statehq's bots read
    {"id": "acc-1", "handle": "ann", "name": "Ann"},
    {"id": "acc-2", "handle": "ann-shop", "name": "Ann's shop"},
]


def session(parts: dict[str, Any], ttl: float | None = 200.0) -> LegacySession:
    """A legacy session from ``{source key: value}`` (values JSON-encoded unless bytes)."""
    read = {}
    for key, value in parts.items():
        legacy = classify(key)
        assert legacy is not None, key
        raw = value if isinstance(value, bytes) else json.dumps(value).encode()
        read[legacy.part] = LegacyPart(legacy, raw, ttl)
    first = next(iter(read.values())).key
    return LegacySession(first.layout, first.identifier, first.cache_prefix, read)


def mapped(parts: dict[str, Any], ttl: float | None = 200.0) -> Mapped:
    result = map_session(session(parts, ttl), OUTLINE)
    if result.doc is not None:
        assert StateValidator(OUTLINE.stages).violations(result.doc) == []
    assert TOKEN not in repr(result.unmapped)
    return result


def notes(result: Mapped) -> dict[str, str]:
    return {item.field: item.why for item in result.unmapped}


# -- keys and values -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "layout", "identifier", "cache", "part"),
    [
        ("channel:263771234567", CHANNEL_DOCUMENT, "263771234567", "", "document"),
        ("user_state:263771234567", USER_STATE, "263771234567", "", "document"),
        ("263771234567", CACHE_FIELDS, "263771234567", "", "state"),
        (":1:263771234567_stage", CACHE_FIELDS, "263771234567", ":1:", "stage"),
        (
            "vimbiso:2:263771234567_jwt_token",
            CACHE_FIELDS,
            "263771234567",
            "vimbiso:2:",
            "jwt_token",
        ),
        (":1:263771234567", CACHE_FIELDS, "263771234567", ":1:", "state"),
    ],
)
def test_keys_of_each_layout_are_recognised(
    key: str, layout: str, identifier: str, cache: str, part: str
) -> None:
    legacy = classify(key)
    assert legacy is not None
    assert (legacy.layout, legacy.identifier, legacy.cache_prefix, legacy.part) == (
        layout,
        identifier,
        cache,
        part,
    )


@pytest.mark.parametrize(
    "key",
    [
        "t1:{whatsapp:263771234567}:doc",  # statehq's own keys carry hash tags
        "t1:{channel:263771234567}:audit",
        "263771234567_lock",
        "user:263771234567:state",
        "celery-task-meta-1",
        "12",
    ],
)
def test_other_keys_are_left_alone(key: str) -> None:
    assert classify(key) is None


def test_django_pickles_are_read_as_plain_data() -> None:
    when = dt.datetime(2024, 5, 1, 12, 30, tzinfo=dt.UTC)
    raw = pickle.dumps({"amount": Decimal("10.50"), "at": when, "tags": ("a", "b")})
    assert read_document(raw) == {
        "amount": "10.50",
        "at": "2024-05-01T12:30:00+00:00",
        "tags": ["a", "b"],
    }
    assert read_scalar(pickle.dumps("MENU")) == "MENU"
    assert read_scalar(b"5") == 5  # Django stores integers as digits
    assert read_scalar(b"handle_action_menu") == "handle_action_menu"


class _Exploit:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {self.marker}",))


def test_a_pickle_that_would_run_code_is_refused_without_running_it(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    with pytest.raises(Unreadable, match=r"system, which is not plain data"):
        read_document(pickle.dumps({"state": _Exploit(marker)}))
    assert not marker.exists()


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (b'{"stage": "MENU",', "not valid JSON"),
        (b"[1, 2]", "a JSON list, not an object"),
        (b"\xff\xfe", "not UTF-8 text"),
        (b"\x80\x04\x95garbage", "a damaged pickle"),
        (b'{"n": NaN}', "not valid JSON"),
    ],
)
def test_unreadable_documents_say_why(raw: bytes, why: str) -> None:
    with pytest.raises(Unreadable, match=why):
        read_document(raw)


# -- (a) channel:{wa_id} ---------------------------------------------------------------


def channel_doc(**changes: Any) -> dict[str, Any]:
    doc = {
        "channel": {"type": "whatsapp", "identifier": "263771000001"},
        "auth": {"token": TOKEN},
        "dashboard": {
            "member": {"memberID": "m-1", "firstname": "Ann"},
            "accounts": ACCOUNTS,
            "balances": {"USD": "10.00"},
        },
        "active_account_id": "acc-2",
        "component_data": {"path": "offer", "component": "amount", "data": {"note": "rent"}},
        "_metadata": {"initialized_at": "2024-05-01T12:00:00"},
    }
    doc.update(changes)
    return doc


def test_a_signed_in_channel_document_becomes_the_members_session() -> None:
    result = mapped({"channel:263771000001": channel_doc()})
    assert result.session_key == "member:m-1"
    assert result.bindings == ("whatsapp:263771000001",)
    assert result.doc == {
        "member_id": "m-1",
        "channel": {"type": "whatsapp", "identifier": "263771000001"},
        "jwt_token": TOKEN,
        "authenticated": True,
        "profile": {"member": {"memberID": "m-1", "firstname": "Ann"}, "accounts": MIGRATED},
        "current_account": MIGRATED[1],
        "stage": "offer",
        "flow_data": {
            "id": "offer",
            "step": "amount",
            "data": {"note": "rent"},
            "_validation": {"in_progress": False, "attempts": 0, "last_attempt": None},
        },
    }
    assert set(notes(result)) == {"dashboard.balances", "_metadata"}


def test_a_token_that_is_not_a_jwt_is_dropped_and_the_number_signs_in_again() -> None:
    result = mapped({"channel:263771000001": channel_doc(auth={"token": "abc123"})})
    assert result.session_key == "whatsapp:263771000001"
    assert result.bindings == ()
    assert result.doc is not None
    assert "jwt_token" not in result.doc
    assert result.doc["authenticated"] is False
    assert result.doc["stage"] == "INIT"
    assert result.doc["flow_data"] is None  # offer needs a signed-in member
    found = notes(result)
    assert "not a JWT" in found["auth.token"]
    assert "needs a signed-in member" in found["component_data"]
    assert "abc123" not in repr(result.unmapped)


def test_a_flow_or_step_this_bot_lacks_is_reported_not_invented() -> None:
    gone = mapped(
        {"channel:263771000001": channel_doc(component_data={"path": "x", "component": "y"})}
    )
    assert gone.doc is not None
    assert (gone.doc["stage"], gone.doc["flow_data"]) == ("MENU", None)
    assert "not a flow of this bot" in notes(gone)["component_data"]
    step = mapped(
        {"channel:263771000001": channel_doc(component_data={"path": "offer", "component": "pay"})}
    )
    assert "has no step 'pay'" in notes(step)["component_data"]


def test_a_channel_that_disagrees_with_the_key_and_an_unknown_account_are_reported() -> None:
    result = mapped(
        {
            "channel:263771000001": channel_doc(
                channel={"type": "whatsapp", "identifier": "999"}, active_account_id="acc-9"
            )
        }
    )
    assert result.doc is not None
    assert result.doc["channel"]["identifier"] == "263771000001"
    assert "current_account" not in result.doc
    assert {"channel", "active_account_id"} <= set(notes(result))


# -- (b) {mobile}, {mobile}_stage, ... behind :1: --------------------------------------


def test_cache_fields_behind_a_django_prefix_make_one_session() -> None:
    result = mapped(
        {
            ":1:263771000002": pickle.dumps(
                {"profile": {"member": {"memberID": "m-2"}}, "current_account": ACCOUNTS[0]}
            ),
            ":1:263771000002_stage": pickle.dumps("menu"),
            ":1:263771000002_option": pickle.dumps("handle_action_offer_credex"),
            ":1:263771000002_direction": pickle.dumps("OUT"),
            ":1:263771000002_jwt_token": pickle.dumps(TOKEN),
        }
    )
    assert result.session_key == "member:m-2"
    assert result.doc is not None
    assert result.doc["stage"] == "MENU"  # matched but for letter case
    assert result.doc["jwt_token"] == TOKEN
    assert result.doc["current_account"] == MIGRATED[0]
    assert set(notes(result)) == {"_option", "_direction"}


def test_an_unknown_stage_is_reported_and_the_session_starts_at_the_menu() -> None:
    result = mapped(
        {
            "263771000003_stage": b"handle_action_menu",
            "263771000003_jwt_token": TOKEN.encode(),
            "263771000003": json.dumps({"member_id": "m-3", "colour": "blue"}).encode(),
        }
    )
    assert result.session_key == "member:m-3"
    assert result.doc is not None
    assert result.doc["stage"] == "MENU"
    found = notes(result)
    assert "'handle_action_menu' is not a stage of this bot" in found["_stage"]
    assert "unknown legacy field" in found["colour"]


def test_an_unreadable_cached_state_skips_the_session() -> None:
    result = mapped({"263771000004": b"{oops", "263771000004_stage": b"MENU"})
    assert result.doc is None
    assert result.skipped is not None
    assert "not valid JSON" in result.skipped


# -- (c) user_state:{id} ---------------------------------------------------------------


def test_a_user_state_document_keeps_a_pre_login_flow_without_copies_of_identity() -> None:
    doc = {
        "stage": "register",
        "option": "register",
        "flow_data": {
            "id": "register",
            "step": "first_name",
            "data": {"member_id": "x", "channel": {"type": "whatsapp"}, "first_name": "Ann"},
        },
        "last_updated": 1714564800.0,
        "update_from": "handler",
    }
    result = mapped({"user_state:263771000005": doc})
    assert result.session_key == "whatsapp:263771000005"
    assert result.doc is not None
    assert result.doc["stage"] == "register"
    assert result.doc["flow_data"]["data"] == {"first_name": "Ann"}
    assert set(notes(result)) == {
        "option",
        "flow_data.data.member_id",
        "flow_data.data.channel",
        "last_updated",
        "update_from",
    }


def test_the_validator_has_the_last_word_on_what_is_kept() -> None:
    doc = {"stage": "MENU", "jwt_token": TOKEN, "profile": {"member": {"memberID": "m-6"},
           "note": f"Bearer {TOKEN}"}}  # fmt: skip
    result = mapped({"user_state:263771000006": doc})
    assert result.doc is not None
    assert "profile" not in result.doc
    assert "tokens are kept in jwt_token only" in notes(result)["profile.note"]
    assert result.session_key == "member:m-6"  # the member was named before it was dropped


def test_a_menu_stage_without_a_sign_in_starts_at_init() -> None:
    result = mapped({"user_state:263771000007": {"stage": "MENU", "authenticated": True}})
    assert result.doc is not None
    assert result.doc["stage"] == "INIT"
    assert {"stage", "authenticated"} == set(notes(result))


@pytest.mark.parametrize(
    ("key", "raw", "why"),
    [
        ("user_state:ann", b"{}", "not a WhatsApp number"),
        ("user_state:263771000008", b"not json", "not valid JSON"),
        ("channel:263771000009", b'"just text"', "a JSON str, not an object"),
    ],
)
def test_sessions_that_cannot_be_migrated_say_why(key: str, raw: bytes, why: str) -> None:
    result = mapped({key: raw})
    assert result.skipped is not None
    assert why in result.skipped


def test_two_legacy_sessions_of_one_number_the_most_recent_wins() -> None:
    older = map_session(session({"user_state:263771000010": {"stage": "INIT"}}, ttl=30), OUTLINE)
    newer = map_session(session({"channel:263771000010": {}}, ttl=290), OUTLINE)
    assert older.session_key == newer.session_key == "whatsapp:263771000010"
    assert one_per_session_key([older, newer]) == [(older, "channel:263771000010"), (newer, None)]
