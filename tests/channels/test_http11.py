"""The lean HTTP/1.1 client against real sockets: framing, keep-alive, reconnects, timeouts, TLS.

Each server here is a real one on loopback (:mod:`tests.channels.raw_server`) that writes
exactly the bytes a test scripts, so the answers no framework would send (bodies cut
mid-chunk, connections reset at chosen moments, garbage) can be checked too.
"""

from __future__ import annotations

import gzip
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from statehq.channels import http11
from statehq.channels.http11 import HttpClient, PreparedRequest
from statehq.testing.topologies.tls import make_certificates
from tests.channels.raw_server import RawServer, Reply, answer, in_turn, stalled_listener

OK = Reply([answer(b'{"ok": true}', "200 OK", "Content-Type: application/json")])


@pytest.fixture
def client() -> Iterator[HttpClient]:
    with HttpClient() as opened:
        yield opened


def post(client: HttpClient, url: str, timeout: float = 2.0) -> PreparedRequest:
    return client.prepare("POST", f"{url}/v1/123/messages", {"X-Test": "1"}, timeout=timeout)


# -- the request ----------------------------------------------------------------------------


def test_the_request_is_built_once_and_carries_the_length_and_body(client: HttpClient) -> None:
    with RawServer(in_turn(OK)) as server:
        request = client.prepare(
            "POST",
            f"{server.url}/v23.0/55/messages?x=1",
            {"Authorization": "Bearer t", "Content-Type": "application/json"},
        )
        assert client.send(request, b'{"a": 1}').body == b'{"ok": true}'
        assert client.send(request, b"{}").status == 200
    first, second = server.requests
    assert first == (
        b"POST /v23.0/55/messages?x=1 HTTP/1.1\r\n"
        b"Host: 127.0.0.1:%d\r\n"
        b"User-Agent: statehq\r\n"
        b"Accept-Encoding: identity\r\n"
        b"Connection: keep-alive\r\n"
        b"Authorization: Bearer t\r\n"
        b"Content-Type: application/json\r\n"
        b"Content-Length: 8\r\n\r\n"
        b'{"a": 1}' % server.port
    )
    assert second.endswith(b"Content-Length: 2\r\n\r\n{}")


def test_the_host_of_an_ipv6_url_is_bracketed(client: HttpClient) -> None:
    request = client.prepare("POST", "http://[::1]:8443/v1/123/messages")
    assert b"\r\nHost: [::1]:8443\r\n" in request.head
    try:
        server = RawServer(in_turn(OK), host="::1")
    except OSError:
        return  # no IPv6 loopback on this machine: the head above is what would be sent
    with server:
        assert client.send(post(client, server.url)).status == 200
    assert b"\r\nHost: [::1]:%d\r\n" % server.port in server.requests[0]


@pytest.mark.parametrize(
    ("url", "headers", "problem"),
    [
        ("ftp://example.com/x", {}, "only http and https"),
        ("http://user:secret@example.com/x", {}, "credentials"),
        ("http:///x", {}, "no host"),
        ("http://example.com/x", {"Authorization": "Bearer a\r\nX-Evil: 1"}, "Authorization"),
        ("http://example.com/x", {"Bad Name": "v"}, "header name"),
    ],
)
def test_what_cannot_be_sent_is_refused_when_prepared(
    client: HttpClient, url: str, headers: dict[str, str], problem: str
) -> None:
    with pytest.raises(ValueError, match=problem) as refused:
        client.prepare("POST", url, headers)
    assert "secret" not in str(refused.value)
    assert "Evil" not in str(refused.value)  # a header's value is never repeated


def test_head_requests_are_refused(client: HttpClient) -> None:
    with pytest.raises(ValueError, match="HEAD"):
        client.prepare("HEAD", "http://example.com/")


# -- the answer -----------------------------------------------------------------------------


