"""Every StateValidator rule, each with a test; hypothesis for valid documents and merges."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from statehq.errors import StateValidationError, Violation
from statehq.state import StateValidator
from statehq.state.session import merge_patch
from tests.state.stages import make_jwt, make_stages

VALID: dict[str, Any] = {
    "member_id": None,
    "channel": {"type": "whatsapp", "identifier": "263771234567"},
    "jwt_token": None,
    "authenticated": False,
    "profile": None,
    "current_account": None,
    "flow_data": None,
    "stage": "INIT",
}


@pytest.fixture
def validator() -> StateValidator:
    return StateValidator(make_stages())


def paths(found: list[Violation]) -> set[str]:
    return {v.path for v in found}


def with_(**changes: Any) -> dict[str, Any]:
    doc = copy.deepcopy(VALID)
    doc.update(changes)
    return doc


def in_flow(**flow: Any) -> dict[str, Any]:
    data = {"id": "offer", "step": "amount", "data": {}, "_validation": {"attempts": 0}}
    data.update(flow)
    return with_(member_id="m1", stage="offer", flow_data=data)


def test_a_valid_document_has_no_violations(validator: StateValidator) -> None:
    assert validator.violations(VALID) == []
    assert validator.violations(in_flow()) == []


def test_member_id_is_refused_anywhere_inside_flow_data(validator: StateValidator) -> None:
    nested = in_flow(data={"recipient": {"member_id": "m2"}, "member_id": "m1"})
    assert paths(validator.violations(nested)) == {
        "flow_data.data.member_id",
        "flow_data.data.recipient.member_id",
    }


@pytest.mark.parametrize(
    ("channel", "path"),
    [
        ({"type": "fax", "identifier": "1"}, "channel.type"),
        ({"type": "whatsapp", "identifier": ""}, "channel.identifier"),
        ({"type": "whatsapp"}, "channel.identifier"),
        ({"type": "whatsapp", "identifier": "1", "extra": 1}, "channel.extra"),
        ("whatsapp:1", "channel"),
        (None, "channel"),
    ],
)
def test_channel_is_type_and_identifier_of_a_registered_type(
    validator: StateValidator, channel: Any, path: str
) -> None:
    assert path in paths(validator.violations(with_(channel=channel)))


def test_a_member_session_may_have_no_channel(validator: StateValidator) -> None:
    assert validator.violations(with_(channel=None, member_id="m1")) == []


@pytest.mark.parametrize(
    ("flow", "path"),
    [
        ({"id": "offer"}, "flow_data.step"),
        ({"id": "offer", "step": "a", "data": []}, "flow_data.data"),
        ({"id": "offer", "step": "a", "extra": 1}, "flow_data.extra"),
        (
            {"id": "offer", "step": "a", "_validation": {"attempts": -1}},
            "flow_data._validation.attempts",
        ),
        (
            {"id": "offer", "step": "a", "_validation": {"in_progress": "yes"}},
            "flow_data._validation.in_progress",
        ),
        ("offer", "flow_data"),
    ],
)
def test_flow_data_shape(validator: StateValidator, flow: Any, path: str) -> None:
    doc = with_(member_id="m1", stage="offer", flow_data=flow)
    assert path in paths(validator.violations(doc))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("authenticated", 1),
        ("authenticated", "true"),
        ("member_id", 42),
        ("member_id", ""),
        ("jwt_token", 123),
        ("profile", []),
        ("current_account", "acc"),
        ("stage", 3),
    ],
)
def test_field_types_are_strict(validator: StateValidator, field: str, value: Any) -> None:
    assert field in paths(validator.violations(with_(**{field: value})))


def test_unknown_top_level_fields_are_refused_and_named(validator: StateValidator) -> None:
    found = validator.violations(with_(mobile_number="2637", options={}))
    assert paths(found) == {"mobile_number", "options"}
    assert "unknown field" in found[0].message


def test_store_fields_cannot_be_changed_by_a_write(validator: StateValidator) -> None:
    before = with_(_version=3, _last_updated="2026-01-01T00:00:00Z")
    after = with_(_version=4, _last_updated="2030-01-01T00:00:00Z")
    assert paths(validator.change_violations(before, after)) == {"_version", "_last_updated"}


def test_channel_and_member_id_change_only_through_identity(validator: StateValidator) -> None:
    after = with_(member_id="m1", channel={"type": "web", "identifier": "abc"})
    assert paths(validator.change_violations(VALID, after)) == {"member_id", "channel"}
    assert validator.change_violations(VALID, after, identity=True) == []


def test_stage_must_be_declared_and_match_the_flow(validator: StateValidator) -> None:
    assert "stage" in paths(validator.violations(with_(stage="PAYMENT")))
    assert "flow_data.id" in paths(validator.violations(in_flow(id="ledger")))
    assert "flow_data" in paths(validator.violations(with_(member_id="m1", stage="offer")))


def test_authenticated_needs_a_member(validator: StateValidator) -> None:
    assert "authenticated" in paths(validator.violations(with_(authenticated=True)))


def test_tokens_live_only_in_jwt_token(validator: StateValidator) -> None:
    token = make_jwt(2_000_000_000)
    assert validator.violations(with_(member_id="m1", jwt_token=token)) == []
    leaked = in_flow(data={"auth": f"Bearer {token}"})
    assert paths(validator.violations(leaked)) == {"flow_data.data.auth"}
    opaque = with_(profile={"header": "Authorization: Bearer s3cr3t-opaque"})
    assert paths(validator.violations(opaque)) == {"profile.header"}
    as_key = with_(profile={token: 1})
    assert paths(validator.violations(as_key)) == {"profile (a key)"}


def test_a_sender_id_shaped_like_a_token_still_has_a_session(validator: StateValidator) -> None:
    # Found by the webhook fuzz: a sender "QWAVibBVLeyJsz.iqUYUnsA-E." was buried as a
    # dead letter because its identity was taken for a leaked token.
    sender = {"type": "whatsapp", "identifier": "QWAVibBVLeyJsz.iqUYUnsA-E."}
    assert validator.violations(with_(channel=sender)) == []
    assert validator.violations(with_(member_id="eyJsz.iqU.x", channel=None)) == []


def test_every_violation_is_listed_with_its_path(validator: StateValidator) -> None:
    bad = with_(authenticated="no", stage="NOWHERE", extra=1, channel={"type": "fax"})
    with pytest.raises(StateValidationError) as caught:
        validator.check("whatsapp:1", VALID, bad, identity=True)
    listed = paths(caught.value.violations)
    assert {"authenticated", "stage", "extra", "channel.type", "channel.identifier"} <= listed
    for violation in caught.value.violations:
        assert f"  - {violation.path}: {violation.message}" in str(caught.value)


# -- properties ----------------------------------------------------------------------------

json_leaf = st.none() | st.booleans() | st.integers() | st.text(max_size=8)
json_value = st.recursive(
    json_leaf,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
safe_keys = st.text(max_size=6).filter(lambda k: k != "member_id")
flow_payload = st.dictionaries(
    safe_keys,
    st.recursive(json_leaf, lambda inner: st.lists(inner, max_size=3), max_leaves=5),
    max_size=4,
)


@st.composite
def valid_documents(draw: st.DrawFn) -> dict[str, Any]:
    member = draw(st.none() | st.text(min_size=1, max_size=10))
    in_flow_now = member is not None and draw(st.booleans())
    doc: dict[str, Any] = {
        "member_id": member,
        "channel": {"type": draw(st.sampled_from(["whatsapp", "web"])), "identifier": "x1"},
        "authenticated": member is not None and draw(st.booleans()),
        "profile": draw(st.none() | st.dictionaries(safe_keys, json_leaf, max_size=3)),
        "stage": draw(st.sampled_from(["INIT", "AUTH", "MENU"])),
    }
    if in_flow_now:
        flow = draw(st.sampled_from(["offer", "ledger", "register"]))
        doc["stage"] = flow
        doc["flow_data"] = {"id": flow, "step": "s1", "data": draw(flow_payload)}
    return doc


@given(valid_documents())
@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
def test_generated_valid_documents_pass(doc: dict[str, Any]) -> None:
    assert StateValidator(make_stages()).violations(doc) == []


@given(valid_documents(), json_value, st.sampled_from(["member_id", "bogus", "stage"]))
@settings(max_examples=150)
def test_a_broken_document_is_always_reported(doc: dict[str, Any], junk: Any, where: str) -> None:
    validator = StateValidator(make_stages())
    assume(where != "member_id" or "flow_data" in doc)
    if where == "member_id":
        doc["flow_data"]["data"]["member_id"] = junk
    elif where == "stage":
        doc["stage"] = "UNDECLARED"
    else:
        doc["bogus"] = junk
        where = "bogus"
    assert any(where in v.path for v in validator.violations(doc))


@given(json_value, json_value)
@settings(max_examples=200)
def test_merge_patch_follows_rfc_7386(target: Any, patch: Any) -> None:
    merged = merge_patch(target, patch)
    if not isinstance(patch, dict):
        assert merged == patch
        return
    base = target if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            assert key not in merged
        elif not isinstance(value, dict):
            assert merged[key] == value
    for key in base:
        if key not in patch:
            assert merged[key] == base[key]
