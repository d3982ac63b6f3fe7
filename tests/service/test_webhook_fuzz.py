"""Hostile input on the signed WhatsApp webhook of the running service, fuzzed and by hand.

What is proved, on a real service (uvicorn, worker threads, Valkey, a fake Graph API):

* a POST signed with the right secret is answered 200 whatever JSON it carries: wrong
  types anywhere, lone surrogates, control characters, huge integers, NaN, long strings,
  nesting thousands deep, integers of thousands of digits; never a 5xx (the store is up);
* the answer counts every update once: a malformed one (a bad id, sender, timestamp,
  status, a body of the wrong type) is rejected alone and the good ones of the same batch
  are queued and answered; a batch of malformed updates only queues nothing;
* updates valid at the edges of the contract (ids of 256 characters, senders of 100,
  timestamp 0 or 9000000000, status names of 40 letters) are all queued;
* a contact's profile, wherever it is broken, never stops a message;
* an id the webhook accepts never becomes a poison message (failing every worker attempt);
* after all of it the workers are alive (a new member is answered), the store answers and
  no update was set aside as a dead letter.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import re
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from service_kit import APP_SECRET, WEBHOOK, Running, settle

from statehq.service.dead import list_dead
from statehq.testing import webhooks as wh
from statehq.testing.fake_graph import FakeGraph

Path = tuple[str | int, ...]
Update = dict[str, Any]

FUZZ = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,
)
ANSWER_KEYS = {"queued", "duplicates", "ignored", "rejected"}
SENDER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
STATUS_NAME = re.compile(r"[a-z_]{1,40}")
MAX_TIMESTAMP = 9_000_000_000


class _Delete:
    """A mutation that removes the key instead of replacing its value."""

    def __repr__(self) -> str:
        return "DELETE"


DELETE = _Delete()


def phone() -> str:
    """A fresh WhatsApp number (not from ``random``, which Hypothesis reseeds per example)."""
    return f"2637{uuid.uuid4().int % 10**8:08d}"


def _repeat(char: str, size: int) -> str:
    return char * size


def _join(before: str, bad: str, after: str) -> str:
    return before + bad + after


def _not_a_sender(value: str) -> bool:
    return not SENDER.fullmatch(value)


def _not_a_status(value: str) -> bool:
    return not STATUS_NAME.fullmatch(value)


def _not_a_timestamp(value: str) -> bool:
    digits = value.isascii() and value.isdigit()
    return not (digits and len(value) <= 10 and int(value) <= MAX_TIMESTAMP)


def _not_a_dict(value: object) -> bool:
    return not isinstance(value, dict)


# -- hostile JSON values --------------------------------------------------------------------

# Every character class a parser can trip on: lone surrogates (Cs), controls (Cc), letters
# and digits of every script (No holds "²", Nd the Arabic-Indic digits: str.isdigit() says
# yes to both).
_chars = st.characters(categories=["Cs", "Cc", "Cf", "L", "Nd", "No", "P", "S", "Zs"])
_tricky = st.sampled_from(
    [
        "",
        " ",
        "\ud800",
        "\udfff",
        "a\ud800b",
        "\udc00\ud800",
        "\x00",
        "wamid.\x00x",
        "x\n",
        "\x7f",
        "\u2028",
        "\ufeff",
        "\u00b2",
        "\u0661\u0662",
        "0",
        "-1",
        "+1",
        "1.5",
        "1e3",
        " 1",
        "9000000000",
        "9000000001",
        "99999999999999999999",
        "text",
        "interactive",
        "button_reply",
        "list_reply",
        "nfm_reply",
        "failed",
        "whatsapp_business_account",
        "messages",
        wh.PHONE_NUMBER_ID,
        "eyJhbGciOi.eyJzdWIiOi.sig",
        "Bearer abc.def",
    ]
)
# Long strings, cheaply: one character repeated, at and around the 256-character id limit.
_long = st.builds(
    _repeat,
    _chars,
    st.sampled_from([100, 101, 239, 240, 255, 256, 257, 1000, 4000, 20_000]),
)
hostile_text = st.one_of(st.text(_chars, max_size=24), _tricky, _long, st.text(max_size=12))
hostile_ints = st.one_of(
    st.integers(),
    st.sampled_from([0, -1, MAX_TIMESTAMP, MAX_TIMESTAMP + 1, 2**53, 2**63, 2**64, -(2**64)]),
    st.integers(min_value=2**64, max_value=10**400),
    st.integers(min_value=-(10**400), max_value=-(2**64)),
)
_scalars = st.one_of(
    st.none(), st.booleans(), hostile_ints, st.floats(), hostile_text, hostile_text
)
_keys = st.one_of(
    st.sampled_from(["id", "from", "timestamp", "type", "text", "body", "status", "code"]),
    hostile_text,
)


def _containers(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.lists(inner, max_size=4), st.dictionaries(_keys, inner, max_size=4))


json_values = st.recursive(_scalars, _containers, max_leaves=10)
"""Anything JSON holds, and things only Python's JSON holds (NaN, lone surrogates)."""


