"""The terminal is a channel like any other: lines received as updates, replies delivered."""

from __future__ import annotations

import io
import json

import pytest

from statehq import StateStore
from statehq.channels.base import Channel, Refusal
from statehq.channels.terminal import SENDER_HEADER, TerminalChannel, TerminalChat
from statehq.flows import Buttons, Flow, Input, Option, SimpleBot, build_engine
from statehq.store.inbox import Update

PHONE = "263771234567"


class AskBot(SimpleBot):
    flows = (
        Flow("ask", "Ask", (Input("q", "Your question?", lambda t, text: {"q": text}, "q"),)),
        Flow("other", "Other", (Input("o", "Other?", lambda t, text: {"o": text}, "o"),)),
    )


@pytest.fixture
def channel() -> TerminalChannel:
    return TerminalChannel()


def _receive(channel: TerminalChannel, line: bytes, sender: str = PHONE) -> tuple[Update, ...]:
    return channel.receive({SENDER_HEADER: sender}, line).updates


def test_it_has_every_hook_of_the_channel_protocol(channel: TerminalChannel) -> None:
    hooks = {name for name in dir(Channel) if not name.startswith("_")}
    assert hooks <= set(dir(channel))
    assert channel.type == "terminal"
    assert channel.problems() == []
    assert channel.verify({})[0] == 404


def test_a_line_is_received_as_a_text_update(channel: TerminalChannel) -> None:
    (update,) = _receive(channel, b"  hello there \n")
    assert (update.channel, update.kind, update.text) == (
        f"terminal:{PHONE}",
        "text",
        "hello there",
    )
    assert update.id.startswith("terminal.")
    (again,) = _receive(channel, b"hello there")
    assert again.id != update.id  # every line is a new message


def test_a_number_picks_an_option_only_of_the_menu_on_screen(channel: TerminalChannel) -> None:
    assert _receive(channel, b"1")[0].kind == "text"  # no menu shown yet
    with channel.delivery() as delivery:
        menu = Buttons("Pick", (Option("yes", "Yes"), Option("no", "No")))
        (update,) = _receive(channel, b"hi")
        for entry in delivery.render(update, [menu]):
            report = delivery.deliver(json.loads(entry)["body"])
            assert report.ok
    (picked,) = _receive(channel, b"2")
    assert (picked.kind, picked.choice, picked.text) == ("button", "no", "No")
    assert _receive(channel, b"3")[0].kind == "text"  # out of range: typed text


@pytest.mark.parametrize("sender", ["", "abc", "12", "1" * 16])
def test_a_line_without_a_phone_is_refused(channel: TerminalChannel, sender: str) -> None:
    with pytest.raises(Refusal) as refused:
        channel.receive({SENDER_HEADER: sender}, b"hi")
    assert refused.value.status == 400


def test_empty_and_undecodable_lines_are_not_messages(channel: TerminalChannel) -> None:
    blank = channel.receive({SENDER_HEADER: PHONE}, b"   ")
    assert (blank.updates, blank.skipped) == ((), ("an empty line",))
    garbled = channel.receive({SENDER_HEADER: PHONE}, b"\xff\xfe")
    assert garbled.updates == ()
    assert garbled.rejected[0].reason == "malformed"


@pytest.fixture
def chat(store: StateStore) -> tuple[TerminalChat, io.StringIO]:
    out = io.StringIO()
    return TerminalChat(build_engine(store, AskBot()), PHONE, out), out


def test_a_chat_runs_through_the_channel_to_the_store(
    chat: tuple[TerminalChat, io.StringIO], store: StateStore
) -> None:
    terminal, out = chat
    terminal.run(["hi", "", "1", "Why is the sky blue?"], echo=True)
    printed = out.getvalue()
    assert "you> hi" in printed
    assert "1. Ask" in printed
    assert "Your question?" in printed
    assert printed.count("you> ") == 3  # the empty line is not sent
    document = store.get(f"terminal:{PHONE}")
    assert document is not None
    assert document.doc["flow_data"]["data"] == {"q": "Why is the sky blue?"}
    assert document.doc["channel"] == {"identifier": PHONE, "type": "terminal"}