def test_a_content_length_body_in_pieces_is_read_whole(client: HttpClient) -> None:
    raw = answer(b"0123456789" * 1000)
    parts = [raw[:10], raw[10:70], raw[70:5000], raw[5000:]]
    with RawServer(in_turn(Reply(parts, pause=0.01))) as server:
        response = client.send(post(client, server.url), b"{}")
    assert (response.status, response.reason) == (200, "OK")
    assert response.body == b"0123456789" * 1000
    assert response.headers["content-length"] == "10000"


def test_a_chunked_body_with_extensions_and_trailers_is_read_whole(client: HttpClient) -> None:
    parts = [
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4;name=value\r\nWi",
        b"ki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r",
        b"\n0\r\nExpires: never\r\n",
        b"\r\n",
    ]
    with RawServer(in_turn(Reply(parts, pause=0.01))) as server:
        request = post(client, server.url)
        assert client.send(request).body == b"Wikipedia in\r\n\r\nchunks."
        assert client.send(request).body == b"Wikipedia in\r\n\r\nchunks."
    assert server.connections == 1  # the connection was kept: the chunked body ended it


def test_informational_answers_are_skipped(client: HttpClient) -> None:
    early = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </s>\r\n\r\n"
    with RawServer(in_turn(Reply([early + answer(b"done")]))) as server:
        response = client.send(post(client, server.url))
    assert (response.status, response.body) == (200, b"done")


def test_a_204_has_no_body_and_keeps_the_connection(client: HttpClient) -> None:
    with RawServer(in_turn(Reply([b"HTTP/1.1 204 No Content\r\n\r\n"]))) as server:
        request = post(client, server.url)
        assert client.send(request).body == b""
        assert client.send(request).status == 204
    assert server.connections == 1


def test_an_error_status_is_an_answer_like_any_other(client: HttpClient) -> None:
    body = b'{"error": {"code": 190}}'
    with RawServer(in_turn(Reply([answer(body, "401 Unauthorized")]))) as server:
        response = client.send(post(client, server.url))
    assert (response.status, response.reason, response.body) == (401, "Unauthorized", body)
    assert not response.is_success


def test_a_gzip_body_is_inflated(client: HttpClient) -> None:
    packed = gzip.compress(b'{"messages": []}')
    reply = Reply([answer(packed, "200 OK", "Content-Encoding: gzip")])
    with RawServer(in_turn(reply)) as server:
        assert client.send(post(client, server.url)).body == b'{"messages": []}'


def test_repeated_headers_are_joined(client: HttpClient) -> None:
    reply = Reply([answer(b"", "200 OK", "Vary: a", "vary: b")])
    with RawServer(in_turn(reply)) as server:
        assert client.send(post(client, server.url)).headers["vary"] == "a, b"


# -- keep-alive and reconnects --------------------------------------------------------------


def test_one_connection_carries_every_request(client: HttpClient) -> None:
    with RawServer(in_turn(OK)) as server:
        request = post(client, server.url)
        for _ in range(20):
            assert client.send(request, b"{}").status == 200
    assert (server.connections, len(server.requests)) == (1, 20)


@pytest.mark.parametrize(
    "reply",
    [
        Reply([answer(b"bye", "200 OK", "Connection: close")], after="close"),
        Reply([b"HTTP/1.0 200 OK\r\n\r\nuntil the end"], after="close"),
        Reply([answer(b"one") + b"HTTP/1.1 200 OK\r\n"]),  # stray bytes: out of step
    ],
    ids=["connection-close", "http-1.0-body-until-close", "stray-bytes"],
)
def test_a_connection_that_cannot_go_on_is_replaced(client: HttpClient, reply: Reply) -> None:
    with RawServer(in_turn(reply)) as server:
        request = post(client, server.url)
        first, second = client.send(request), client.send(request)
    assert first.body == second.body != b""
    assert server.connections == 2


