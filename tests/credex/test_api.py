"""The REST API on a real uvicorn server: what only HTTP has (API key, malformed bodies,
headers, status codes), and HttpBackend's mapping of transport failures."""

from __future__ import annotations

import itertools
import socket
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from statehq.credex.backend import BackendUnavailable, Login, Refused, Unauthorized
from statehq.credex.client import HttpBackend
from statehq.credex.ledger import Ledger

API_KEY = "test-key"
_keys = itertools.count()


@pytest.fixture
def http(ledger_url: str) -> Iterator[httpx.Client]:
    """A plain HTTP client on the served ledger, sending the right API key."""
    with httpx.Client(base_url=ledger_url, headers={"X-API-Key": API_KEY}, timeout=5) as client:
        yield client


@pytest.fixture
def ann(ledger: Ledger) -> Login:
    return ledger.onboard("263770000001", "Ann", "Moyo", idempotency_key="ann")


@pytest.fixture
def ben(ledger: Ledger) -> Login:
    return ledger.onboard("263770000002", "Ben", "Dube", idempotency_key="ben")


def call(
    http: httpx.Client, path: str, body: Any, *, token: str | None = None, key: bool = False
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if key:
        headers["Idempotency-Key"] = f"k{next(_keys)}"
    return http.post(path, json=body, headers=headers)


def error(response: httpx.Response) -> tuple[int, str]:
    return response.status_code, response.json()["error"]["code"]


def test_login_and_onboard_answer_credex_core_fields(http: httpx.Client) -> None:
    body = {"phone": "263770000003", "firstname": "Ann", "lastname": "Moyo", "defaultDenom": "USD"}
    joined = call(http, "/v1/onboardMember", body, key=True)
    assert joined.status_code == 200
    data = joined.json()["data"]
    assert data["member"]["firstname"] == "Ann"
    assert data["accounts"][0]["accountHandle"] == "ann_moyo"
    login = call(http, "/v1/login", {"phone": "263770000003"}).json()["data"]
    assert login["member"]["memberID"] == data["member"]["memberID"]
    assert error(call(http, "/v1/login", {"phone": "263770000099"})) == (404, "not_found")


def test_amounts_travel_as_strings_and_numbers_are_read_exactly(
    http: httpx.Client, ann: Login, ben: Login
) -> None:
    body = {
        "issuerAccountID": ann.accounts[0].id,
        "receiverAccountID": ben.accounts[0].id,
        "Denomination": "USD",
        "InitialAmount": 0.1,  # a JSON number: parsed as Decimal("0.1"), not a binary float
        "credexType": "PURCHASE",
        "OFFERSorREQUESTS": "OFFERS",
        "securedCredex": True,
    }
    made = call(http, "/v1/createCredex", body, token=ann.token, key=True)
    assert made.status_code == 200
    assert made.json()["data"]["InitialAmount"] == "0.10"
    board = call(
        http, "/v1/getAccountDashboard", {"accountID": ann.accounts[0].id}, token=ann.token
    )
    assert board.json()["data"]["available"] == {"USD": "99.90"}
    unsecured = call(
        http, "/v1/createCredex", {**body, "securedCredex": False}, token=ann.token, key=True
    )
    assert error(unsecured) == (422, "unsupported")


@pytest.mark.parametrize(
    "headers",
    [{}, {"X-API-Key": "wrong-key"}, {"X-API-Key": ""}],
    ids=["missing", "wrong", "empty"],
)
def test_the_api_key_is_required(ledger_url: str, headers: dict[str, str]) -> None:
    response = httpx.post(f"{ledger_url}/v1/login", json={"phone": "263770000001"}, headers=headers)
    assert error(response) == (401, "unauthorized")
    assert "X-API-Key" in response.json()["error"]["message"]


def test_an_http_backend_without_the_key_is_unauthorized(ledger_url: str) -> None:
    with HttpBackend(ledger_url) as client, pytest.raises(Unauthorized):
        client.login("263770000001")


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (b"{not json", "not valid JSON"),
        (b"", "not valid JSON"),
        (b"[1, 2]", "JSON object"),
        (b'{"phone": 263770000001}', "'phone'"),
        (b"{}", "'phone'"),
    ],
)
def test_malformed_bodies_are_400(http: httpx.Client, content: bytes, needle: str) -> None:
    response = http.post("/v1/login", content=content, headers={"Content-Type": "application/json"})
    assert error(response) == (400, "bad_request")
    assert needle in response.json()["error"]["message"]


def test_ill_typed_fields_are_400_naming_the_field(http: httpx.Client, ann: Login) -> None:
    body = {"accountID": ann.accounts[0].id, "numRows": "five"}
    response = call(http, "/v1/getLedger", body, token=ann.token)
    assert error(response) == (400, "bad_request")
    assert "'numRows'" in response.json()["error"]["message"]
    body = {"issuerAccountID": "a", "receiverAccountID": "b", "Denomination": "USD"}
    response = call(
        http, "/v1/createCredex", {**body, "InitialAmount": "ten"}, token=ann.token, key=True
    )
    assert "'InitialAmount'" in response.json()["error"]["message"]


