"""The page at / in a real headless Chromium: chat through the web channel, watch the
state change live, roll it back, two members trading, a TTL running out, a stream that
drops and resumes.

Chromium is Debian's (``make test`` installs it), driven by Playwright through
``executable_path``; nothing is downloaded.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from statehq import Settings
from statehq.store.audit import AuditEvent
from statehq.store.inbox import Inbox, Update
from statehq.store.replies import Replies
from statehq.store.requests import Script
from tests.service.service_kit import Running, serving

TOKEN = "page-test-token"
SHOTS = os.environ.get("STATEHQ_SCREENSHOTS")  # docs/screenshots to refresh the README's
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is not installed; `make test` installs it")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield launched
        launched.close()


def _settings(server_url: str, tmp_path: Path, **overrides: object) -> Settings:
    return Settings(
        redis_url=server_url,
        key_prefix=f"t{uuid.uuid4().hex[:10]}",
        data_dir=tmp_path / "data",
        workers=2,
        admin_token=TOKEN,
    ).override(**overrides)


@pytest.fixture
def site(embedded_server: object, tmp_path: Path) -> Iterator[Running]:
    url = embedded_server.url  # type: ignore[attr-defined]
    with serving(_settings(url, tmp_path)) as running:
        yield running


def _phone() -> str:
    return f"2637799{uuid.uuid4().int % 10**5:05d}"


def _open(browser: Browser, site: Running, phone: str) -> Page:
    page = browser.new_page()
    page.goto(site.url + "/")
    page.get_by_label("Admin token", exact=True).fill(TOKEN)
    page.get_by_role("button", name="Use it").click()
    page.get_by_label("Chat as", exact=True).fill(phone)
    page.get_by_role("button", name="Open").click()
    expect(page.locator("#connection")).to_have_text("live")
    return page


def _say(page: Page, text: str) -> None:
    page.get_by_label("Message", exact=True).fill(text)
    page.get_by_role("button", name="Send").click()


def test_a_newcomer_registers_in_the_chat_and_watches_the_version_rise(
    browser: Browser, site: Running, tmp_path: Path
) -> None:
    page = _open(browser, site, _phone())
    _say(page, "hi")
    expect(page.locator("#messages li.bot").last).to_contain_text("Would you like to join?")
    page.get_by_role("button", name="Join credex").last.click()
    expect(page.locator("#messages li.bot").last).to_contain_text("first name")
    expect(page.locator("#flow")).to_contain_text("register")
    first = int(page.locator("#version").inner_text())
    _say(page, "Tendai")
    expect(page.locator("#messages li.bot").last).to_contain_text("last name")
    expect(page.locator("#version")).not_to_have_text(str(first))
    assert "Tendai" in page.locator("#document").inner_text()
    latest = int(page.locator("#version").inner_text())
    page.get_by_label(f"compare version {latest - 1}").check()
    page.get_by_label(f"compare version {latest}").check()
    expect(page.locator("#diff")).to_contain_text(f"v{latest - 1} → v{latest}")
    expect(page.locator("#diff")).to_contain_text('+ flow_data.data.first_name: "Tendai"')
    shot = Path(SHOTS or tmp_path) / "inspector.png"
    shot.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    page.close()


def test_a_rollback_from_the_page_brings_the_older_state_back(
    browser: Browser, site: Running
) -> None:
    page = _open(browser, site, _phone())
    _say(page, "hi")
    page.get_by_role("button", name="Join credex").last.click()
    expect(page.locator("#messages li.bot").last).to_contain_text("first name")
    _say(page, "Tendai")
    expect(page.locator("#document")).to_contain_text("Tendai")
    before = int(page.locator("#version").inner_text())
    page.get_by_role("button", name=f"Roll back to v{before - 1}").click()
    expect(page.locator("#version")).to_have_text(str(before + 1))
    expect(page.locator("#document")).not_to_contain_text("Tendai")
    expect(page.locator("#audit")).to_contain_text("rolled back from the inspector")
    page.close()


def test_the_page_refuses_a_wrong_token(site: Running) -> None:
    response = site.http.get("/web/inspect", params={"member": _phone(), "token": "nope"})
    assert response.status_code == 401
    refused = site.http.post("/webhooks/web", json={"from": _phone(), "text": "hi"})
    assert refused.status_code == 401


@pytest.fixture
def short_lived(embedded_server: object, tmp_path: Path) -> Iterator[Running]:
    url = embedded_server.url  # type: ignore[attr-defined]
    with serving(_settings(url, tmp_path, session_ttl=3)) as running:
        yield running


def test_a_session_whose_ttl_runs_out_shows_as_expired(
    browser: Browser, short_lived: Running
) -> None:
    page = _open(browser, short_lived, _phone())
    _say(page, "hi")
    expect(page.locator("#status")).to_have_text("active")
    expect(page.locator("#status")).to_have_text("expired", timeout=10_000)
    expect(page.locator("#document")).to_contain_text("no live document: expired")
    page.close()


def _events(site: Running, path: str, phone: str, last_id: str | None, count: int) -> list[dict]:
    """The first ``count`` events of a stream: {"id", "event", "data"} each."""
    headers = {"Last-Event-ID": last_id} if last_id else {}
    params = {"member": phone, "token": TOKEN}
    events: list[dict] = []
    current: dict = {}
    with site.http.stream("GET", path, params=params, headers=headers, timeout=10) as stream:
        for line in stream.iter_lines():
            if not line:
                if "data" in current:
                    events.append(current)
                    if len(events) == count:
                        return events
                current = {}
                continue
            field, _, value = line.partition(": ")
            if field in ("id", "event"):
                current[field] = value
            elif field == "data":
                current["data"] = json.loads(value)
    return events


def test_a_dropped_reply_stream_resumes_after_the_last_event_it_saw(site: Running) -> None:
    phone = _phone()
    replies = Replies(site.store.settings)
    first = site.store.execute(replies.append(f"web:{phone}", {"kind": "text", "text": "one"}))
    site.store.execute(replies.append(f"web:{phone}", {"kind": "text", "text": "two"}))
    everything = _events(site, "/web/replies", phone, None, 2)
    assert [e["data"]["text"] for e in everything] == ["one", "two"]
    (resumed,) = _events(site, "/web/replies", phone, first, 1)
    assert resumed["data"]["text"] == "two"
    assert resumed["id"] == everything[1]["id"]


def test_a_dropped_inspector_stream_resumes_with_what_it_missed(site: Running) -> None:
    phone = _phone()
    session = f"web:{phone}"
    site.store.update(session, {"n": 1})
    site.store.audit_append(session, AuditEvent("note", session, "seen"))
    (seen,) = _events(site, "/web/inspect", phone, None, 1)
    for n in (2, 3):  # written while the page was away
        site.store.audit_append(session, AuditEvent("note", session, f"missed {n}"))
    first, second = _events(site, "/web/inspect", phone, seen["id"], 2)
    assert first["id"] == seen["id"]  # the state as of the resume point, at once
    missed = [entry["reason"] for entry in second["data"]["new_entries"]]
    assert missed == ["missed 2", "missed 3"]


@pytest.mark.parametrize(
    ("body", "status", "said"),
    [
        (b"not json", 400, "not JSON"),
        (b"[1]", 400, "JSON object"),
        (b'{"from": "12", "text": "hi"}', 400, "8-15 digits"),
        (b'{"from": "263771234567", "text": 5}', 200, '"rejected":1'),
        (b'{"from": "263771234567", "choice": ""}', 200, '"rejected":1'),
        (b'{"from": "263771234567", "text": "   "}', 200, '"ignored":1'),
    ],
)
def test_bad_web_messages_get_a_precise_answer_and_queue_nothing(
    site: Running, body: bytes, status: int, said: str
) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    answer = site.http.post("/webhooks/web", content=body, headers=headers)
    assert answer.status_code == status
    assert said in answer.text
    assert site.store.execute(Inbox(site.store.settings).depth(1))[0] == 0


@pytest.fixture
def seeded(embedded_server: object, tmp_path: Path) -> Iterator[Running]:
    """A site whose built-in ledger holds the demo members (as after `make run`)."""
    from statehq import BotSettings
    from statehq.credex.app import open_ledger
    from statehq.credex.demo import seed_demo

    with open_ledger(BotSettings(data_dir=tmp_path / "data")) as ledger:
        seed_demo(ledger)
    url = embedded_server.url  # type: ignore[attr-defined]
    with serving(_settings(url, tmp_path)) as running:
        yield running


def _tap(page: Page, name: str) -> None:
    page.locator("#messages li.bot").last.get_by_role("button", name=name).first.click()


def test_two_tabs_as_two_members_trade_an_offer(browser: Browser, seeded: Running) -> None:
    alice = _open(browser, seeded, "263771111111")
    _say(alice, "hi")
    _tap(alice, "Offer a credex")
    expect(alice.locator("#messages li.bot").last).to_contain_text("How much")
    _say(alice, "35")
    expect(alice.locator("#messages li.bot").last).to_contain_text("Who is it for")
    _say(alice, "@bob")
    _tap(alice, "Sign and send")
    expect(alice.locator("#messages li.bot").last).not_to_contain_text("Sign and send")
    bob = _open(browser, seeded, "263772222222")
    _say(bob, "hello")
    expect(bob.locator("#messages li.bot").last).to_contain_text("incoming")
    _tap(bob, "Incoming offers")
    _tap(bob, "35.00 USD")
    _tap(bob, "Accept")
    expect(bob.locator("#messages li.bot").last).to_contain_text("335.00 USD")  # 300 + 35
    expect(bob.locator("#key")).to_contain_text("member:")  # logged in: the member's session
    expect(alice.locator("#key")).to_contain_text("member:")
    alice.close()
    bob.close()


def test_at_phone_width_the_inspector_goes_below_the_chat(
    browser: Browser, site: Running, tmp_path: Path
) -> None:
    page = browser.new_page(viewport={"width": 390, "height": 844})
    page.goto(site.url + "/")
    chat = page.get_by_role("region", name="Chat").bounding_box()
    inspector = page.get_by_role("region", name="State inspector").bounding_box()
    assert chat is not None
    assert inspector is not None
    assert inspector["y"] >= chat["y"] + chat["height"]  # stacked, not side by side
    assert inspector["width"] <= 390
    page.screenshot(path=str(Path(SHOTS or tmp_path) / "phone.png"))
    page.close()


def test_reset_and_replay_from_the_page_go_through_the_admin_api(
    browser: Browser, site: Running
) -> None:
    phone = _phone()
    page = _open(browser, site, phone)
    _say(page, "hi")
    page.get_by_role("button", name="Join credex").last.click()
    expect(page.locator("#flow")).to_contain_text("register")
    page.on("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Reset the session").click()
    expect(page.locator("#flow")).to_have_text("—")
    expect(page.locator("#audit")).to_contain_text("reset from the inspector")
    # an update set aside as a dead letter (as a worker does after its last attempt:
    # queued but never marked ready, buried, audited), then replayed from the page
    inbox = Inbox(site.store.settings)
    update = Update(f"web.{uuid.uuid4().hex}", f"web:{phone}", "text", int(time.time()), "hi")
    site.store.execute(_queue_unmarked(inbox, update))
    site.store.execute(inbox.bury(update.channel, update.id, {"error": "boom", "attempts": 5}))
    session = page.locator("#key").inner_text()
    site.store.audit_append(session, AuditEvent("message.dead", update.channel, "boom"))
    expect(page.get_by_role("button", name=f"Replay {update.id}")).to_be_visible(timeout=10_000)
    page.get_by_role("button", name=f"Replay {update.id}").click()
    expect(page.locator("#dead")).to_have_text("none")
    expect(page.locator("#messages li.bot").last).to_contain_text("Welcome")
    page.close()


def _queue_unmarked(inbox: Inbox, update: Update) -> Iterator[Script]:
    """Queue ``update`` without marking its sender ready, so no worker takes it."""
    k = inbox.keys.member(update.channel)
    keys = [k.inbox, k.inbox_body, k.inbox_seq, k.received(update.id)]
    yield Script("inbox_push", keys, [60_000, update.timestamp, update.id, update.encode()])
