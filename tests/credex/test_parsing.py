"""Reading amounts, names and handles the way members type them."""

from decimal import Decimal

import pytest

from statehq.credex.parsing import format_amount, parse_amount, parse_handle, parse_name
from statehq.flows import Invalid


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("9", (Decimal("9"), "USD")),
        ("9.50", (Decimal("9.50"), "USD")),
        ("99 ZWG", (Decimal("99"), "ZWG")),
        ("ZWG 99", (Decimal("99"), "ZWG")),
        ("zwg99", (Decimal("99"), "ZWG")),
        ("1,250.75 cad", (Decimal("1250.75"), "CAD")),
        ("0.0125 XAU", (Decimal("0.0125"), "XAU")),
        (".5", (Decimal(".5"), "USD")),
        ("CXX 3", (Decimal("3"), "CXX")),
        ("12,345,678.5", (Decimal("12345678.5"), "USD")),
    ],
)
def test_every_amount_format(text: str, expected: tuple[Decimal, str]) -> None:
    assert parse_amount(text, "USD") == expected


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("EUR 9", "EUR is not a denomination credex uses"),
        ("9 dollars", "DOLLARS is not a denomination"),
        ("0", "greater than 0"),
        ("0.00 USD", "greater than 0"),
        ("-5", "greater than 0"),
        ("USD -5", "greater than 0"),
        ("nine", "could not read"),
        ("9.505", "at most 2 decimal places"),
        ("USD 9 ZWG", "denomination once"),
        ("", "could not read"),
        ("9,50", "Use a dot for decimals"),
        ("1,25,0", "Use a dot for decimals"),
    ],
)
def test_bad_amounts_say_what_to_fix(text: str, match: str) -> None:
    with pytest.raises(Invalid, match=match):
        parse_amount(text, "USD")


def test_amounts_are_formatted_with_their_places() -> None:
    assert format_amount(Decimal("1234.5"), "USD") == "1,234.50 USD"
    assert format_amount(Decimal("0.0125"), "XAU") == "0.0125 XAU"


@pytest.mark.parametrize("name", ["Ann", "O'Brien", "Jean-Luc", "Tendai M.", "Zoë", "Ngũgĩ"])
def test_names_accept_letters_and_common_punctuation(name: str) -> None:
    assert parse_name(name, "first") == name


def test_a_typographic_apostrophe_becomes_the_plain_one_the_ledger_takes() -> None:
    assert parse_name("O\u2019Brien", "last") == "O'Brien"


@pytest.mark.parametrize(
    ("name", "match"),
    [
        ("Al", "3 to 50 characters long; “Al” has 2"),
        ("A" * 51, "has 51"),
        ("R2D2", "not 2"),
        ("Ann!", "not !"),
        ("---", "no letters"),
    ],
)
def test_bad_names_say_why(name: str, match: str) -> None:
    with pytest.raises(Invalid, match=match):
        parse_name(name, "first")


def test_handles() -> None:
    assert parse_handle("@Bob") == "bob"
    assert parse_handle(" alice_shop ") == "alice_shop"
    with pytest.raises(Invalid, match="1 to 30 characters"):
        parse_handle("x" * 31)
    with pytest.raises(Invalid, match="only letters, digits"):
        parse_handle("bob smith")