# Valid-looking ids at and around the 256-character limit (a status's inbox id is longer).
_edge_ids = st.builds(
    _repeat,
    st.sampled_from("wA0.=_-"),
    st.sampled_from([1, 100, 200, 239, 240, 241, 255, 256, 257]),
)


def _replacement() -> st.SearchStrategy[Any]:
    return st.one_of(json_values, _edge_ids, st.just(DELETE))


# -- definitely malformed values, field by field ------------------------------------------

_not_str = st.one_of(
    st.none(),
    st.booleans(),
    hostile_ints,
    st.floats(),
    st.lists(json_values, max_size=3),
    st.dictionaries(_keys, json_values, max_size=3),
)


bad_ids = st.one_of(
    _not_str,
    st.just(""),
    st.builds(_repeat, _chars, st.integers(257, 3000)),
    st.builds(
        _join,
        st.text(max_size=8),
        st.sampled_from(["\x00", "\x1f", "\n", "\x7f", "\ud800", "\udfff"]),
        st.text(max_size=8),
    ),
)
bad_senders = st.one_of(_not_str, hostile_text.filter(_not_a_sender), st.just("+263771234567"))
bad_timestamps = st.one_of(
    _not_str,
    hostile_text.filter(_not_a_timestamp),
    st.integers(MAX_TIMESTAMP + 1, 10**30).map(str),
)
bad_status_names = st.one_of(_not_str, hostile_text.filter(_not_a_status), st.just("a" * 41))
MESSAGE_FIELDS = {"id": bad_ids, "from": bad_senders, "timestamp": bad_timestamps}
STATUS_FIELDS = {
    "id": bad_ids,
    "recipient_id": bad_senders,
    "timestamp": bad_timestamps,
    "status": bad_status_names,
}


# -- values that are valid, at the edges of valid --------------------------------------------

_id_chars = st.characters(exclude_categories=["Cs", "Cc"])
valid_ids = st.one_of(
    st.builds(
        _repeat,
        st.one_of(st.sampled_from("w0.=_-:/+"), _id_chars),
        st.sampled_from([1, 128, 200, 216, 239, 240, 248, 255, 256]),
    ),
    st.text(_id_chars, min_size=1, max_size=40),
).filter(str.strip)  # an id of blanks only is refused (a flow could never take it)
valid_senders = st.one_of(st.from_regex(SENDER, fullmatch=True), st.just("9" * 100))
valid_timestamps = st.one_of(
    st.integers(0, MAX_TIMESTAMP).map(str), st.sampled_from(["0", "0000000001", "9000000000"])
)
valid_status_names = st.one_of(
    st.from_regex(STATUS_NAME, fullmatch=True), st.just("a" * 40), st.just("_")
)
_any_text = st.one_of(hostile_text, st.text())
VALID_MESSAGE = {
    ("id",): valid_ids,
    ("from",): valid_senders,
    ("timestamp",): valid_timestamps,
    ("text", "body"): _any_text,  # any string: lone surrogates become U+FFFD
    ("interactive", "button_reply", "id"): json_values,  # a choice that is not text is none
    ("interactive", "button_reply", "title"): _any_text,
    ("interactive", "list_reply", "id"): json_values,
    ("interactive", "list_reply", "title"): _any_text,
    ("location",): json_values,  # the content of a message type we do not read
}
VALID_STATUS = {
    ("id",): valid_ids,
    ("recipient_id",): valid_senders,
    ("timestamp",): valid_timestamps,
    ("status",): valid_status_names,
    ("errors",): json_values,  # read only when it is a list of objects
}


# -- valid batches, and mutating them ------------------------------------------------------


