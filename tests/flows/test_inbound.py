"""Greetings, cancel words and stamped option ids."""

import pytest

from statehq.errors import InvalidInput
from statehq.flows import GREETINGS, Inbound, is_cancel, is_greeting, stamp, unstamp
from statehq.state import ChannelId

ISSUE_GREETINGS = [
    "hi",
    "hie",
    "hy",
    "hey",
    "hello",
    "menu",
    "home",
    "mhoro",
    "makadii",
    "sawubona",
    "jambo",
    "habari",
    "bonjour",
    "salut",
    "hola",
    "ndeipi",
    "buenos dias",
]


def test_every_greeting_of_the_issue_is_known() -> None:
    assert set(ISSUE_GREETINGS) == GREETINGS


@pytest.mark.parametrize(
    "text", ["Hi", "HELLO!", "  hey  ", "Buenos Días", "buenos   días!!", "Bonjour.", "MHORO"]
)
def test_greetings_ignore_case_accents_and_punctuation(text: str) -> None:
    assert is_greeting(text)


@pytest.mark.parametrize("text", ["hi there", "high", "100", "", "menus"])
def test_other_text_is_not_a_greeting(text: str) -> None:
    assert not is_greeting(text)


def test_cancel_words() -> None:
    assert is_cancel("Cancel")
    assert is_cancel("STOP!")
    assert not is_cancel("cancel it please")


def test_stamps_round_trip() -> None:
    drawn, option = unstamp(stamp(12, "member:m1", "offer"))
    assert option == "offer"
    assert drawn is not None
    assert drawn[0] == 12
    assert unstamp(stamp(3, "member:m1", "page:2"))[1] == "page:2"
    assert unstamp("offer") == (None, "offer")


def test_stamps_of_two_sessions_differ_at_the_same_version() -> None:
    before_login = stamp(2, "whatsapp:263771234567", "learn")
    after_login = stamp(2, "member:m1", "learn")
    assert before_login != after_login


def test_a_handle_is_never_a_greeting_or_a_cancel() -> None:
    assert not is_greeting("@hola")
    assert not is_cancel("@stop")


def test_inbound_refuses_an_empty_message_id() -> None:
    with pytest.raises(InvalidInput, match="message_id"):
        Inbound(ChannelId("terminal", "263771234567"), " ", "hi")