def test_mutating_calls_need_an_idempotency_key(http: httpx.Client, ann: Login) -> None:
    response = call(http, "/v1/acceptCredex", {"credexID": "x"}, token=ann.token)
    assert error(response) == (400, "bad_request")
    assert "Idempotency-Key" in response.json()["error"]["message"]
    onboard = {"phone": "263770000004", "firstname": "Ann", "lastname": "Moyo"}
    assert error(call(http, "/v1/onboardMember", onboard)) == (400, "bad_request")


def test_token_problems_are_401(http: httpx.Client, ann: Login, clock: Any) -> None:
    body = {"accountID": ann.accounts[0].id}
    assert error(call(http, "/v1/getAccountDashboard", body)) == (401, "unauthorized")
    assert error(call(http, "/v1/getAccountDashboard", body, token="garbage")) == (
        401,
        "unauthorized",
    )
    clock.advance(301)
    expired = call(http, "/v1/getAccountDashboard", body, token=ann.token)
    assert error(expired) == (401, "unauthorized")
    assert expired.json()["error"]["message"] == "token expired"


def test_refusals_have_their_status(
    http: httpx.Client, ledger: Ledger, ann: Login, ben: Login
) -> None:
    made = ledger.create_credex(
        ann.token,
        issuer_account_id=ann.accounts[0].id,
        receiver_account_id=ben.accounts[0].id,
        amount=Decimal(5),
        denomination="USD",
        idempotency_key="offer",
    )
    own = call(http, "/v1/acceptCredex", {"credexID": made.id}, token=ann.token, key=True)
    assert error(own) == (403, "forbidden")
    ghost = call(http, "/v1/acceptCredex", {"credexID": "nope"}, token=ben.token, key=True)
    assert error(ghost) == (404, "not_found")
    assert call(
        http, "/v1/acceptCredex", {"credexID": made.id}, token=ben.token, key=True
    ).is_success
    again = call(http, "/v1/declineCredex", {"credexID": made.id}, token=ben.token, key=True)
    assert error(again) == (409, "not_pending")
    handle = call(http, "/v1/getAccountByHandle", {"accountHandle": "@nobody"}, token=ann.token)
    assert error(handle) == (404, "not_found")
    joined = {"phone": ann.member.phone, "firstname": "Ann", "lastname": "Moyo"}
    assert error(call(http, "/v1/onboardMember", joined, key=True)) == (409, "member_exists")
    bad = {"phone": "263770000005", "firstname": "A", "lastname": "Moyo"}
    assert error(call(http, "/v1/onboardMember", bad, key=True)) == (422, "invalid_name")


def test_the_member_dashboard_is_only_the_callers(
    http: httpx.Client, ann: Login, ben: Login
) -> None:
    mine = call(http, "/v1/getMemberDashboardByPhone", {"phone": ann.member.phone}, token=ann.token)
    data = mine.json()["data"]
    assert data["member"]["phone"] == ann.member.phone
    assert [d["balances"] for d in data["dashboards"]] == [{"USD": "100.00"}]
    theirs = call(
        http, "/v1/getMemberDashboardByPhone", {"phone": ben.member.phone}, token=ann.token
    )
    assert error(theirs) == (403, "forbidden")


def test_bodies_over_64_kb_are_413(http: httpx.Client) -> None:
    response = http.post("/v1/login", json={"phone": "1" * 70_000})
    assert error(response) == (413, "payload_too_large")

    def chunks() -> Iterator[bytes]:  # no Content-Length: the server must count
        for _ in range(70):
            yield b" " * 1024

    assert error(http.post("/v1/login", content=chunks())) == (413, "payload_too_large")


def test_unknown_routes_and_methods_answer_json(http: httpx.Client) -> None:
    assert error(http.post("/v1/nothing", json={})) == (404, "no_such_route")
    assert error(http.get("/v1/login")) == (405, "method_not_allowed")


def test_a_server_that_is_not_there_is_unavailable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with HttpBackend(f"http://127.0.0.1:{port}") as client, pytest.raises(BackendUnavailable):
        client.login("263770000001")


def test_a_server_that_does_not_answer_times_out() -> None:
    with socket.socket() as silent:  # accepts connections (backlog), never replies
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        with (
            HttpBackend(url, timeout=0.2) as client,
            pytest.raises(BackendUnavailable, match="timed out"),
        ):
            client.login("263770000001")


@pytest.mark.parametrize(
    ("status", "content", "expected"),
    [
        (500, b"Internal Server Error", BackendUnavailable),
        (502, b'{"error": {"code": "x", "message": "bad gateway"}}', BackendUnavailable),
        (200, b"<html>not json</html>", BackendUnavailable),
        (200, b'{"data": {"token": "t"}}', BackendUnavailable),  # fields missing
        (418, b'{"error": {"code": "teapot", "message": "short and stout"}}', Refused),
    ],
)
def test_answers_a_real_server_cannot_give_map_onto_the_tree(
    status: int, content: bytes, expected: type[Exception]
) -> None:
    # A fake transport only for answers the built-in server never gives.
    transport = httpx.MockTransport(lambda request: httpx.Response(status, content=content))
    with (
        HttpBackend("http://ledger.invalid", transport=transport) as client,
        pytest.raises(expected),
    ):
        client.login("263770000001")
