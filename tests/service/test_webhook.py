"""The WhatsApp webhook end to end: signed requests in, replies at the fake Graph API."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import httpx
import pytest
from service_kit import (
    ADMIN_TOKEN,
    APP_SECRET,
    VERIFY_TOKEN,
    WEBHOOK,
    Running,
    answered,
    new_phone,
    settle,
)

from statehq.testing import webhooks as wh
from statehq.testing.fake_graph import FakeGraph


def _wait_replies(graph: FakeGraph, phone: str, count: int) -> list[dict[str, object]]:
    graph.wait_for(count, predicate=lambda r: r.ok and r.body.get("to") == phone)
    return graph.messages_to(phone)


# -- the verify handshake -------------------------------------------------------------------


def test_verify_answers_the_challenge_as_plain_text(service: Running) -> None:
    params = {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1158"}
    answer = service.http.get(WEBHOOK, params=params)
    assert (answer.status_code, answer.text) == (200, "1158")
    assert answer.headers["content-type"].startswith("text/plain")


@pytest.mark.parametrize(
    ("params", "status", "said"),
    [
        (
            {"hub.mode": "subscribe", "hub.verify_token": "wrong", "hub.challenge": "1"},
            403,
            "hub.verify_token does not match",
        ),
        (
            {"hub.mode": "unsubscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1"},
            400,
            "hub.mode must be 'subscribe', got 'unsubscribe'",
        ),
        ({"hub.challenge": "1"}, 400, "hub.mode must be 'subscribe', got missing"),
    ],
)
def test_verify_refuses_a_wrong_token_or_mode_saying_which(
    service: Running, params: dict[str, str], status: int, said: str
) -> None:
    answer = service.http.get(WEBHOOK, params=params)
    assert answer.status_code == status
    assert said in answer.text
    assert answer.text != "1"


# -- one message, batches, order ------------------------------------------------------------


def test_one_message_gets_one_answer(service: Running, fresh_graph: FakeGraph) -> None:
    phone = new_phone()
    message = wh.text(phone, "hi")
    answer = service.send(message)
    assert answer.json() == {"queued": 1, "duplicates": 0, "ignored": 0, "rejected": 0}
    replies = _wait_replies(fresh_graph, phone, 1)
    assert replies[0]["biz_opaque_callback_data"] == f"{message['id']}#0"
    assert "Welcome to credex" in json.dumps(replies[0], ensure_ascii=False)
    settle(service)
    assert len(fresh_graph.messages_to(phone)) == 1
    received = fresh_graph.received()[-1]
    assert received.authorization == "Bearer test-access-token"
    assert received.phone_number_id == wh.PHONE_NUMBER_ID


def test_a_batch_of_members_is_processed_in_timestamp_order(
    service: Running, fresh_graph: FakeGraph
) -> None:
    now = int(time.time())
    phones = [new_phone() for _ in range(3)]
    sent: dict[str, list[dict[str, object]]] = {p: [] for p in phones}
    for phone in phones:
        # Three messages each, listed newest first: the inbox puts them back in order.
        for offset in (2, 1, 0):
            sent[phone].append(wh.text(phone, f"msg {offset}", ts=now - 10 + offset))
    batch = [m for phone in phones for m in sent[phone]]
    assert service.send(*batch).json()["queued"] == 9
    settle(service)
    for phone in phones:
        expected = [str(m["id"]) for m in sorted(sent[phone], key=lambda m: str(m["timestamp"]))]
        assert answered(fresh_graph, phone) == expected


def test_twenty_messages_in_a_burst_get_twenty_answers_in_order(
    service: Running, fresh_graph: FakeGraph
) -> None:
    phone = new_phone()
    now = int(time.time())
    burst = [wh.text(phone, f"message {n}", ts=now) for n in range(20)]
    for message in burst:  # one request each, as Meta sends a burst
        service.send(message)
    settle(service)
    assert answered(fresh_graph, phone) == [m["id"] for m in burst]


def test_a_redelivery_and_the_same_id_in_another_batch_are_processed_once(
    service: Running, fresh_graph: FakeGraph
) -> None:
    phone, other = new_phone(), new_phone()
    message = wh.text(phone, "hi")
    first = service.send(message)
    again = service.send(message)  # Meta redelivers the same request
    mixed = service.send(wh.text(other, "hi"), message)  # the same id in another batch
    assert (first.json()["queued"], again.json()["duplicates"]) == (1, 1)
    assert mixed.json() == {"queued": 1, "duplicates": 1, "ignored": 0, "rejected": 0}
    settle(service)
    assert answered(fresh_graph, phone) == [message["id"]]
    assert len(fresh_graph.messages_to(phone)) == 1
    assert len(fresh_graph.messages_to(other)) == 1


def test_statuses_are_audited_and_never_answered(service: Running, fresh_graph: FakeGraph) -> None:
    phone = new_phone()
    statuses = [
        wh.status(phone, "wamid.out1", "sent"),
        wh.status(phone, "wamid.out1", "delivered"),
        wh.status(phone, "wamid.out2", "failed", code=131047),
    ]
    answer = service.post(wh.payload([], statuses))
    assert answer.json() == {"queued": 3, "duplicates": 0, "ignored": 0, "rejected": 0}
    settle(service)
    assert fresh_graph.messages_to(phone) == []
    trail = [e for e in service.audit_events(f"whatsapp:{phone}") if e.event == "message.status"]
    assert [(e.detail["message_id"], e.detail["status"]) for e in trail] == [
        ("wamid.out1", "sent"),
        ("wamid.out1", "delivered"),
        ("wamid.out2", "failed"),
    ]
    assert trail[-1].detail["code"] == 131047


def test_non_ascii_text_signed_as_meta_signs_it(service: Running, fresh_graph: FakeGraph) -> None:
    phone = new_phone()
    raw, headers = wh.signed(wh.payload([wh.text(phone, "¡Hólà! 👋")]), "test-app-secret")
    assert b"\\u00a1" in raw
    assert "¡".encode() not in raw
    answer = service.http.post(WEBHOOK, content=raw, headers=headers)
    assert answer.status_code == 200
    _wait_replies(fresh_graph, phone, 1)


def test_an_old_message_is_recorded_not_answered(service: Running, fresh_graph: FakeGraph) -> None:
    phone = new_phone()
    old = wh.text(phone, "hi", ts=int(time.time()) - 3 * 86400)
    service.send(old)
    settle(service)
    assert fresh_graph.messages_to(phone) == []
    events = [e.event for e in service.audit_events(f"whatsapp:{phone}")]
    assert "message.old" in events


def test_a_timestamp_in_other_digits_is_rejected_not_a_crash(
    service: Running, fresh_graph: FakeGraph
) -> None:
    phone = new_phone()
    strange = {**wh.text(phone, "hi"), "timestamp": "\u00b2"}  # str.isdigit() says yes
    answer = service.post(wh.payload([strange]))
    assert answer.json() == {"queued": 0, "duplicates": 0, "ignored": 0, "rejected": 1}
    settle(service)
    assert fresh_graph.messages_to(phone) == []
    (event,) = service.audit_events(f"whatsapp:{phone}")
    assert event.event == "message.rejected"
    assert "timestamp" in event.reason


# -- refused requests: a clear status, nothing written ----------------------------------------


def _nothing_queued(service: Running) -> None:
    client = service.store._client
    assert client.keys(f"{service.settings.key_prefix}:*") == []


def test_a_missing_signature_is_401_and_a_wrong_one_403(service: Running) -> None:
    raw, headers = wh.signed(wh.payload([wh.text(new_phone(), "hi")]), "test-app-secret")
    missing = service.http.post(WEBHOOK, content=raw, headers={"Content-Type": "application/json"})
    assert missing.status_code == 401
    assert "X-Hub-Signature-256" in missing.json()["error"]
    wrong = service.post(wh.payload([wh.text(new_phone(), "hi")]), secret="another-secret")
    assert wrong.status_code == 403
    tampered = service.http.post(WEBHOOK, content=raw.replace(b"hi", b"yo"), headers=headers)
    assert tampered.status_code == 403
    _nothing_queued(service)


def test_malformed_json_is_400(service: Running) -> None:
    raw = b'{"object": "whatsapp_business_account", "entry": ['
    _, headers = wh.signed({}, "test-app-secret")
    import hashlib
    import hmac

    signature = hmac.new(b"test-app-secret", raw, hashlib.sha256).hexdigest()
    headers["X-Hub-Signature-256"] = f"sha256={signature}"
    answer = service.http.post(WEBHOOK, content=raw, headers=headers)
    assert answer.status_code == 400
    assert "not valid JSON" in answer.json()["error"]
    _nothing_queued(service)


def test_a_body_over_3_mb_is_413(service: Running) -> None:
    huge = wh.payload([wh.text(new_phone(), "x" * (3 * 1024 * 1024))])
    answer = service.post(huge)
    assert answer.status_code == 413
    _nothing_queued(service)


def test_a_foreign_phone_number_id_is_acknowledged_and_ignored(
    service: Running, fresh_graph: FakeGraph
) -> None:
    phone = new_phone()
    body = wh.payload([wh.text(phone, "hi")], phone_number_id="999999999999")
    answer = service.post(body)
    assert answer.json() == {"queued": 0, "duplicates": 0, "ignored": 1, "rejected": 0}
    other_object = service.post({"object": "page", "entry": []})
    assert other_object.json()["ignored"] == 1
    _nothing_queued(service)
    assert fresh_graph.messages_to(phone) == []


# -- every message type -----------------------------------------------------------------------


def test_understood_types_reach_the_bot(service: Running, fresh_graph: FakeGraph) -> None:
    phone = new_phone()
    kinds = [
        wh.text(phone, "hi"),
        wh.button(phone, "v1.abcdef:learn", "Learn more"),
        wh.list_reply(phone, "v1.abcdef:learn", "Learn more"),
        wh.other(phone, "button", {"text": "Learn more", "payload": "learn"}),
        wh.other(
            phone,
            "interactive",
            {"type": "nfm_reply", "nfm_reply": {"response_json": "{}", "name": "flow"}},
        ),
    ]
    for message in kinds:
        service.send(message)
    settle(service)
    assert answered(fresh_graph, phone) == [m["id"] for m in kinds]


def test_unsupported_types_get_one_polite_answer_per_burst(
    service: Running, fresh_graph: FakeGraph
) -> None:
    phone = new_phone()
    burst = [
        wh.other(phone, "sticker", {"id": "s1", "mime_type": "image/webp"}),
        wh.other(phone, "image", {"id": "i1", "mime_type": "image/jpeg"}),
        wh.other(phone, "location", {"latitude": -17.8, "longitude": 31.0}),
        wh.other(phone, "reaction", {"message_id": "wamid.x", "emoji": "👍"}),
        wh.other(phone, "unsupported", {}),
        wh.other(phone, "hologram", {"depth": 3}),
    ]
    service.send(*burst)
    settle(service)
    replies = fresh_graph.messages_to(phone)
    assert len(replies) == 1
    assert "I can only read text and menu choices" in replies[0]["text"]["body"]


def test_news_and_non_conversation_replies_are_recorded_never_answered(
    service: Running, fresh_graph: FakeGraph
) -> None:
    phone = new_phone()
    permission = {"type": "call_permission_reply", "call_permission_reply": {"response": "accept"}}
    news = [
        wh.other(phone, "system", {"body": "changed number", "type": "user_changed_number"}),
        wh.other(phone, "revoke", {"original_message_id": "wamid.old"}),
        wh.other(phone, "edit", {"original_message_id": "wamid.old", "message": {}}),
        wh.other(phone, "reaction", {"message_id": "wamid.old", "emoji": "👍"}),
        wh.other(phone, "interactive", permission),
    ]
    service.send(*news)
    settle(service)
    assert fresh_graph.messages_to(phone) == []
    ignored = [e for e in service.audit_events(f"whatsapp:{phone}") if e.event == "message.ignored"]
    assert sorted(e.reason for e in ignored) == [
        "deleted",
        "edited",
        "notice",
        "reaction",
        "system",
    ]


def test_a_message_is_answered_to_its_own_sender_whatever_the_contacts_say(
    service: Running, fresh_graph: FakeGraph
) -> None:
    a, b, c = new_phone(), new_phone(), new_phone()
    body = wh.payload([wh.text(a, "hi")])
    value = body["entry"][0]["changes"][0]["value"]
    value["messages"].append(wh.text(c, "hi"))
    value["contacts"] = [{"profile": {"name": "B"}, "wa_id": b}]  # nobody's but B's
    assert service.post(body).json()["queued"] == 2
    settle(service)
    assert fresh_graph.messages_to(b) == []
    assert fresh_graph.messages_to(a)
    assert fresh_graph.messages_to(c)


def test_a_bad_update_is_recorded_and_the_rest_of_the_batch_answered(
    service: Running, fresh_graph: FakeGraph
) -> None:
    good, bad = new_phone(), new_phone()
    poison = {**wh.text(bad, "x"), "timestamp": "9" * 400}
    body = wh.payload([wh.text(good, "hi")])
    body["entry"][0]["changes"][0]["value"]["messages"].append(poison)
    for _ in range(2):  # a redelivery answers the same: nothing is stuck behind the bad one
        answer = service.post(body)
        assert answer.status_code == 200
        assert answer.json()["rejected"] == 1
    settle(service)
    assert answered(fresh_graph, good) == [
        body["entry"][0]["changes"][0]["value"]["messages"][0]["id"]
    ]
    assert fresh_graph.messages_to(bad) == []
    rejected = service.audit_events(f"whatsapp:{bad}")
    assert [e.event for e in rejected] == ["message.rejected", "message.rejected"]
    assert rejected[0].detail == {"message_id": poison["id"], "reason": "bad_timestamp"}
    metrics = service.http.get("/metrics").text
    assert 'statehq_updates_rejected_total{reason="bad_timestamp"}' in metrics


def test_a_bad_update_with_no_valid_sender_is_recorded_in_the_webhooks_trail(
    service: Running,
) -> None:
    poison = {**wh.text(new_phone(), "x"), "from": "<nobody>"}
    assert service.post(wh.payload([poison])).json()["rejected"] == 1
    # Read as an operator reads it: the admin API (and statehq audit) resolve the name.
    auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    trail = service.http.get("/admin/members/whatsapp:_rejected/audit", headers=auth).json()
    assert any(e["detail"].get("message_id") == poison["id"] for e in trail["entries"])


def test_livez_readyz_and_a_health_probe_that_never_grows_the_store(service: Running) -> None:
    assert service.http.get("/livez").json() == {"status": "ok"}
    assert service.http.get("/readyz").json() == {"status": "ready"}
    assert service.http.get("/healthz").status_code == 200
    pattern = f"{service.settings.key_prefix}:*"
    before = sorted(service.store._client.scan_iter(match=pattern, count=1000))
    for _ in range(50):
        assert service.http.get("/healthz").status_code == 200
    assert sorted(service.store._client.scan_iter(match=pattern, count=1000)) == before


def test_the_acknowledgement_does_not_wait_for_slow_replies(
    service: Running, fresh_graph: FakeGraph
) -> None:
    fresh_graph.delay = 1.0  # Meta's API answering slowly
    phone = new_phone()
    started = time.perf_counter()
    service.send(wh.text(phone, "hi"))
    acknowledged = time.perf_counter() - started
    assert acknowledged < fresh_graph.delay  # processing happens after the 200
    _wait_replies(fresh_graph, phone, 1)


def test_health_and_metrics(service: Running) -> None:
    health = service.http.get("/healthz")
    assert health.status_code == 200
    checks = health.json()["checks"]
    assert set(checks) == {"connection", "scripts", "lease", "state"}
    assert all(c["ok"] for c in checks.values())
    service.send(wh.text(new_phone(), "hi"))
    settle(service)
    text = service.http.get("/metrics").text
    for name in (
        "statehq_store_operation_seconds_count",
        "statehq_messages_in_total",
        "statehq_messages_out_total",
        "statehq_inbox_depth",
        "statehq_inbox_oldest_seconds",
        'statehq_sessions{stage="',
    ):
        assert name in text, name


def test_admin_needs_the_token_and_no_other_endpoint_shows_state(service: Running) -> None:
    phone = new_phone()
    service.send(wh.text(phone, "hi"))
    settle(service)
    who = f"whatsapp:{phone}"
    assert service.http.get(f"/admin/members/{who}").status_code == 401
    shown = service.http.get(
        f"/admin/members/{who}", headers={"Authorization": "Bearer test-admin-token"}
    )
    assert shown.status_code == 200
    assert shown.json()["state"]["stage"]
    for path in ("/", "/healthz", "/metrics", WEBHOOK):
        assert phone not in service.http.get(path).text


def test_unknown_paths_are_404(service: Running) -> None:
    assert service.http.get("/nope").status_code == 404
    assert httpx.get(f"{service.url}/webhooks/telegram").status_code == 404


@pytest.mark.parametrize("body", [b"null", b"{}", b"[]", b"0", b'""', b"false"])
def test_json_that_is_no_webhook_is_acknowledged_and_ignored(service: Running, body: bytes) -> None:
    signature = hmac.new(APP_SECRET.encode(), body, hashlib.sha256).hexdigest()
    headers = {"X-Hub-Signature-256": f"sha256={signature}", "Content-Type": "application/json"}
    answer = service.http.post(WEBHOOK, content=body, headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"queued": 0, "duplicates": 0, "ignored": 1, "rejected": 0}


def test_a_store_client_failing_with_no_redis_error_is_a_503_and_queues_nothing(
    service: Running, fresh_graph: FakeGraph, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Cluster client mid-failover has raised errors that are not redis-py's; the
    webhook must still ask Meta to redeliver (503), never answer 500."""
    import redis.asyncio.client
    import redis.asyncio.cluster

    def broken(*_args: object, **_kwargs: object) -> object:
        raise IndexError("list index out of range")  # as seen from a client mid-failover

    message = wh.text(new_phone(), "hi")
    for client in (redis.asyncio.client.Redis, redis.asyncio.cluster.RedisCluster):
        monkeypatch.setattr(client, "execute_command", broken)
    for pipeline in (redis.asyncio.client.Pipeline, redis.asyncio.cluster.ClusterPipeline):
        monkeypatch.setattr(pipeline, "execute", broken)  # the webhook queues in a pipeline
    refused = service.post(wh.payload([message]))
    assert refused.status_code == 503
    assert "not queued" in refused.json()["error"]
    monkeypatch.undo()
    assert service.send(message).status_code == 200  # Meta's redelivery is queued
    settle(service)
    assert len(answered(fresh_graph, message["from"])) == 1
