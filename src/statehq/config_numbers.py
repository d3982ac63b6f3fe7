"""The WhatsApp numbers file (``STATEHQ_WHATSAPP_NUMBERS``): more business numbers in one
deployment, each with its own token, bot and, optionally, app secret.

The number of ``WHATSAPP_PHONE_NUMBER_ID`` stays the default and needs no file. The file
(TOML) lists the others::

    [reengage]                          # optional: sent after a 131047 (any number)
    name = "hello_again"
    language = "en_US"

    [[number]]
    phone_number_id = "106540352242923"
    access_token_env = "ZA_WHATSAPP_TOKEN"   # or access_token = "EAAG..."
    bot = "zabot:create_bot"                 # optional: STATEHQ_BOT
    app_secret_env = "ZA_APP_SECRET"         # optional: WHATSAPP_APP_SECRET

    [number.reengage]                   # optional: this number's own
    name = "hola_de_nuevo"
    language = "es"

A secret is given inline (``access_token``, ``app_secret``) or as the name of an
environment variable that holds it (``access_token_env``, ``app_secret_env``), so the
file itself can be committed. Whatever is wrong (an unknown key, a missing token, an
import path that is not one, an id given twice) is a :class:`ConfigError` that names
the file, the number and the key.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .digits import is_digits
from .errors import ConfigError, InvalidInput
from .flows.templates import Template

VARIABLE = "STATEHQ_WHATSAPP_NUMBERS"
TOP_KEYS = ("number", "reengage")
NUMBER_KEYS = (
    "phone_number_id",
    "access_token",
    "access_token_env",
    "app_secret",
    "app_secret_env",
    "bot",
    "reengage",
)
TEMPLATE_KEYS = ("name", "language", "parameters")
MAX_ID_DIGITS = 20
"""The longest phone number id read (Meta's have 15 or 16 digits): a member's identity
``whatsapp:<wa_id>@<id>`` must stay within what the store keys (128 characters)."""


@dataclass(frozen=True)
class WhatsAppNumber:
    """One number of the file: its id, token, bot (None: ``STATEHQ_BOT``), app secret
    (None: ``WHATSAPP_APP_SECRET``) and re-engagement template (None: the file's)."""

    phone_number_id: str
    access_token: str = field(repr=False)
    bot: str | None = None
    app_secret: str | None = field(default=None, repr=False)
    reengage: Template | None = None


@dataclass(frozen=True)
class NumbersFile:
    """What the file says: its numbers, and the template every number without its own uses."""

    numbers: tuple[WhatsAppNumber, ...] = ()
    reengage: Template | None = None

    def ids(self) -> list[str]:
        """The phone number ids, in the file's order."""
        return [number.phone_number_id for number in self.numbers]


def load_numbers(
    path: str | Path, environ: Mapping[str, str] | None = None, *, variable: str = VARIABLE
) -> NumbersFile:
    """Read and check the numbers file at ``path``; secrets named by variable come from
    ``environ`` (default: the process's environment)."""
    env = os.environ if environ is None else environ
    where = f"{variable}={str(path)!r}"
    try:
        raw = Path(path).expanduser().read_bytes()
    except OSError as unreadable:
        raise ConfigError(f"{where}: cannot read the file ({unreadable.strerror})") from None
    try:
        document = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as bad:
        raise ConfigError(f"{where}: not valid TOML: {bad}") from None
    _known_keys(where, "the file", document, TOP_KEYS)
    tables = document.get("number", [])
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise ConfigError(f"{where}: 'number' must be tables written [[number]]")
    numbers = tuple(_number(where, n, table, env) for n, table in enumerate(tables, 1))
    seen: set[str] = set()
    for number in numbers:
        if number.phone_number_id in seen:
            raise ConfigError(
                f"{where}: phone_number_id {number.phone_number_id} is listed twice; "
                f"each number is configured once"
            )
        seen.add(number.phone_number_id)
    return NumbersFile(numbers, _template(where, "[reengage]", document.get("reengage")))


def _number(where: str, n: int, table: dict[str, Any], env: Mapping[str, str]) -> WhatsAppNumber:
    pnid = table.get("phone_number_id")
    if isinstance(pnid, int) and not isinstance(pnid, bool):
        pnid = str(pnid)  # written without quotes: TOML integers hold every real id exactly
    if (
        not isinstance(pnid, str)
        or not is_digits(pnid.strip())
        or len(pnid.strip()) > MAX_ID_DIGITS
    ):
        raise ConfigError(
            f"{where}: number {n} needs phone_number_id, the numeric id Meta shows for the "
            f"number (WhatsApp > API Setup), got {pnid!r}"
        )
    pnid = pnid.strip()
    what = f"number {n} ({pnid})"
    _known_keys(where, what, table, NUMBER_KEYS)
    token = _secret(where, what, table, "access_token", env)
    if token is None:
        raise ConfigError(
            f"{where}: {what} has no access token: give access_token, or access_token_env "
            f"naming the environment variable that holds it"
        )
    bot = table.get("bot")
    if bot is not None:
        from . import config_checks  # the same rule as STATEHQ_BOT

        if not isinstance(bot, str):
            raise ConfigError(f"{where}: {what}: bot must be an import path, got {bot!r}")
        bot = config_checks.import_path(f"{where}: {what}: bot", bot)
    secret = _secret(where, what, table, "app_secret", env)
    template = _template(where, f"{what} [number.reengage]", table.get("reengage"))
    return WhatsAppNumber(pnid, token, bot, secret, template)


def _secret(
    where: str, what: str, table: dict[str, Any], key: str, env: Mapping[str, str]
) -> str | None:
    inline, named = table.get(key), table.get(f"{key}_env")
    if inline is not None and named is not None:
        raise ConfigError(f"{where}: {what}: give {key} or {key}_env, not both")
    if named is not None:
        if not isinstance(named, str) or not named.strip():
            raise ConfigError(f"{where}: {what}: {key}_env must name an environment variable")
        value = env.get(named.strip(), "").strip()
        if not value:
            raise ConfigError(
                f"{where}: {what}: {key}_env names {named.strip()}, which is not set "
                f"(or is empty) in the environment"
            )
        return _one_word(where, what, key, value)
    if inline is None:
        return None
    if not isinstance(inline, str) or not inline.strip():
        # The value may be a secret: its type is shown, never the value.
        raise ConfigError(f"{where}: {what}: {key} must be a non-empty string")
    return _one_word(where, what, key, inline.strip())


def _one_word(where: str, what: str, key: str, value: str) -> str:
    """A secret as pasted, refused when it holds a space or a control character: no
    token or app secret does, and a token with a line break can never be sent (every
    worker would fail to start), so it is said here, at start-up."""
    if any(c.isspace() or not c.isprintable() for c in value):
        # The value may be a secret: never shown.
        raise ConfigError(
            f"{where}: {what}: {key} must be one word, without spaces, line breaks or "
            f"control characters (copy it again)"
        )
    return value


def _template(where: str, what: str, table: Any) -> Template | None:
    if table is None:
        return None
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: {what} must be a table (name, language, parameters)")
    _known_keys(where, what, table, TEMPLATE_KEYS)
    try:
        # The list as written: Template refuses a string, which tuple() would split.
        return Template(
            table.get("name", ""), table.get("language", "en_US"), table.get("parameters", ())
        )
    except (InvalidInput, TypeError) as bad:
        raise ConfigError(f"{where}: {what}: {bad}") from None


def _known_keys(where: str, what: str, table: dict[str, Any], known: tuple[str, ...]) -> None:
    unknown = sorted(set(table) - set(known))
    if unknown:
        raise ConfigError(
            f"{where}: {what}: unknown key {', '.join(map(repr, unknown))} "
            f"(known: {', '.join(known)})"
        )
