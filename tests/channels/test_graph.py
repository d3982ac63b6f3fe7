"""GraphSender against the fake Graph API over real HTTP: delivery, retries, give-ups, metrics."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY

from statehq.channels.http11 import HttpClient
from statehq.channels.whatsapp import DEFAULT_GRAPH_URL, GraphSender, SendResult, render
from statehq.flows import Buttons, Option, OptionList, Text
from statehq.testing import FakeGraph
from statehq.testing.topologies.tls import make_certificates
from tests.channels.raw_server import RawServer, Reply, in_turn

TOKEN = "EAAG-test-token-never-shown"
PHONE = "1122334455667"
MEMBER = "263771234567"
OTHER = "263779999999"


@pytest.fixture(scope="module")
def server() -> Iterator[FakeGraph]:
    with FakeGraph(access_token=TOKEN) as fake:
        yield fake


@pytest.fixture
def graph(server: FakeGraph) -> FakeGraph:
    server.reset()
    server.delay = 0.0
    server.chunked = server.close_connections = False
    return server


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def sender(graph: FakeGraph, sleeps: list[float]) -> Iterator[GraphSender]:
    with GraphSender(graph.url, PHONE, TOKEN, attempts=4, sleep=sleeps.append) as opened:
        yield opened


def text(body: str = "Hello", to: str = MEMBER) -> dict[str, Any]:
    return render(Text(body), to)


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def assert_no_token(result: SendResult) -> None:
    assert TOKEN not in repr(result)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_a_text_is_delivered_with_the_token_to_the_phone_numbers_path(
    graph: FakeGraph, sender: GraphSender
) -> None:
    body = text()
    result = sender.send(body)
    assert result.ok
    assert result.status == 200
    assert result.attempts == 1
    [seen] = graph.received()
    assert seen.phone_number_id == PHONE
    assert seen.authorization == f"Bearer {TOKEN}"
    assert seen.body == body
    assert result.wamid == seen.answer["messages"][0]["id"]
    assert result.wamid is not None
    assert result.wamid.startswith("wamid.")
    assert graph.messages_to(MEMBER) == [body]


def test_the_default_url_is_the_versioned_graph_api() -> None:
    assert DEFAULT_GRAPH_URL == "https://graph.facebook.com/v23.0"
    with GraphSender(DEFAULT_GRAPH_URL + "/", PHONE, TOKEN) as sender:
        assert sender.url == f"{DEFAULT_GRAPH_URL}/{PHONE}/messages"
        assert TOKEN not in repr(sender)


@pytest.mark.parametrize(
    "message",
    [
        Buttons("Pay now?", (Option("yes", "Yes"), Option("no", "No"))),
        OptionList.page("Pick a plan", [Option(f"p{i}", f"Plan {i}") for i in range(15)]),
    ],
    ids=["buttons", "list"],
)
def test_rendered_interactive_messages_are_accepted(
    graph: FakeGraph, sender: GraphSender, message: Buttons | OptionList
) -> None:
    result = sender.send(render(message, MEMBER))
    assert result.ok
    assert result.wamid
    assert graph.messages_to(MEMBER)[0]["interactive"]["type"] in ("button", "list")


@pytest.mark.parametrize(
    ("code", "status"),
    [(130429, 400), (131056, 400), (2, 503), (1, 500)],
    ids=["throughput-limit", "pair-limit", "503", "500"],
)
def test_a_retryable_failure_is_retried_after_a_jittered_wait(
    graph: FakeGraph, sender: GraphSender, sleeps: list[float], code: int, status: int
) -> None:
    graph.fail_next(1, code=code)
    retries = sample("statehq_send_retries_total", code=str(code))
    result = sender.send(text())
    assert result.ok
    assert result.attempts == 2
    assert [r.status for r in graph.received()] == [status, 200]
    assert graph.received()[0].answer["error"]["code"] == code
    assert len(sleeps) == 1
    assert 0.25 / 4 <= sleeps[0] <= 0.25
    assert sample("statehq_send_retries_total", code=str(code)) == retries + 1
    assert len(graph.messages_to(MEMBER)) == 1


def test_a_persistent_server_error_is_given_up_after_the_configured_attempts(
    graph: FakeGraph, sender: GraphSender, sleeps: list[float]
) -> None:
    graph.fail_next(10, code=1, status=500)
    failures = sample("statehq_send_failures_total", code="1")
    result = sender.send(text())
    assert (result.ok, result.retryable, result.attempts) == (False, True, 4)
    assert (result.status, result.code, result.failure_label) == (500, 1, "1")
    assert result.detail.startswith("An unknown error occurred")
    assert len(graph.received()) == 4
    assert len(sleeps) == 3
    assert all(0.25 / 4 <= wait <= min(4.0, 0.25 * 2**n) for n, wait in enumerate(sleeps))
    assert sample("statehq_send_failures_total", code="1") == failures + 1
    assert graph.messages_to(MEMBER) == []


def test_the_24_hour_window_is_permanent_and_not_retried(
    graph: FakeGraph, sender: GraphSender, sleeps: list[float]
) -> None:
    graph.fail_next(1, code=131047)
    failures = sample("statehq_send_failures_total", code="131047")
    result = sender.send(text())
    assert (result.ok, result.retryable, result.attempts) == (False, False, 1)
    assert (result.status, result.code, result.failure_label) == (400, 131047, "131047")
    assert result.wamid is None
    assert "Re-engagement" in result.detail
    assert len(graph.received()) == 1
    assert sleeps == []
    assert sample("statehq_send_failures_total", code="131047") == failures + 1


def test_a_wrong_token_is_refused_with_190_and_not_retried(graph: FakeGraph) -> None:
    wrong = "EAAG-wrong-token"
    with GraphSender(graph.url, PHONE, wrong, sleep=lambda _: None) as sender:
        result = sender.send(text())
    assert (result.ok, result.retryable, result.attempts) == (False, False, 1)
    assert (result.status, result.code) == (401, 190)
    assert "Invalid OAuth access token" in result.detail
    assert wrong not in repr(result)
    assert [r.status for r in graph.received()] == [401]


def test_a_malformed_body_is_refused_with_100_and_not_retried(
    graph: FakeGraph, sender: GraphSender
) -> None:
    result = sender.send({"to": MEMBER, "type": "text", "text": {"body": "hi"}})
    assert (result.ok, result.code, result.retryable) == (False, 100, False)
    assert "messaging_product" in result.detail
    assert len(graph.received()) == 1


def test_a_refused_connection_is_a_network_failure_after_every_attempt(
    sleeps: list[float],
) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    failures = sample("statehq_send_failures_total", code="network")
    retries = sample("statehq_send_retries_total", code="network")
    with GraphSender(url, PHONE, TOKEN, attempts=3, sleep=sleeps.append) as sender:
        result = sender.send(text())
    assert (result.ok, result.retryable, result.attempts) == (False, True, 3)
    assert (result.status, result.code, result.failure_label) == (None, None, "network")
    assert result.detail == "ConnectError"
    assert len(sleeps) == 2
    assert sample("statehq_send_failures_total", code="network") == failures + 1
    assert sample("statehq_send_retries_total", code="network") == retries + 2
    assert_no_token(result)


def test_a_post_sent_without_an_answer_is_not_sent_again(graph: FakeGraph) -> None:
    # A read timeout comes after Meta got the request: it may have delivered it, and a
    # retry would reach the member twice. Given up at once, and said so.
    graph.delay = 0.2
    with GraphSender(graph.url, PHONE, TOKEN, attempts=3, timeout=0.05, sleep=lambda _: None) as s:
        result = s.send(text())
    assert (result.ok, result.retryable, result.attempts) == (False, False, 1)
    assert result.failure_label == "network"
    assert result.detail.startswith("ReadTimeout: sent without an answer")
    graph.wait_for(1, timeout=2)  # the abandoned request still lands, once
    time.sleep(0.3)
    assert len(graph.received()) == 1


def test_mark_read_posts_a_read_receipt(graph: FakeGraph, sender: GraphSender) -> None:
    reads = sample("statehq_messages_out_total", type="read")
    result = sender.mark_read("wamid.ABC")
    assert result.ok
    assert result.wamid is None  # Graph answers {"success": true}
    [seen] = graph.received()
    read = {"messaging_product": "whatsapp", "status": "read", "message_id": "wamid.ABC"}
    assert seen.body == read
    assert seen.answer == {"success": True}
    assert graph.messages_to(MEMBER) == []
    assert sample("statehq_messages_out_total", type="read") == reads + 1


def test_successful_sends_are_counted_by_type(sender: GraphSender) -> None:
    before = sample("statehq_messages_out_total", type="text")
    assert sender.send(text()).ok
    assert sender.send(text("again")).ok
    assert sample("statehq_messages_out_total", type="text") == before + 2


def test_the_token_never_appears_in_a_result(graph: FakeGraph, sender: GraphSender) -> None:
    graph.fail_next(1, code=131026)
    graph.fail_next(4, code=2)
    results = [sender.send(text()), sender.send(text()), sender.mark_read("wamid.X")]
    assert [r.failure_label for r in results[:2]] == ["131026", "2"]
    for result in results:
        assert_no_token(result)


def test_the_backoff_grows_with_full_jitter_between_a_floor_and_a_cap() -> None:
    with GraphSender("http://127.0.0.1:1", PHONE, TOKEN, backoff=0.5, max_backoff=2.0) as s:
        waits = [[s.delay(n) for _ in range(200)] for n in range(6)]
    for n, drawn in enumerate(waits):
        assert all(0.125 <= wait <= min(2.0, 0.5 * 2**n) for wait in drawn)
    assert max(waits[5]) > 1.0  # the cap grew, and the draw spreads under it


def test_the_failure_label_prefers_the_code_then_the_status() -> None:
    def failed(status: int | None, code: int | None) -> SendResult:
        return SendResult(False, None, status, code, "", 1, False)

    assert failed(400, 131047).failure_label == "131047"
    assert failed(502, None).failure_label == "http_502"
    assert failed(None, None).failure_label == "network"


def test_attempts_must_be_at_least_one() -> None:
    with pytest.raises(ValueError, match="attempts"):
        GraphSender("http://127.0.0.1:1", PHONE, TOKEN, attempts=0)


def test_a_client_passed_in_is_used_and_left_open(graph: FakeGraph) -> None:
    with HttpClient() as client:
        with GraphSender(graph.url, PHONE, TOKEN, client=client) as sender:
            assert sender.send(text()).ok
        with GraphSender(graph.url, PHONE, TOKEN, client=client) as again:
            assert again.send(text()).ok  # still open: the first sender did not close it
    assert len(graph.received()) == 2


# -- the connection -----------------------------------------------------------------------


def test_replies_ride_one_kept_alive_connection(graph: FakeGraph, sender: GraphSender) -> None:
    for n in range(10):
        assert sender.send(text(f"reply {n}")).ok
    assert sender.mark_read("wamid.X").ok
    assert len(graph.received()) == 11
    assert len({r.peer for r in graph.received()}) == 1


def test_chunked_answers_are_read_for_successes_and_failures(
    graph: FakeGraph, sender: GraphSender
) -> None:
    graph.chunked = True
    graph.fail_next(1, code=131047)
    failed, sent = sender.send(text()), sender.send(text())
    assert (failed.code, failed.retryable) == (131047, False)
    assert "Re-engagement" in failed.detail
    assert sent.ok
    assert sent.wamid == graph.received()[-1].answer["messages"][0]["id"]
    assert len({r.peer for r in graph.received()}) == 1  # chunked bodies end; the link stays


def test_a_server_closing_each_connection_gets_each_reply_once(
    graph: FakeGraph, sender: GraphSender
) -> None:
    graph.close_connections = True
    assert all(sender.send(text(f"reply {n}")).ok for n in range(5))
    bodies = [b["text"]["body"] for b in graph.messages_to(MEMBER)]
    assert bodies == [f"reply {n}" for n in range(5)]
    assert len({r.peer for r in graph.received()}) == 5


def test_threads_share_a_sender(graph: FakeGraph, sender: GraphSender) -> None:
    results: list[SendResult] = []

    def sends(n: int) -> None:
        results.extend(sender.send(text(f"{n}.{m}")) for m in range(20))

    threads = [threading.Thread(target=sends, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 80
    assert all(r.ok for r in results)
    assert len({r.wamid for r in results}) == 80
    assert len({r.peer for r in graph.received()}) <= 4


def test_a_post_whose_connection_drops_before_the_answer_is_not_sent_again() -> None:
    # Meta read the request, then the connection broke: it may have delivered it.
    with (
        RawServer(in_turn(Reply(after="close"))) as server,
        GraphSender(server.url, PHONE, TOKEN, attempts=3, sleep=lambda _: None) as sender,
    ):
        result = sender.send(text())
    assert (result.ok, result.retryable, result.attempts) == (False, False, 1)
    assert result.detail == "RemoteProtocolError: sent without an answer; not resent"
    assert len(server.requests) == 1


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    # openssl is required, as for the TLS topology: a missing one fails, never skips
    return make_certificates(tmp_path_factory.mktemp("tls"))


def test_https_to_a_graph_api_signed_by_a_trusted_ca(
    certificates: tuple[Path, Path, Path], sleeps: list[float]
) -> None:
    ca, cert, key = certificates
    with FakeGraph(access_token=TOKEN, ssl_certfile=str(cert), ssl_keyfile=str(key)) as fake:
        assert fake.url.startswith("https://127.0.0.1:")
        with (
            HttpClient(ca_file=str(ca)) as client,
            GraphSender(fake.url, PHONE, TOKEN, client=client) as sender,
        ):
            assert all(sender.send(text()).ok for _ in range(3))
        with GraphSender(fake.url, PHONE, TOKEN, attempts=2, sleep=sleeps.append) as untrusting:
            refused = untrusting.send(text())
        assert len({r.peer for r in fake.received()}) == 1
        assert len(fake.received()) == 3
    assert (refused.ok, refused.detail, refused.attempts) == (False, "ConnectError", 2)


# -- the fake itself ----------------------------------------------------------------------


def test_a_failure_for_one_member_leaves_the_others_alone(
    graph: FakeGraph, sender: GraphSender
) -> None:
    graph.fail_next(1, code=131047, to=MEMBER)
    assert sender.send(text(to=OTHER)).ok
    assert sender.send(text(to=MEMBER)).code == 131047
    assert sender.send(text(to=MEMBER)).ok


def test_wait_for_blocks_until_enough_posts_match(graph: FakeGraph, sender: GraphSender) -> None:
    sender.send(text(to=OTHER))
    sender.send(text(to=MEMBER))
    [seen] = graph.wait_for(1, timeout=1, predicate=lambda r: r.body.get("to") == MEMBER)
    assert seen.body["to"] == MEMBER
    with pytest.raises(AssertionError, match=r"expected 3 matching posts within 0\.05s, got 2"):
        graph.wait_for(3, timeout=0.05)


def test_the_received_bodies_can_be_read_over_http(graph: FakeGraph, sender: GraphSender) -> None:
    body = text()
    sender.send(body)
    assert httpx.get(f"{graph.url}/_fake/received").json() == [body]


def test_the_fake_runs_as_a_command_until_terminated() -> None:
    command = [sys.executable, "-m", "statehq.testing.fake_graph", "--port", "0", "--token", "T"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as proc:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        assert line.startswith("listening on http://127.0.0.1:")
        url = line.removeprefix("listening on ")
        with GraphSender(url, PHONE, "T") as sender:
            assert sender.send(text()).ok
        assert httpx.get(f"{url}/_fake/received").json() == [text()]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0
