"""The admin API over real HTTP: uvicorn on a free port, a real store, httpx as the operator."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import jwt
import pytest
import uvicorn
from starlette.applications import Starlette

from statehq import StateStore
from statehq.credex.app import credex_stages
from statehq.service.admin import admin_routes
from statehq.state import MemberSession, StateManager

TOKEN = "s3cret-token"
PHONE = "whatsapp:263771234567"
Serve = Callable[..., httpx.Client]


@pytest.fixture
def manager(store: StateStore) -> StateManager:
    """A manager validating with the stages the real service uses."""
    return StateManager(store, stages=credex_stages())


class _Dispatch:
    """The ASGI app the module's server runs: hands each request to the current test's app."""

    def __init__(self) -> None:
        self.app: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[_Dispatch, str]]:
    """One uvicorn for the module (starting one per test would cost more than the tests)."""
    dispatch = _Dispatch()
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets that say they are
    # TCP, and without it every keep-alive request waits 40 ms for a delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(dispatch, lifespan="off", log_level="warning", ws="none")
    runner = uvicorn.Server(config)
    thread = threading.Thread(target=runner.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 5
    while not runner.started:
        assert thread.is_alive(), "uvicorn stopped while starting"
        assert time.monotonic() < deadline, "uvicorn did not start within 5 s"
        time.sleep(0.005)
    yield dispatch, f"http://127.0.0.1:{sock.getsockname()[1]}"
    runner.should_exit = True
    thread.join(5)
    assert not thread.is_alive()
    sock.close()


@pytest.fixture
def serve(server: tuple[_Dispatch, str], manager: StateManager) -> Iterator[Serve]:
    """``serve(token, auth=...)``: the admin API built with ``token``, and a client for it."""
    dispatch, url = server
    clients: list[httpx.Client] = []

    def start(token: str | None = TOKEN, auth: str | None = f"Bearer {TOKEN}") -> httpx.Client:
        dispatch.app = Starlette(routes=admin_routes(manager, token))
        headers = {"Authorization": auth} if auth else {}
        clients.append(httpx.Client(base_url=url, headers=headers, timeout=5))
        return clients[-1]

    yield start
    for client in clients:
        client.close()
    dispatch.app = None


@pytest.fixture
def api(serve: Serve) -> httpx.Client:
    """A client carrying the right admin token."""
    return serve()


def a_jwt(seconds: int = 300) -> str:
    """A real HS256 JWT with an exp claim, as the credex ledger issues them."""
    claims = {"sub": "m1", "exp": int(time.time()) + seconds}
    return jwt.encode(claims, "a-signing-key-long-enough-for-hs256!", algorithm="HS256")


def logged_in(manager: StateManager, token: str, phone: str = PHONE) -> MemberSession:
    """A phone that logged in as member m1: the session now lives under ``member:m1``."""
    session = manager.open(phone)
    session.transition("AUTH")
    session.authenticate("m1", token, profile={"name": "Ann"})
    return session


def body_of(response: httpx.Response) -> Any:
    assert response.headers["content-type"] == "application/json"
    return response.json()


def assert_no_token(response: httpx.Response, token: str) -> None:
    assert token not in response.text
    assert TOKEN not in response.text


# -- authentication -----------------------------------------------------------------------

ROUTES = [
    ("GET", f"/admin/members/{PHONE}"),
    ("GET", f"/admin/members/{PHONE}/history"),
    ("GET", f"/admin/members/{PHONE}/audit"),
    ("POST", f"/admin/members/{PHONE}/rollback"),
    ("POST", f"/admin/members/{PHONE}/reset"),
    ("POST", f"/admin/members/{PHONE}/recover"),
    ("GET", "/admin/no/such/path"),
]


@pytest.mark.parametrize("token", [None, ""])
def test_without_a_configured_token_every_path_is_forbidden(
    serve: Serve, store: StateStore, token: str | None
) -> None:
    client = serve(token)
    for method, path in ROUTES:
        response = client.request(method, path, json={"version": 1})
        assert response.status_code == 403, (method, path)
        assert body_of(response) == {
            "error": "the admin API is disabled: set STATEHQ_ADMIN_TOKEN to enable it"
        }
    assert store.get(PHONE) is None  # reset would have created a session


@pytest.mark.parametrize(
    "auth", [None, "Basic czNjcmV0LXRva2Vu", "Bearer", "Bearer wrong-token", f"Bearer {TOKEN}x"]
)
def test_a_missing_malformed_or_wrong_token_is_unauthorized(
    serve: Serve, store: StateStore, auth: str | None
) -> None:
    client = serve(auth=auth)
    for method, path in ROUTES:
        response = client.request(method, path)
        assert response.status_code == 401, (auth, method, path)
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert "missing or wrong admin token" in body_of(response)["error"]
        assert TOKEN not in response.text
    assert store.get(PHONE) is None


def test_the_scheme_is_case_insensitive_and_a_non_ascii_token_is_just_wrong(
    serve: Serve, manager: StateManager
) -> None:
    manager.open(PHONE)
    assert serve(auth=f"bearer {TOKEN}").get(f"/admin/members/{PHONE}").status_code == 200
    raw = {b"Authorization": "Bearer s3cret-tökén".encode()}  # not ASCII: bytes on the wire
    assert serve(auth=None).get(f"/admin/members/{PHONE}", headers=raw).status_code == 401


# -- reading --------------------------------------------------------------------------------


def test_show_follows_the_binding_and_redacts_the_token(
    api: httpx.Client, manager: StateManager
) -> None:
    secret = a_jwt()
    session = logged_in(manager, secret)
    response = api.get(f"/admin/members/{PHONE}")
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    shown = body_of(response)
    assert shown["key"] == "member:m1"
    assert shown["status"] == "active"
    assert shown["version"] == session.version
    assert 0 < shown["ttl"] <= manager.store.settings.session_ttl
    assert shown["state"]["profile"] == {"name": "Ann"}
    assert shown["state"]["jwt_token"] == "[redacted]"
    assert_no_token(response, secret)
    assert body_of(api.get("/admin/members/m1"))["key"] == "member:m1"  # a bare member id
    assert body_of(api.get("/admin/members/member:m1"))["version"] == session.version


def test_show_without_a_live_session_is_not_found(api: httpx.Client) -> None:
    response = api.get("/admin/members/whatsapp:263770000000")
    assert response.status_code == 404
    assert body_of(response) == {
        "error": "no live session for whatsapp:263770000000 (none)",
        "status": "none",
    }
    secret = a_jwt()  # an operator pasting a token where the member goes: not echoed
    for path in (f"/admin/members/{secret}", f"/admin/members/{secret}/undo"):
        echoed = api.get(path)
        assert echoed.status_code == 404
        assert "[redacted]" in body_of(echoed)["error"]
        assert_no_token(echoed, secret)


def test_history_lists_versions_newest_first_redacted(
    api: httpx.Client, manager: StateManager
) -> None:
    secret = a_jwt()
    session = logged_in(manager, secret)
    session.update_state({"profile": {"name": "Ann Moyo"}})
    response = api.get(f"/admin/members/{PHONE}/history")
    assert response.status_code == 200
    history = body_of(response)
    assert history["key"] == "member:m1"
    versions = [v["version"] for v in history["versions"]]
    assert versions == sorted(versions, reverse=True)
    assert versions[0] == session.version
    assert history["versions"][0]["state"]["profile"] == {"name": "Ann Moyo"}
    assert all(v["last_updated"] for v in history["versions"])
    assert_no_token(response, secret)


def test_audit_lists_entries_with_a_limit_and_refuses_a_bad_one(
    api: httpx.Client, manager: StateManager
) -> None:
    secret = a_jwt()
    session = logged_in(manager, secret)
    session.update_state({"profile": {"name": "Ann Moyo"}})
    response = api.get("/admin/members/m1/audit")
    assert response.status_code == 200
    trail = body_of(response)
    events = [e["event"] for e in trail["entries"]]
    assert events[:2] == ["identity.bound", "auth.login"]
    assert events[-1] == "state.updated"
    assert trail["entries"][-1]["values"] == {"profile.name": "Ann Moyo"}
    assert_no_token(response, secret)

    phone = body_of(api.get(f"/admin/members/{PHONE}/audit", params={"limit": 2}))
    assert phone["bound_to"] == "member:m1"
    assert [e["event"] for e in phone["entries"]][-1] == "identity.bound"
    assert len(phone["entries"]) == 2

    first = trail["entries"][0]["id"]
    after = body_of(api.get("/admin/members/m1/audit", params={"since": first}))
    assert [e["event"] for e in after["entries"]] == events[1:]
    since_time = api.get("/admin/members/m1/audit", params={"since": "2000-01-01T00:00:00Z"})
    assert len(body_of(since_time)["entries"]) == len(events)

    for params in ({"limit": 0}, {"limit": 1001}, {"limit": "ten"}, {"limit": "-1"}):
        refused = api.get("/admin/members/m1/audit", params=params)
        assert refused.status_code == 422, params
        assert "limit must be a whole number from 1 to 1000" in body_of(refused)["error"]
    for params in (
        {"since": "yesterday"},
        {"since": "2026-11-22T08:00:00"},
        {"until": "x"},
        {"since": "\u00b2"},  # a superscript two: str.isdigit says yes, int() says no
        {"until": "\u0663-0"},  # Arabic-Indic digits
        {"since": "18446744073709551616"},  # past the largest stream id part (2**64 - 1)
        {"since": "99999999999999999999-0"},
    ):
        refused = api.get("/admin/members/m1/audit", params=params)
        assert refused.status_code == 422, params
        assert next(iter(params)) in body_of(refused)["error"]
    for since in ("1969-12-31T23:59:59+00:00", "0001-01-01T00:00:00Z"):  # before any entry
        early = api.get("/admin/members/m1/audit", params={"since": since})
        assert len(body_of(early)["entries"]) == len(events), since


# -- writing ---------------------------------------------------------------------------------


def test_rollback_restores_an_older_version_as_a_new_one(
    api: httpx.Client, manager: StateManager
) -> None:
    session = logged_in(manager, a_jwt())
    old = session.version
    session.update_state({"profile": {"name": "Mallory"}})
    response = api.post(f"/admin/members/{PHONE}/rollback", json={"version": old})
    assert response.status_code == 200
    assert body_of(response) == {"key": "member:m1", "restored": old, "version": old + 2}
    shown = body_of(api.get(f"/admin/members/{PHONE}"))
    assert shown["version"] == old + 2
    assert shown["state"]["profile"] == {"name": "Ann"}
    last = manager.audit.read("m1")[-1]
    assert (last.event, last.reason) == ("state.rolled_back", "admin api")


def test_rollback_to_a_version_not_in_history_is_not_found_and_writes_nothing(
    api: httpx.Client, manager: StateManager, store: StateStore
) -> None:
    session = logged_in(manager, a_jwt())
    response = api.post(
        "/admin/members/m1/rollback", json={"version": 99, "reason": "operator ticket 7"}
    )
    assert response.status_code == 404
    assert "has no version 99 in its history (held: " in body_of(response)["error"]
    assert str(session.version) in body_of(response)["error"]
    assert store.get("member:m1").version == session.version  # type: ignore[union-attr]


def test_rollback_without_a_live_session_is_not_found(api: httpx.Client, store: StateStore) -> None:
    response = api.post(f"/admin/members/{PHONE}/rollback", json={"version": 1})
    assert response.status_code == 404
    assert body_of(response)["status"] == "none"
    assert "nothing to roll back" in body_of(response)["error"]
    assert store.get(PHONE) is None


@pytest.mark.parametrize(
    ("content", "status", "names"),
    [
        (b'{"version": ', 400, "not valid JSON"),
        (b"\xff\xfe", 400, "not valid JSON"),
        (b"[1]", 422, "must be a JSON object, got an array"),
        (b"{}", 422, "version is required"),
        (b'{"version": "x"}', 422, "version must be a non-negative whole number, got a string"),
        (b'{"version": -1}', 422, "version must be a non-negative whole number"),
        (b'{"version": 1.5}', 422, "version must be a non-negative whole number"),
        (b'{"version": true}', 422, "version must be a non-negative whole number"),
        (b'{"version": 1, "reason": 7}', 422, "reason must be a string"),
        (b'{"version": 1, "reason": "' + b"r" * 201 + b'"}', 422, "reason is 201 characters"),
        (b'{"version": 1, "verison": 2}', 422, "unknown field 'verison'"),
        (b'{"version": 1, "pad": "' + b"x" * 20_000 + b'"}', 413, "larger than"),
    ],
)
def test_a_bad_rollback_request_is_refused_precisely_and_writes_nothing(
    api: httpx.Client,
    manager: StateManager,
    store: StateStore,
    content: bytes,
    status: int,
    names: str,
) -> None:
    session = manager.open(PHONE)
    response = api.post(
        f"/admin/members/{PHONE}/rollback",
        content=content,
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == status
    assert names in body_of(response)["error"]
    assert store.get(PHONE).version == session.version  # type: ignore[union-attr]


def test_reset_keeps_the_member_id_and_drops_the_rest(
    api: httpx.Client, manager: StateManager
) -> None:
    session = logged_in(manager, a_jwt())
    response = api.post(f"/admin/members/{PHONE}/reset", json={"reason": "stuck in a flow"})
    assert response.status_code == 200
    assert body_of(response) == {"key": "member:m1", "version": session.version + 1}
    state = body_of(api.get("/admin/members/m1"))["state"]
    assert state["member_id"] == "m1"
    assert state["stage"] == "INIT"
    assert state["authenticated"] is False
    assert "profile" not in state
    assert "jwt_token" not in state
    last = manager.audit.read("m1")[-1]
    assert (last.event, last.reason) == ("state.reset", "stuck in a flow")


def test_reset_of_a_member_never_seen_is_404_and_creates_nothing(
    api: httpx.Client, manager: StateManager
) -> None:
    response = api.post("/admin/members/263779999999/reset", json={"reason": "typo"})
    assert response.status_code == 404
    assert "no session for 'member:263779999999'" in body_of(response)["error"]
    assert manager.store.get("member:263779999999") is None
    assert manager.audit.read("member:263779999999") == []


def test_recover_on_a_healthy_session_does_nothing(
    api: httpx.Client, manager: StateManager
) -> None:
    session = manager.open(PHONE)
    response = api.post(f"/admin/members/{PHONE}/recover")
    assert response.status_code == 200
    assert body_of(response) == {
        "key": PHONE,
        "outcome": "healthy",
        "version": session.version,
        "restored_from": None,
        "problem": "",
    }


# -- bad paths and methods ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/admin/members/whatsapp:26377{1}"),
        ("GET", "/admin/members/bad{member}/history"),
        ("GET", "/admin/members/bad{member}/audit"),
        ("POST", "/admin/members/bad{member}/rollback"),
        ("POST", "/admin/members/bad{member}/reset"),
        ("POST", "/admin/members/bad{member}/recover"),
    ],
)
def test_an_invalid_member_id_is_a_bad_request(api: httpx.Client, method: str, path: str) -> None:
    response = api.request(method, path, json={"version": 1} if "rollback" in path else None)
    assert response.status_code == 400
    assert "invalid member id" in body_of(response)["error"]


def test_unknown_paths_and_wrong_methods(api: httpx.Client, manager: StateManager) -> None:
    manager.open(PHONE)
    unknown = api.get("/admin/members")
    assert unknown.status_code == 404
    assert "no admin endpoint" in body_of(unknown)["error"]
    assert api.get(f"/admin/members/{PHONE}/undo").status_code == 404
    wrong = api.post(f"/admin/members/{PHONE}")
    assert wrong.status_code == 405
    assert body_of(wrong)["error"].endswith("use GET, HEAD")
    assert "GET" in wrong.headers["allow"]
    assert api.get(f"/admin/members/{PHONE}/rollback").status_code == 405
    assert api.delete(f"/admin/members/{PHONE}/reset").status_code == 405


def test_an_unavailable_store_is_503_and_an_unexpected_error_is_a_plain_500(
    api: httpx.Client, manager: StateManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    from statehq.errors import StoreUnavailable

    def down(*_: object, **__: object) -> None:
        raise StoreUnavailable("statehq store at redis://db:6379: cannot reach the server")

    def broken(*_: object, **__: object) -> None:
        raise RuntimeError(f"boom with {TOKEN} inside")

    monkeypatch.setattr(manager.store, "resolve", down)
    response = api.get(f"/admin/members/{PHONE}")
    assert response.status_code == 503
    assert "cannot reach the server" in body_of(response)["error"]
    monkeypatch.setattr(manager.store, "resolve", broken)
    response = api.get(f"/admin/members/{PHONE}")
    assert response.status_code == 500
    assert body_of(response) == {"error": "internal error"}


def test_the_index_lists_every_endpoint_with_what_it_does(api: httpx.Client, serve: Serve) -> None:
    listed = body_of(api.get("/admin/"))["endpoints"]
    pairs = {(e["method"], e["path"]) for e in listed}
    assert ("POST", "/admin/members/{member}/rollback") in pairs
    assert ("GET", "/admin/dead") in pairs
    assert all(e["does"] for e in listed)
    assert serve(auth=None).get("/admin/").status_code == 401  # behind the token too