def _message(sender: str, kind: int) -> Update:
    if kind == 0:
        return wh.text(sender, "hi")
    if kind == 1:
        return wh.button(sender, "menu", "Menu")
    if kind == 2:
        return wh.list_reply(sender, "row-1", "Row one")
    return wh.other(sender, "location", {"latitude": -17.8, "longitude": 31.0})


@st.composite
def batches(draw: st.DrawFn) -> tuple[list[Update], list[Update]]:
    """1-3 messages (each from its own new member) and 0-2 statuses: a valid batch."""
    kinds = draw(st.lists(st.integers(0, 3), min_size=1, max_size=3))
    messages = [_message(phone(), kind) for kind in kinds]
    failed = draw(st.lists(st.booleans(), max_size=2))
    statuses = [
        wh.status(phone(), wh.message_id(), "failed", code=131047)
        if bad
        else wh.status(phone(), wh.message_id(), "delivered")
        for bad in failed
    ]
    return messages, statuses


def paths(node: Any, prefix: Path = ()) -> list[Path]:
    """Every place in ``node``: itself, and each key and index at every depth."""
    found = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            found.extend(paths(value, (*prefix, key)))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found.extend(paths(value, (*prefix, index)))
    return found


def mutate(node: Any, path: Path, value: Any) -> Any:
    """``node`` with the value at ``path`` replaced by ``value`` (or its key removed)."""
    if not path:
        return None if value is DELETE else value
    parent = node
    for step in path[:-1]:
        parent = parent[step]
    if value is DELETE and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = None if value is DELETE else value
    return node


def signed_raw(raw: bytes) -> dict[str, str]:
    """The headers Meta would send with exactly these bytes."""
    signature = hmac.new(APP_SECRET.encode(), raw, hashlib.sha256).hexdigest()
    return {"Content-Type": "application/json", "X-Hub-Signature-256": f"sha256={signature}"}


def post_raw(service: Running, raw: bytes) -> httpx.Response:
    """POST signed bytes on a connection of their own (after a 500 uvicorn drops the
    connection, and a reused one would fail the next example with a disconnect)."""
    headers = {**signed_raw(raw), "Connection": "close"}
    return service.http.post(WEBHOOK, content=raw, headers=headers)


def post(service: Running, body: Any) -> httpx.Response:
    """POST a body serialised and signed as Meta does (see :func:`post_raw`)."""
    raw, _ = wh.signed(body, APP_SECRET)
    return post_raw(service, raw)


def counts(answer: httpx.Response, request: object) -> dict[str, int]:
    """The 200 answer's counts; fails, showing the request, on anything else."""
    shown = repr(request)[:2000]
    if answer.status_code >= 500:
        # Let the server log its traceback before pytest formats ours: on CPython 3.11.7
        # two threads in ast.parse at once (3.11's traceback module parses each line it
        # shows) can abort the run with "AST constructor recursion depth mismatch".
        time.sleep(0.05)
    assert answer.status_code < 500, f"{answer.status_code} {answer.text} for {shown}"
    assert answer.status_code == 200, f"{answer.status_code} {answer.text} for {shown}"
    found = answer.json()
    assert set(found) == ANSWER_KEYS, found
    assert all(type(n) is int and n >= 0 for n in found.values()), found
    return {key: int(n) for key, n in found.items()}


def still_serving(service: Running, graph: FakeGraph, answered: list[str]) -> None:
    """Everything queued was processed: each of ``answered`` got a reply, no update was
    set aside, the store answers, and a new member is answered (the workers live)."""
    settle(service, timeout=60)
    dead = [(d.sender, d.id, d.error) for d in list_dead(service.store)]
    assert dead == [], f"{len(dead)} updates failed every attempt: {dead[:3]!r:.1500}"
    unanswered = [member for member in answered if not graph.messages_to(member)]
    assert unanswered == [], f"{len(unanswered)} good messages were never answered"
    service.store.ping()
    member = phone()
    assert counts(post(service, wh.payload([wh.text(member, "hi")])), "hi")["queued"] == 1
    settle(service)
    assert graph.messages_to(member), "the workers did not answer a new member"


# -- fuzzed ---------------------------------------------------------------------------------


