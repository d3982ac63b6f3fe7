"""Any JSON document round-trips exactly, and patches follow RFC 7386 - proved by hypothesis."""

from __future__ import annotations

import uuid
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from statehq import StateStore
from statehq.store import codec

keys = st.text(max_size=8).filter(lambda k: k not in codec.STORE_FIELDS)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=24,
)
documents = st.dictionaries(keys, values, max_size=6)
server_settings = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386, section 2, as written."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def body(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k not in codec.STORE_FIELDS}


@given(documents)
def test_flatten_then_unflatten_is_identity(doc: dict[str, Any]) -> None:
    fields = {path.encode("utf-8", "surrogatepass"): v for path, v in codec.flatten(doc).items()}
    assert codec.unflatten(fields, "m") == doc


@server_settings
@given(doc=documents)
def test_any_document_round_trips_through_the_server(
    store: StateStore, doc: dict[str, Any]
) -> None:
    member = f"m-{uuid.uuid4().hex}"
    written = store.mutate(member, lambda _: doc)
    read = store.get(member)
    assert read is not None
    assert body(written.doc) == doc
    assert body(read.doc) == doc


@server_settings
@given(first=documents, patch=documents)
def test_update_applies_rfc7386_merge_patch(
    store: StateStore, first: dict[str, Any], patch: dict[str, Any]
) -> None:
    member = f"m-{uuid.uuid4().hex}"
    store.update(member, first)
    snap = store.update(member, patch)
    assert body(snap.doc) == merge_patch(merge_patch({}, first), patch)
    assert snap.version == 2


def test_edge_values_round_trip(store: StateStore, member: str) -> None:
    doc = {
        "empty_list": [],
        "empty_obj": {},
        "nested_empty": [[], {}, [[]]],
        "big": 2**64 + 1,
        "negative_big": -(2**70),
        "float": 0.1,
        "tiny": 5e-324,
        "astral": "\U0001f600 \U00010348",
        "lone_surrogate": "\ud800",
        "dots.in.key": {"and\\backslash": {'"quote"': 1}},
        "unicode key é": "ok",
        "deep": {"a": {"b": {"c": {"d": {"e": {"f": []}}}}}},
        "": {"": None, ".": {"": 1}},  # empty keys: hypothesis found these once collided
    }
    store.mutate(member, lambda _: doc)
    read = store.get(member)
    assert read is not None
    assert body(read.doc) == doc
    assert isinstance(read.doc["empty_list"], list)
    assert store.history(member)[0].doc["big"] == 2**64 + 1
