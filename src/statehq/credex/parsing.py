"""Reading what members type: amounts, names and handles, with errors that say how to fix them."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from ..flows import Invalid
from .backend import DENOMINATIONS
from .rules import HANDLE_LENGTH, NAME_LENGTH, NAME_PUNCTUATION, normalize_handle

NAME_MIN, NAME_MAX = NAME_LENGTH  # the ledger's rule; the bot only words it for members
HANDLE_MAX = HANDLE_LENGTH[1]
_AMOUNT = re.compile(
    r"^(?:(?P<before>[A-Za-z]+)\s*)?(?P<number>[-+\u2212]?(?:\d[\d,]*(?:\.\d*)?|\.\d+))"
    r"(?:\s*(?P<after>[A-Za-z]+))?$"
)
_GROUPED = re.compile(r"^[-+\u2212]?\d{1,3}(,\d{3})+(\.\d*)?$")
_HANDLE = re.compile(r"^[a-z0-9_.]+$")
EXAMPLES = "9, 9.50, 99 ZWG or ZWG 99"


def decimals_for(denomination: str) -> int:
    """Decimal places an amount in ``denomination`` may have (gold is weighed finer)."""
    return 4 if denomination == "XAU" else 2


def format_amount(amount: Decimal, denomination: str) -> str:
    """``1,234.50 USD``: grouped, with the denomination's decimal places."""
    places = decimals_for(denomination)
    return f"{amount:,.{places}f} {denomination}"


def parse_amount(text: str, default_denomination: str) -> tuple[Decimal, str]:
    """``(amount, denomination)`` from ``9``, ``9.50``, ``99 ZWG`` or ``ZWG 99``.

    Raises :class:`~statehq.flows.Invalid` naming what was wrong: an unreadable amount,
    an unknown denomination, zero or a negative amount, or too many decimal places.
    """
    match = _AMOUNT.match(text.strip())
    if match is None:
        raise Invalid(f"I could not read “{text:.40}” as an amount. Send a number like {EXAMPLES}.")
    before, after = match.group("before"), match.group("after")
    if before and after:
        raise Invalid(f"Put the denomination once, before or after the number: like {EXAMPLES}.")
    denomination = (before or after or default_denomination).upper()
    if denomination not in DENOMINATIONS:
        raise Invalid(
            f"{denomination:.10} is not a denomination credex uses. "
            f"Use one of {', '.join(DENOMINATIONS)}, e.g. 99 ZWG."
        )
    number = match.group("number")
    if "," in number and not _GROUPED.match(number):
        raise Invalid("Use a dot for decimals and commas only between thousands: 9.50 or 1,250.")
    number = number.replace(",", "").replace("\u2212", "-")  # a typographic minus
    try:
        amount = Decimal(number)
    except InvalidOperation:
        raise Invalid(
            f"I could not read “{text:.40}” as an amount. Send a number like {EXAMPLES}."
        ) from None
    if amount <= 0:
        raise Invalid("The amount must be greater than 0. Send a positive amount, like 9.50.")
    places = decimals_for(denomination)
    exponent = amount.normalize().as_tuple().exponent
    if isinstance(exponent, int) and -exponent > places:
        raise Invalid(f"{denomination} amounts have at most {places} decimal places, like 9.50.")
    return amount, denomination


def parse_name(text: str, which: str) -> str:
    """A first or last name: 3-50 characters of letters and common punctuation."""
    # Phones type a typographic apostrophe (O\u2019Brien); the ledger stores the plain one.
    name = " ".join(text.replace("\u2019", "'").split())
    if not NAME_MIN <= len(name) <= NAME_MAX:
        raise Invalid(
            f"Your {which} name must be {NAME_MIN} to {NAME_MAX} characters long; "
            f"“{name:.60}” has {len(name)}. Please send it again."
        )
    bad = sorted({c for c in name if not c.isalpha() and c not in NAME_PUNCTUATION})
    if bad or not any(c.isalpha() for c in name):
        shown = " ".join(bad) or "no letters"
        raise Invalid(
            f"Your {which} name can have letters, spaces, hyphens, apostrophes and full "
            f"stops, but not {shown}. Please send it again."
        )
    return name


def parse_handle(text: str) -> str:
    """An account handle as members write it (``@bob`` or ``bob``), lower-cased."""
    handle = normalize_handle(text)
    if not handle or len(handle) > HANDLE_MAX:
        raise Invalid(f"A handle is 1 to {HANDLE_MAX} characters, like @bob. Please send it again.")
    if not _HANDLE.match(handle):
        raise Invalid(
            "A handle has only letters, digits, underscores and dots, like @alice_shop. "
            "Please send it again."
        )
    return handle
