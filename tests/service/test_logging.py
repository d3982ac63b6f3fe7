"""The service's operational log, from a real service run: what it says, and what it never does.

One info line per message processed and per reply sent, with the member masked and no
message text; Graph API errors and a foreign phone number id as warnings saying what to
fix, once a minute per cause; the access log only when switched on.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from service_kit import (
    ACCESS_TOKEN,
    ADMIN_TOKEN,
    Running,
    new_phone,
    service_settings,
    serving,
)

from statehq.channels.whatsapp.graph_errors import PHONE_NUMBER_ID_FIX, THROTTLE, TOKEN_FIX
from statehq.log_throttle import LogThrottle
from statehq.redact import mask_identity
from statehq.testing import webhooks as wh
from statehq.testing.fake_graph import FakeGraph

SECRET_TEXT = "my pin is 4711 and my balance 9000"


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """statehq's records at info and above, with the Graph warnings' minute started anew."""
    THROTTLE.clear()
    caplog.set_level(logging.INFO, logger="statehq")
    yield caplog
    THROTTLE.clear()


def statehq_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in list(caplog.records) if r.name.startswith("statehq")]


def wait_for_line(
    caplog: pytest.LogCaptureFixture, match: Callable[[str], bool], count: int = 1
) -> list[logging.LogRecord]:
    """The records whose message matches, once ``count`` of them were logged (10 s at most)."""
    deadline = time.monotonic() + 10
    while True:
        found = [r for r in statehq_lines(caplog) if match(r.getMessage())]
        if len(found) >= count:
            return found
        if time.monotonic() > deadline:
            said = "\n".join(r.getMessage() for r in statehq_lines(caplog))
            raise AssertionError(f"no {count} matching log lines; logged:\n{said}")
        time.sleep(0.01)


def test_mask_identity_keeps_the_type_and_5_characters_of_the_identifier() -> None:
    assert mask_identity("whatsapp:263771234567") == "whatsapp:263*******67"
    assert mask_identity("263771234567") == "263*******67"
    assert mask_identity("web:abc1234") == "web:*******"  # too short to show any of it


def test_a_message_and_its_reply_are_one_line_each_masked_and_without_text(
    service: Running, fresh_graph: FakeGraph, logs: pytest.LogCaptureFixture
) -> None:
    phone = new_phone()
    message = wh.text(phone, SECRET_TEXT)
    service.send(message)
    fresh_graph.wait_for(1, predicate=lambda r: r.body.get("to") == phone)
    masked = mask_identity(f"whatsapp:{phone}")

    [inbound] = wait_for_line(logs, lambda line: line.startswith("message in"))
    said = inbound.getMessage()
    assert inbound.levelno == logging.INFO
    assert f"from={masked} id={message['id']} kind=text version=" in said
    assert " ms=" in said
    replies = wait_for_line(logs, lambda line: line.startswith("reply out"))
    assert replies[0].levelno == logging.INFO
    assert replies[0].getMessage().startswith(f"reply out to={masked} id={message['id']}#")
    assert " sent attempts=1" in replies[0].getMessage()
    for record in statehq_lines(logs):
        line = record.getMessage()
        assert phone not in line
        assert "4711" not in line
        assert "balance" not in line


def test_a_bad_token_is_a_warning_with_the_fix_once_a_minute(
    service: Running, fresh_graph: FakeGraph, logs: pytest.LogCaptureFixture
) -> None:
    fresh_graph.fail_next(2, code=190)
    phone = new_phone()
    service.send(wh.text(phone, "hi"))
    service.send(wh.text(phone, "hi again"))
    failed = wait_for_line(logs, lambda line: "failed code=190" in line, count=2)
    assert all(r.getMessage().startswith("reply out to=") for r in failed)
    warnings = [r for r in statehq_lines(logs) if "Graph API error 190" in r.getMessage()]
    assert len(warnings) == 1  # the second failure within the minute is counted, not logged
    [warning] = warnings
    assert warning.levelno == logging.WARNING
    assert warning.getMessage().endswith(f"Fix: {TOKEN_FIX}")
    assert ACCESS_TOKEN not in "\n".join(r.getMessage() for r in statehq_lines(logs))


def test_a_phone_number_id_the_token_cannot_use_is_a_warning_with_the_fix(
    service: Running, fresh_graph: FakeGraph, logs: pytest.LogCaptureFixture
) -> None:
    fresh_graph.fail_next(1, code=100, subcode=33)
    service.send(wh.text(new_phone(), "hi"))
    [warning] = wait_for_line(logs, lambda line: "Graph API error 100/33" in line)
    assert warning.levelno == logging.WARNING
    assert warning.getMessage().endswith(f"Fix: {PHONE_NUMBER_ID_FIX}")


def test_updates_for_another_phone_number_id_are_a_warning_naming_it(
    service: Running, logs: pytest.LogCaptureFixture
) -> None:
    body = wh.payload([wh.text(new_phone(), "hi")], phone_number_id="987654321098765")
    answer = service.post(body)
    assert answer.json()["ignored"] == 1
    [warning] = wait_for_line(logs, lambda line: "number id '987654321098765' were" in line)
    assert warning.levelno == logging.WARNING
    said = warning.getMessage()
    assert f"WHATSAPP_PHONE_NUMBER_ID is '{wh.PHONE_NUMBER_ID}'" in said
    assert "Fix: if statehq should answer that number, set WHATSAPP_PHONE_NUMBER_ID" in said


def test_the_throttle_counts_what_it_left_out_and_logs_again_after_the_interval(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [1000.0]
    throttle = LogThrottle(interval=60, clock=lambda: now[0])
    log = logging.getLogger("statehq.test.throttle")
    caplog.set_level(logging.WARNING, logger="statehq.test.throttle")
    assert throttle.warning(log, "cause", "broken: %s", "a")
    now[0] += 59
    assert not throttle.warning(log, "cause", "broken: %s", "b")
    assert not throttle.warning(log, "cause", "broken: %s", "c")
    assert throttle.warning(log, "other cause", "also broken")
    now[0] += 1
    assert throttle.warning(log, "cause", "broken: %s", "d")
    assert [r.getMessage() for r in caplog.records] == [
        "broken: a",
        "also broken",
        "broken: d (2 more like this since the last one were not logged)",
    ]


def test_the_access_log_is_off_by_default(
    service: Running, fresh_graph: FakeGraph, logs: pytest.LogCaptureFixture
) -> None:
    assert service.http.get("/livez").status_code == 200
    phone = new_phone()
    service.send(wh.text(phone, "hi"))  # its line comes after the requests were answered
    wait_for_line(logs, lambda line: line.startswith("message in"))
    assert [r for r in logs.records if r.name == "statehq.service.access"] == []


def test_the_access_log_says_method_path_status_and_ms_without_query_or_number(
    server_url: str,
    prefix: str,
    tmp_path: Path,
    fresh_graph: FakeGraph,
    logs: pytest.LogCaptureFixture,
) -> None:
    settings = service_settings(
        server_url, prefix, tmp_path / "data", fresh_graph.url, access_log=True
    )
    with serving(settings) as running:
        verify = {"hub.mode": "subscribe", "hub.verify_token": "not-the-token"}
        assert running.http.get("/webhooks/whatsapp", params=verify).status_code == 403
        member = f"/admin/members/whatsapp:{new_phone()}"
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        assert running.http.get(member, headers=headers).status_code == 404
        lines = wait_for_line(logs, lambda line: line.startswith("GET "), count=2)
    said = [r.getMessage() for r in lines if r.name == "statehq.service.access"]
    assert said[0].startswith("GET /webhooks/whatsapp 403 ")
    assert said[0].endswith(" ms")
    assert said[1].startswith(f"GET {member[:-9]}*******{member[-2:]} 404 ")
    assert all("not-the-token" not in line and "?" not in line for line in said)
