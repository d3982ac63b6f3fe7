"""The ledger's parts on their own: tokens and the secret, amounts, handles."""

from __future__ import annotations

import stat
from decimal import Decimal
from pathlib import Path
from typing import Any

import jwt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from statehq.credex.backend import Refused, Unauthorized
from statehq.credex.money import convert_units, from_units, round_units, to_units
from statehq.credex.rules import check_handle, first_free_handle, handle_base
from statehq.credex.tokens import SECRET_ENV, TokenIssuer, load_secret
from statehq.errors import ConfigError

SECRET = b"s" * 32


def test_a_token_carries_the_member_and_expires_after_five_minutes(clock: Any) -> None:
    issuer = TokenIssuer(SECRET, clock=clock)
    token = issuer.issue("member-1", "263770000001")
    claims = jwt.decode(token, SECRET, algorithms=["HS256"], options={"verify_exp": False})
    assert claims["exp"] - claims["iat"] == 300
    assert issuer.verify(token).member_id == "member-1"
    clock.advance(300)
    with pytest.raises(Unauthorized, match="token expired"):
        issuer.verify(token)


@pytest.mark.parametrize(
    ("forge", "message"),
    [
        (lambda c: jwt.encode(c, b"x" * 32, algorithm="HS256"), "token signature invalid"),
        (lambda c: jwt.encode({**c, "sub": 7}, SECRET, algorithm="HS256"), "token invalid"),
        (lambda c: jwt.encode({"sub": "m"}, SECRET, algorithm="HS256"), "lacks"),
        (lambda c: "not-a-token", "token invalid"),
        (lambda c: "", "token missing"),
    ],
)
def test_forged_or_broken_tokens_are_unauthorized(clock: Any, forge: Any, message: str) -> None:
    claims = {"sub": "m", "phone": "263770000001", "iat": int(clock()), "exp": int(clock()) + 60}
    with pytest.raises(Unauthorized, match=message):
        TokenIssuer(SECRET, clock=clock).verify(forge(claims))


def test_the_secret_is_created_once_with_mode_0600(tmp_path: Path) -> None:
    secret = load_secret(tmp_path / "data", environ={})
    assert len(secret) == 32
    path = tmp_path / "data" / "ledger.secret"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_secret(tmp_path / "data", environ={}) == secret


def test_the_secret_may_come_from_the_environment(tmp_path: Path) -> None:
    given_secret = "e" * 40
    assert load_secret(tmp_path, environ={SECRET_ENV: given_secret}) == given_secret.encode()
    assert not (tmp_path / "ledger.secret").exists()
    with pytest.raises(ConfigError, match=SECRET_ENV):
        load_secret(tmp_path, environ={SECRET_ENV: "short"})
    with pytest.raises(ConfigError):
        TokenIssuer(b"short")


@given(
    st.decimals(min_value=Decimal("0.0001"), max_value=Decimal(10) ** 12, places=4, allow_nan=False)
)
def test_amounts_round_trip_through_storage_units(amount: Decimal) -> None:
    assert from_units(to_units(amount)) == amount


@pytest.mark.parametrize("amount", ["0", "-1", "0.00001", "1e13", "Infinity", True, 1.5])
def test_amounts_the_ledger_refuses(amount: object) -> None:
    value = Decimal(amount) if isinstance(amount, str) else amount
    with pytest.raises(Refused) as caught:
        to_units(value)
    assert caught.value.code == "invalid_amount"


def test_conversion_and_rounding() -> None:
    assert convert_units(26_500_000, "ZWG", "USD") == 1_000_000  # 2650 ZWG = 100 USD
    assert round_units(3_155_172, "USD") == 3_155_200
    assert round_units(3_155_172, "XAU") == 3_155_172
    assert str(from_units(12_345)) == "1.2345"
    assert str(from_units(-5_000)) == "-0.50"


def test_handles() -> None:
    assert handle_base("Ann", "Moyo") == "ann_moyo"
    assert handle_base("Jean-Luc", "O'Brien Jr.") == "jean_luc_o_brien_jr"
    assert len(handle_base("A" * 50, "B" * 50)) <= 26
    assert handle_base("李小龍", "王大明") == "member"
    assert first_free_handle("ann", {"ann", "ann2", "ann3"}) == "ann4"
    assert check_handle("@Alice_Shop") == "alice_shop"
    with pytest.raises(Refused):
        check_handle("al")