def test_an_http_1_0_keep_alive_answer_keeps_the_connection(client: HttpClient) -> None:
    reply = Reply([b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok"])
    with RawServer(in_turn(reply)) as server:
        request = post(client, server.url)
        client.send(request)
        client.send(request)
    assert server.connections == 1


def test_an_idle_connection_the_server_closed_is_replaced_before_use(client: HttpClient) -> None:
    # The server's idle timeout: it closes after answering, and the client sees the
    # close (the socket reads as ready) before it writes the next request there.
    with RawServer(in_turn(Reply(OK.parts, after="close"))) as server:
        request = post(client, server.url)
        assert client.send(request).status == 200
        server.wait_closed(1)
        assert client.send(request).status == 200
    assert (server.connections, len(server.requests)) == (2, 2)


def test_a_write_refused_by_a_reset_connection_goes_once_on_a_new_one(
    client: HttpClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The race the readiness check cannot see: the server resets the idle connection
    # after the check. The write fails, which proves the request was not read: it is
    # written again, once, on a new connection.
    monkeypatch.setattr(http11._Connection, "stale", lambda _self: False)
    with RawServer(in_turn(Reply(OK.parts, after="reset", linger=0.05))) as server:
        request = post(client, server.url)
        assert client.send(request, b"1").status == 200
        server.wait_closed(1)
        assert client.send(request, b"2").status == 200
    assert server.connections == 2
    assert [r[-1:] for r in server.requests] == [b"1", b"2"]


def test_a_request_written_to_a_connection_closed_under_it_is_not_sent_again(
    client: HttpClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The server closed the connection (FIN) after the check: the write goes into the
    # kernel, the read finds no answer. The server may have read the request, so it
    # is not sent again: the caller decides.
    monkeypatch.setattr(http11._Connection, "stale", lambda _self: False)
    with RawServer(in_turn(Reply(OK.parts, after="close", linger=0.05))) as server:
        request = post(client, server.url)
        assert client.send(request).status == 200
        server.wait_closed(1)
        with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
            client.send(request)
    assert (server.connections, len(server.requests)) == (1, 1)


def test_a_connection_idle_past_the_keepalive_expiry_is_not_reused() -> None:
    with RawServer(in_turn(OK)) as server, HttpClient(keepalive_expiry=0.05) as client:
        request = post(client, server.url)
        client.send(request)
        time.sleep(0.1)
        client.send(request)
    assert server.connections == 2


def test_threads_share_the_client_each_on_its_own_connection(client: HttpClient) -> None:
    with RawServer(in_turn(Reply(OK.parts, pause=0.001))) as server:
        request = post(client, server.url)
        statuses: list[int] = []

        def sends() -> None:
            statuses.extend(client.send(request, b"{}").status for _ in range(25))

        threads = [threading.Thread(target=sends) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert statuses == [200] * 150
    assert server.connections <= 6


def test_a_closed_client_refuses_to_send() -> None:
    client = HttpClient()
    request = client.prepare("POST", "http://127.0.0.1:9/x")
    client.close()
    with pytest.raises(RuntimeError, match="closed"):
        client.send(request)


# -- failures -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "reply",
    [
        Reply([b"SSH-2.0-OpenSSH_9.2\r\n\r\n"]),
        Reply([b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort"], after="close"),
        Reply([b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"]),
        Reply([b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcd\r\n0\r\n\r\n"]),
        Reply([b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc"]),
        Reply([b"HTTP/1.1 200 OK\r\nContent-Length: -2\r\n\r\n"]),
        Reply([b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n"]),
        Reply([b"HTTP/1.1 200 OK\r\n" + b"X-Filler: " + b"x" * 70_000 + b"\r\n\r\n"]),
        Reply([b"HTTP/1.1 101 Switching Protocols\r\n\r\n"]),
        Reply([b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 3\r\n\r\nabc"]),
        Reply(after="close"),
    ],
    ids=[
        "not-http",
        "short-body",
        "bad-chunk-size",
        "chunk-overrun",
        "conflicting-lengths",
        "negative-length",
        "header-without-colon",
        "huge-head",
        "unasked-upgrade",
        "bad-gzip",
        "closed-unanswered",
    ],
)
def test_an_answer_that_is_not_http_is_a_protocol_error_and_the_connection_goes(
    client: HttpClient, reply: Reply
) -> None:
    with RawServer(in_turn(reply, OK)) as server:
        request = post(client, server.url)
        with pytest.raises(httpx.RemoteProtocolError):
            client.send(request)
        assert client.send(request).status == 200  # on a new connection
    assert server.connections == 2


def test_a_server_that_does_not_answer_in_time_is_a_read_timeout(client: HttpClient) -> None:
    with RawServer(in_turn(Reply(after="stall"))) as server:
        started = time.monotonic()
        with pytest.raises(httpx.ReadTimeout):
            client.send(post(client, server.url, timeout=0.2), b"{}")
        assert 0.15 < time.monotonic() - started < 2


def test_an_answer_that_stops_midway_is_a_read_timeout(client: HttpClient) -> None:
    reply = Reply([b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhal"], after="stall")
    with RawServer(in_turn(reply)) as server, pytest.raises(httpx.ReadTimeout):
        client.send(post(client, server.url, timeout=0.2))


def test_a_request_the_server_does_not_read_is_a_write_timeout(client: HttpClient) -> None:
    with stalled_listener() as listener:
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        with pytest.raises(httpx.WriteTimeout):
            client.send(post(client, url, timeout=0.3), b"x" * 64_000_000)


def test_a_refused_connection_is_a_connect_error(client: HttpClient) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(httpx.ConnectError):
        client.send(post(client, f"http://127.0.0.1:{port}"))


def test_a_tls_handshake_that_never_finishes_is_a_connect_timeout(client: HttpClient) -> None:
    with stalled_listener() as listener:
        url = f"https://127.0.0.1:{listener.getsockname()[1]}"
        request = client.prepare("POST", url, timeout=5.0, connect_timeout=0.2)
        started = time.monotonic()
        with pytest.raises(httpx.ConnectTimeout):
            client.send(request)
    assert time.monotonic() - started < 2


# -- TLS ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    # openssl is required, as for the TLS topology: a missing one fails, never skips
    return make_certificates(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def tls_server_context(certificates: tuple[Path, Path, Path]) -> ssl.SSLContext:
    _, cert, key = certificates
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


def test_https_verifies_the_server_with_the_ca_file_and_keeps_the_connection(
    certificates: tuple[Path, Path, Path], tls_server_context: ssl.SSLContext
) -> None:
    ca, _, _ = certificates
    with (
        RawServer(in_turn(OK), tls=tls_server_context) as server,
        HttpClient(ca_file=str(ca)) as client,
    ):
        request = post(client, server.url)
        assert [client.send(request, b"{}").status for _ in range(3)] == [200] * 3
    assert server.connections == 1


def test_https_refuses_a_server_no_trusted_ca_signed(
    client: HttpClient, tls_server_context: ssl.SSLContext
) -> None:
    with (
        RawServer(in_turn(OK), tls=tls_server_context) as server,
        pytest.raises(httpx.ConnectError, match="certificate verify failed"),
    ):
        client.send(post(client, server.url))
    assert server.requests == []


def test_https_replaces_an_idle_connection_the_server_closed(
    certificates: tuple[Path, Path, Path], tls_server_context: ssl.SSLContext
) -> None:
    ca, _, _ = certificates
    reply = Reply(OK.parts, after="close")
    with (
        RawServer(in_turn(reply), tls=tls_server_context) as server,
        HttpClient(ca_file=str(ca)) as client,
    ):
        request = post(client, server.url)
        assert client.send(request).status == 200
        server.wait_closed(1)
        assert client.send(request).status == 200
    assert (server.connections, len(server.requests)) == (2, 2)