def test_a_malformed_update_is_rejected_alone(service: Running, fresh_graph: FakeGraph) -> None:
    """One to three updates of a batch mutated anywhere inside (replaced, retyped, removed,
    at any depth): every update is counted once, the untouched ones are all queued."""
    good: list[str] = []

    @FUZZ
    @given(batch=batches(), data=st.data())
    def fuzz(batch: tuple[list[Update], list[Update]], data: st.DataObject) -> None:
        messages, statuses = batch
        updates = [*messages, *statuses]
        hit = data.draw(
            st.sets(st.sampled_from(range(len(updates))), min_size=1, max_size=3), label="hit"
        )
        for index in sorted(hit):
            for _ in range(data.draw(st.integers(1, 2), label="mutations")):
                place = data.draw(st.sampled_from(paths(updates[index])), label="path")
                value = data.draw(_replacement(), label="value")
                updates[index] = mutate(updates[index], place, value)
        body = _payload(updates, len(messages))
        found = counts(post(service, body), body)
        assert found["ignored"] == 0, found
        assert found["queued"] + found["duplicates"] + found["rejected"] == len(updates), found
        assert found["queued"] >= len(updates) - len(hit), found
        good.extend(m["from"] for i, m in enumerate(messages) if i not in hit)

    fuzz()
    still_serving(service, fresh_graph, good)


def _payload(updates: list[Any], split: int) -> dict[str, Any]:
    """A webhook body of the (possibly mutated) messages ``updates[:split]`` and statuses
    ``updates[split:]``; each message in its own change (as wh.payload does per sender)."""
    body = wh.payload([wh.text(phone(), "placeholder")], [wh.status(phone(), "x", "sent")])
    change, status_change = body["entry"][0]["changes"]
    changes = []
    for message in updates[:split]:
        value = copy.deepcopy(change["value"])
        sender = message.get("from") if isinstance(message, dict) else None
        value["contacts"][0]["wa_id"] = sender if isinstance(sender, str) else "0"
        value["messages"] = [message]
        changes.append({"field": "messages", "value": value})
    if updates[split:]:
        status_change["value"]["statuses"] = updates[split:]
        changes.append(status_change)
    body["entry"][0]["changes"] = changes
    return body


INSIDE_AN_UPDATE = re.compile(r"\('entry', 0, 'changes', \d+, 'value', '(messages|statuses)', \d+")


def test_a_broken_envelope_is_acknowledged(service: Running, fresh_graph: FakeGraph) -> None:
    """The body around the updates (object, entry, changes, field, metadata, contacts, the
    lists themselves, the body itself) mutated at any depth: always a 200; a broken contact
    or profile never stops a message."""

    @FUZZ
    @given(batch=batches(), data=st.data())
    def fuzz(batch: tuple[list[Update], list[Update]], data: st.DataObject) -> None:
        messages, statuses = batch
        body = wh.payload(messages, statuses)
        envelope = [p for p in paths(body) if not INSIDE_AN_UPDATE.match(repr(p))]
        place = data.draw(st.sampled_from(envelope), label="path")
        value = data.draw(_replacement(), label="value")
        body = mutate(body, place, value)
        found = counts(post(service, body), body)
        if "contacts" in place:  # a broken contact or profile: every update still queued
            assert found["queued"] == len(messages) + len(statuses), found
            assert found["rejected"] == 0, found

    fuzz()
    still_serving(service, fresh_graph, [])


def test_a_batch_of_malformed_updates_queues_nothing(
    service: Running, fresh_graph: FakeGraph
) -> None:
    """Every update of the batch made malformed (a required field wrong or missing, or
    the update not an object): each is rejected, none is queued, nobody is answered."""
    senders: list[str] = []

    @FUZZ
    @given(batch=batches(), data=st.data())
    def fuzz(batch: tuple[list[Update], list[Update]], data: st.DataObject) -> None:
        messages, statuses = batch
        updates: list[Any] = [*messages, *statuses]
        for index, update in enumerate(updates):
            fields = MESSAGE_FIELDS if index < len(messages) else STATUS_FIELDS
            how = data.draw(st.sampled_from([*fields, "missing", "not an object"]), label="how")
            if how == "not an object":
                updates[index] = data.draw(_not_str.filter(_not_a_dict))
            elif how == "missing":
                del update[data.draw(st.sampled_from(sorted(fields)), label="field")]
            else:
                update[how] = data.draw(fields[how], label=how)
        body = _payload(updates, len(messages))
        found = counts(post(service, body), body)
        assert found == {"queued": 0, "duplicates": 0, "ignored": 0, "rejected": len(updates)}
        senders.extend(m["from"] for m in messages if isinstance(m.get("from"), str))

    fuzz()
    settle(service, timeout=60)
    assert [s for s in senders if fresh_graph.messages_to(s)] == []
    still_serving(service, fresh_graph, [])


