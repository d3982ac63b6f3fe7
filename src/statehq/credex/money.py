"""Amounts, denominations and the demo conversion rates of the built-in ledger.

Amounts are :class:`~decimal.Decimal` at every boundary and integers of 1/10000 of a unit
in storage, so sums are exact and four decimal places (a tenth of a milligram of gold)
is the finest amount the ledger records.

The conversion rates are fixed demo values, not market data: they only make
``net_assets`` (every balance expressed in the account's default denomination, rounded
to the cent, or to 0.0001 g for XAU) a plausible number. Rates are units per 1 USD:

=====  ===========  =========================================
USD    1            the reference
ZWG    26.5         Zimbabwe Gold, about the 2025 official rate
CAD    1.39
XAU    0.0116       grams of gold (about 86 USD a gram)
CXX    1            credcoin, pegged to the dollar for the demo
=====  ===========  =========================================
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

from .backend import DENOMINATIONS, Refused

UNITS_PER_WHOLE = 10_000
"""Stored units in one whole unit of a denomination (four decimal places)."""

MAX_AMOUNT = Decimal(10) ** 12
"""The largest single amount accepted; keeps every sum far inside SQLite's int64."""

RATES_PER_USD: dict[str, Decimal] = {
    "USD": Decimal(1),
    "ZWG": Decimal("26.5"),
    "CAD": Decimal("1.39"),
    "XAU": Decimal("0.0116"),
    "CXX": Decimal(1),
}
"""Demo rates: how many units of each denomination one US dollar buys."""

PLACES = {"XAU": 4}
"""Decimal places a converted total is rounded to: 2, or 4 for grams of gold."""

_CENT = Decimal("0.01")


def check_denomination(denomination: object) -> str:
    """The denomination if the ledger knows it, else ``Refused(invalid_denomination)``."""
    if not isinstance(denomination, str) or denomination not in DENOMINATIONS:
        known = ", ".join(DENOMINATIONS)
        raise Refused(
            f"unknown denomination {denomination!r:.20}; use one of {known}",
            code="invalid_denomination",
        )
    return denomination


def to_units(amount: object) -> int:
    """A positive amount with at most four decimal places as stored units."""
    if isinstance(amount, bool) or not isinstance(amount, Decimal | int):
        raise Refused(f"amount must be a decimal number, not {amount!r:.40}", code="invalid_amount")
    value = Decimal(amount)
    if not value.is_finite() or value <= 0:
        raise Refused(f"amount must be greater than zero, not {value}", code="invalid_amount")
    if value > MAX_AMOUNT:
        raise Refused(f"amount {value} is larger than {MAX_AMOUNT:,}", code="invalid_amount")
    _, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)  # finite, checked above
    # Only the digits after the fourth decimal place matter: 1.50000 is 1.5.
    if any(digits[max(0, len(digits) + exponent + 4) :]):
        raise Refused(f"amount {value} has more than four decimal places", code="invalid_amount")
    # Exact: at most 13 integer and 4 decimal significant digits, inside the 28 of precision.
    return int(value.scaleb(4))


def from_units(units: int) -> Decimal:
    """Stored units as a Decimal with two decimal places, or up to four when needed."""
    exact = Decimal(units).scaleb(-4)
    cents = exact.quantize(_CENT)
    return cents if cents == exact else exact.normalize()


def format_amount(units: int, denomination: str) -> str:
    """An amount for messages: ``40.00 USD``."""
    return f"{from_units(units)} {denomination}"


def round_units(units: int, denomination: str) -> int:
    """Units rounded to the denomination's places (a converted total: to the cent)."""
    step: int = 10 ** (4 - PLACES.get(denomination, 2))
    return int((Decimal(units) / step).quantize(Decimal(1), rounding=ROUND_HALF_EVEN)) * step


def convert_units(units: int, source: str, target: str) -> int:
    """Stored units of ``source`` expressed in ``target`` at the demo rates (rounded)."""
    if source == target:
        return units
    converted = Decimal(units) / RATES_PER_USD[source] * RATES_PER_USD[target]
    return int(converted.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))
