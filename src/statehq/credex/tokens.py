"""The ledger's member tokens: HS256 JWTs with a five-minute life.

A token carries ``sub`` (the member id), ``phone``, ``iat`` and ``exp``. Expiry is checked
against an injectable clock rather than PyJWT's own ``time.time()``, so a test can move
the clock past ``exp`` instead of sleeping; PyJWT still checks the signature and the
shape of the claims.

The signing secret comes from ``STATEHQ_LEDGER_SECRET`` when set, else from
``<data_dir>/ledger.secret`` (32 random bytes, created on first use with mode 0600), so
tokens survive a restart of ``statehq ledger serve`` and two processes on the same data
dir accept each other's tokens.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import jwt

from ..errors import ConfigError
from .backend import Unauthorized

Clock = Callable[[], float]
"""Seconds since the epoch; ``time.time`` in production, a settable clock in tests."""

TOKEN_TTL = 300.0
"""Seconds a token stays valid (credex-core's five minutes)."""

SECRET_ENV = "STATEHQ_LEDGER_SECRET"
SECRET_FILE = "ledger.secret"
MIN_SECRET_BYTES = 32  # RFC 7518 3.2: an HS256 key at least as long as the hash output

_ALGORITHM = "HS256"
_REQUIRED = ("sub", "phone", "iat", "exp")


@dataclass(frozen=True)
class TokenClaims:
    """What a verified token says: whose it is and when it stops being valid."""

    member_id: str
    phone: str
    issued_at: float
    expires_at: float


class TokenIssuer:
    """Issues and verifies member tokens with one secret and one clock."""

    def __init__(self, secret: bytes, *, clock: Clock = time.time, ttl: float = TOKEN_TTL) -> None:
        if len(secret) < MIN_SECRET_BYTES:
            raise ConfigError(f"the ledger secret must be at least {MIN_SECRET_BYTES} bytes")
        self._secret = secret
        self._clock = clock
        self.ttl = ttl

    def issue(self, member_id: str, phone: str) -> str:
        """A fresh token for the member, valid for :attr:`ttl` seconds from now."""
        now = int(self._clock())
        claims = {"sub": member_id, "phone": phone, "iat": now, "exp": now + int(self.ttl)}
        return jwt.encode(claims, self._secret, algorithm=_ALGORITHM)

    def verify(self, token: str) -> TokenClaims:
        """The claims of a valid token; :class:`Unauthorized` saying why otherwise."""
        if not isinstance(token, str) or not token:
            raise Unauthorized("token missing")
        claims = self._decode(token)
        if self._clock() >= claims.expires_at:
            raise Unauthorized("token expired")
        return claims

    def _decode(self, token: str) -> TokenClaims:
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[_ALGORITHM],
                # exp/iat/nbf are checked in verify() against our clock, not the wall clock.
                options={
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                    "require": list(_REQUIRED),
                },
            )
        except jwt.InvalidSignatureError as exc:
            raise Unauthorized("token signature invalid") from exc
        except jwt.MissingRequiredClaimError as exc:
            raise Unauthorized(f"token lacks the {exc.claim!r} claim") from exc
        except jwt.InvalidTokenError as exc:
            raise Unauthorized(f"token invalid: {exc}") from exc
        sub, phone, iat, exp = (claims[name] for name in _REQUIRED)
        if not (isinstance(sub, str) and isinstance(phone, str)) or not (
            _is_number(iat) and _is_number(exp)
        ):
            raise Unauthorized("token claims malformed")
        return TokenClaims(sub, phone, float(iat), float(exp))


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def load_secret(data_dir: Path, environ: Mapping[str, str] | None = None) -> bytes:
    """The signing secret: ``STATEHQ_LEDGER_SECRET``, else ``<data_dir>/ledger.secret``.

    The file is created with 32 random bytes (mode 0600) the first time; ``O_EXCL`` makes
    two processes starting together agree on one secret (the loser reads the winner's).
    """
    env = os.environ if environ is None else environ
    given = env.get(SECRET_ENV)
    if given:
        secret = given.encode()
        if len(secret) < MIN_SECRET_BYTES:
            raise ConfigError(f"{SECRET_ENV} must be at least {MIN_SECRET_BYTES} bytes long")
        return secret
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = data_dir / SECRET_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_secret(path)
    with os.fdopen(fd, "wb") as file:
        file.write(secrets.token_bytes(MIN_SECRET_BYTES))
    return _read_secret(path)


def _read_secret(path: Path) -> bytes:
    # A process that lost the O_EXCL race may read before the winner has written.
    for _ in range(50):
        secret = path.read_bytes()
        if len(secret) >= MIN_SECRET_BYTES:
            return secret
        time.sleep(0.01)
    raise ConfigError(f"{path} holds fewer than {MIN_SECRET_BYTES} bytes; delete it to renew")