def test_updates_valid_at_the_edges_are_all_queued(
    service: Running, fresh_graph: FakeGraph
) -> None:
    """Every update given valid values at the edges of the contract (ids of 1 to 256
    characters of any script, senders of 1 to 100, timestamps 0 to 9000000000, status names
    of 1 to 40 letters, any text, any choice, any errors list): all queued, none rejected."""

    @FUZZ
    @given(batch=batches(), data=st.data())
    def fuzz(batch: tuple[list[Update], list[Update]], data: st.DataObject) -> None:
        messages, statuses = batch
        updates = [*messages, *statuses]
        for index, update in enumerate(updates):
            table = VALID_MESSAGE if index < len(messages) else VALID_STATUS
            present = [p for p in table if _has(update, p)]
            chosen = data.draw(st.sets(st.sampled_from(present), min_size=1, max_size=3))
            for place in sorted(chosen):
                mutate(update, place, data.draw(table[place], label=".".join(place)))
        body = _payload(updates, len(messages))
        found = counts(post(service, body), body)
        assert found["rejected"] == 0, found
        assert found["ignored"] == 0, found
        assert found["queued"] + found["duplicates"] == len(updates), found

    fuzz()
    still_serving(service, fresh_graph, [])


def _has(node: Any, path: tuple[str, ...]) -> bool:
    for step in path:
        if not isinstance(node, dict) or step not in node:
            return False
        node = node[step]
    return True


# -- by hand: what JSON parsers choke on ----------------------------------------------------


def _deep_entry(member: str) -> bytes:
    return (
        '{"object":"whatsapp_business_account","entry":' + "[" * 10_000 + "]" * 10_000 + "}"
    ).encode()


def _deep_body(member: str) -> bytes:
    message = wh.text(member, "hi")
    message["text"] = "DEEP"
    raw = json.dumps(wh.payload([message]), separators=(",", ":"))
    return raw.replace('"DEEP"', '{"body":' * 10_000 + '"x"' + "}" * 10_000).encode()


def _deep_top(member: str) -> bytes:
    return ("[" * 10_000 + "]" * 10_000).encode()


def _huge_timestamp(member: str) -> bytes:
    message = wh.text(member, "hi")
    message["timestamp"] = "STAMP"
    raw = json.dumps(wh.payload([message]), separators=(",", ":"))
    return raw.replace('"STAMP"', "9" * 5000).encode()


@pytest.mark.parametrize(
    "build",
    [_deep_entry, _deep_body, _deep_top, _huge_timestamp],
    ids=["10k-deep-entry", "10k-deep-text", "10k-deep-body", "5000-digit-timestamp"],
)
def test_json_python_cannot_hold_is_acknowledged_not_queued(
    service: Running, fresh_graph: FakeGraph, build: Callable[[str], bytes]
) -> None:
    """JSON nested 10,000 deep, or an integer of 5,000 digits: Python's json refuses it
    (RecursionError, ValueError), so it is one rejected update, acknowledged, none queued."""
    member = phone()
    raw = build(member)
    found = counts(post_raw(service, raw), raw[:200])
    assert found["queued"] == 0, found
    assert found["rejected"] >= 1, found
    settle(service)
    assert fresh_graph.messages_to(member) == []
    still_serving(service, fresh_graph, [])


NOT_A_WEBHOOK = [
    *(b"null", b"{}", b"[]", b"0", b"false", b'""', b"0.0", b"true", b'"x"', b"[1]"),
    *(b"NaN", b"-Infinity", b'{"object":null}', b'{"object":"whatsapp_business_account"}'),
]


@pytest.mark.parametrize("raw", NOT_A_WEBHOOK)
def test_a_signed_body_that_is_not_a_webhook_is_acknowledged(
    service: Running, fresh_graph: FakeGraph, raw: bytes
) -> None:
    """JSON, signed, that is not an object or not Meta's: a 200 that queues nothing."""
    found = counts(post_raw(service, raw), raw)
    assert (found["queued"], found["duplicates"]) == (0, 0), found
    still_serving(service, fresh_graph, [])


@pytest.mark.parametrize(
    ("where", "queued"),
    [("body", 1), ("id", 0), ("from", 0), ("timestamp", 0)],
)
def test_raw_utf8_of_a_lone_surrogate(
    service: Running, fresh_graph: FakeGraph, where: str, queued: int
) -> None:
    """The bytes ED A0 80 (U+D800 "encoded" as UTF-8, which no valid UTF-8 holds) inside a
    JSON string: in text it is queued and answered; in an id, sender or timestamp rejected."""
    member = phone()
    message = wh.text(member, "hi MARK")
    if where != "body":
        message[where] = f"{message[where]}MARK"
    raw = json.dumps(wh.payload([message]), separators=(",", ":")).encode()
    raw = raw.replace(b"MARK", b"\xed\xa0\x80")
    found = counts(post_raw(service, raw), raw)
    assert found == {"queued": queued, "duplicates": 0, "ignored": 0, "rejected": 1 - queued}
    still_serving(service, fresh_graph, [member] if queued else [])


BAD_MESSAGES: dict[str, tuple[str, Any]] = {
    "empty-id": ("id", ""),
    "257-char-id": ("id", "w" * 257),
    "id-with-nul": ("id", "wamid.\x00"),
    "id-with-surrogate": ("id", "wamid.\ud800"),
    "id-int": ("id", 12345),
    "sender-plus": ("from", "+263771234567"),
    "sender-empty": ("from", ""),
    "sender-surrogate": ("from", "2637\udc00"),
    "sender-101-chars": ("from", "2" * 101),
    "sender-list": ("from", ["263771234567"]),
    "timestamp-superscript": ("timestamp", "\u00b2"),
    "timestamp-arabic-digits": ("timestamp", "\u0661\u0662\u0663"),
    "timestamp-too-late": ("timestamp", str(MAX_TIMESTAMP + 1)),
    "timestamp-int": ("timestamp", 1_700_000_000),
    "timestamp-4000-digits": ("timestamp", 10**3999),
    "timestamp-negative": ("timestamp", "-1"),
    "timestamp-float": ("timestamp", 1.7e9),
    "text-none": ("text", {"body": None}),
    "text-number": ("text", {"body": 10**100}),
    "text-object": ("text", {"body": {"nested": ["x"]}}),
}


@pytest.mark.parametrize(("field", "value"), BAD_MESSAGES.values(), ids=BAD_MESSAGES.keys())
def test_a_good_and_a_bad_message_in_one_batch(
    service: Running, fresh_graph: FakeGraph, field: str, value: Any
) -> None:
    """A good message and a malformed one in one request: one queued and answered, one
    rejected and never answered."""
    good, bad = phone(), phone()
    message = {**wh.text(bad, "hi"), field: value}
    body = _payload([wh.text(good, "hi"), message], 2)
    found = counts(post(service, body), body)
    assert found == {"queued": 1, "duplicates": 0, "ignored": 0, "rejected": 1}
    still_serving(service, fresh_graph, [good])
    assert fresh_graph.messages_to(bad) == []


@pytest.mark.parametrize(
    ("about", "state"),
    [("w" * 200, "delivered"), ("w" * 256, "read"), ("w" * 239, "delivered"), ("w", "a" * 40)],
    ids=["200-char-id", "256-char-id", "239-char-id", "40-char-status"],
)
def test_a_status_with_the_longest_allowed_id_and_name_is_queued(
    service: Running, fresh_graph: FakeGraph, about: str, state: str
) -> None:
    """Ids up to 256 characters and status names up to 40 are valid: queued, never a 5xx,
    and never at the cost of the good message next to them."""
    good = phone()
    body = wh.payload([wh.text(good, "hi")], [wh.status(phone(), about, state)])
    found = counts(post(service, body), body)
    assert found == {"queued": 2, "duplicates": 0, "ignored": 0, "rejected": 0}
    still_serving(service, fresh_graph, [good])


@pytest.mark.parametrize(
    "message_id",
    [" ", "\x85"],
    ids=["space", "c1-next-line"],
)
def test_a_message_id_of_blanks_is_never_a_poison_message(
    service: Running, fresh_graph: FakeGraph, message_id: str
) -> None:
    """An id of blanks only (no C0 control character, so the store can key it) is either
    refused at the door or queued and answered; never queued to fail in every worker
    attempt and end as a dead letter."""
    member = phone()
    body = wh.payload([wh.text(member, "hi", id=message_id)])
    found = counts(post(service, body), body)
    assert found["queued"] + found["rejected"] == 1, found
    still_serving(service, fresh_graph, [member] if found["queued"] else [])
